"""Apprise wrapper, messages and the console:// plugin.

render_alert(), render_combined_alert() (one article, several rules) and render_digest()
turn matches into a RenderedMessage: a plain-text title ("[rule] article title"), a generic
Markdown body, and the means to render itself for each kind of service (monitor.delivery.render; a
`template:` through monitor.delivery.templates). Notifier holds one apprise.Apprise per channel URL,
works out once how each service takes a message (_target_for), and sends a message to a
channel's services one after another, reporting each outcome with its URL's index and
Apprise's privacy-masked URL; raw channel URLs carry secrets and never leave this module.

Apprise facts this module relies on (apprise 2.3):
- notify() returns an AppriseResult; iterating it gives one NotifyResult per service with
  .name, .url (masked), .status (AppriseResultStatus) and .attempts (a tuple). Their order
  is not tied to the order URLs were added, hence one Apprise object per URL.
- Apprise retries only when told (asset default_service_retry, or ?retry= on a URL); the
  outbox does our retrying, so every service gets retry = 0 here.
- notify(timeout=...) bounds the whole call; a service still running is reported TIMEOUT.
  Services are sent to one after another, each with that bound.
- Plugins throttle themselves (`request_rate_per_sec`: the least number of seconds between
  two sends through the same plugin object: e-mail 5.5, Slack 1.2, Telegram 0.001, JSON 0);
  the first send of an object never waits. Services keep Apprise's politeness here; @notify
  plugins such as console:// never throttle.
- Apprise logs through the one logger "apprise"; some plugins put tokens in DEBUG lines
  (Telegram and Slack log their POST URL). A filter on that logger masks every secret
  (monitor.config.secrets.SECRETS: the configuration's, and the secret parts of every channel URL
  a Notifier was built with), also in the entries Apprise collects for each result.
- Formats: a plugin lists the formats it takes (`notify_format`, a tuple for several:
  Telegram HTML+Markdown, Slack Markdown+text, e-mail HTML+text, json:// all three);
  `plugin.resolve_format(f)` gives what it will use for a body declared as f (a ?format=
  on the URL wins). A body declared in a format the plugin takes is not converted, only
  passed through the plugin's `dialect_convert()` (Telegram reduces HTML to its tag
  subset, Slack converts CommonMark to mrkdwn, keeping a backslash before `*`, `_`, `~`,
  which Slack then shows). Apprise converts Markdown to HTML and text to Markdown or HTML,
  but has no Markdown -> text converter: a text-only service would get raw Markdown.
- A plugin with `title_maxlen` 0 (Telegram, SMS...) has no title field: Apprise puts the
  title in the body, as a Markdown heading or in <b>, unescaped. So such services get the
  title in the body from us, escaped, and an empty title.
- E-mail sent as HTML goes out as multipart/alternative: the HTML and a text part Apprise
  derives from it (html_to_text keeps a link's text, not its URL).
- `body_maxlen` / `title_maxlen` are the services' limits (Telegram 4096, Discord 2000,
  Slack 35000, most others 32768 / 250); by default (overflow=upstream) Apprise does not
  enforce them, so messages are fitted to them here (monitor.delivery.render).

Apprise is imported only when it is needed: importing it takes about 0.1 s and 7 MB, and
its plugin registry (which its first lookup fills by importing all ~190 plugins) another
0.17 s and 11 MB, while most runs send nothing. So a Notifier builds a channel's Apprise
objects on its first send; console:// URLs are checked without Apprise; and any other URL
is checked by importing only the plugin module that declares its scheme (check_apprise_url),
falling back to the registry for anything that search cannot settle.
"""

from __future__ import annotations

import functools
import importlib
import json
import logging
import re
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from monitor.config import SECRETS, ChannelConfig, MaskingFilter, secret_parts_of_url
from monitor.delivery import render
from monitor.delivery.render import (
    GENERIC_TARGET,
    ArticleView,
    Dialect,
    NotifyFormat,
    Rendition,
    Target,
    fit_alert,
    fit_digest,
    markdown_message,
    markdown_to_text,
    utf16_len,
)
from monitor.delivery.render import escape_markdown as escape_markdown
from monitor.delivery.render import format_time as format_time
from monitor.delivery.templates import TemplateProblem, render_template

