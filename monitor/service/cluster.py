"""Several instances on one PostgreSQL database: this instance's lease, as it sees it.

Each daemon on a shared database holds a lease (cluster.lease, 60 s by default), renewed
by its heartbeat six times per lease (monitor.store.instances). While its lease holds, the
polls and deliveries it claimed are its own; once it is gone, the other instances take
them over. Two clocks see one lease:

- the others compare `lease_until` in the instance table with the database's clock: the
  lease ends one lease after the database applied the last renewal;
- this instance measures it with its own monotonic clock from the moment it *sent* the
  renewal, which is before the database applied it. So it always believes its lease ends
  no later than the others do, whatever the machines' clocks say.

Cut off from the database (a partition), the renewals fail and the lease runs out. The
instance starts no send once less than SEND_MARGIN of the lease remains, and each send's
services are bounded by that margin (send_timeout_seconds): whatever it started ends
before its lease does, after which the others send what it had claimed. What may then
arrive twice is what a crash may send twice: a message sent whose outcome could not be
recorded.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from monitor.model import StoreError
from monitor.store import Store

logger = logging.getLogger(__name__)

# A send starts only while more than this share of the lease remains, and no service of a
# message may take longer: with the default 60 s lease, 30 s.
SEND_MARGIN_FRACTION = 0.5
# The longest a service may take to take a message on a database of one daemon (SQLite),
# as monitor.delivery.notify has it.
UNSHARED_SEND_TIMEOUT_SECONDS = 60.0
# Retention runs once a day for all the instances: each asks every hour whether it is its
# turn (monitor.store.leases.start_singleton_job), so that the day's run does not wait for
# an instance that died.
RETENTION_EVERY_SECONDS = 86400.0
RETENTION_ASK_EVERY_SECONDS = 3600.0
# Statistics of the tables that grew (Store.analyze_grown_tables) are taken by one
# instance at most this often; each asks at half that.
STATISTICS_EVERY_SECONDS = 30.0


def send_margin_seconds(lease_seconds: float) -> float:
    return lease_seconds * SEND_MARGIN_FRACTION


def send_timeout_seconds(lease_seconds: float | None) -> float:
    """How long one service may take to take one message: on a shared database, within
    the send margin, so that a send started while the lease allows it ends before it."""
    if lease_seconds is None:
        return UNSHARED_SEND_TIMEOUT_SECONDS
    return min(UNSHARED_SEND_TIMEOUT_SECONDS, send_margin_seconds(lease_seconds))


class Lease:
    """This instance's lease, measured on its own monotonic clock. Thread-safe."""

    def __init__(
        self, lease_seconds: float, *, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.seconds = lease_seconds
        self.margin_seconds = send_margin_seconds(lease_seconds)
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._ends_at: float | None = None  # monotonic; None: never renewed

    def renewing(self) -> float:
        """Return the mark to give renewed() once the renewal sent now has succeeded."""
        return self._monotonic()

    def renewed(self, sent_at: float) -> None:
        """The renewal sent at `sent_at` (a mark from renewing()) succeeded."""
        with self._lock:
            ends_at = sent_at + self.seconds
            if self._ends_at is None or ends_at > self._ends_at:
                self._ends_at = ends_at

    def remaining_seconds(self) -> float:
        """How much of the lease is left: 0 once it is gone, or before it was ever held."""
        with self._lock:
            ends_at = self._ends_at
        return 0.0 if ends_at is None else max(0.0, ends_at - self._monotonic())

    def held(self) -> bool:
        return self.remaining_seconds() > 0

    def may_send(self) -> bool:
        """Whether a send (one service's) may start now: more than the margin is left."""
        return self.remaining_seconds() > self.margin_seconds


def statistics_job(store: Store, claim_prefix: str) -> None:
    """On a shared database: take the statistics of the tables that grew (the planner
    needs them, and autovacuum may be off), by one instance at a time, at most every
    STATISTICS_EVERY_SECONDS."""
    try:
        if store.start_singleton_job("statistics", claim_prefix, STATISTICS_EVERY_SECONDS):
            analyzed = store.analyze_grown_tables()
            if analyzed:
                logger.info("statistics analyzed=%s", ",".join(analyzed))
    except StoreError as error:
        logger.error("statistics status=store_error error=%r", str(error))
