"""The optional `http:` endpoint: /healthz for supervisors, /metrics for Prometheus.

Bound to 127.0.0.1 unless configured otherwise. The server knows nothing about feeds or
the database: the daemon hands it a health check and a metrics registry.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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
    imported, until something exports them: an HttpEndpoint, or reading `registry`. The
    daemon sets its endpoint up before the first poll; `run --once` has none.
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


class HttpEndpoint:
    """A threaded HTTP server in the background; close() stops it."""

    def __init__(
        self,
        listen: str,
        *,
        health: Callable[[], Health],
        metrics: Metrics,
        before_scrape: Callable[[], None] = lambda: None,
    ) -> None:
        host, _, port = listen.rpartition(":")
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/healthz":
                    endpoint._serve_health(self)
                elif path == "/metrics":
                    endpoint._serve_metrics(self)
                else:
                    self._reply(404, b"not found\n", "text/plain; charset=utf-8")

            def _reply(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass  # scrapes every few seconds would drown the poll lines

        self._health = health
        self._metrics = metrics
        metrics._export()  # from now on polls are counted
        self._before_scrape = before_scrape
        self._server = ThreadingHTTPServer((host.strip("[]") or "127.0.0.1", int(port)), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="http", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> HttpEndpoint:
        self._thread.start()
        logger.info(
            "http listening=%s:%d paths=/healthz,/metrics", *self._server.server_address[:2]
        )
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _serve_health(self, handler: BaseHTTPRequestHandler) -> None:
        try:
            health = self._health()
        except Exception as error:  # a health check that fails is an unhealthy service
            logger.exception("http healthz status=error")
            health = Health(False, {"error": type(error).__name__})
        body = json.dumps({"healthy": health.healthy, **health.details}, default=str)
        handler._reply(  # type: ignore[attr-defined]
            200 if health.healthy else 503, body.encode() + b"\n", "application/json"
        )

    def _serve_metrics(self, handler: BaseHTTPRequestHandler) -> None:
        try:
            self._before_scrape()
        except Exception:  # stale gauges beat no metrics at all
            logger.warning("http metrics status=partial", exc_info=True)
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        handler._reply(  # type: ignore[attr-defined]
            200, generate_latest(self._metrics.registry), CONTENT_TYPE_LATEST
        )
