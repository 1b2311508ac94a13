"""The outbox: a pass over one channel's due deliveries, each marked sent only after
Apprise reports success, failures retried with exponential backoff.

A delivery is one rule's message to one channel: an alert about one article, or a batch
(a digest window, quiet hours, the excess of max_per_hour) held in the database until its
release time and then sent as one message listing its articles, oldest first. Which
delivery a match joins is decided when it is stored
(monitor.delivery.schedule, monitor.store.database).
Channels are sent to side by side, a pass of this module each, run by monitor.delivery.sender.

One message, several rules: alerts about one article that several rules matched at the
same moment go out to a channel as one message naming every rule ("[korea-japan,
forced-labour] title"). They are immediate alerts (not held by a digest, quiet hours or
max_per_hour: held ones stay per rule) of the same article, due at the same time after as
many attempts, with the same services already sent. Each rule keeps its own delivery
row, so counts and retries stay per rule: the message's outcome is written to every row
it carried, in one transaction, which leaves them due together again for a retry. A rule
whose alert went out before another rule matched the article (after an edit) is not due
with it: each is then a message of its own, at its own time.

Sending: claim due deliveries a few dozen at a time (one short transaction), send each
message with no transaction open, and write its outcome before the channel's next send
starts. A process killed in between leaves its deliveries pending with void claims
(monitor.store.claims): the next start sends them again. So what may arrive twice is the
message in flight on each channel and nothing else; outcomes are not batched for that
reason, although a transaction per outcome costs about as much as a fast send. A
channel's services that already succeeded are recorded and skipped by the retries, so
only the failing one is tried again.

A pass is a generator that yields after each message, so that monitor.delivery.sender can run the
passes of many channels on a few threads, one message at a time.

Instances sharing a database (SendSettings.shared) judge another instance's claims by its
lease (monitor.store.claims), and send only while their own lease allows
(SendSettings.may_send, checked before each service of each message): a pass whose lease
is ending returns after the service in flight, leaving the rest to the other instances.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from dataclasses import fields as dataclass_fields
from datetime import datetime, timedelta, tzinfo
from typing import TYPE_CHECKING

from monitor.config import ChannelConfig, DeliveryConfig, RuleConfig
from monitor.delivery.messages import (
    Alert,
    RenderedMessage,
    render_alert,
    render_combined_alert,
    render_digest,
)
from monitor.delivery.notify import Notifier
from monitor.model import StoreError
from monitor.store import ALERT, DeliveryArticle, DueDelivery, Store, claim_is_live

if TYPE_CHECKING:
    from monitor.delivery.render import Rendition, Target

logger = logging.getLogger(__name__)

# Deliveries read from the database at a time.
PAGE_SIZE = 200
# Deliveries claimed in one transaction, ahead of their sends.
CLAIM_BATCH = 50
# A claim taken ahead is renewed when it is this old (by the clock `now`) and its send has
# not started: far within CLAIM_LEASE, even after the longest send notify.py allows.
CLAIM_RENEW_AFTER = timedelta(minutes=1)

# template(rule names of a message, channel) -> a template's source, or None (the default)
TemplateChooser = Callable[[Sequence[str], str], str | None]
# The deliveries one message carries: one, or the alerts of several rules about one article.
Message = tuple[DueDelivery, ...]


@dataclass(frozen=True)
class DeliveryReport:
    """What passes did, counted in deliveries (a message of two rules counts two)."""

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
    """Given the configured rules and channels, return template(rule_names, channel): for a
    message of one rule, the rule's template, else the channel's; for a message of several
    rules, the channel's; None for the default message."""
    by_rule = {rule.name: rule.template for rule in rules if rule.template}
    by_channel = {channel.name: channel.template for channel in channels if channel.template}

    def choose(rule_names: Sequence[str], channel: str) -> str | None:
        own = by_rule.get(rule_names[0]) if len(rule_names) == 1 else None
        return own or by_channel.get(channel)

    return choose


def default_template(_rule_names: Sequence[str], _channel: str) -> str | None:
    """The template chooser of a configuration without templates."""
    return None


@dataclass(frozen=True)
class SendSettings:
    """How a pass sends: the running configuration's notifier, timezone, retry settings and
    templates (a reload replaces them for the passes that start after it), and whether
    it takes every pending delivery whatever its retry time (run --once) or only those due
    (the daemon). With dry_run, messages are rendered and logged, not sent, and nothing is
    marked (held batches are not released either)."""

    notifier: Notifier
    timezone: tzinfo
    delivery: DeliveryConfig
    templates: TemplateChooser = default_template
    ignore_backoff: bool = False
    dry_run: bool = False
    # Whether a send may start now: on a shared database, while this instance's lease
    # allows (monitor.service.cluster); checked before each service of each message.
    may_send: Callable[[], bool] = lambda: True
    # The database is shared by several instances: claims are judged by their leases.
    shared: bool = False


