"""The log line of a poll: one per poll, key=value fields."""

from __future__ import annotations

import logging

from monitor.service.pipeline import PollResult

logger = logging.getLogger("monitor.service.daemon")


def log_poll(result: PollResult, next_poll_reason: str | None = None) -> None:
    """One line per poll; `next_poll_reason`, when given, says why the next poll is later
    than the feed's interval (or "interval" when that no longer holds)."""
    next_poll_fields = ""
    if next_poll_reason is not None:
        next_poll_fields = (
            f" next_poll_reason={next_poll_reason}"
            f" next_poll_in_seconds={round(result.next_poll_seconds or 0)}"
        )
    elapsed_milliseconds = round(result.elapsed_seconds * 1000)
    if result.pages:
        next_poll_fields = (
            f" fulltext_pages={result.pages} fulltext_failed={result.pages_failed}"
            + next_poll_fields
        )
    if result.ok:
        logger.info(
            "poll feed=%s status=%s items=%d new=%d new_articles=%d matches=%d "
            "deliveries=%d baseline=%s elapsed_ms=%d%s",
            result.feed_name,
            "not_modified" if result.not_modified else (result.http_status or "ok"),
            result.items,
            result.new_items,
            result.new_articles,
            result.matches,
            result.deliveries,
            str(result.baseline).lower(),
            elapsed_milliseconds,
            next_poll_fields,
        )
    else:
        logger.warning(
            "poll feed=%s status=error http_status=%s error_streak=%d elapsed_ms=%d%s error=%r",
            result.feed_name,
            result.http_status if result.http_status is not None else "-",
            result.error_streak,
            elapsed_milliseconds,
            next_poll_fields,
            result.error,
        )
    if result.permanent_redirect_to:
        logger.warning(
            "poll feed=%s moved_permanently_to=%s hint='update the feed url in the config'",
            result.feed_name,
            result.permanent_redirect_to,
        )
