"""The daemon's feeds: when each is polled next, on which threads, with its state in memory.

Each feed has one one-shot scheduler job, its next poll. The job only hands the feed to the
poll threads; when the poll ends, its next poll is noted, and once every
PLAN_INTERVAL_SECONDS the feeds noted get their job (one pass over the scheduler for all
the polls that ended, rather than a change to a job, and a wake-up of the scheduler, at the
end of each poll). A feed is never polled twice at once, so the scheduler never skips a
run for "maximum number of running instances". The first polls of a configuration start
FIRST_POLLS_PER_SECOND apart.

Feed states live in memory (feed_states.py) and are flushed every FLUSH_INTERVAL_SECONDS.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from monitor.config.loader import Config, FeedConfig
from monitor.ingest.fetch import DEFAULT_PER_ORIGIN_LIMIT, origin_of
from monitor.model import FetchError, StoreError
from monitor.service.feed_states import FeedStates
from monitor.service.pipeline import PollResult
from monitor.store.database import FeedStateUpdate, Store

logger = logging.getLogger(__name__)

# 410 Gone: the publisher says the feed will never come back.
HTTP_GONE = 410
# Fetches run in parallel up to this many (and at most 2 per origin, see fetch.py).
MAXIMUM_CONCURRENT_POLLS = 8
# The daemon's first polls, at start and for feeds a reload adds, begin this many a second:
# a large configuration starts quietly instead of queueing every feed at once.
FIRST_POLLS_PER_SECOND = 20.0
# Polls that ended get their next poll planned together, this often (see plan).
PLAN_INTERVAL_SECONDS = 1.0


class PollSchedule:
    """The feeds' poll jobs on a running APScheduler scheduler, and the poll threads."""

    def __init__(
        self,
        scheduler: Any,
        feed_states: FeedStates,
        *,
        config: Callable[[], Config],
        poll: Callable[[FeedConfig, FeedStates], PollResult],
        clock: Callable[[], datetime],
        stop: threading.Event,
        on_deliveries: Callable[[], None],
    ) -> None:
        self.scheduler = scheduler
        self.feed_states = feed_states
        self._config = config
        self._poll = poll
        self._clock = clock
        self._stop = stop
        self._on_deliveries = on_deliveries
        self._threads = _poll_threads_for(config())
        self._pool = _new_poll_pool(self._threads)
        self._retired_pools: list[ThreadPoolExecutor] = []
        self._lock = threading.Lock()
        self._polling: set[str] = set()  # the feeds polling now
        self._to_plan: dict[str, datetime] = {}  # next polls of the polls that ended

    def schedule(self, config: Config, previous: Config | None) -> None:
        """Plan the first poll of every feed new or changed in `config`, FIRST_POLLS_PER_SECOND
        apart, and drop the jobs of feeds it no longer has. Poll threads as many as the
        feeds' origins can use (the polls in flight finish on the previous ones)."""
        threads = _poll_threads_for(config)
        if previous is not None and threads != self._threads:
            pool, self._threads = self._pool, threads
            self._pool = _new_poll_pool(threads)
            self._retired_pools.append(pool)
            pool.shutdown(wait=False)
        wanted = {feed.name: feed for feed in config.feeds if feed.enabled}
        old = {feed.name: feed for feed in previous.feeds if feed.enabled} if previous else {}
        gone = old.keys() - wanted.keys()
        for name in gone:
            _remove_job(self.scheduler, f"feed:{name}")
        first = [name for name, feed in wanted.items() if old.get(name) != feed]
        with self._lock:
            for name in [*gone, *first]:
                self._to_plan.pop(name, None)
        self.feed_states.forget(gone)
        start = datetime.now(UTC)
        for index, name in enumerate(first):
            self._add_job(name, start + timedelta(seconds=index / FIRST_POLLS_PER_SECOND))

    def plan(self) -> None:
        """Plan the next poll of every feed whose poll ended since the last plan (a job
        run every PLAN_INTERVAL_SECONDS)."""
        with self._lock:
            planned, self._to_plan = self._to_plan, {}
        if self._stop.is_set():
            return
        config = self._config()
        for feed_name, at in planned.items():
            feed = config.feed(feed_name)
            if feed is not None and feed.enabled:
                self._add_job(feed_name, at)

    def flush(self, store: Store) -> None:
        """Write the feed states polls changed since the last flush, in one transaction."""
        try:
            self.feed_states.flush(store)
        except StoreError as error:
            logger.error("feed_states status=store_error error=%r", str(error))

    def shutdown(self) -> None:
        """Wait for the polls in flight (the queued ones return at once: stop is set)."""
        for pool in [*self._retired_pools, self._pool]:
            pool.shutdown(wait=True)

    def _add_job(self, feed_name: str, at: datetime) -> None:
        from apscheduler.triggers.date import DateTrigger

        self.scheduler.add_job(
            self._dispatch,
            DateTrigger(at, timezone=UTC),
            args=[feed_name],
            id=f"feed:{feed_name}",
            replace_existing=True,
        )

    def _dispatch(self, feed_name: str) -> None:
        """Hand a feed whose time has come to the poll threads (unless it polls already)."""
        if self._stop.is_set():
            return
        with self._lock:
            if feed_name in self._polling:
                return  # its poll in flight plans the next one
            self._polling.add(feed_name)
        try:
            self._pool.submit(self._poll_job, feed_name)
        except RuntimeError:  # the pool is shut down: stopping
            with self._lock:
                self._polling.discard(feed_name)

    def _poll_job(self, feed_name: str) -> None:
        try:
            next_poll_at = self._poll_and_plan(feed_name)
        except Exception:  # a bug here must not end the feed's polling
            logger.exception("poll feed=%s status=crashed", feed_name)
            feed = self._config().feed(feed_name)
            interval = feed.interval_seconds if feed is not None else 0.0
            next_poll_at = self._clock() + timedelta(seconds=interval)
        with self._lock:
            self._polling.discard(feed_name)
            if next_poll_at is not None:
                self._to_plan[feed_name] = next_poll_at

    def _poll_and_plan(self, feed_name: str) -> datetime | None:
        """Poll a feed; return when to poll it next (None: not again)."""
        if self._stop.is_set():
            return None
        feed = self._config().feed(feed_name)
        if feed is None or not feed.enabled:
            return None
        try:
            result = self._poll(feed, self.feed_states)
        except StoreError as error:
            logger.error("poll feed=%s status=store_error error=%r", feed_name, str(error))
            return self._clock() + timedelta(seconds=feed.interval_seconds)
        if result.http_status == HTTP_GONE:
            logger.warning(
                "poll feed=%s status=gone http_status=410 polling=stopped "
                "hint='the publisher removed this feed: delete it from the config'",
                feed_name,
            )
            self._record_next_poll(feed, None)
            return None
        delay = result.next_poll_seconds or feed.interval_seconds
        next_poll_at = self._clock() + timedelta(seconds=delay)
        self._record_next_poll(feed, next_poll_at)
        if result.deliveries:
            self._on_deliveries()
        return next_poll_at

    def _record_next_poll(self, feed: FeedConfig, at: datetime | None) -> None:
        self.feed_states.record([FeedStateUpdate(feed.name, feed.url, {"next_poll_at": at})])


def _remove_job(scheduler: Any, job_id: str) -> None:
    # Imported here: APScheduler is the daemon's alone, and `run --once` need not load it.
    from apscheduler.jobstores.base import JobLookupError

    with contextlib.suppress(JobLookupError):
        scheduler.remove_job(job_id)


def _poll_threads_for(config: Config) -> int:
    return poll_thread_count([feed for feed in config.feeds if feed.enabled])


def _new_poll_pool(threads: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=threads, thread_name_prefix="poll")


def poll_thread_count(feeds: list[FeedConfig]) -> int:
    """Poll threads worth running for these feeds: every request the per-origin limit
    admits at once, plus three that parse and store what has arrived or wait for a parser
    process (a thread beyond that only waits for an origin slot, holding memory). At most
    MAXIMUM_CONCURRENT_POLLS."""
    origins = {_origin_or_url(feed.url) for feed in feeds}
    wanted = DEFAULT_PER_ORIGIN_LIMIT * len(origins) + 3
    return max(1, min(MAXIMUM_CONCURRENT_POLLS, len(feeds), wanted))


def _origin_or_url(url: str) -> object:
    # A URL without an origin (file://, a broken one) is its own: it waits for nobody.
    try:
        return origin_of(url)
    except FetchError:
        return url