log = logging.getLogger(__name__)

APP_ID = "news-monitor"
CONSOLE_SCHEMA = "console"

__all__ = [
    "APP_ID",
    "Alert",
    "Notifier",
    "RenderedMessage",
    "SendResult",
    "ServiceResult",
    "check_apprise_url",
    "escape_markdown",
    "format_time",
    "register_console_plugin",
    "render_alert",
    "render_combined_alert",
    "render_digest",
]


# --------------------------------------------------------------------------- messages


@dataclass(frozen=True)
class Alert:
    """Everything a message is rendered from."""

    rule_name: str
    title: str  # article title, plain text
    link: str | None
    feed_name: str  # the feed's configured name
    published: datetime | None  # aware UTC
    matched_terms: tuple[str, ...]
    excerpt: str  # plain text, already cut around the first hit


@dataclass(frozen=True)
class RenderedMessage:
    """A message ready to send: `title` (plain text) and `body` (CommonMark, article text
    escaped) are its generic form. Built by render_alert() / render_digest(), it also knows
    how to render itself for each kind of service (HTML for e-mail, Telegram's HTML,
    Slack's mrkdwn, plain text) within the service's length limit: see for_target()."""

    title: str
    # The generic body, or None to have `renderer` make it on first use (see body).
    given_body: str | None = None
    renderer: Callable[[Target], Rendition] | None = field(
        default=None, kw_only=True, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if self.given_body is None and self.renderer is None:
            raise ValueError("a RenderedMessage needs a body or a renderer")

    @property
    def body(self) -> str:
        """The generic form's body. Made on first use when not given: a message sent only
        to services that take their own rendition never needs it (half the CPU time of
        rendering an alert)."""
        if self.given_body is None:
            # The renderer itself, not for_target: its fallback reads this property.
            rendition = self.renderer(GENERIC_TARGET)  # type: ignore[misc]
            object.__setattr__(self, "given_body", rendition.body)
        return self.given_body  # type: ignore[return-value]

    def for_target(self, target: Target) -> Rendition:
        """The title, body and format to hand to one service."""
        if self.renderer is not None:
            try:
                return self.renderer(target)
            except Exception:
                log.exception("rendering a message for a %s service failed", target.dialect.value)
        return markdown_message(target, self.title, self.body)


def _one_line(text: str) -> str:
    return render.one_line(text)


def _view(alert: Alert, timezone: tzinfo, *, rules: Sequence[Alert] = ()) -> ArticleView:
    """The article of `alert` as messages show it; with `rules`, the alerts of every rule
    that the message carries about it (each rule's matched terms are listed)."""
    rules = rules or (alert,)
    return ArticleView.create(
        title=alert.title,
        link=alert.link,
        feed=alert.feed_name,
        published=alert.published,
        excerpt=alert.excerpt,
        matched_terms=[term for each in rules for term in each.matched_terms],
        timezone=timezone,
        matched_by=[(each.rule_name, each.matched_terms) for each in rules],
    )


def render_alert(alert: Alert, timezone: tzinfo, *, template: str | None = None) -> RenderedMessage:
    """The message for one match: title "[rule] article title" and a body with the feed,
    the published time in `timezone`, the matched terms, the excerpt and the link, article
    text escaped for each service. With `template` (monitor.delivery.templates), the template makes
    the body; if it fails, the default body is used and a warning logged."""
    view = _view(alert, timezone)
    title = f"[{_one_line(alert.rule_name)}] {view.title}"

    def default(target: Target) -> Rendition:
        return fit_alert(target, title, view)

    return _message(title, default, template, rule=alert.rule_name, articles=(view,), digest=False)


def render_combined_alert(
    alerts: Sequence[Alert], timezone: tzinfo, *, template: str | None = None
) -> RenderedMessage:
    """One message for one article that several rules matched (`alerts`: one per rule, the
    same article, in the order their names are shown): title "[rule-a, rule-b] article
    title", and render_alert's body with a "Matched by RULE:" line for each rule. A
    template sees the names joined by ", " as `rule` and their list as `rules`. A single
    alert is rendered by render_alert."""
    if len(alerts) == 1:
        return render_alert(alerts[0], timezone, template=template)
    view = _view(alerts[0], timezone, rules=alerts)
    names = tuple(dict.fromkeys(_one_line(alert.rule_name) for alert in alerts))
    rule = ", ".join(names)
    title = f"[{rule}] {view.title}"

    def default(target: Target) -> Rendition:
        return fit_alert(target, title, view)

    return _message(
        title, default, template, rule=rule, articles=(view,), digest=False, rules=names
    )


def render_digest(
    rule_name: str, alerts: Sequence[Alert], timezone: tzinfo, *, template: str | None = None
) -> RenderedMessage:
    """One message for several matches of a rule (`alerts` oldest first): title "[rule] N
    new articles"; the body lists each article (its title as a link, feed, time, matched
    terms, a short excerpt), shortened with "… and N more" where a service's limit needs."""
    views = tuple(_view(alert, timezone) for alert in alerts)
    count = len(views)
    title = f"[{_one_line(rule_name)}] {count} new {'article' if count == 1 else 'articles'}"

    def default(target: Target) -> Rendition:
        return fit_digest(target, title, views)

    return _message(title, default, template, rule=rule_name, articles=views, digest=True)


def _message(
    title: str,
    default: Callable[[Target], Rendition],
    template: str | None,
    *,
    rule: str,
    articles: tuple[ArticleView, ...],
    digest: bool,
    rules: tuple[str, ...] = (),
) -> RenderedMessage:
    if template is None:
        return RenderedMessage(title, renderer=default)
    try:
        bodies = {
            dialect: render_template(
                template, dialect, rule=rule, articles=articles, digest=digest, rules=rules
            )
            for dialect in (Dialect.MARKDOWN, Dialect.SLACK)
        }
    except TemplateProblem as problem:
        log.warning(
            "template failed rule=%s error=%s; sending the default message",
            _field(rule),
            _field(str(problem)),
        )
        return RenderedMessage(title, renderer=default)

    def templated(target: Target) -> Rendition:
        return _fit_templated(
            target, title, bodies, template, default, rule, articles, digest, rules
        )

    return RenderedMessage(title, bodies[Dialect.MARKDOWN], renderer=templated)


def _fit_templated(
    target: Target,
    title: str,
    bodies: dict[Dialect, str],
    template: str,
    default: Callable[[Target], Rendition],
    rule: str,
    articles: tuple[ArticleView, ...],
    digest: bool,
    rules: tuple[str, ...],
) -> Rendition:
    """A template's output for `target`; with shorter excerpts if it is too long there, or
    the default message if even that does not fit."""

    def rendition(markdown: str, slack: str) -> Rendition:
        return markdown_message(target, title, markdown, slack_body=slack)

    first = rendition(bodies[Dialect.MARKDOWN], bodies[Dialect.SLACK])
    if target.fits(first.body, first.body_format):
        return first
    for limit in (160, 80, 0):
        shorter = tuple(article.with_excerpt(limit) for article in articles)
        try:
            markdown, slack = (
                render_template(
                    template, dialect, rule=rule, articles=shorter, digest=digest, rules=rules
                )
                for dialect in (Dialect.MARKDOWN, Dialect.SLACK)
            )
        except TemplateProblem:
            break
        candidate = rendition(markdown, slack)
        if target.fits(candidate.body, candidate.body_format):
            return candidate
    log.warning(
        "template output too long rule=%s dialect=%s limit=%s; sending the default message",
        _field(rule),
        target.dialect.value,
        target.body_limit,
    )
    return default(target)


# --------------------------------------------------------------------------- console://

_console_lock = threading.Lock()


def _console_send(
    body: str, title: str, notify_type: Any, *args: Any, meta: Any = None, **kwargs: Any
) -> bool:
    """Print the alert to stdout (as it is at call time): title, body, blank line."""
    text = body
    # Apprise's NotifyFormat.MARKDOWN equals ours (both str enums of "markdown").
    if kwargs.get("body_format") == NotifyFormat.MARKDOWN:
        text = markdown_to_text(body)
    out = sys.stdout
    if out is None:  # no stdout at all (pythonw, closed descriptor)
        return False
    with _console_lock:
        if title:
            out.write(f"{title}\n")
        out.write(f"{text}\n\n")
        out.flush()
    return True


def register_console_plugin() -> None:
    """Register the console:// schema with Apprise (process-wide; safe to call again)."""
    from apprise.decorators import notify
    from apprise.manager_plugins import NotificationManager

    manager = NotificationManager()
    with _console_lock:
        if CONSOLE_SCHEMA not in manager:
            # Apprise's @notify plugins never call throttle(): no pause between two prints.
            notify(on=CONSOLE_SCHEMA, name="Console")(_console_send)


# --------------------------------------------------------------------------- URL checks

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]{0,31})://")


