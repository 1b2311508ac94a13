"""What /healthz and /metrics report: the daemon's health, and its Prometheus metrics.

The web view (monitor.service.web) serves both; the daemon hands it a health check and
these metrics.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

# Poll latencies span a local file (milliseconds) to a slow site at its deadline (20 s).
POLL_SECONDS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 60)


@dataclass(frozen=True)
class Health:
    healthy: bool
    details: Mapping[str, object]


class Metrics:
    """The daemon's Prometheus metrics, in a registry of their own.

    Nothing is recorded, and prometheus_client (a tenth of a second to import) is not
    imported, until something exports them by reading `registry`: the web view does, and
    the daemon starts it before the first poll; `run --once` has none.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: _LiveMetrics | None = None

    @property
    def registry(self) -> Any:
        """The prometheus_client CollectorRegistry, created (and recording) on first use."""
        return self._export().registry

    def _export(self) -> _LiveMetrics:
        with self._lock:
            if self._live is None:
                self._live = _LiveMetrics()
            return self._live

    def record_poll(
        self,
        feed: str,
        *,
        outcome: str,
        new_articles: int,
        matches: int,
        elapsed_seconds: float,
    ) -> None:
        live = self._live
        if live is not None:
            live.record_poll(
                feed,
                outcome=outcome,
                new_articles=new_articles,
                matches=matches,
                elapsed_seconds=elapsed_seconds,
            )

    def set_deliveries(self, counts: Mapping[str, int]) -> None:
        live = self._live
        if live is not None:
            live.set_deliveries(counts)

    def set_lease(self, remaining_seconds: float) -> None:
        """This instance's lease on a shared database: how much of it is left."""
        live = self._live
        if live is not None:
            live.lease_remaining.set(remaining_seconds)
            live.lease_held.set(1 if remaining_seconds > 0 else 0)


class _LiveMetrics:
    """The prometheus_client objects behind an exported Metrics."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        self.polls = Counter(
            "news_monitor_polls", "Feed polls by outcome", ["feed", "outcome"],
            registry=self.registry,
        )  # fmt: skip
        self.new_articles = Counter(
            "news_monitor_new_articles", "Articles new to the store", ["feed"],
            registry=self.registry,
        )  # fmt: skip
        self.matches = Counter(
            "news_monitor_matches", "Rule matches on new or edited articles",
            registry=self.registry,
        )  # fmt: skip
        self.poll_seconds = Histogram(
            "news_monitor_poll_duration_seconds", "Time to poll one feed, fetch to commit",
            buckets=POLL_SECONDS_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.deliveries = Gauge(
            "news_monitor_deliveries", "Deliveries in the outbox by status", ["status"],
            registry=self.registry,
        )  # fmt: skip
        # Several instances on one database: this instance's own lease.
        self.lease_remaining = Gauge(
            "news_monitor_lease_remaining_seconds",
            "This instance's lease on the shared database: seconds left",
            registry=self.registry,
        )  # fmt: skip
        self.lease_held = Gauge(
            "news_monitor_lease_held", "1 while this instance holds its lease, else 0",
            registry=self.registry,
        )  # fmt: skip

    def record_poll(
        self,
        feed: str,
        *,
        outcome: str,
        new_articles: int,
        matches: int,
        elapsed_seconds: float,
    ) -> None:
        self.polls.labels(feed=feed, outcome=outcome).inc()
        if new_articles:
            self.new_articles.labels(feed=feed).inc(new_articles)
        if matches:
            self.matches.inc(matches)
        self.poll_seconds.observe(elapsed_seconds)

    def set_deliveries(self, counts: Mapping[str, int]) -> None:
        for status, count in counts.items():
            self.deliveries.labels(status=status).set(count)
