"""Apprise wrapper, message rendering and the console:// plugin.

render_alert() turns an Alert into a title (plain text) and a Markdown body in which the
article's own text is escaped. Notifier holds one apprise.Apprise per configured channel and
sends a RenderedMessage to a channel, reporting each service's outcome with Apprise's
privacy-masked URL; raw channel URLs carry secrets and never leave this module.

Apprise facts this module relies on (apprise 2.x):
- notify() returns an AppriseResult; iterating it gives one NotifyResult per service with
  .name, .url (masked), .status (AppriseResultStatus) and .attempts (a tuple).
- Apprise retries only when told (asset default_service_retry, or ?retry= on a URL); the
  outbox does our retrying, so every service gets retry = 0 here.
- notify(timeout=...) bounds the whole call; a service still running is reported TIMEOUT.
- Plugins throttle themselves (`request_rate_per_sec`: the least number of seconds between
  two sends through the same plugin object: e-mail 5.5, Slack 1.2, Telegram 0.001, JSON 0);
  the first send of an object never waits. Services keep Apprise's politeness here; @notify
  plugins such as console:// never throttle.
- Apprise logs through the one logger "apprise"; some plugins put tokens in DEBUG lines
  (Telegram and Slack log their POST URL). A filter on that logger masks the secret parts
  of every channel URL a Notifier was built with.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from urllib.parse import unquote, urlsplit

import apprise
from apprise import AppriseAsset, NotifyFormat, NotifyType
from apprise.result import AppriseResultStatus

from monitor.config import ChannelConfig

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
    "register_console_plugin",
    "render_alert",
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
    title: str  # "[rule] article title", plain text
    body: str  # Markdown


_WHITESPACE = re.compile(r"\s+")
# Characters that can start or end Markdown structure anywhere in a line (CommonMark, GFM and
# the chat dialects Apprise converts to). Everything else is only special at a line start.
_INLINE_SPECIAL = re.compile(r"([\\`*_\[\]<>~])")
# A line start that would open a heading, list, quote, thematic break or setext underline.
_BLOCK_START = re.compile(r"^(\d{1,9})([.)])|^([#>+=-])")
_LINK_OK = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]{0,31}:[^\s<>]+$")


def _one_line(text: str) -> str:
    return _WHITESPACE.sub(" ", text).strip()


def escape_markdown(text: str) -> str:
    """Plain text -> one line of Markdown that shows exactly that text.

    Whitespace (newlines included) collapses to single spaces. Inline markup characters are
    backslash-escaped everywhere; a character that would open a block (`#`, `-`, `1.`, ...)
    is escaped at the start.
    """
    escaped = _INLINE_SPECIAL.sub(r"\\\1", _one_line(text))
    return _BLOCK_START.sub(
        lambda m: f"{m.group(1)}\\{m.group(2)}" if m.group(1) else f"\\{m.group(3)}",
        escaped,
        count=1,
    )


def _link_markdown(link: str) -> str:
    """An autolink for an absolute URL, escaped text for anything else."""
    link = link.strip()
    # Characters an autolink may not contain are percent-encoded; nothing else changes.
    encoded = "".join(
        f"%{ord(ch):02X}" if ch in ' <>"' or ord(ch) < 0x20 or ord(ch) == 0x7F else ch
        for ch in link
    )
    if _LINK_OK.match(encoded):
        return f"<{encoded}>"
    return escape_markdown(link)


def _format_offset(offset: timedelta) -> str:
    total_minutes = int(offset.total_seconds() // 60)
    sign = "+" if total_minutes >= 0 else "-"
    hours, minutes = divmod(abs(total_minutes), 60)
    return f"UTC{sign}{hours:02d}:{minutes:02d}"


def format_time(moment: datetime, timezone: tzinfo) -> str:
    """'2023-10-05 17:15 CST (UTC+08:00)'; '2023-10-05 09:15 UTC' for UTC itself."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        moment = moment.replace(tzinfo=UTC)  # contract says aware UTC; be lenient
    local = moment.astimezone(timezone)
    offset = local.utcoffset() or timedelta(0)
    offset_text = _format_offset(offset)
    name = local.tzname() or ""
    stamp = local.strftime("%Y-%m-%d %H:%M")
    if not offset and name in ("UTC", "GMT", "Z", "UTC+00:00", ""):
        return f"{stamp} UTC"
    if not name or name == offset_text:
        return f"{stamp} {offset_text}"
    return f"{stamp} {name} ({offset_text})"