def check_apprise_url(url: str) -> str | None:
    """Given an Apprise URL, return None if Apprise accepts it, else a message without secrets.

    Neither keeps an Apprise object nor, when it can help it, fills Apprise's plugin
    registry (see the module docstring): console:// is checked here, other schemes by the
    one plugin module that declares them.
    """
    if not isinstance(url, str) or not url.strip():
        return "empty Apprise URL"
    match = _SCHEME.match(url.strip())
    if match is None:
        return "not an Apprise URL (expected scheme://...)"
    scheme = match.group(1).lower()
    if scheme == CONSOLE_SCHEMA:
        return _check_console_url(url.strip())
    instance = _instantiate_with_plugin_module(scheme, url.strip(), _asset(60.0))
    if instance is _UNSETTLED:
        return _check_with_registry(scheme, url)
    return instance if isinstance(instance, str) else None


def _check_console_url(url: str) -> str | None:
    """Given a console:// URL, return what check_apprise_url would get from Apprise.

    Our @notify plugin takes any console:// URL that Apprise can split: its parser only
    fails where urlparse() does on the part before the query (an unmatched '[').
    """
    rest = url.split("://", 1)[1].split("?", 1)[0]
    try:
        urlsplit(f"http://{rest}")
    except ValueError:
        return f"not a valid Console URL ({CONSOLE_SCHEMA}://)"
    return None


