"""This instance's liveness: its heartbeat (which renews its lease on a shared database),
what /healthz says of it, and its record when it stops. A part of Monitor
(monitor.service.daemon).
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

from monitor.model import StoreError
from monitor.service.cluster import Lease
from monitor.service.http import Health, Metrics
from monitor.service.sdnotify import ServiceManager
from monitor.store import InstanceIdentity, Store, heartbeat_fresh_seconds

if TYPE_CHECKING:
    from monitor.service.daemon import Runtime

logger = logging.getLogger(__name__)


class InstanceLiveness:
    """Monitor's heartbeat, health and lease reporting."""

    store: Store
    instance: InstanceIdentity
    lease: Lease | None
    metrics: Metrics
    service_manager: ServiceManager
    runtime: Runtime
    clock: Any
    _scheduler: Any
    _last_heartbeat: float | None
    _last_heartbeat_at: datetime | None
    _lease_sending: bool

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
        statuses = self.store.feed_statuses()
        successes = [s.state.last_success_at for s in statuses if s.state.last_success_at]
        last_heartbeat = self._last_heartbeat_at
        details: dict[str, object] = {
            "instance": self.instance.name,
            "host": self.instance.host,
            "pid": self.instance.pid,
            "last_heartbeat": last_heartbeat.isoformat() if last_heartbeat else None,
            "last_successful_poll": max(successes).isoformat() if successes else None,
            "feeds": len(self.runtime.config.feeds),
            "failing_feeds": sum(1 for s in statuses if s.state.error),
        }
        if self.lease is not None:
            details["lease"] = {
                "held": self.lease.held(),
                "remaining_seconds": round(self.lease.remaining_seconds(), 1),
                "sending": self.lease.may_send(),
            }
        return Health(self.healthy(), details)

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
