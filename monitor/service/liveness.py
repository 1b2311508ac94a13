"""This instance's liveness: its heartbeat (which renews its lease on a shared database),
what /healthz says of it, and its record when it stops. A part of Monitor
(monitor.service.daemon).
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime
from typing import Any, Protocol

from monitor.config import Config
from monitor.model import StoreError
from monitor.service.cluster import Lease
from monitor.service.http import Health, Metrics
from monitor.service.sdnotify import ServiceManager
from monitor.store import FeedStatus, InstanceIdentity, Store, heartbeat_fresh_seconds

logger = logging.getLogger(__name__)


# /healthz waits this long for the database's view of the feeds; a database that does not
# answer in time (cut off, or stuck) makes the answer unhealthy rather than late.
HEALTH_READ_SECONDS = 2.0


class _Configured(Protocol):
    """What of the daemon's Runtime this part reads."""

    @property
    def config(self) -> Config: ...


class InstanceLiveness:
    """Monitor's heartbeat, health and lease reporting."""

    store: Store
    instance: InstanceIdentity
    lease: Lease | None
    metrics: Metrics
    service_manager: ServiceManager
    runtime: _Configured
    clock: Any
    _scheduler: Any
    _last_heartbeat: float | None
    _last_heartbeat_at: datetime | None
    _lease_sending: bool
    _health_lock: threading.Lock
    _health_read: tuple[threading.Event, dict[str, Any]] | None

    def _init_liveness(self) -> None:
        self._last_heartbeat = None  # time.monotonic() of the last one
        self._last_heartbeat_at = None
        self._lease_sending = True  # as last logged
        self._health_lock = threading.Lock()
        self._health_read = None  # the read of feed statuses in flight or last done

    def healthy(self) -> bool:
        """True while the scheduler runs and this instance's heartbeat is fresh (the same
        liveness `news-monitor health` reads from the database), and, on a shared database,
        its lease holds."""
        scheduler = self._scheduler
        fresh_seconds = heartbeat_fresh_seconds(self.runtime.config.cluster.lease_seconds)
        return (
            scheduler is not None
            and scheduler.running
            and self._last_heartbeat is not None
            and time.monotonic() - self._last_heartbeat < fresh_seconds
            and (self.lease is None or self.lease.held())
        )

    def health(self) -> Health:
        """What /healthz reports: healthy or not, this instance, its last heartbeat and
        lease, and when each feed last succeeded."""
        statuses = self._feed_statuses()
        successes = [s.state.last_success_at for s in statuses or [] if s.state.last_success_at]
        last_heartbeat = self._last_heartbeat_at
        details: dict[str, object] = {
            "instance": self.instance.name,
            "host": self.instance.host,
            "pid": self.instance.pid,
            "last_heartbeat": last_heartbeat.isoformat() if last_heartbeat else None,
            "last_successful_poll": max(successes).isoformat() if successes else None,
            "feeds": len(self.runtime.config.feeds),
            "failing_feeds": sum(1 for s in statuses or [] if s.state.error),
        }
        if statuses is None:
            details["database"] = f"no answer within {HEALTH_READ_SECONDS:g} s"
        if self.lease is not None:
            details["lease"] = {
                "held": self.lease.held(),
                "remaining_seconds": round(self.lease.remaining_seconds(), 1),
                "sending": self.lease.may_send(),
            }
        return Health(self.healthy() and statuses is not None, details)

    def _feed_statuses(self) -> list[FeedStatus] | None:
        """The feeds' statuses, or None if the database does not give them within
        HEALTH_READ_SECONDS. The read runs on a thread of its own (one at a time), so that
        a database out of reach cannot hold /healthz, nor the process at exit."""
        with self._health_lock:
            if self._health_read is None or self._health_read[0].is_set():
                done, box = threading.Event(), dict[str, Any]()

                def read() -> None:
                    try:
                        box["statuses"] = self.store.feed_statuses()
                    except Exception as error:  # noqa: BLE001 - raised in the asking thread
                        box["error"] = error
                    finally:
                        done.set()

                threading.Thread(target=read, name="health-read", daemon=True).start()
                self._health_read = (done, box)
            done, box = self._health_read
        if not done.wait(HEALTH_READ_SECONDS):
            return None
        error = box.get("error")
        if isinstance(error, Exception):
            raise error
        statuses: list[FeedStatus] = box["statuses"]
        return statuses

    def _heartbeat_job(self) -> None:
        now = self.clock()
        renewal = self.lease.renewing() if self.lease is not None else 0.0
        try:
            # The database takes writes; on a shared one, this renews the lease.
            self.store.record_heartbeat(
                self.instance, now, lease_seconds=self.runtime.config.cluster.lease_seconds
            )
            if self.lease is not None:
                self.lease.renewed(renewal)
            counts = self.store.delivery_counts()
        except StoreError as error:
            logger.error("heartbeat status=store_error error=%r", str(error))
            return
        self._last_heartbeat = time.monotonic()
        self._last_heartbeat_at = now
        self.metrics.set_deliveries(counts)
        self.service_manager.status(
            f"watching {len(self.runtime.config.feeds)} feeds; pending {counts['pending']}, "
            f"held {counts['held']}, failed {counts['failed']}"
        )

    def _report_lease(self) -> None:
        """Tell /metrics how much lease is left, and log when sending stops or resumes.
        Run by the main loop, not the heartbeat: a heartbeat stuck on an unreachable
        database must not keep this quiet."""
        lease = self.lease
        if lease is None:
            return
        self.metrics.set_lease(lease.remaining_seconds())
        sending = lease.may_send()
        if sending != self._lease_sending:
            self._lease_sending = sending
            if sending:
                logger.info("lease status=renewed instance=%s sending=resumed", self.instance.name)
            else:
                logger.warning(
                    "lease status=ending instance=%s remaining_seconds=%.1f sending=paused "
                    "note='the database does not take renewals: once the lease is gone the "
                    "other instances take this one's work over'",
                    self.instance.name,
                    lease.remaining_seconds(),
                )

    def _mark_stopped(self) -> None:
        try:
            self.store.mark_instance_stopped(self.instance, self.clock())
        except StoreError as error:  # its heartbeat ends anyway: it is seen as gone soon
            logger.error(
                "stopping instance=%s status=store_error error=%r", self.instance.name, str(error)
            )