# check_apprise_url's "could not tell without the registry" (None means "accepted").
_UNSETTLED = object()
# `protocol = "json"`, `secure_protocol = ("bsky", "bluesky")`: how plugins name schemes.
_PROTOCOL_DECLARATION = re.compile(
    r"""\b(?:secure_)?protocol\s*=\s*(\([^)]*\)|"[^"\n]*"|'[^'\n]*')"""
)


def _instantiate_with_plugin_module(scheme: str, url: str, asset: Any) -> object:
    """Do what Apprise.instantiate() does for `url`, with only its plugin imported.

    Return the plugin instance (accepted), a message (rejected) or _UNSETTLED when the
    plugin could not be found this way and the registry must decide. Apprise's registry
    imports all of its ~190 plugin modules on first use (about 0.1 s).
    """
    plugin = _plugin_class(scheme)
    if plugin is None:
        return _UNSETTLED
    # The steps of Apprise.instantiate() (apprise 2.3) for a URL string.
    results = plugin.parse_url(url.replace("/#", "/%23"))
    if not results:
        return f"not a valid {plugin.service_name} URL ({scheme}://)"
    if str(results.get("schema", "")).lower() != scheme:
        return _UNSETTLED  # a plugin that rewrites the scheme: let Apprise map it
    if not plugin.enabled:
        return f"not a valid {plugin.service_name} URL ({scheme}://)"
    results["tag"] = set()
    results["asset"] = asset
    try:
        instance = plugin(**results)
    except Exception:  # noqa: BLE001 - what Apprise.instantiate() catches too
        return f"not a valid {plugin.service_name} URL ({scheme}://)"
    if not instance.enabled:
        return f"not a valid {plugin.service_name} URL ({scheme}://)"
    return instance


