"""The outbox: drain due deliveries through the notifier, marking each sent only after
Apprise reports success, and retrying failures with exponential backoff."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from monitor.config import DeliveryConfig
from monitor.notify import Alert, Notifier, render_alert
from monitor.store import DueDelivery, Store

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeliveryReport:
    attempted: int = 0
    sent: int = 0
    retrying: int = 0  # failed this time, will be tried again
    failed: int = 0  # failed for good: attempts exhausted


def retry_delay_seconds(attempts_made: int, config: DeliveryConfig) -> float:
    """Given how many tries were made (at least 1), return the wait before the next one:
    retry_base, doubling, capped at retry_cap."""
    exponent = min(max(attempts_made - 1, 0), 32)
    return min(config.retry_base_seconds * (2**exponent), config.retry_cap_seconds)


def send_due_deliveries(
    store: Store,
    notifier: Notifier,
    *,
    timezone: tzinfo,
    config: DeliveryConfig,
    now: Callable[[], datetime],
    ignore_backoff: bool = False,
    dry_run: bool = False,
    stop: threading.Event | None = None,
) -> DeliveryReport:
    """Send every due delivery once. With ignore_backoff (run --once), every pending one.

    With dry_run the messages are rendered and logged but not sent, and nothing is marked.
    """
    attempted = sent = retrying = failed = 0
    for due in store.due_deliveries(now(), ignore_backoff=ignore_backoff):
        if stop is not None and stop.is_set():
            break  # what is left stays pending for the next start
        attempted += 1
        message = render_alert(_alert(due), timezone)
        if dry_run:
            logger.info(
                "deliver rule=%s channel=%s status=dry_run title=%r",
                due.rule_name,
                due.channel,
                message.title,
            )
            continue
        if due.channel not in notifier.channel_names():
            outcome_ok, error = False, f"channel {due.channel} is not configured"
        else:
            result = notifier.send(due.channel, message)
            outcome_ok, error = result.ok, result.error
        if outcome_ok:
            store.mark_sent(due.delivery_id, now())
            sent += 1
            logger.info(
                "deliver rule=%s channel=%s status=sent attempts=%d",
                due.rule_name,
                due.channel,
                due.attempts + 1,
            )
            continue
        attempts_made = due.attempts + 1
        if attempts_made >= config.attempts:
            store.mark_attempt_failed(due.delivery_id, error, None)
            failed += 1
            logger.error(
                "deliver rule=%s channel=%s status=failed attempts=%d error=%r",
                due.rule_name,
                due.channel,
                attempts_made,
                error,
            )
        else:
            delay = retry_delay_seconds(attempts_made, config)
            store.mark_attempt_failed(due.delivery_id, error, now() + timedelta(seconds=delay))
            retrying += 1
            logger.warning(
                "deliver rule=%s channel=%s status=retrying attempts=%d retry_in_seconds=%d "
                "error=%r",
                due.rule_name,
                due.channel,
                attempts_made,
                delay,
                error,
            )
    return DeliveryReport(attempted, sent, retrying, failed)


def _alert(due: DueDelivery) -> Alert:
    return Alert(
        rule_name=due.rule_name,
        title=due.title,
        link=due.link,
        feed_name=due.feed_name,
        published=due.published,
        matched_terms=due.terms,
        excerpt=due.excerpt,
    )
