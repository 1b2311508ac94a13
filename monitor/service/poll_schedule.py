"""The daemon's feeds: when each is polled next, on which threads, with its state in memory.

One thread keeps every feed's next poll in a heap and hands each feed, when its time comes,
to the poll threads; when the poll ends, its next poll goes into the heap. Nothing of this
goes through the scheduler (APScheduler runs the daemon's other, periodic jobs): a job per
poll, added or changed at the end of each, cost more than a poll answered 304 (job objects,
a check of the callable's signature, a wake-up of the scheduler), and jobs due while their
previous run had not ended were skipped with a warning each. A feed is never polled twice
at once. The first polls of a configuration start FIRST_POLLS_PER_SECOND apart.

Feed states live in memory (feed_states.py) and are flushed every FLUSH_INTERVAL_SECONDS.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from monitor.config import Config, FeedConfig
from monitor.ingest import DEFAULT_PER_ORIGIN_LIMIT, origin_of
from monitor.model import FetchError, StoreError
from monitor.service.feed_states import FeedStates
from monitor.service.pipeline import PollResult
from monitor.store import FeedStateUpdate, Store

logger = logging.getLogger(__name__)

# 410 Gone: the publisher says the feed will never come back.
HTTP_GONE = 410
# Fetches run in parallel up to this many (and at most 2 per origin, see fetch.py).
MAXIMUM_CONCURRENT_POLLS = 8
# The daemon's first polls, at start and for feeds a reload adds, begin this many a second:
# a large configuration starts quietly instead of queueing every feed at once.
FIRST_POLLS_PER_SECOND = 20.0
# The longest the dispatching thread sleeps: how soon it sees a stop it was not woken for.
DISPATCH_WAIT_SECONDS = 1.0


class PollSchedule:
    """Every enabled feed's next poll, the thread that starts them, and the poll threads."""

    def __init__(
        self,
        feed_states: FeedStates,
        *,
        config: Callable[[], Config],
        poll: Callable[[FeedConfig, FeedStates], PollResult],
        clock: Callable[[], datetime],
        stop: threading.Event,
        on_deliveries: Callable[[], None],
    ) -> None:
        self.feed_states = feed_states
        self._config = config
        self._poll = poll
        self._clock = clock
        self._stop = stop
        self._on_deliveries = on_deliveries
        self._threads = _poll_threads_for(config())
        self._pool = _new_poll_pool(self._threads)
        self._retired_pools: list[ThreadPoolExecutor] = []
        self._lock = threading.Condition()
        self._polling: set[str] = set()  # the feeds polling now
        # Each feed's next poll (time.monotonic()), and the same in a heap; an entry of the
        # heap that is not the feed's next poll any more (a reload changed it) is skipped.
        self._due: dict[str, float] = {}
        self._heap: list[tuple[float, str]] = []
        self._thread = threading.Thread(target=self._dispatch, name="poll-dispatch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def schedule(self, config: Config, previous: Config | None) -> None:
        """Plan the first poll of every feed new or changed in `config`, FIRST_POLLS_PER_SECOND
        apart, and forget the feeds it no longer has. Poll threads as many as the
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
        first = [name for name, feed in wanted.items() if old.get(name) != feed]
        start = time.monotonic()
        with self._lock:
            for name in gone:
                self._due.pop(name, None)
            for index, name in enumerate(first):
                self._plan(name, start + index / FIRST_POLLS_PER_SECOND)
            self._lock.notify()
        self.feed_states.forget(gone)

    def flush(self, store: Store) -> None:
        """Write the feed states polls changed since the last flush, in one transaction."""
        try:
            self.feed_states.flush(store)
        except StoreError as error:
            logger.error("feed_states status=store_error error=%r", str(error))

    def shutdown(self) -> None:
        """Stop starting polls, and wait for those in flight (the queued ones return at
        once: stop is set)."""
        with self._lock:
            self._lock.notify()
        if self._thread.is_alive():
            self._thread.join()
        for pool in [*self._retired_pools, self._pool]:
            pool.shutdown(wait=True)

    def _plan(self, feed_name: str, at: float) -> None:
        # Holding the lock.
        self._due[feed_name] = at
        heapq.heappush(self._heap, (at, feed_name))

    def _dispatch(self) -> None:
        """Hand each feed whose time has come to the poll threads, until stopped."""
        with self._lock:
            while not self._stop.is_set():
                now = time.monotonic()
                while self._heap and self._heap[0][0] <= now:
                    at, feed_name = heapq.heappop(self._heap)
                    if self._due.get(feed_name) != at:
                        continue  # replanned or removed since
                    del self._due[feed_name]
                    self._start_poll(feed_name)
                wait = self._heap[0][0] - now if self._heap else DISPATCH_WAIT_SECONDS
                self._lock.wait(min(wait, DISPATCH_WAIT_SECONDS))

    def _start_poll(self, feed_name: str) -> None:
        # Holding the lock.
        if feed_name in self._polling:
            return  # its poll in flight plans the next one
        self._polling.add(feed_name)
        try:
            self._pool.submit(self._poll_job, feed_name)
        except RuntimeError:  # the pool is shut down: stopping
            self._polling.discard(feed_name)

    def _poll_job(self, feed_name: str) -> None:
        try:
            delay = self._poll_and_plan(feed_name)
        except Exception:  # a bug here must not end the feed's polling
            logger.exception("poll feed=%s status=crashed", feed_name)
            feed = self._config().feed(feed_name)
            delay = feed.interval_seconds if feed is not None else None
        with self._lock:
            self._polling.discard(feed_name)
            if delay is not None and feed_name not in self._due and not self._stop.is_set():
                # (A reload that changed the feed while it polled has planned it already.)
                at = time.monotonic() + delay
                self._plan(feed_name, at)
                if self._heap[0][0] == at:
                    self._lock.notify()  # sooner than the dispatcher meant to wake

    def _poll_and_plan(self, feed_name: str) -> float | None:
        """Poll a feed; return in how many seconds to poll it next (None: not again)."""
        if self._stop.is_set():
            return None
        feed = self._config().feed(feed_name)
        if feed is None or not feed.enabled:
            return None
        try:
            result = self._poll(feed, self.feed_states)
        except StoreError as error:
            logger.error("poll feed=%s status=store_error error=%r", feed_name, str(error))
            return feed.interval_seconds
        if result.http_status == HTTP_GONE:
            logger.warning(
                "poll feed=%s status=gone http_status=410 polling=stopped "
                "hint='the publisher removed this feed: delete it from the config'",
                feed_name,
            )
            self._record_next_poll(feed, None)
            return None
        delay = result.next_poll_seconds or feed.interval_seconds
        self._record_next_poll(feed, self._clock() + timedelta(seconds=delay))
        if result.deliveries:
            self._on_deliveries()
        return delay

    def _record_next_poll(self, feed: FeedConfig, at: datetime | None) -> None:
        self.feed_states.record([FeedStateUpdate(feed.name, feed.url, {"next_poll_at": at})])


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