class ChannelPass:
    """One pass over one channel's due deliveries: each is taken on once, in order, and
    the deliveries of one message are sent together (see the module docstring).

    `attempted` holds the ids of deliveries taken on by earlier passes that share it
    (run --once attempts each delivery once, over several passes): those are left alone,
    and this pass adds the ones it takes on. `claimant` names this sender (monitor.store.claims).
    """

    def __init__(
        self,
        store: Store,
        channel: str,
        settings: SendSettings,
        *,
        now: Callable[[], datetime],
        claimant: str,
        stop: threading.Event | None = None,
        attempted: set[int] | None = None,
    ) -> None:
        self.store = store
        self.channel = channel
        self.settings = settings
        self.now = now
        self.claimant = claimant
        self.stop = stop
        self.attempted = attempted if attempted is not None else set()
        self.counts = dict.fromkeys(("attempted", "sent", "retrying", "failed"), 0)
        self._leases: dict[str, bool] | None = None  # read when a foreign claim is met
        self._lease_ending = False

    @property
    def report(self) -> DeliveryReport:
        return DeliveryReport(**self.counts)

    def stopped(self) -> bool:
        """Stopped (SIGTERM), or this instance's lease no longer allows sending."""
        if self.stop is not None and self.stop.is_set():
            return True
        if not self.settings.dry_run and not self.settings.may_send():
            if not self._lease_ending:
                self._lease_ending = True
                logger.warning(
                    "deliver channel=%s status=paused note='lease ending: the rest is left "
                    "to the other instances, or to this one once its lease is renewed'",
                    self.channel,
                )
            return True
        return False

    def _claim_is_live(self, due: DueDelivery) -> bool:
        """Whether another sender's claim on `due` still holds."""
        assert due.claimed_by is not None
        if self.settings.shared and self._leases is None:
            self._leases = self.store.instance_leases()  # once per pass
        return claim_is_live(due.claimed_by, due.claimed_at, self.now(), self._leases)

    def steps(self) -> Iterator[None]:
        """Send the channel's due deliveries, yielding after each message sent. Every
        outcome is in the database when it yields, returns or raises; stopped, it returns
        after the message in flight, leaving the rest pending and unclaimed."""
        after_id = 0
        while not self.stopped():
            page: Sequence[DueDelivery] = self.store.due_deliveries(
                self.now(),
                ignore_backoff=self.settings.ignore_backoff,
                include_due_held=self.settings.dry_run,
                channel=self.channel,
                after_id=after_id,
                limit=PAGE_SIZE,
            )
            last_page = len(page) < PAGE_SIZE
            if not last_page:
                page = _whole_messages(page)
            if page:
                after_id = page[-1].delivery_id
            yield from self._send_page(page)
            if last_page:
                return

    def _count(self, message: Message, outcome: str) -> None:
        self.counts["attempted"] += len(message)
        if outcome != "dry_run":
            self.counts[outcome] += len(message)

    def _send_page(self, page: Sequence[DueDelivery]) -> Iterator[None]:
        taken: list[DueDelivery] = []
        for due in page:
            if self.stopped():
                return  # what is left stays pending for the next start
            if (
                due.claimed_by is not None
                and due.claimed_by != self.claimant
                and self._claim_is_live(due)
            ):
                logger.debug("deliver delivery=%d status=claimed_elsewhere", due.delivery_id)
                continue
            if due.delivery_id in self.attempted:
                continue  # an earlier pass took it on
            self.attempted.add(due.delivery_id)
            if not due.articles:
                # Only if the articles were deleted behind the outbox's back: nothing to say.
                if not self.settings.dry_run:
                    self.store.mark_attempt_failed(due.delivery_id, "no article left to send", None)
                logger.error(
                    "deliver %s status=failed error='no article left to send'",
                    _log_fields((due,)),
                )
                self._count((due,), "dry_run" if self.settings.dry_run else "failed")
                continue
            taken.append(due)
        messages = _messages(taken)
        if self.settings.dry_run:
            for message in messages:
                rendered = self._render(message)
                logger.info(
                    "deliver %s status=dry_run title=%r", _log_fields(message), rendered.title
                )
                self._count(message, "dry_run")
            return
        chunk: list[Message] = []
        for message in messages:
            if chunk and sum(map(len, chunk)) + len(message) > CLAIM_BATCH:
                yield from self._send_claimed(chunk)
                chunk = []
                if self.stopped():
                    return
            chunk.append(message)
        if chunk:
            yield from self._send_claimed(chunk)

    def _send_claimed(self, chunk: list[Message]) -> Iterator[None]:
        """Claim a chunk in one transaction, then send what this sender got, in order,
        yielding after each message."""
        claimed_at = self.now()
        claimed = self.store.claim_deliveries(
            [(due.delivery_id, due.claimed_by) for message in chunk for due in message],
            self.claimant,
            claimed_at,
        )
        for message in chunk:
            for due in message:
                if due.delivery_id not in claimed:
                    logger.debug("deliver delivery=%d status=claimed_elsewhere", due.delivery_id)
        unsent = self._as_claimed(_kept(chunk, claimed))
        try:
            while unsent and not self.stopped():
                if self.now() - claimed_at >= CLAIM_RENEW_AFTER:
                    # Claims taken ahead must still be fresh when their send starts: another
                    # host presumes this process alive only for CLAIM_LEASE after a claim.
                    claimed_at = self.now()
                    renewed = self.store.claim_deliveries(
                        [(due.delivery_id, self.claimant) for message in unsent for due in message],
                        self.claimant,
                        claimed_at,
                    )
                    unsent = _kept(unsent, renewed)
                    if not unsent:
                        break
                outcome = self._send(unsent[0])
                if outcome == "interrupted":
                    break  # the lease is ending: stopped() says so, released below
                self._count(unsent.pop(0), outcome)
                yield
        except BaseException:
            # A bug, an interrupt, the database, or the pass abandoned (GeneratorExit): not
            # a delivery outcome. Leave the rest pending, unclaimed (best effort: a claim of
            # ours is void once we end anyway).
            with contextlib.suppress(StoreError):
                self.store.release_claims(_ids(unsent), self.claimant)
            raise
        if unsent:  # stopped, or the lease is ending (the database may be out of reach)
            with contextlib.suppress(StoreError):
                self.store.release_claims(_ids(unsent), self.claimant)

    def _as_claimed(self, messages: list[Message]) -> list[Message]:
        """The messages with their articles read again: a poll may have listed a later
        article of a story under one of them between the page's read and the claim (none
        can be added once claimed), and the message must list it."""
        if not messages:
            return messages
        fresh = self.store.delivery_articles(_ids(messages))
        return [
            tuple(
                replace(due, articles=tuple(fresh[due.delivery_id]))
                if fresh.get(due.delivery_id)
                else due
                for due in message
            )
            for message in messages
        ]

    def _render(self, message: Message) -> RenderedMessage:
        template = self.settings.templates(_rule_names(message), self.channel)
        return _memoised(render_delivery(message, self.settings.timezone, template))

    def _send(self, message: Message) -> str:
        """Send one claimed message and record its outcome for each of its deliveries:
        "sent", "retrying" or "failed"."""
        first = message[0]  # the deliveries of a message share attempts and services sent
        fields = _log_fields(message)
        ids = _ids([message])
        rendered = self._render(message)
        notifier = self.settings.notifier
        if self.channel not in notifier.channel_names():
            ok, error, succeeded = False, f"channel {self.channel} is not configured", set()
        else:
            result = notifier.send(
                self.channel,
                rendered,
                skip_services=first.sent_services,
                may_start=None if self.settings.dry_run else self.settings.may_send,
            )
            ok, error = result.ok, result.error
            succeeded = {service.index for service in result.services if service.ok}
            if result.interrupted:
                # Not an attempt: the services reached are recorded, the rest goes out
                # from whichever instance sends it next (best effort: the database may be
                # out of reach, which is why the lease is ending).
                with contextlib.suppress(StoreError):
                    self.store.release_claims(
                        ids, self.claimant, sent_services=first.sent_services | succeeded
                    )
                logger.warning("deliver %s status=interrupted note='lease ending'", fields)
                return "interrupted"
        sent_services = first.sent_services | succeeded
        attempts_made = first.attempts + 1
        if ok:
            self.store.mark_sent(ids, self.now(), sent_services=sent_services)
            logger.info("deliver %s status=sent attempts=%d", fields, attempts_made)
            return "sent"
        config = self.settings.delivery
        if attempts_made >= config.attempts:
            self.store.mark_attempt_failed(ids, error, None, sent_services=sent_services)
            logger.error(
                "deliver %s status=failed attempts=%d error=%r", fields, attempts_made, error
            )
            return "failed"
        delay = retry_delay_seconds(attempts_made, config)
        retry_at = self.now() + timedelta(seconds=delay)
        self.store.mark_attempt_failed(ids, error, retry_at, sent_services=sent_services)
        logger.warning(
            "deliver %s status=retrying attempts=%d retry_in_seconds=%d error=%r",
            fields,
            attempts_made,
            delay,
            error,
        )
        return "retrying"