@functools.cache
def _plugin_class(scheme: str) -> Any:
    """Given a lower-case scheme, return the Apprise plugin class declaring it, or None.

    Finds the module by reading the plugin sources for a `protocol` declaration naming the
    scheme, imports just that module, and takes the class whose schemas() include it, the
    test Apprise's own registry applies. None whenever that does not settle it.
    """
    try:
        import apprise.plugins

        root = Path(apprise.plugins.__file__).parent
        quoted = re.compile(rf"""["']{re.escape(scheme)}["']""")
        modules: list[str] = []
        # A declaration quotes the scheme: a bytes search rules out almost every file
        # before any decoding or regex (this runs at every start, once per scheme).
        needles = (f'"{scheme}"'.encode(), f"'{scheme}'".encode())
        for path in sorted(root.rglob("*.py")):
            data = path.read_bytes()
            if not any(needle in data for needle in needles):
                continue
            text = data.decode("utf-8", errors="replace")
            if any(quoted.search(m.group(1)) for m in _PROTOCOL_DECLARATION.finditer(text)):
                relative = path.relative_to(root).with_suffix("").parts
                name = relative[0]
                if name not in modules and not name.startswith("_") and name != "base":
                    modules.append(name)
        if len(modules) != 1:
            return None  # none, or ambiguous: the registry knows which one wins
        module = importlib.import_module(f"apprise.plugins.{modules[0]}")
        found = [
            candidate
            for attribute, candidate in vars(module).items()
            if attribute.startswith("Notify")
            and isinstance(candidate, type)
            and callable(getattr(candidate, "schemas", None))
            and hasattr(candidate, "app_id")
            and scheme in candidate.schemas(candidate)
        ]
    except Exception:  # noqa: BLE001 - an Apprise layout we do not know: use the registry
        return None
    return found[0] if len(found) == 1 else None


def _instantiate(url: str, asset: Any) -> Any:
    """Return Apprise.instantiate(url, asset=asset), from the URL's plugin module alone
    when it can be found (see _instantiate_with_plugin_module); None if rejected."""
    match = _SCHEME.match(url)
    scheme = match.group(1).lower() if match else ""
    if scheme and scheme != CONSOLE_SCHEMA:
        instance = _instantiate_with_plugin_module(scheme, url, asset)
        if instance is not _UNSETTLED:
            return None if isinstance(instance, str) else instance
    if scheme == CONSOLE_SCHEMA:
        register_console_plugin()
    import apprise

    return apprise.Apprise.instantiate(url, asset=asset)


def _check_with_registry(scheme: str, url: str) -> str | None:
    """check_apprise_url the plain way: Apprise's registry of every plugin."""
    _ensure_setup()
    import apprise
    from apprise.manager_plugins import NotificationManager

    manager = NotificationManager()
    if scheme not in manager:
        return f"unknown Apprise service {scheme}://"
    try:
        instance = apprise.Apprise.instantiate(url.strip(), asset=_asset(60.0))
    except Exception:  # noqa: BLE001 - Apprise is asked to suppress these already
        instance = None
    if instance is None:
        return f"not a valid {manager[scheme].service_name} URL ({scheme}://)"
    return None


# --------------------------------------------------------------------------- sending


@dataclass(frozen=True)
class ServiceResult:
    service: str  # Apprise service name, e.g. "Telegram"
    url: str  # Apprise's privacy-masked URL (never the raw one)
    ok: bool
    index: int  # position of the URL in the channel's `urls`, 0-based