def render_alert(alert: Alert, timezone: tzinfo) -> RenderedMessage:
    """The default alert message: title "[rule] article title", a short Markdown body.

    Body: feed, published time in `timezone`, matched terms, the excerpt, the link. Article
    text (and every other value) is escaped, so its own `*`, `_`, `[`, `<`... show as typed.
    """
    article_title = _one_line(alert.title) or "(untitled)"
    title = f"[{_one_line(alert.rule_name)}] {article_title}"

    # Two trailing spaces: a hard line break in CommonMark, Python-Markdown and Telegram.
    facts = [f"**Feed:** {escape_markdown(alert.feed_name)}"]
    published = format_time(alert.published, timezone) if alert.published is not None else "unknown"
    facts.append(f"**Published:** {escape_markdown(published)}")
    terms = [_one_line(term) for term in alert.matched_terms if _one_line(term)]
    if terms:
        facts.append(f"**Matched:** {escape_markdown(', '.join(terms))}")

    paragraphs = ["  \n".join(facts)]
    excerpt = escape_markdown(alert.excerpt)
    if excerpt:
        paragraphs.append(excerpt)
    if alert.link and alert.link.strip():
        paragraphs.append(_link_markdown(alert.link))
    return RenderedMessage(title=title, body="\n\n".join(paragraphs))


# --------------------------------------------------------------------------- console://

_console_lock = threading.Lock()


def _markdown_to_text(body: str) -> str:
    from apprise.conversion import html_to_text, markdown_to_html

    text = html_to_text(markdown_to_html(body))
    return "\n".join(line.strip() for line in text.splitlines()).strip()


def _console_send(
    body: str, title: str, notify_type: Any, *args: Any, meta: Any = None, **kwargs: Any
) -> bool:
    """Print the alert to stdout (as it is at call time): title, body, blank line."""
    text = body
    if kwargs.get("body_format") == NotifyFormat.MARKDOWN:
        try:
            text = _markdown_to_text(body)
        except Exception:  # noqa: BLE001 - the raw Markdown is still readable
            text = body
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
    """Given an Apprise URL, return None if Apprise accepts it, else a message without secrets."""
    if not isinstance(url, str) or not url.strip():
        return "empty Apprise URL"
    _ensure_setup()
    match = _SCHEME.match(url.strip())
    if match is None:
        return "not an Apprise URL (expected scheme://...)"
    scheme = match.group(1).lower()
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


@dataclass(frozen=True)
class SendResult:
    ok: bool  # True only if every service of the channel succeeded
    services: tuple[ServiceResult, ...]
    error: str  # short summary when not ok, "" otherwise; never contains secrets


_ERROR_MAX = 400


def _asset(timeout_seconds: float) -> AppriseAsset:
    return AppriseAsset(
        app_id=APP_ID,
        app_desc=APP_ID,
        default_service_retry=0,
        service_timeout=timeout_seconds,
    )


@dataclass
class _Channel:
    name: str
    apprise: apprise.Apprise
    size: int
    secrets: frozenset[str]
    lock: threading.Lock