def _message_key(due: DueDelivery) -> tuple[object, ...] | None:
    """What the deliveries of one message share (see the module docstring), or None for a
    delivery that is a message of its own."""
    if due.kind != ALERT or len(due.articles) != 1:
        return None
    return (due.articles[0].article_id, due.next_attempt_at, due.attempts, due.sent_services)


def _messages(deliveries: Sequence[DueDelivery]) -> list[Message]:
    """The deliveries (in order) as messages, each where its first delivery is."""
    by_key: dict[object, list[DueDelivery]] = {}
    for due in deliveries:
        key = _message_key(due)
        by_key.setdefault(key if key is not None else due.delivery_id, []).append(due)
    return [tuple(message) for message in by_key.values()]


def _whole_messages(page: Sequence[DueDelivery]) -> Sequence[DueDelivery]:
    """A full page without its last message's deliveries (and any after the first of
    them): that message may go on in the next page, which then starts with it. The whole
    page if nothing else would be left."""
    key = _message_key(page[-1])
    if key is None:
        return page
    first = next(index for index, due in enumerate(page) if _message_key(due) == key)
    return page[:first] or page


def _kept(messages: Sequence[Message], ids: set[int]) -> list[Message]:
    """The messages with only their deliveries in `ids`; messages left empty dropped."""
    kept = (tuple(due for due in message if due.delivery_id in ids) for message in messages)
    return [message for message in kept if message]


