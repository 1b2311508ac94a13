"""The daemon's feeds on a database that several instances share (PostgreSQL): polls
claimed from the feed leases in the database, not planned in memory.

One thread (the dispatcher) runs rounds (monitor.store.leases): each writes the polls
finished since the last round and claims as many due feeds as there are idle poll
threads, and as many again to queue for them, in one short transaction. The claimed feeds
are polled on the poll threads, with no transaction open during the fetch; their results
go into the next round. A round runs when a poll ends or the next feed falls due, at most
one every ROUND_GAP_SECONDS, so that completions are written in batches, and at least
every DISPATCH_WAIT_SECONDS, which is how soon a feed another instance gave up is seen. A
feed is never polled twice at once nor sooner than its interval after its last poll
started, whichever instance polls it.

An instance whose lease is not held (cut off from the database) claims nothing. At stop,
the polls in flight finish and a last round writes them and gives back the feeds claimed
but not started.

The other instances may have polled a feed last: its state is read from the database when
it is claimed (no state is kept in memory between polls, unlike the daemon that is alone
on its database, monitor.service.poll_schedule).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from monitor.config import Config, FeedConfig
from monitor.model import StoreError
from monitor.service.cluster import Lease
from monitor.service.pipeline import PollResult
from monitor.service.poll_schedule import HTTP_GONE, poll_thread_count
from monitor.store import (
    ClaimedPoll,
    FeedState,
    FeedStateUpdate,
    PollCompletion,
    Store,
)

logger = logging.getLogger(__name__)

# The least time between two rounds: completions arriving meanwhile are written together.
ROUND_GAP_SECONDS = 0.1
# Polls claimed ahead, queued for the poll threads, per thread: a thread that finishes a
# poll between two rounds starts the next at once. Without them, an instance could start
# at most one poll per thread per round (80 a second with 8 threads), fewer than 1,000
# feeds every 10 s need; with them, twice that.
CLAIMED_AHEAD_PER_THREAD = 1
# The longest the dispatcher waits between two rounds.
DISPATCH_WAIT_SECONDS = 1.0
# After a failed round (the database unreachable), wait this long before the next.
RETRY_SECONDS = 1.0

# poll(feed, stored state) -> the poll's result and the feed's new state if the poll did
# not write it (the feed had not changed).
SharedPoll = Callable[[FeedConfig, FeedState | None], tuple[PollResult, FeedStateUpdate | None]]


class SharedPollSchedule:
    """Polls claimed from the shared feed leases (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        *,
        claimant: str,
        lease: Lease,
        config: Callable[[], Config],
        poll: SharedPoll,
        clock: Callable[[], datetime],
        stop: threading.Event,
        on_deliveries: Callable[[], None],
    ) -> None:
        self._store = store
        self._claimant = claimant
        self._lease = lease
        self._config = config
        self._poll = poll
        self._clock = clock
        self._stop = stop
        self._on_deliveries = on_deliveries
        self._lock = threading.Condition()
        self._threads = 0
        self._pool: ThreadPoolExecutor | None = None
        self._retired_pools: list[ThreadPoolExecutor] = []
        self._names: list[str] = []  # the enabled feeds of the configuration
        self._to_ensure: list[tuple[str, float]] | None = None  # lease rows to make
        self._polling: dict[str, float] = {}  # feed -> time.monotonic() its claim was made
        self._completions: list[PollCompletion] = []
        self._unstarted: list[ClaimedPoll] = []
        self._woken = False
        self._thread = threading.Thread(target=self._dispatch, name="poll-dispatch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def schedule(self, config: Config, previous: Config | None) -> None:
        """Poll the enabled feeds of `config` from now on (their lease rows are made or
        updated by the dispatcher's next round); poll threads as many as their origins
        can use."""
        enabled = [feed for feed in config.feeds if feed.enabled]
        threads = poll_thread_count(enabled)
        with self._lock:
            if self._pool is None or threads != self._threads:
                if self._pool is not None:
                    self._retired_pools.append(self._pool)
                    self._pool.shutdown(wait=False)
                self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="poll")
                self._threads = threads
            self._names = sorted(feed.name for feed in enabled)
            self._to_ensure = [(feed.name, feed.interval_seconds) for feed in enabled]
            self._wake()

    def flush(self, store: Store) -> None:
        """Nothing to do: every round writes what the polls before it did."""

    def shutdown(self) -> None:
        """Stop claiming, wait for the polls in flight, then write them and give back what
        was claimed but not started, in a last round."""
        with self._lock:
            self._wake()
        if self._thread.is_alive():
            self._thread.join()
        for pool in [*self._retired_pools, *([self._pool] if self._pool else [])]:
            pool.shutdown(wait=True)
        self._round(claim=0)

    # --- the dispatcher --------------------------------------------------------------

    def _wake(self) -> None:
        # Holding the lock.
        self._woken = True
        self._lock.notify()

    def _dispatch(self) -> None:
        last_round = 0.0
        while not self._stop.is_set():
            pause = ROUND_GAP_SECONDS - (time.monotonic() - last_round)
            if pause > 0 and self._stop.wait(pause):
                break
            last_round = time.monotonic()
            with self._lock:
                idle = (1 + CLAIMED_AHEAD_PER_THREAD) * self._threads - len(self._polling)
            try:
                wait = self._round(claim=idle if self._lease.held() else 0)
            except Exception:  # a bug must not end every feed's polling
                logger.exception("poll_round status=crashed")
                wait = RETRY_SECONDS
            with self._lock:
                if not self._woken and not self._stop.is_set():
                    self._lock.wait(wait)
                self._woken = False

    def _round(self, *, claim: int) -> float:
        """Run one round; return how long to wait for the next at most."""
        with self._lock:
            completions, self._completions = self._completions, []
            unstarted, self._unstarted = self._unstarted, []
            names = self._names
            to_ensure = self._to_ensure
            renew_before = time.monotonic() - self._lease.seconds / 3
            renew = [name for name, since in self._polling.items() if since < renew_before]
        try:
            if to_ensure is not None:
                self._store.ensure_feed_leases(to_ensure)
                with self._lock:
                    if self._to_ensure is to_ensure:
                        self._to_ensure = None
            done = self._store.poll_round(
                self._claimant,
                feed_names=names,
                claim=claim,
                lease_seconds=self._lease.seconds,
                completions=completions,
                unstarted=unstarted,
                renew=renew,
            )
        except StoreError as error:
            logger.error("poll_round status=store_error error=%r", str(error))
            with self._lock:  # written by a later round
                self._completions[:0] = completions
                self._unstarted[:0] = unstarted
            return RETRY_SECONDS
        now = time.monotonic()
        with self._lock:
            for name in renew:
                if name in self._polling:
                    self._polling[name] = now
        for name in done.lost:
            logger.warning(
                "poll feed=%s status=claim_lost note='another instance took the feed over "
                "while this one was cut off from the database: its poll is not recorded'",
                name,
            )
        for claimed in done.claimed:
            self._start(claimed)
        wait = DISPATCH_WAIT_SECONDS
        if done.next_due_in_seconds is not None:
            wait = min(wait, max(done.next_due_in_seconds, 0.0))
        return wait

    def _start(self, claimed: ClaimedPoll) -> None:
        with self._lock:
            pool = self._pool
            if self._stop.is_set() or pool is None:
                self._unstarted.append(claimed)
                return
            self._polling[claimed.name] = time.monotonic()
        try:
            pool.submit(self._poll_job, claimed)
        except RuntimeError:  # the pool is shut down: stopping, or replaced by a reload
            with self._lock:
                self._polling.pop(claimed.name, None)
                self._unstarted.append(claimed)
                self._wake()

    def _poll_job(self, claimed: ClaimedPoll) -> None:
        feed = self._config().feed(claimed.name)
        if self._stop.is_set() or feed is None or not feed.enabled:
            with self._lock:
                self._polling.pop(claimed.name, None)
                self._unstarted.append(claimed)
                self._wake()
            return
        try:
            completion, deliveries = self._poll_and_plan(feed, claimed)
        except Exception:  # a bug here must not end the feed's polling
            logger.exception("poll feed=%s status=crashed", feed.name)
            completion, deliveries = PollCompletion(feed.name, feed.interval_seconds), False
        with self._lock:
            self._polling.pop(claimed.name, None)
            self._completions.append(completion)
            self._wake()
        if deliveries:
            self._on_deliveries()

    def _poll_and_plan(self, feed: FeedConfig, claimed: ClaimedPoll) -> tuple[PollCompletion, bool]:
        """Poll a claimed feed; return its completion and whether it queued deliveries."""
        try:
            result, unchanged = self._poll(feed, claimed.state)
        except StoreError as error:
            logger.error("poll feed=%s status=store_error error=%r", feed.name, str(error))
            return PollCompletion(feed.name, feed.interval_seconds), False
        values = dict(unchanged.values) if unchanged is not None else {}
        if result.http_status == HTTP_GONE:
            logger.warning(
                "poll feed=%s status=gone http_status=410 polling=stopped "
                "hint='the publisher removed this feed: delete it from the config'",
                feed.name,
            )
            values["next_poll_at"] = None
            delay = None
        else:
            delay = result.next_poll_seconds or feed.interval_seconds
            # Shown by `status`; the lease row's due_at, in the database's clock, decides.
            values["next_poll_at"] = self._clock() + timedelta(seconds=delay)
        state = FeedStateUpdate(feed.name, feed.url, values)
        return PollCompletion(feed.name, delay, state), bool(result.deliveries)
