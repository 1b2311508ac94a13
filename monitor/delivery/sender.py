"""The sender: every channel's deliveries go out in a lane of their own, so that a slow
channel never delays another.

Why: Apprise makes a service wait between two messages (e-mail 5.5 s, Slack 1.2 s: the
plugin's `request_rate_per_sec`), inside notify(). When deliveries went out one at a
time, a dozen e-mails held every webhook and console alert queued behind them for a
minute.

How:
- A lane per channel runs passes over that channel's due deliveries (a
  monitor.delivery.outbox.ChannelPass each): in order, one message at a time, each outcome
  written before the channel's next send, so the outbox keeps its rules per channel (a
  killed process may send twice only the message in flight on each channel).
- wake() releases held batches whose time has come, asks the store which channels have
  due deliveries, and starts a pass on each of those channels whose lane is idle; a lane
  whose pass is running gets one more pass after it, so nothing queued meanwhile waits
  for the next wake. wake() never waits for a send.
- A pass is a generator that sends one message per step. A small pool of threads
  (MAXIMUM_SENDING_THREADS, whatever the number of channels) runs the steps: a thread
  runs one step of a lane, then queues the lane's next step behind those of the other
  lanes. A slow channel holds a thread only while it sends one message (Apprise's wait
  included), and with more busy channels than threads each still gets its turn after at
  most one message of each of the others. A lane's steps run one after another, never
  two at once, on whichever thread is free.
- stop (SIGTERM): each pass returns after the message in flight and releases its claims;
  the rest stays pending for the next start. close() waits for that.
- `once` (run --once): each delivery is attempted at most once over all the passes of
  this sender, even where a failure left it due again (run --once ignores retry times).
  Without it (the daemon) each pass starts afresh: a delivery whose retry time has come is
  attempted again.

The daemon keeps one Sender for its life and wakes it from its sender job (a regular tick,
a poll that queued deliveries, the next release or retry time, which on_idle lets it plan
once a lane has written its retries); run --once wakes its own after each poll that queued
deliveries, then waits for its lanes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

from monitor.delivery.outbox import ChannelPass, DeliveryReport, SendSettings
from monitor.model import StoreError
from monitor.store import Store

logger = logging.getLogger(__name__)

# Threads that send, at most: as many channels send at the same moment.
MAXIMUM_SENDING_THREADS = 8


@dataclass
class _Lane:
    channel: str
    settings: SendSettings  # for its next pass: the newest a wake gave
    attempted: set[int] = field(default_factory=set)  # see ChannelPass
    current: ChannelPass | None = None
    steps: Iterator[None] | None = None  # the current pass's
    busy: bool = False  # a pass runs or waits for a thread
    again: bool = False  # woken while busy: one more pass after this one


class Sender:
    """Lanes of the channels that have deliveries to send, run on a few threads (see the
    module docstring). Safe to use from several threads."""

    def __init__(
        self,
        store: Store,
        *,
        claimant: str,
        now: Callable[[], datetime],
        stop: threading.Event | None = None,
        once: bool = False,
        threads: int = MAXIMUM_SENDING_THREADS,
        on_idle: Callable[[], None] | None = None,
    ) -> None:
        self._store = store
        self._claimant = claimant
        self._now = now
        self._stop = stop
        self._once = once
        self._on_idle = on_idle  # called (on a sending thread) when a lane has no more to do
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="send")
        self._changed = threading.Condition()  # guards everything below
        self._lanes: dict[str, _Lane] = {}
        self._report = DeliveryReport()
        self._error: Exception | None = None
        self._closed = False

    def wake(self, settings: SendSettings) -> None:
        """Release held batches whose time has come (not in a dry run) and start a pass on
        every channel with due deliveries, with these settings. Return at once. Raise
        StoreError if the database fails."""
        now = self._now()
        released = 0 if settings.dry_run else self._store.release_held(now)
        channels = self._store.due_channels(
            now, ignore_backoff=settings.ignore_backoff, include_due_held=settings.dry_run
        )
        with self._changed:
            self._report += DeliveryReport(released=released)
            if self._closed:
                return
            for channel in sorted(channels):
                lane = self._lanes.get(channel)
                if lane is None:
                    lane = self._lanes[channel] = _Lane(channel, settings)
                lane.settings = settings
                if lane.busy:
                    lane.again = True
                else:
                    self._start_pass(lane)

    def wait(self) -> DeliveryReport:
        """Wait until no lane has a pass running; return what every pass so far did. Raise
        the first error a pass ended with (a database failure), if any."""
        with self._changed:
            self._changed.wait_for(self._idle)
            if self._error is not None:
                raise self._error
            return self._report

    def close(self) -> None:
        """Start no more passes, wait for those running (each ends after the message in
        flight once `stop` is set), and end the threads."""
        with self._changed:
            self._closed = True
            self._changed.wait_for(self._idle)
        self._pool.shutdown(wait=True)

    def _idle(self) -> bool:
        return not any(lane.busy for lane in self._lanes.values())

    def _start_pass(self, lane: _Lane) -> None:
        """Start a pass on the lane (its lock held)."""
        if not self._once:
            lane.attempted = set()
        lane.busy, lane.again = True, False
        lane.current = ChannelPass(
            self._store,
            lane.channel,
            lane.settings,
            now=self._now,
            claimant=self._claimant,
            stop=self._stop,
            attempted=lane.attempted,
        )
        lane.steps = lane.current.steps()
        self._pool.submit(self._step, lane)

    def _step(self, lane: _Lane) -> None:
        """Send the lane's next message, then queue its next step behind the other lanes',
        or end its pass (and start another if it was woken meanwhile)."""
        assert lane.steps is not None and lane.current is not None
        try:
            next(lane.steps)
        except StopIteration:
            more = False
        except Exception as error:  # the pass ends; its claims are released
            more = False
            if isinstance(error, StoreError):
                logger.error(
                    "deliver channel=%s status=store_error error=%r", lane.channel, str(error)
                )
            else:
                logger.exception("deliver channel=%s status=crashed", lane.channel)
            with self._changed:
                self._error = self._error or error
        else:
            more = True
        with self._changed:
            if more:
                self._pool.submit(self._step, lane)
                return
            self._report += lane.current.report
            lane.current = lane.steps = None
            stopped = self._stop is not None and self._stop.is_set()
            if lane.again and not self._closed and not stopped:
                self._start_pass(lane)
                return
            lane.busy = lane.again = False
            self._changed.notify_all()
        if self._on_idle is not None:
            try:
                self._on_idle()
            except Exception:  # a pool thread has nobody to tell
                logger.exception("deliver channel=%s status=crashed after its pass", lane.channel)


def send_due_deliveries(
    store: Store,
    settings: SendSettings,
    *,
    now: Callable[[], datetime],
    claimant: str,
    stop: threading.Event | None = None,
) -> DeliveryReport:
    """Release held batches whose time has come, then send every due delivery once (with
    settings.ignore_backoff every pending one, whatever its retry time; a batch is never
    sent before its time), each channel in a lane of its own. Return when every outcome is
    in the database. Raise StoreError if the database fails."""
    sender = Sender(store, claimant=claimant, now=now, stop=stop, once=True)
    try:
        sender.wake(settings)
        return sender.wait()
    finally:
        sender.close()