def _ids(messages: Sequence[Message]) -> list[int]:
    return [due.delivery_id for message in messages for due in message]


def _rule_names(message: Message) -> tuple[str, ...]:
    return tuple(due.rule_name for due in message)


def _memoised(message: RenderedMessage) -> RenderedMessage:
    """The same message, rendering itself once per kind of service: a channel of several
    services of one kind fits it to them once."""
    renditions: dict[Target, Rendition] = {}

    def render(target: Target) -> Rendition:
        rendition = renditions.get(target)
        if rendition is None:
            rendition = renditions[target] = message.for_target(target)
        return rendition

    return replace(message, renderer=render)


def _alert(rule_name: str, article: DeliveryArticle) -> Alert:
    return Alert(
        rule_name=rule_name,
        title=article.title,
        link=article.link,
        feed_name=article.feed_name,
        published=article.published,
        matched_terms=article.terms,
        excerpt=article.excerpt,
        also=tuple((also.feed_name, also.title, also.link) for also in article.also),
    )


def render_delivery(
    message: Sequence[DueDelivery], timezone: tzinfo, template: str | None
) -> RenderedMessage:
    """Given the deliveries of one message (one with at least one article, or the alerts of
    several rules about one article), return what is sent: a digest listing the articles
    oldest first, the alert of the one article, or one alert naming every rule. A template
    that fails falls back to the default message, so a broken template never holds alerts
    back."""
    first = message[0]

    def render(chosen: str | None) -> RenderedMessage:
        if len(message) > 1:
            alerts = [_alert(due.rule_name, due.articles[0]) for due in message]
            return render_combined_alert(alerts, timezone, template=chosen)
        alerts = [_alert(first.rule_name, article) for article in first.articles]
        if first.as_digest:
            return render_digest(first.rule_name, alerts, timezone, template=chosen)
        return render_alert(alerts[0], timezone, template=chosen)

    if template is None:
        return render(None)
    try:
        return render(template)
    except Exception as error:  # noqa: BLE001 - the default message still goes out
        logger.warning(
            "deliver rule=%s channel=%s template=failed error=%r note='sent the default message'",
            ",".join(_rule_names(tuple(message))),
            first.channel,
            str(error),
        )
        return render(None)


def _log_fields(message: Message) -> str:
    first = message[0]
    kind = "digest" if first.as_digest else "alert"
    return (
        f"rule={','.join(_rule_names(message))} channel={first.channel} kind={kind} "
        f"articles={len(first.articles)}"
    )