class Notifier:
    """One apprise.Apprise per channel; send() delivers a message to one channel."""

    def __init__(self, channels: Sequence[ChannelConfig], *, timeout_seconds: float = 60.0) -> None:
        if not timeout_seconds > 0:
            raise ValueError("timeout_seconds must be positive")
        _ensure_setup()
        self._timeout = float(timeout_seconds)
        self._channels: dict[str, _Channel] = {}
        for channel in channels:
            if channel.name in self._channels:
                raise ValueError(f"channel {channel.name!r} is defined twice")
            self._channels[channel.name] = self._build(channel)

    def _build(self, channel: ChannelConfig) -> _Channel:
        if not channel.urls:
            raise ValueError(f"channel {channel.name!r} has no Apprise URL")
        asset = _asset(self._timeout)
        apobj = apprise.Apprise(asset=asset)
        secrets: set[str] = set()
        for number, raw_url in enumerate(channel.urls, start=1):
            url = raw_url.strip()
            instance = apprise.Apprise.instantiate(url, asset=asset)
            if instance is None or not apobj.add(instance):
                scheme = _SCHEME.match(url)
                what = f" ({scheme.group(1).lower()}://)" if scheme else ""
                raise ValueError(
                    f"channel {channel.name!r}: Apprise URL {number}{what} was rejected"
                )
            instance.retry = 0  # the outbox retries, with backoff
            secrets |= _secret_parts(url, instance.url(privacy=True))
        _REDACTOR.add(secrets)
        return _Channel(
            name=channel.name,
            apprise=apobj,
            size=len(channel.urls),
            secrets=frozenset(secrets),
            lock=threading.Lock(),
        )

    def channel_names(self) -> tuple[str, ...]:
        return tuple(self._channels)

    def send(self, channel_name: str, message: RenderedMessage) -> SendResult:
        """Deliver to every service of the channel; never raises for a delivery problem."""
        channel = self._channels.get(channel_name)
        if channel is None:
            return SendResult(ok=False, services=(), error=f"unknown channel {channel_name!r}")
        with channel.lock:
            try:
                result = channel.apprise.notify(
                    body=message.body,
                    title=message.title,
                    notify_type=NotifyType.INFO,
                    body_format=NotifyFormat.MARKDOWN,
                    timeout=self._timeout,
                )
            except Exception as exc:  # noqa: BLE001 - reported, the outbox retries
                error = _clip(
                    _redact(f"Apprise failed: {type(exc).__name__}: {exc}", channel.secrets)
                )
                log.warning(
                    "notify channel=%s status=ERROR error=%s", _field(channel.name), _field(error)
                )
                return SendResult(ok=False, services=(), error=error)
        try:
            return self._report(channel, result)
        finally:
            result.close()  # frees Apprise's captured logs

    def _report(self, channel: _Channel, result: Any) -> SendResult:
        services: list[ServiceResult] = []
        problems: list[str] = []
        for service in result:
            ok = service.status == AppriseResultStatus.SUCCESS
            services.append(ServiceResult(service=service.name, url=service.url, ok=ok))
            attempts = len(service.attempts)
            log.log(
                logging.INFO if ok else logging.WARNING,
                "notify channel=%s service=%s url=%s status=%s attempts=%d",
                _field(channel.name),
                _field(service.name),
                _field(service.url),
                service.status.name,
                attempts,
            )
            if not ok:
                problem = f"{service.name} {service.status.name}"
                reason = _first_warning(service)
                if reason:
                    problem += f" ({reason})"
                problems.append(problem)

        ok = (
            result.status == AppriseResultStatus.SUCCESS
            and len(services) == channel.size
            and all(s.ok for s in services)
        )
        if ok:
            return SendResult(ok=True, services=tuple(services), error="")
        if problems:
            error = f"{len(problems)} of {channel.size} services failed: " + "; ".join(problems)
        elif not services:
            error = f"no service was notified (apprise status {result.status.name})"
        else:
            error = f"apprise status {result.status.name}"
        error = _clip(_redact(error, channel.secrets))
        return SendResult(ok=False, services=tuple(services), error=error)


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


# --------------------------------------------------------------------------- secrets

_URL_SPLIT = re.compile(r"[/:@?&=,;#+\s]+")
_REDACTED = "****"


def _secret_parts(url: str, masked: str) -> set[str]:
    """The pieces of a raw Apprise URL that Apprise's masked URL does not show.

    Always the password; otherwise tokens of 6+ characters that look like keys (a digit, an
    upper-case letter or a non-letter in them), so query words such as "insecure" stay.
    """
    shown = {*_URL_SPLIT.split(masked.split("://", 1)[-1]), *_URL_SPLIT.split(unquote(masked))}
    parts: set[str] = set()
    try:
        split = urlsplit(url.strip())
        password = split.password
    except ValueError:
        split, password = None, None
    if password:
        parts.update({password, unquote(password)})
    rest = url.split("://", 1)[-1]
    for token in {*_URL_SPLIT.split(rest), *_URL_SPLIT.split(unquote(rest))}:
        if len(token) < 6 or token in shown:
            continue
        if token.isalpha() and token.islower():
            continue
        parts.add(token)
    return {part for part in parts if part}


def _redact(text: str, secrets: Iterable[str]) -> str:
    for secret in sorted(secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, _REDACTED)
    return text


class _SecretRedactor(logging.Filter):
    """Masks known URL secrets in every record of Apprise's logger (it logs tokens at DEBUG)."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._secrets: frozenset[str] = frozenset()

    def add(self, secrets: Iterable[str]) -> None:
        with self._lock:
            self._secrets = self._secrets | frozenset(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = self._secrets
        if not secrets:
            return True
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - leave a malformed record to logging itself
            return True
        cleaned = _redact(message, secrets)
        if cleaned != message:
            record.msg = cleaned
            record.args = None
        return True


_REDACTOR = _SecretRedactor()
_setup_lock = threading.Lock()
_setup_done = False


def _ensure_setup() -> None:
    """Register console:// and install the log redactor, once per process."""
    global _setup_done
    if _setup_done:
        return
    with _setup_lock:
        if _setup_done:
            return
        register_console_plugin()
        logging.getLogger("apprise").addFilter(_REDACTOR)
        _setup_done = True
