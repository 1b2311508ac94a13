"""The outbox: drain due deliveries through the notifier, marking each sent only after
Apprise reports success, and retrying failures with exponential backoff.

A delivery is one message to one channel: an alert about one article, or a batch (a
digest window, quiet hours, the excess of max_per_hour) held in the database until its
release time and then sent as one message listing its articles, oldest first. Which
delivery a match joins is decided when it is stored (monitor.schedule, monitor.store);
this module releases batches whose time has come and sends what is due.

Sending: claim due deliveries a few dozen at a time (one short transaction), send each
with no transaction open, and write each outcome before the next send starts. A process
killed in between leaves its deliveries pending with void claims (monitor.claims): the
next start sends them again. So what may arrive twice is the message in flight and nothing
else (DESIGN.md: "at worst the message in flight is sent twice"); outcomes are not batched
for that reason, although a transaction per outcome costs about as much as a fast send. A
channel's services that already succeeded are recorded and skipped by the retries, so
only the failing one is tried again.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from dataclasses import fields as dataclass_fields
from datetime import datetime, timedelta, tzinfo
from typing import TYPE_CHECKING

from monitor.claims import claim_is_live
from monitor.config import ChannelConfig, DeliveryConfig, RuleConfig
from monitor.errors import StoreError
from monitor.notify import Alert, Notifier, RenderedMessage, render_alert, render_digest
from monitor.store import DueDelivery, Store

if TYPE_CHECKING:
    from monitor.render import Rendition, Target

logger = logging.getLogger(__name__)

# Deliveries read from the database at a time.
PAGE_SIZE = 200
# Deliveries claimed in one transaction, ahead of their sends.
CLAIM_BATCH = 50
# A claim taken ahead is renewed when it is this old (by the clock `now`) and its send has
# not started: far within CLAIM_LEASE, even after the longest send notify.py allows.
CLAIM_RENEW_AFTER = timedelta(minutes=1)

TemplateChooser = Callable[[str, str], str | None]


@dataclass(frozen=True)
class DeliveryReport:
    attempted: int = 0
    sent: int = 0
    retrying: int = 0  # failed this time, will be tried again
    failed: int = 0  # failed for good: attempts exhausted
    released: int = 0  # held batches whose time had come

    def __add__(self, other: DeliveryReport) -> DeliveryReport:
        """The report of two passes together."""
        return DeliveryReport(
            **{
                count.name: getattr(self, count.name) + getattr(other, count.name)
                for count in dataclass_fields(DeliveryReport)
            }
        )


def retry_delay_seconds(attempts_made: int, config: DeliveryConfig) -> float:
    """Given how many tries were made (at least 1), return the wait before the next one:
    retry_base, doubling, capped at retry_cap."""
    exponent = min(max(attempts_made - 1, 0), 32)
    return min(config.retry_base_seconds * (2**exponent), config.retry_cap_seconds)


def template_chooser(
    rules: Sequence[RuleConfig], channels: Sequence[ChannelConfig]
) -> TemplateChooser:
    """Given the configured rules and channels, return template(rule, channel): the rule's
    template, else the channel's, else None (the default message)."""
    by_rule = {rule.name: rule.template for rule in rules if rule.template}
    by_channel = {channel.name: channel.template for channel in channels if channel.template}

    def choose(rule_name: str, channel: str) -> str | None:
        return by_rule.get(rule_name) or by_channel.get(channel)

    return choose


def send_due_deliveries(
    store: Store,
    notifier: Notifier,
    *,
    timezone: tzinfo,
    config: DeliveryConfig,
    now: Callable[[], datetime],
    claimant: str,
    templates: TemplateChooser | None = None,
    ignore_backoff: bool = False,
    dry_run: bool = False,
    stop: threading.Event | None = None,
    attempted: set[int] | None = None,
) -> DeliveryReport:
    """Release held batches whose time has come, then send every due delivery once. With
    ignore_backoff (run --once), every pending one, whatever its retry time; a batch is
    never sent before its time. `attempted`, if given, holds the ids of the deliveries that
    earlier passes took on (run --once sends while it polls, in several passes): those are
    left alone, and this pass adds the ones it takes on.

    With dry_run the messages are rendered and logged but not sent, and nothing is marked
    (batches are not released either). `claimant` names this sender (monitor.claims).
    Every outcome is in the database when this returns (or raises).
    """
    released = 0 if dry_run else store.release_held(now())
    sender = _Sender(
        store,
        notifier,
        timezone=timezone,
        config=config,
        now=now,
        claimant=claimant,
        choose=templates or (lambda _rule, _channel: None),
        dry_run=dry_run,
        stop=stop,
        attempted=attempted if attempted is not None else set(),
    )
    after_id = 0
    while not sender.stopped():
        page = store.due_deliveries(
            now(),
            ignore_backoff=ignore_backoff,
            include_due_held=dry_run,
            after_id=after_id,
            limit=PAGE_SIZE,
        )
        if page:
            after_id = page[-1].delivery_id
        sender.send_page(page)
        if len(page) < PAGE_SIZE:
            break
    return DeliveryReport(released=released, **sender.counts)


