"""When a feed is polled next, and why: the decision alone, apart from the scheduler."""

from __future__ import annotations

from dataclasses import dataclass

from monitor.config import FeedConfig
from monitor.ingest import FRESHNESS_MAX_AGE
from monitor.service.pipeline import PollResult

# A failing feed waits interval * 2^(errors - 1), but never longer than this.
MAXIMUM_BACKOFF_SECONDS = 6 * 3600.0
# The longest wait a feed's ttl / max-age / Expires can impose.
MAXIMUM_SERVER_HINT_SECONDS = 6 * 3600.0


@dataclass(frozen=True)
class NextPoll:
    delay_seconds: float
    # Why later than the feed's interval: "ttl", "max_age", "expires", "backoff",
    # "retry_after"; None when the interval decides.
    reason: str | None


def next_poll(feed: FeedConfig, result: PollResult, jitter_fraction: float) -> NextPoll:
    """Given a poll's result, return when to poll next: never sooner than the interval,
    later when the feed asks (RSS ttl, Cache-Control max-age or Expires, and Retry-After on
    429/503) or keeps failing, and which of these made it later. Jitter only ever delays,
    and is no reason."""
    # A feed's own freshness hints are honoured up to a cap: a CDN answering with a
    # day-long max-age must not silence a news feed for a day.
    asked = (
        (result.ttl_seconds, "ttl"),
        (result.max_age_seconds, result.max_age_source or FRESHNESS_MAX_AGE),
    )
    hints = [(min(hint, MAXIMUM_SERVER_HINT_SECONDS), source) for hint, source in asked if hint]
    if not result.ok:
        backoff = feed.interval_seconds * 2 ** max(result.error_streak - 1, 0)
        hints.append((min(backoff, MAXIMUM_BACKOFF_SECONDS), "backoff"))
        if result.retry_after_seconds:
            hints.append((result.retry_after_seconds, "retry_after"))
    delay, reason = feed.interval_seconds, None
    for hint, source in hints:
        if hint > delay:
            delay, reason = hint, source
    return NextPoll(delay + feed.jitter_seconds * jitter_fraction, reason)


class ReasonsLogged:
    """Per feed, why its next poll is later than its interval, as last logged."""

    def __init__(self) -> None:
        self._last: dict[str, str | None] = {}

    def news(self, feed_name: str, reason: str | None) -> str | None:
        """The reason to log for a feed's next poll now: None when it is the one logged
        last (a feed whose ttl says 5 minutes would say so on every poll), "interval" when
        the interval decides again."""
        previous = self._last.get(feed_name)
        self._last[feed_name] = reason
        if reason == previous:
            return None
        return reason or "interval"
