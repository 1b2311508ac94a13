"""The configuration as the rest of the program reads it: frozen dataclasses.

monitor.config.loader builds them from the files (load_config, load_database_settings).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from monitor.config.schema import (
    DEFAULT_CLUSTER_LEASE_SECONDS,
    DEFAULT_DELIVERY_ATTEMPTS,
    DEFAULT_HTTP_LISTEN,
    DEFAULT_INTERVAL_SECONDS,
    DEFAULT_JITTER_SECONDS,
    DEFAULT_MAX_AGE_SECONDS,
    DEFAULT_MAX_BYTES,
    DEFAULT_RETRY_BASE_SECONDS,
    DEFAULT_RETRY_CAP_SECONDS,
    DEFAULT_SEARCH_TIMEOUT_SECONDS,
    DEFAULT_STORY_WINDOW_SECONDS,
    DEFAULT_TIMEOUT_SECONDS,
    FULLTEXT_OFF,
)
from monitor.model import DEFAULT_MATCH_FIELDS, ConfigProblem


@dataclass(frozen=True)
class FeedConfig:
    name: str
    url: str
    interval_seconds: float = DEFAULT_INTERVAL_SECONDS
    jitter_seconds: float = DEFAULT_JITTER_SECONDS
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    max_bytes: int = DEFAULT_MAX_BYTES
    max_age_seconds: float = DEFAULT_MAX_AGE_SECONDS
    # FULLTEXT_OFF, FULLTEXT_IF_MISSING (YAML `true`) or FULLTEXT_ALWAYS: whether new items
    # get their article page's main text as content (see monitor.service.fulltext).
    fulltext: str = FULLTEXT_OFF
    notify_existing: bool = False
    enabled: bool = True
    # The groups it is in (`group:` or its OPML folders, "Outer/Inner"). Not compared: a
    # feed whose groups change polls as before, so a reload must not plan a first poll.
    groups: tuple[str, ...] = field(default=(), compare=False)


@dataclass(frozen=True)
class ChannelConfig:
    name: str
    urls: tuple[str, ...]  # Apprise URLs with ${...} already substituted: secret-bearing
    template: str | None = (
        None  # Jinja2 body template for this channel (monitor.delivery.templates)
    )


@dataclass(frozen=True, slots=True)  # slots: a rules file may hold 10,000 of them
class RuleConfig:
    name: str
    any_terms: tuple[str, ...] = ()
    all_terms: tuple[str, ...] = ()
    none_terms: tuple[str, ...] = ()
    query: str | None = None  # the query form (monitor.matching.query); ANDed with any/all/none
    fields: tuple[str, ...] = DEFAULT_MATCH_FIELDS
    feeds: tuple[str, ...] = ()  # empty: every feed
    notify: tuple[str, ...] = ("console",)
    enabled: bool = True
    # Delivery options, validated now, applied by the delivery features.
    digest: str | None = None
    quiet_hours: str | None = None
    max_per_hour: int | None = None
    template: str | None = None
    # At most one alert per story on each channel (the story's later articles are listed
    # under the first while its alert waits); False: one alert per article.
    per_story: bool = True
    source_file: str = ""
    source_line: int | None = None


@dataclass(frozen=True)
class DeliveryConfig:
    retry_base_seconds: float = DEFAULT_RETRY_BASE_SECONDS
    retry_cap_seconds: float = DEFAULT_RETRY_CAP_SECONDS
    attempts: int = DEFAULT_DELIVERY_ATTEMPTS  # every try counts, the first included


@dataclass(frozen=True)
class ClusterConfig:
    # How long an instance that stops renewing its lease keeps its work (polls claimed,
    # deliveries claimed) before the other instances on its database take it over.
    lease_seconds: float = DEFAULT_CLUSTER_LEASE_SECONDS


@dataclass(frozen=True)
class HttpConfig:
    """The `http:` section: where the web view, /healthz and /metrics listen, and how."""

    listen: str = DEFAULT_HTTP_LISTEN  # "host:port"
    # HTTP Basic credentials for everything but /healthz and /metrics; None: no
    # authentication (loopback, or `auth: none` written in the config).
    auth_user: str | None = None
    auth_password: str | None = field(default=None, repr=False)
    base_path: str = ""  # "/news": every path under it; "" serves at the root
    search_timeout_seconds: float = DEFAULT_SEARCH_TIMEOUT_SECONDS


@dataclass(frozen=True)
class StoriesConfig:
    """`stories:`: grouping the articles that report the same news into stories."""

    enabled: bool = True
    # Articles first seen within this long after a story's first article may join it.
    window_seconds: float = DEFAULT_STORY_WINDOW_SECONDS
    # How alike an article must be to join a story, 0 to 1; None: the measure's default
    # (monitor.stories.DEFAULT_SIMILARITY).
    similarity: float | None = None


@dataclass(frozen=True)
class Config:
    path: Path  # the main file
    database_url: str
    state_dir: Path
    timezone: str = "UTC"
    feeds: tuple[FeedConfig, ...] = ()
    channels: tuple[ChannelConfig, ...] = ()
    rules: tuple[RuleConfig, ...] = ()
    delivery: DeliveryConfig = field(default_factory=DeliveryConfig)
    http: HttpConfig | None = None  # None: no `http:` section, nothing served
    # Every value substituted from ${...}: never to be shown in logs, errors or status.
    secrets: frozenset[str] = frozenset()
    # The main file, every rules file and every OPML file, for reload on change.
    source_files: tuple[Path, ...] = ()
    # `retention:`: articles first seen longer ago than this lose their bodies (their
    # identity keys stay, so they never come back as new); None keeps everything.
    retention_seconds: float | None = None
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    stories: StoriesConfig = field(default_factory=StoriesConfig)

    def channel(self, name: str) -> ChannelConfig | None:
        return next((channel for channel in self.channels if channel.name == name), None)

    def feed(self, name: str) -> FeedConfig | None:
        return next((feed for feed in self.feeds if feed.name == name), None)


# The keys of the main file that say where the database is: the only ones whose ${...}
# load_database_settings resolves.
DATABASE_KEYS = frozenset({"database", "state_dir"})


@dataclass(frozen=True)
class ListedFeed:
    """A feed as the main file lists it, valid or not."""

    name: str
    url: str  # as written: ${...} left as it is
    enabled: bool = True
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class DatabaseSettings:
    """What reading the database takes of the configuration (load_database_settings)."""

    path: Path  # the main file
    database_url: str
    timezone: str
    feeds: tuple[ListedFeed, ...]
    # What is wrong in the configuration (in no particular part), as load_config would say
    # it, except for the ${...} references that were not resolved.
    problems: tuple[ConfigProblem, ...]
    secrets: frozenset[str]  # the values substituted into database: and state_dir:
