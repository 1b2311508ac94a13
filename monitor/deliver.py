"""The outbox: drain due deliveries through the notifier, marking each sent only after
Apprise reports success, and retrying failures with exponential backoff.

A delivery is one message to one channel: an alert about one article, or a batch (a
digest window, quiet hours, the excess of max_per_hour) held in the database until its
release time and then sent as one message listing its articles, oldest first. Which
delivery a match joins is decided when it is stored (monitor.schedule, monitor.store);
this module releases batches whose time has come and sends what is due.

Sending one delivery: claim it (a short transaction), send it with no transaction open,
record the outcome (another short one). A process killed in between leaves the delivery
pending with a void claim (monitor.claims): the next start sends it again, so at most the
message in flight arrives twice. A channel's services that already succeeded are recorded
and skipped by the retries, so only the failing one is tried again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from monitor.claims import claim_is_live
from monitor.config import ChannelConfig, DeliveryConfig, RuleConfig
from monitor.notify import Alert, Notifier, RenderedMessage, render_alert, render_digest
from monitor.store import DueDelivery, Store

logger = logging.getLogger(__name__)

# Deliveries read from the database at a time.
PAGE_SIZE = 200

TemplateChooser = Callable[[str, str], str | None]


@dataclass(frozen=True)
class DeliveryReport:
    attempted: int = 0
    sent: int = 0
    retrying: int = 0  # failed this time, will be tried again
    failed: int = 0  # failed for good: attempts exhausted
    released: int = 0  # held batches whose time had come


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
) -> DeliveryReport:
    """Release held batches whose time has come, then send every due delivery once. With
    ignore_backoff (run --once), every pending one, whatever its retry time; a batch is
    never sent before its time.

    With dry_run the messages are rendered and logged but not sent, and nothing is marked
    (batches are not released either). `claimant` names this sender (monitor.claims).
    """
    counts = dict.fromkeys(("attempted", "sent", "retrying", "failed"), 0)
    released = 0 if dry_run else store.release_held(now())
    choose = templates or (lambda _rule, _channel: None)
    after_id = 0
    while not (stop is not None and stop.is_set()):
        page = store.due_deliveries(
            now(),
            ignore_backoff=ignore_backoff,
            include_due_held=dry_run,
            after_id=after_id,
            limit=PAGE_SIZE,
        )
        for due in page:
            if stop is not None and stop.is_set():
                break  # what is left stays pending for the next start
            after_id = due.delivery_id
            outcome = _deliver(
                store,
                notifier,
                due,
                timezone=timezone,
                config=config,
                now=now,
                claimant=claimant,
                template=choose(due.rule_name, due.channel),
                dry_run=dry_run,
            )
            if outcome is not None:
                counts["attempted"] += 1
                if outcome != "dry_run":
                    counts[outcome] += 1
        if len(page) < PAGE_SIZE:
            break
    return DeliveryReport(released=released, **counts)


def _deliver(
    store: Store,
    notifier: Notifier,
    due: DueDelivery,
    *,
    timezone: tzinfo,
    config: DeliveryConfig,
    now: Callable[[], datetime],
    claimant: str,
    template: str | None,
    dry_run: bool,
) -> str | None:
    """Send one delivery and record the outcome: "sent", "retrying", "failed", "dry_run",
    or None when another live process has it."""
    if (
        due.claimed_by is not None
        and due.claimed_by != claimant
        and claim_is_live(due.claimed_by, due.claimed_at, now())
    ):
        logger.debug("deliver delivery=%d status=claimed_elsewhere", due.delivery_id)
        return None
    fields = _log_fields(due)
    if not due.articles:
        # Only if the articles were deleted behind the outbox's back: nothing to say.
        if not dry_run:
            store.mark_attempt_failed(due.delivery_id, "no article left to send", None)
        logger.error("deliver %s status=failed error='no article left to send'", fields)
        return "dry_run" if dry_run else "failed"
    message = render_delivery(due, timezone, template)
    if dry_run:
        logger.info("deliver %s status=dry_run title=%r", fields, message.title)
        return "dry_run"
    if not store.claim_delivery(due.delivery_id, claimant, now(), previous=due.claimed_by):
        logger.debug("deliver delivery=%d status=claimed_elsewhere", due.delivery_id)
        return None
    try:
        if due.channel not in notifier.channel_names():
            ok, error, succeeded = False, f"channel {due.channel} is not configured", set()
        else:
            result = notifier.send(due.channel, message, skip_services=due.sent_services)
            ok, error = result.ok, result.error
            succeeded = {service.index for service in result.services if service.ok}
    except BaseException:
        # A bug or an interrupt, not a delivery outcome: leave it pending, unclaimed.
        store.release_claim(due.delivery_id, claimant)
        raise
    sent_services = due.sent_services | succeeded
    attempts_made = due.attempts + 1
    if ok:
        store.mark_sent(due.delivery_id, now(), sent_services=sent_services)
        logger.info("deliver %s status=sent attempts=%d", fields, attempts_made)
        return "sent"
    if attempts_made >= config.attempts:
        store.mark_attempt_failed(due.delivery_id, error, None, sent_services=sent_services)
        logger.error("deliver %s status=failed attempts=%d error=%r", fields, attempts_made, error)
        return "failed"
    delay = retry_delay_seconds(attempts_made, config)
    store.mark_attempt_failed(
        due.delivery_id, error, now() + timedelta(seconds=delay), sent_services=sent_services
    )
    logger.warning(
        "deliver %s status=retrying attempts=%d retry_in_seconds=%d error=%r",
        fields,
        attempts_made,
        delay,
        error,
    )
    return "retrying"


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