class _Sender:
    """One pass over the outbox: claims, messages and outcomes of this pass."""

    def __init__(
        self,
        store: Store,
        notifier: Notifier,
        *,
        timezone: tzinfo,
        config: DeliveryConfig,
        now: Callable[[], datetime],
        claimant: str,
        choose: TemplateChooser,
        dry_run: bool,
        stop: threading.Event | None,
        attempted: set[int],
    ) -> None:
        self.store = store
        self.notifier = notifier
        self.timezone = timezone
        self.config = config
        self.now = now
        self.claimant = claimant
        self.choose = choose
        self.dry_run = dry_run
        self.stop = stop
        self.attempted = attempted  # delivery ids taken on, by this pass or earlier ones
        self.counts = dict.fromkeys(("attempted", "sent", "retrying", "failed"), 0)
        self.channels = frozenset(notifier.channel_names())
        # Messages of this page by what they are made of: the deliveries of one match to
        # several channels (adjacent ids) render it once.
        self._messages: dict[tuple[object, ...], RenderedMessage] = {}

    def stopped(self) -> bool:
        return self.stop is not None and self.stop.is_set()

    def _count(self, outcome: str) -> None:
        self.counts["attempted"] += 1
        if outcome != "dry_run":
            self.counts[outcome] += 1

    def send_page(self, page: Sequence[DueDelivery]) -> None:
        self._messages.clear()
        sendable: list[DueDelivery] = []
        for due in page:
            if self.stopped():
                return  # what is left stays pending for the next start
            if (
                due.claimed_by is not None
                and due.claimed_by != self.claimant
                and claim_is_live(due.claimed_by, due.claimed_at, self.now())
            ):
                logger.debug("deliver delivery=%d status=claimed_elsewhere", due.delivery_id)
                continue
            if due.delivery_id in self.attempted:
                continue  # an earlier pass of this run took it on
            self.attempted.add(due.delivery_id)
            if not due.articles:
                # Only if the articles were deleted behind the outbox's back: nothing to say.
                if not self.dry_run:
                    self.store.mark_attempt_failed(due.delivery_id, "no article left to send", None)
                logger.error(
                    "deliver %s status=failed error='no article left to send'", _log_fields(due)
                )
                self._count("dry_run" if self.dry_run else "failed")
                continue
            if self.dry_run:
                message = self._message(due)
                logger.info("deliver %s status=dry_run title=%r", _log_fields(due), message.title)
                self._count("dry_run")
                continue
            sendable.append(due)
        for first in range(0, len(sendable), CLAIM_BATCH):
            if self.stopped():
                return
            self._send_claimed(sendable[first : first + CLAIM_BATCH])

    def _send_claimed(self, chunk: list[DueDelivery]) -> None:
        """Claim a chunk in one transaction, then send what this sender got, in order."""
        claimed_at = self.now()
        claimed = self.store.claim_deliveries(
            [(due.delivery_id, due.claimed_by) for due in chunk], self.claimant, claimed_at
        )
        for due in chunk:
            if due.delivery_id not in claimed:
                logger.debug("deliver delivery=%d status=claimed_elsewhere", due.delivery_id)
        unsent = [due for due in chunk if due.delivery_id in claimed]
        try:
            while unsent and not self.stopped():
                if self.now() - claimed_at >= CLAIM_RENEW_AFTER:
                    # Claims taken ahead must still be fresh when their send starts: another
                    # host presumes this process alive only for CLAIM_LEASE after a claim.
                    claimed_at = self.now()
                    renewed = self.store.claim_deliveries(
                        [(due.delivery_id, self.claimant) for due in unsent],
                        self.claimant,
                        claimed_at,
                    )
                    unsent = [due for due in unsent if due.delivery_id in renewed]
                    if not unsent:
                        break
                due = unsent[0]
                outcome = self._send(due)
                del unsent[0]
                self._count(outcome)
        except BaseException:
            # A bug, an interrupt or the database: not a delivery outcome. Leave the rest
            # pending, unclaimed (best effort: a claim of ours is void once we end anyway).
            with contextlib.suppress(StoreError):
                self.store.release_claims([due.delivery_id for due in unsent], self.claimant)
            raise
        if unsent:  # stopped
            self.store.release_claims([due.delivery_id for due in unsent], self.claimant)

    def _message(self, due: DueDelivery) -> RenderedMessage:
        template = self.choose(due.rule_name, due.channel)
        key = (due.rule_name, due.as_digest, due.articles, template)
        message = self._messages.get(key)
        if message is None:
            message = _memoised(render_delivery(due, self.timezone, template))
            self._messages[key] = message
        return message

    def _send(self, due: DueDelivery) -> str:
        """Send one claimed delivery and record the outcome: "sent", "retrying" or
        "failed"."""
        fields = _log_fields(due)
        message = self._message(due)
        if due.channel not in self.channels:
            ok, error, succeeded = False, f"channel {due.channel} is not configured", set()
        else:
            result = self.notifier.send(due.channel, message, skip_services=due.sent_services)
            ok, error = result.ok, result.error
            succeeded = {service.index for service in result.services if service.ok}
        sent_services = due.sent_services | succeeded
        attempts_made = due.attempts + 1
        if ok:
            self.store.mark_sent(due.delivery_id, self.now(), sent_services=sent_services)
            logger.info("deliver %s status=sent attempts=%d", fields, attempts_made)
            return "sent"
        if attempts_made >= self.config.attempts:
            self.store.mark_attempt_failed(
                due.delivery_id, error, None, sent_services=sent_services
            )
            logger.error(
                "deliver %s status=failed attempts=%d error=%r", fields, attempts_made, error
            )
            return "failed"
        delay = retry_delay_seconds(attempts_made, self.config)
        retry_at = self.now() + timedelta(seconds=delay)
        self.store.mark_attempt_failed(
            due.delivery_id, error, retry_at, sent_services=sent_services
        )
        logger.warning(
            "deliver %s status=retrying attempts=%d retry_in_seconds=%d error=%r",
            fields,
            attempts_made,
            delay,
            error,
        )
        return "retrying"


