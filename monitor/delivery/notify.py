"""Sending through Apprise: Notifier, and what each send did (SendResult, ServiceResult).

Notifier holds one apprise.Apprise per channel URL, works out once how each service takes
a message (monitor.delivery.services.target_for), and sends a message
(monitor.delivery.messages) to a channel's services one after another, reporting each
outcome with its URL's index and Apprise's privacy-masked URL; raw channel URLs carry
secrets and never leave this module and monitor.delivery.services.

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

A Notifier builds a channel's Apprise objects on its first send: most runs send nothing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from monitor.config import SECRETS, ChannelConfig, secret_parts_of_url
from monitor.delivery.markup import log_field, one_line
from monitor.delivery.messages import RenderedMessage
from monitor.delivery.render import Target
from monitor.delivery.services import (
    apprise_format,
    check_apprise_url,
    ensure_setup,
    instantiate,
    make_asset,
    scheme_of,
    target_for,
)

log = logging.getLogger(__name__)

__all__ = ["Notifier", "SendResult", "ServiceResult"]


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
    # may_start said no before a service was reached: the message is not sent to it (nor
    # to those after it); not a failure of the channel.
    interrupted: bool = False


_ERROR_MAX = 400


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
        ensure_setup()
        import apprise

        asset = make_asset(self._timeout)
        services: list[_Service] = []
        for index, raw_url in enumerate(channel.urls):
            url = raw_url.strip()
            apobj = apprise.Apprise(asset=asset)
            instance = instantiate(url, asset)
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
                    target=target_for(instance),
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
        may_start: Callable[[], bool] | None = None,
    ) -> SendResult:
        """Deliver to the channel's services whose index is not in `skip_services`, one after
        another; never raises for a delivery problem. One failing service does not stop the
        others. With every service skipped, nothing is sent and the result is ok.

        `may_start`, asked before each service, may stop the send there (an instance whose
        lease is ending): the result is then `interrupted`, with the services reached."""
        if channel_name not in self._configs:
            return SendResult(ok=False, services=(), error=f"unknown channel {channel_name!r}")
        try:
            channel = self._channel(channel_name)
        except ValueError as error:
            # The message names the channel and the URL's index and scheme, never the URL.
            log.warning("notify channel=%s status=ERROR error=%s", log_field(channel_name), error)
            return SendResult(ok=False, services=(), error=_clip(str(error)))
        results: list[ServiceResult] = []
        problems: list[str] = []
        with channel.lock:
            for service in channel.services:
                if service.index in skip_services:
                    continue
                if may_start is not None and not may_start():
                    return SendResult(
                        ok=False,
                        services=tuple(results),
                        error="interrupted: this instance's lease is ending",
                        interrupted=True,
                    )
                result, problem = self._send_one(channel, service, message)
                results.append(result)
                if problem:
                    problems.append(problem)
        if not problems:
            return SendResult(ok=True, services=tuple(results), error="")
        summary = f"{len(problems)} of {len(results)} services failed: " + "; ".join(problems)
        return SendResult(ok=False, services=tuple(results), error=_clip(SECRETS.apply(summary)))

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
                body_format=apprise_format(rendition.body_format),
                timeout=self._timeout,
            )
        except Exception as exc:  # noqa: BLE001 - reported, the outbox retries
            problem = SECRETS.apply(f"{service.name} ERROR ({type(exc).__name__}: {exc})")
            log.warning(
                "notify channel=%s service=%s url=%s status=ERROR error=%s",
                log_field(channel.name),
                log_field(service.name),
                log_field(service.masked_url),
                log_field(_clip(problem)),
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
                log_field(channel.name),
                log_field(service.name),
                log_field(service.masked_url),
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
            log_field(channel.name),
            log_field(entry.name),
            log_field(entry.url),
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
    scheme = scheme_of(url)
    what = f" ({scheme}://)" if scheme else ""
    return ValueError(f"channel {channel.name!r}: Apprise URL {index + 1}{what} was rejected")


def _first_warning(service: Any) -> str:
    try:
        for entry in service.logs():
            if entry.level in ("WARNING", "ERROR", "CRITICAL", "DEPRECATION WARNING"):
                return one_line(entry.message).rstrip(".")
    except Exception:  # noqa: BLE001 - a missing reason must not hide the failure
        return ""
    return ""


def _clip(text: str) -> str:
    return text if len(text) <= _ERROR_MAX else text[: _ERROR_MAX - 1] + "…"
