"""The web server inside the daemon: uvicorn running the web view's Starlette app on a
thread of its own, with its own event loop, beside the scheduler's threads.

The socket is bound before the thread starts, so a port already taken stops the daemon at
once with a clear error, and a port of 0 (tests) is known as soon as start() returns.
uvicorn installs no signal handler on a thread other than the main one: SIGTERM and SIGHUP
stay the daemon's.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable
from datetime import datetime

from monitor.config import Config, HttpConfig
from monitor.service.http import Health, Metrics
from monitor.service.web.app import build_app
from monitor.service.web.reports import WebSources
from monitor.store import Store

logger = logging.getLogger(__name__)

# At stop, requests in flight get this long to finish (a search is cut at its time limit).
GRACEFUL_SHUTDOWN_SECONDS = 3
PATHS_LOGGED = "/,/matches,/feeds,/stories,/search,/api/...,/healthz,/metrics"


class WebServer:
    """The web view, /healthz and /metrics on `settings.listen`; close() stops it and
    closes the store it reads."""

    def __init__(
        self,
        settings: HttpConfig,
        sources: WebSources,
        *,
        health: Callable[[], Health],
        metrics: Metrics,
        before_scrape: Callable[[], None] = lambda: None,
    ) -> None:
        import uvicorn

        # uvicorn's own INFO lines ("Started server process") are not ours to print; its
        # warnings and errors (a request that crashed) still are.
        logging.getLogger("uvicorn").setLevel(logging.WARNING)
        self.settings = settings
        self._store = sources.store
        self._socket = _bound_socket(settings.listen)
        app = build_app(
            sources, settings, health=health, metrics=metrics, before_scrape=before_scrape
        )
        # No access log: scrapes every few seconds would drown the poll lines, and a log of
        # requests is the proxy's job.
        self._server = uvicorn.Server(
            uvicorn.Config(
                app,
                log_config=None,
                access_log=False,
                lifespan="off",
                timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
                server_header=False,
            )
        )
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, name="http", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._socket.getsockname()[1])

    def start(self) -> WebServer:
        self._thread.start()
        host = self._socket.getsockname()[0]
        logger.info(
            "http listening=%s:%d base_path=%s auth=%s paths=%s",
            f"[{host}]" if ":" in host else host,
            self.port,
            self.settings.base_path or "/",
            "basic" if self.settings.auth_user is not None else "none",
            PATHS_LOGGED,
        )
        return self

    def close(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=GRACEFUL_SHUTDOWN_SECONDS + 2)
        self._socket.close()
        self._store.close()


def start_web_server(
    config: Callable[[], Config],
    *,
    clock: Callable[[], datetime],
    health: Callable[[], Health],
    metrics: Metrics,
    before_scrape: Callable[[], None] = lambda: None,
) -> WebServer:
    """Given the daemon's running configuration (with `http:`), start serving its web view
    on a store of its own, opened read-only, so that no page ever takes the write lock a
    poll needs. Raise OSError if it cannot listen."""
    current = config()
    assert current.http is not None
    sources = WebSources(
        config=config, store=Store(current.database_url, read_only=True), clock=clock
    )
    try:
        server = WebServer(
            current.http, sources, health=health, metrics=metrics, before_scrape=before_scrape
        )
    except BaseException:
        sources.store.close()
        raise
    return server.start()


def _bound_socket(listen: str) -> socket.socket:
    """Given "host:port" (a host in brackets for IPv6, none for 127.0.0.1), return a socket
    bound and listening there. Raise OSError if it cannot be."""
    host, _, port = listen.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    family, kind, protocol, _, address = socket.getaddrinfo(
        host, int(port), type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    bound = socket.socket(family, kind, protocol)
    try:
        bound.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        bound.bind(address)
        # Connections made before uvicorn's loop runs wait in the backlog, not refused.
        bound.listen(128)
    except OSError:
        bound.close()
        raise
    return bound