def _memoised(message: RenderedMessage) -> RenderedMessage:
    """The same message, rendering itself once per kind of service: a message shared by
    several channels is fitted to each target once."""
    renditions: dict[Target, Rendition] = {}

    def render(target: Target) -> Rendition:
        rendition = renditions.get(target)
        if rendition is None:
            rendition = renditions[target] = message.for_target(target)
        return rendition

    return replace(message, renderer=render)


def render_delivery(due: DueDelivery, timezone: tzinfo, template: str | None) -> RenderedMessage:
    """Given a delivery with at least one article, return its message: a digest listing
    them oldest first, or the alert of its one article. A template that fails falls back
    to the default message, so a broken template never holds alerts back."""
    alerts = [
        Alert(
            rule_name=due.rule_name,
            title=article.title,
            link=article.link,
            feed_name=article.feed_name,
            published=article.published,
            matched_terms=article.terms,
            excerpt=article.excerpt,
        )
        for article in due.articles
    ]

    def render(chosen: str | None) -> RenderedMessage:
        if due.as_digest:
            return render_digest(due.rule_name, alerts, timezone, template=chosen)
        return render_alert(alerts[0], timezone, template=chosen)

    if template is None:
        return render(None)
    try:
        return render(template)
    except Exception as error:  # noqa: BLE001 - the default message still goes out
        logger.warning(
            "deliver rule=%s channel=%s template=failed error=%r note='sent the default message'",
            due.rule_name,
            due.channel,
            str(error),
        )
        return render(None)


def _log_fields(due: DueDelivery) -> str:
    kind = "digest" if due.as_digest else "alert"
    return f"rule={due.rule_name} channel={due.channel} kind={kind} articles={len(due.articles)}"