@dataclass(frozen=True)
class SendResult:
    ok: bool  # True only if every service sent to succeeded
    services: tuple[ServiceResult, ...]  # the services sent to, in URL order
    error: str  # short summary when not ok, "" otherwise; never contains secrets


_ERROR_MAX = 400


def _asset(timeout_seconds: float) -> Any:
    from apprise import AppriseAsset

    return AppriseAsset(
        app_id=APP_ID,
        app_desc=APP_ID,
        default_service_retry=0,
        service_timeout=timeout_seconds,
    )


@dataclass
class _Service:
    """One URL of a channel: its own apprise.Apprise, so each result is tied to its URL."""

    index: int
    apprise: Any  # apprise.Apprise
    plugin: Any  # the apprise plugin instance
    name: str  # Apprise service name
    masked_url: str
    target: Target  # how it takes a message: dialect, title field, length limits


@dataclass
class _Channel:
    name: str
    services: tuple[_Service, ...]
    lock: threading.Lock


class Notifier:
    """One apprise.Apprise per channel URL; send() delivers a message to one channel.

    A channel's Apprise objects are built on its first send, not here: most runs send
    nothing, and building the first one imports Apprise and all its plugins. Here every
    URL is only checked, as config loading does (check_apprise_url); one that Apprise
    still rejects when it is built fails that send, with the message __init__ raises.
    """

    def __init__(self, channels: Sequence[ChannelConfig], *, timeout_seconds: float = 60.0) -> None:
        if not timeout_seconds > 0:
            raise ValueError("timeout_seconds must be positive")
        self._timeout = float(timeout_seconds)
        self._configs: dict[str, ChannelConfig] = {}
        for channel in channels:
            if channel.name in self._configs:
                raise ValueError(f"channel {channel.name!r} is defined twice")
            if not channel.urls:
                raise ValueError(f"channel {channel.name!r} has no Apprise URL")
            for index, url in enumerate(channel.urls):
                if check_apprise_url(url) is not None:
                    raise _rejected(channel, index, url)
            self._configs[channel.name] = channel
        self._channels: dict[str, _Channel] = {}
        self._build_lock = threading.Lock()

    def _channel(self, name: str) -> _Channel:
        """Return the named channel's services, building them on first use.

        Raise KeyError for an unknown channel, ValueError if Apprise rejects a URL.
        """
        channel = self._channels.get(name)
        if channel is not None:
            return channel
        with self._build_lock:
            channel = self._channels.get(name)
            if channel is None:
                channel = self._build(self._configs[name])
                self._channels[name] = channel
        return channel

    def _build(self, channel: ChannelConfig) -> _Channel:
        _ensure_setup()
        import apprise

        asset = _asset(self._timeout)
        services: list[_Service] = []
        for index, raw_url in enumerate(channel.urls):
            url = raw_url.strip()
            apobj = apprise.Apprise(asset=asset)
            instance = _instantiate(url, asset)
            if instance is None or not apobj.add(instance):
                raise _rejected(channel, index, url)
            instance.retry = 0  # the outbox retries, with backoff
            masked = instance.url(privacy=True)
            # Before anything is sent: Apprise may log them from the first send on.
            SECRETS.add(secret_parts_of_url(url, masked))
            services.append(
                _Service(
                    index=index,
                    apprise=apobj,
                    plugin=instance,
                    name=str(instance.service_name),
                    masked_url=masked,
                    target=_target_for(instance),
                )
            )
        return _Channel(name=channel.name, services=tuple(services), lock=threading.Lock())

    def channel_names(self) -> tuple[str, ...]:
        return tuple(self._configs)

    def send(
        self,
        channel_name: str,
        message: RenderedMessage,
        *,
        skip_services: frozenset[int] = frozenset(),
    ) -> SendResult:
        """Deliver to the channel's services whose index is not in `skip_services`, one after
        another; never raises for a delivery problem. One failing service does not stop the
        others. With every service skipped, nothing is sent and the result is ok."""
        if channel_name not in self._configs:
            return SendResult(ok=False, services=(), error=f"unknown channel {channel_name!r}")
        try:
            channel = self._channel(channel_name)
        except ValueError as error:
            # The message names the channel and the URL's index and scheme, never the URL.
            log.warning("notify channel=%s status=ERROR error=%s", _field(channel_name), error)
            return SendResult(ok=False, services=(), error=_clip(str(error)))
        results: list[ServiceResult] = []
        problems: list[str] = []
        with channel.lock:
            for service in channel.services:
                if service.index in skip_services:
                    continue
                result, problem = self._send_one(channel, service, message)
                results.append(result)
                if problem:
                    problems.append(problem)
        if not problems:
            return SendResult(ok=True, services=tuple(results), error="")
        error = f"{len(problems)} of {len(results)} services failed: " + "; ".join(problems)
        return SendResult(ok=False, services=tuple(results), error=_clip(SECRETS.apply(error)))

    def _send_one(
        self, channel: _Channel, service: _Service, message: RenderedMessage
    ) -> tuple[ServiceResult, str]:
        """Send through one service; return its result and a problem ("" when it worked)."""
        from apprise import NotifyType

        try:
            rendition = message.for_target(service.target)
            result = service.apprise.notify(
                body=rendition.body,
                title=rendition.title,
                notify_type=NotifyType.INFO,
                body_format=_apprise_format(rendition.body_format),
                timeout=self._timeout,
            )
        except Exception as exc:  # noqa: BLE001 - reported, the outbox retries
            problem = SECRETS.apply(f"{service.name} ERROR ({type(exc).__name__}: {exc})")
            log.warning(
                "notify channel=%s service=%s url=%s status=ERROR error=%s",
                _field(channel.name),
                _field(service.name),
                _field(service.masked_url),
                _field(_clip(problem)),
            )
            return ServiceResult(service.name, service.masked_url, False, service.index), problem
        try:
            return self._report(channel, service, result)
        finally:
            result.close()  # frees Apprise's captured logs

    def _report(
        self, channel: _Channel, service: _Service, result: Any
    ) -> tuple[ServiceResult, str]:
        entries = list(result)
        if not entries:
            log.warning(
                "notify channel=%s service=%s url=%s status=%s attempts=0",
                _field(channel.name),
                _field(service.name),
                _field(service.masked_url),
                result.status.name,
            )
            problem = f"{service.name} {result.status.name} (not notified)"
            return ServiceResult(service.name, service.masked_url, False, service.index), problem
        from apprise.result import AppriseResultStatus

        entry = entries[0]
        ok = entry.status == AppriseResultStatus.SUCCESS and result.status == (
            AppriseResultStatus.SUCCESS
        )
        log.log(
            logging.INFO if ok else logging.WARNING,
            "notify channel=%s service=%s url=%s status=%s attempts=%d",
            _field(channel.name),
            _field(entry.name),
            _field(entry.url),
            entry.status.name,
            len(entry.attempts),
        )
        service_result = ServiceResult(entry.name, entry.url, ok, service.index)
        if ok:
            return service_result, ""
        problem = f"{entry.name} {entry.status.name}"
        reason = _first_warning(entry)
        if reason:
            problem += f" ({reason})"
        return service_result, problem


def _rejected(channel: ChannelConfig, index: int, url: str) -> ValueError:
    """The error for a channel URL Apprise rejects: its channel, position and scheme only."""
    scheme = _SCHEME.match(url.strip())
    what = f" ({scheme.group(1).lower()}://)" if scheme else ""
    return ValueError(f"channel {channel.name!r}: Apprise URL {index + 1}{what} was rejected")


def _is_instance(plugin: Any, module_name: str, class_name: str) -> bool:
    """isinstance(plugin, module.class), without importing the module: while it is not
    imported, nothing is an instance of its classes."""
    module = sys.modules.get(module_name)
    cls = getattr(module, class_name, None)
    return isinstance(cls, type) and isinstance(plugin, cls)


def _target_for(plugin: Any) -> Target:
    """How a service takes a message (see monitor.delivery.render): Telegram gets its
    HTML, Slack its mrkdwn, console:// plain text; others Markdown if they take it, else
    HTML, else text. A ?format= on the URL wins. A service without a title field gets it in
    the body."""
    from apprise import NotifyFormat
    from apprise.conversion import convert_between

    slack = _is_instance(plugin, "apprise.plugins.slack", "NotifySlack")
    telegram = _is_instance(plugin, "apprise.plugins.telegram", "NotifyTelegram")
    if slack:
        preferred = NotifyFormat.MARKDOWN
    elif telegram:
        preferred = NotifyFormat.HTML
    elif getattr(plugin, "secure_protocol", None) == CONSOLE_SCHEMA:
        preferred = NotifyFormat.TEXT
    elif plugin.resolve_format(NotifyFormat.MARKDOWN) == NotifyFormat.MARKDOWN:
        preferred = NotifyFormat.MARKDOWN
    elif plugin.resolve_format(NotifyFormat.HTML) == NotifyFormat.HTML:
        preferred = NotifyFormat.HTML
    else:
        preferred = NotifyFormat.TEXT
    chosen = plugin.resolve_format(preferred)
    if chosen == NotifyFormat.HTML:
        dialect = Dialect.TELEGRAM if telegram else Dialect.HTML
    elif chosen == NotifyFormat.MARKDOWN:
        dialect = Dialect.SLACK if slack else Dialect.MARKDOWN
    else:
        dialect = Dialect.TEXT

    title_limit = int(plugin.title_maxlen) if plugin.title_maxlen > 0 else None
    if slack and getattr(plugin, "use_blocks", False) and title_limit:
        title_limit = min(title_limit, render.SLACK_HEADER_MAX)

    def measure(body: str, body_format: render.NotifyFormat) -> int:
        """The body's length once Apprise has converted it for this service."""
        body_format = _apprise_format(body_format)
        resolved = plugin.resolve_format(body_format)
        converted = convert_between(body_format, resolved, body)
        try:
            converted = plugin.dialect_convert(converted, resolved)
        except Exception:  # noqa: BLE001 - measure what we have; Apprise reports failures
            log.debug("dialect_convert failed for %s", plugin.service_name)
        return utf16_len(converted)

    return Target(
        dialect=dialect,
        title_in_body=plugin.title_maxlen <= 0,
        body_limit=int(plugin.body_maxlen) if plugin.body_maxlen > 0 else None,
        title_limit=title_limit,
        measure=measure,
    )


def _apprise_format(body_format: str) -> Any:
    """Given a body format (ours or Apprise's), return Apprise's NotifyFormat member."""
    from apprise import NotifyFormat as AppriseFormat

    return AppriseFormat(getattr(body_format, "value", body_format))


def _field(value: str) -> str:
    """A value for a key=value log line: as is, or double-quoted if it has spaces or quotes."""
    if value and not re.search(r"[\s\"']", value):
        return value
    return json.dumps(value, ensure_ascii=False)


def _first_warning(service: Any) -> str:
    try:
        for entry in service.logs():
            if entry.level in ("WARNING", "ERROR", "CRITICAL", "DEPRECATION WARNING"):
                return _one_line(entry.message).rstrip(".")
    except Exception:  # noqa: BLE001 - a missing reason must not hide the failure
        return ""
    return ""


def _clip(text: str) -> str:
    return text if len(text) <= _ERROR_MAX else text[: _ERROR_MAX - 1] + "…"


_setup_lock = threading.Lock()
_setup_done = False


def _ensure_setup() -> None:
    """Install the secrets filter on Apprise's logger, once per process. (console:// is
    registered with Apprise when a console URL is first built or checked against the
    registry.)"""
    global _setup_done
    if _setup_done:
        return
    with _setup_lock:
        if _setup_done:
            return
        logging.getLogger("apprise").addFilter(MaskingFilter())
        _setup_done = True
