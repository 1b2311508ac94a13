"""Building the Config from the validated main file: feeds with their defaults, channels,
delivery, where the database and the state are; and the checks across feeds.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from monitor.config.schema import (
    DEFAULT_CLUSTER_LEASE_SECONDS,
    DEFAULT_DELIVERY_ATTEMPTS,
    DEFAULT_INTERVAL_SECONDS,
    DEFAULT_JITTER_SECONDS,
    DEFAULT_MAX_AGE_SECONDS,
    DEFAULT_MAX_BYTES,
    DEFAULT_RETRY_BASE_SECONDS,
    DEFAULT_RETRY_CAP_SECONDS,
    DEFAULT_SEARCH_TIMEOUT_SECONDS,
    DEFAULT_TIMEOUT_SECONDS,
    FULLTEXT_OFF,
    NO_AUTH,
    ChannelSchema,
    ClusterSchema,
    DefaultsSchema,
    DeliverySchema,
    FeedSchema,
    HttpSchema,
    MainFileSchema,
    StoriesSchema,
)
from monitor.config.settings import (
    ChannelConfig,
    ClusterConfig,
    Config,
    DeliveryConfig,
    FeedConfig,
    HttpConfig,
    ListedFeed,
    RuleConfig,
    StoriesConfig,
)
from monitor.config.sources import Loading, Source
from monitor.model import ConfigProblem


def listed_feeds(data: dict[Any, Any]) -> tuple[ListedFeed, ...]:
    """The feeds the main file lists, valid or not: each entry that has a name, once."""
    feeds = data.get("feeds")
    listed: dict[str, ListedFeed] = {}
    for feed in feeds if isinstance(feeds, list) else []:
        name = feed.get("name") if isinstance(feed, dict) else None
        if isinstance(name, str) and name not in listed:
            url = feed.get("url")
            enabled = feed.get("enabled") is not False
            listed[name] = ListedFeed(name, url if isinstance(url, str) else "", enabled)
    return tuple(listed.values())


def reference_names(data: dict[Any, Any]) -> dict[str, set[str]]:
    """Collect the feed and channel names rules may refer to, even from invalid entries.

    Taken from the raw data so that one feed with a bad interval does not also make every
    rule that names it fail with "unknown feed".
    """
    feeds = data.get("feeds")
    channels = data.get("channels")
    feed_names = {
        feed["name"]
        for feed in (feeds if isinstance(feeds, list) else [])
        if isinstance(feed, dict) and isinstance(feed.get("name"), str)
    }
    channel_names = (
        {name for name in channels if isinstance(name, str)}
        if isinstance(channels, dict)
        else set()
    )
    return {"feeds": feed_names, "channels": channel_names | {"console"}}


def duplicate_feed_problems(main: Source) -> list[ConfigProblem]:
    feeds = main.document.data.get("feeds")
    problems = []
    first_lines: dict[str, int | None] = {}
    for index, feed in enumerate(feeds if isinstance(feeds, list) else []):
        name = feed.get("name") if isinstance(feed, dict) else None
        if not isinstance(name, str):
            continue
        location = ("feeds", index, "name")
        if name in first_lines:
            message = f"another feed is already named {name!r} (line {first_lines[name]})"
            problems.append(main.problem(location, message))
        else:
            first_lines[name] = main.document.line_for(location)
    return problems


def http_problems(main: Source, model: MainFileSchema) -> list[ConfigProblem]:
    """Report a web view open beyond this machine without a word on authentication:
    listening on an address other than loopback needs `auth`, or `auth: none` written."""
    http = model.http
    if http is None or http.auth is not None or is_loopback(http.listen):
        return []
    host = http.listen.rpartition(":")[0]
    message = (
        f"{host or 'this address'} is reachable from other machines: set "
        "auth: {user: NAME, password: ${SECRET}} (HTTP Basic for the web view), or write "
        "auth: none to serve it without authentication"
    )
    return [main.problem(("http", "listen"), message)]


def is_loopback(listen: str) -> bool:
    """Given "host:port", return whether the host is this machine's loopback only
    (127.0.0.0/8, ::1, localhost; an empty host listens on 127.0.0.1)."""
    host = listen.rpartition(":")[0].strip("[]")
    if host in ("", "localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any address


def build_config(
    main: Source,
    model: MainFileSchema,
    feeds: tuple[FeedConfig, ...],
    rules: tuple[RuleConfig, ...],
    source_files: list[Path],
    loading: Loading,
) -> Config:
    state_dir = resolve_state_dir(model.state_dir, main.folder, loading.environ)
    return Config(
        path=main.path,
        database_url=resolve_database_url(model.database, main.folder, state_dir),
        state_dir=state_dir,
        timezone=model.timezone or "UTC",
        feeds=feeds,
        channels=_build_channels(model.channels or {}),
        rules=rules,
        delivery=_build_delivery(model.delivery),
        http=_build_http(model.http) if model.http else None,
        secrets=frozenset(secret for secret in loading.secrets if secret),
        source_files=tuple(dict.fromkeys(path.resolve() for path in source_files)),
        retention_seconds=model.retention,
        cluster=_build_cluster(model.cluster),
        stories=_build_stories(model.stories),
    )


def resolve_state_dir(configured: str | None, folder: Path, environ: Mapping[str, str]) -> Path:
    # systemd sets $STATE_DIRECTORY, colon-separated when StateDirectory= lists several.
    from_systemd = environ.get("STATE_DIRECTORY", "").split(":")[0]
    if from_systemd:
        return Path(os.path.abspath(from_systemd))
    if configured:
        return Path(os.path.abspath(folder / configured))
    return Path(os.path.abspath("state"))


_SQLITE_URL = re.compile(r"(?P<scheme>sqlite(?:\+\w+)?):///(?P<path>[^?]*)(?P<query>\?.*)?", re.S)


def resolve_database_url(configured: str | None, folder: Path, state_dir: Path) -> str:
    """Return the database URL with a relative SQLite path made absolute from `folder`."""
    if configured is None:
        return f"sqlite:///{state_dir / 'monitor.db'}"
    match = _SQLITE_URL.fullmatch(configured)
    if match is None:
        return configured  # PostgreSQL and others: passed through as written
    path = match["path"]
    if not path or path.startswith("/") or path == ":memory:" or path.startswith("file:"):
        return configured
    absolute = os.path.abspath(folder / path)
    return f"{match['scheme']}:///{absolute}{match['query'] or ''}"


def build_feed(
    feed: FeedSchema, defaults: DefaultsSchema | None, groups: tuple[str, ...]
) -> FeedConfig:
    """Given a validated feed entry, the main file's defaults and the feed's groups (see
    monitor.config.feed_lists), return the feed with every setting decided."""

    def setting(name: str, builtin: Any) -> Any:
        for layer in (feed, defaults):
            value = getattr(layer, name, None) if layer is not None else None
            if value is not None:
                return value
        return builtin

    return FeedConfig(
        name=feed.name,
        url=feed.url,
        interval_seconds=setting("interval", DEFAULT_INTERVAL_SECONDS),
        jitter_seconds=setting("jitter", DEFAULT_JITTER_SECONDS),
        timeout_seconds=setting("timeout", DEFAULT_TIMEOUT_SECONDS),
        max_bytes=setting("max_bytes", DEFAULT_MAX_BYTES),
        max_age_seconds=setting("max_age", DEFAULT_MAX_AGE_SECONDS),
        fulltext=setting("fulltext", FULLTEXT_OFF),
        notify_existing=feed.notify_existing,
        enabled=feed.enabled,
        groups=groups,
    )


def _build_channels(channels: dict[str, ChannelSchema]) -> tuple[ChannelConfig, ...]:
    built = [
        ChannelConfig(name, tuple(channel.urls), channel.template)
        for name, channel in channels.items()
    ]
    if "console" not in channels:
        built.append(ChannelConfig("console", ("console://",)))
    return tuple(built)


def _build_http(http: HttpSchema) -> HttpConfig:
    credentials = http.auth if http.auth is not None and http.auth is not NO_AUTH else None
    return HttpConfig(
        listen=http.listen,
        auth_user=credentials.user if credentials else None,
        auth_password=credentials.password if credentials else None,
        base_path=http.base_path,
        search_timeout_seconds=http.search_timeout or DEFAULT_SEARCH_TIMEOUT_SECONDS,
    )


def _build_delivery(delivery: DeliverySchema | None) -> DeliveryConfig:
    if delivery is None:
        return DeliveryConfig()
    return DeliveryConfig(
        retry_base_seconds=delivery.retry_base or DEFAULT_RETRY_BASE_SECONDS,
        retry_cap_seconds=delivery.retry_cap or DEFAULT_RETRY_CAP_SECONDS,
        attempts=delivery.attempts or DEFAULT_DELIVERY_ATTEMPTS,
    )


def _build_cluster(cluster: ClusterSchema | None) -> ClusterConfig:
    if cluster is None:
        return ClusterConfig()
    return ClusterConfig(lease_seconds=cluster.lease or DEFAULT_CLUSTER_LEASE_SECONDS)


def _build_stories(stories: StoriesSchema | None) -> StoriesConfig:
    if stories is None:
        return StoriesConfig()
    return StoriesConfig(
        enabled=stories.enabled, window_seconds=stories.window, similarity=stories.similarity
    )
