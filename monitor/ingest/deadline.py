"""The total deadline of one fetch, enforced on the socket by one watchdog thread.

Why a watchdog: socket timeouts bound each `recv`, not their sum. A server that sends one
header byte per second, or gzip padding that decodes to nothing, keeps every `recv` short
and the fetch alive for ever; the body loop's own deadline check cannot run while urllib3
is still inside one `read1` call. So each fetch registers its deadline with one long-lived
watchdog thread, which shuts the socket down when the total deadline passes; that wakes the
blocked read with an error we report as a timeout. (One thread with a heap of deadlines, not
a `threading.Timer` per fetch: starting and cancelling a thread cost more than a whole 304.)
DNS resolution (`getaddrinfo`) happens before there is a socket and is not covered.

The sockets reach the watchdog through urllib3's documented extension points: an
HTTPAdapter whose pool manager makes connection pools of our connection classes
(`pool_classes_by_scheme`, `ConnectionCls`), which hand their socket over just before
waiting for the response headers.
"""

from __future__ import annotations

import heapq
import itertools
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool


@contextmanager
def enforced(deadline: Deadline) -> Iterator[Deadline]:
    """Make `deadline` the one this thread's connections report to, for the block; then
    disarm it, so the watchdog never touches the (pooled, reused) socket again."""
    _active.deadline = deadline
    try:
        yield deadline
    finally:
        _active.deadline = None
        deadline.finish()


class Watchdog:
    """One daemon thread that enforces every fetch's deadline, earliest first.

    Deadlines wait in a heap ordered by expiry time. A finished fetch is not searched for
    in the heap: it is dropped when it reaches the top, or in a sweep once finished
    entries are most of the heap, so a burst of quick 304s never makes the heap large.
    """

    # Below this many finished entries a sweep costs more than it saves.
    _SWEEP_MINIMUM = 256

    def __init__(self) -> None:
        self._condition = threading.Condition(threading.Lock())
        self._heap: list[tuple[float, int, Deadline]] = []
        self._order = itertools.count()  # ties on expiry never compare Deadline objects
        self._finished = 0
        self._thread: threading.Thread | None = None

    def arm(self, deadline: Deadline) -> None:
        """Given a deadline with a socket to watch, expire it when its time comes."""
        with self._condition:
            entry = (deadline.expires_at, next(self._order), deadline)
            heapq.heappush(self._heap, entry)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="fetch-watchdog", daemon=True
                )
                self._thread.start()
            elif self._heap[0] is entry:
                # Only an earlier deadline than the one being waited for needs a wake-up.
                self._condition.notify()

    def disarm(self) -> None:
        """Note that one armed deadline finished, so its entry is garbage."""
        with self._condition:
            self._finished += 1
            if self._finished >= self._SWEEP_MINIMUM and self._finished * 2 >= len(self._heap):
                self._heap = [entry for entry in self._heap if not entry[2].finished]
                heapq.heapify(self._heap)
                self._finished = 0

    def pending(self) -> int:
        """Return how many entries the heap holds, finished ones included (for tests)."""
        with self._condition:
            return len(self._heap)

    def _run(self) -> None:
        while True:
            with self._condition:
                while True:
                    while self._heap and self._heap[0][2].finished:
                        heapq.heappop(self._heap)
                        self._finished = max(0, self._finished - 1)
                    if not self._heap:
                        self._condition.wait()
                        continue
                    wait = self._heap[0][0] - time.monotonic()
                    if wait <= 0:
                        break
                    self._condition.wait(wait)
                _, _, due = heapq.heappop(self._heap)
            # Outside the heap's lock: _expire takes the deadline's own lock, and watch()
            # holds that one while it calls arm().
            due._expire()

    def _after_fork_in_child(self) -> None:
        # The thread does not survive fork(); the lock may have been held when it happened.
        self._condition = threading.Condition(threading.Lock())
        self._heap = []
        self._finished = 0
        self._thread = None


WATCHDOG = Watchdog()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=WATCHDOG._after_fork_in_child)


class Deadline:
    """The total time budget of one fetch, and a watchdog that enforces it on the socket.

    See the module docstring for why socket timeouts alone are not enough.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expires_at = time.monotonic() + seconds
        self._lock = threading.Lock()
        self._socket: socket.socket | None = None
        self._armed = False
        self._expired = False
        self.finished = False

    def remaining(self) -> float:
        """Return the seconds left, never negative."""
        return max(0.0, self.expires_at - time.monotonic())

    def exceeded(self) -> bool:
        """Return True once the budget is spent (or the watchdog has fired)."""
        return self.fired() or self.remaining() <= 0

    def fired(self) -> bool:
        """Return True if the watchdog shut a socket down (or would have, had there been one)."""
        return self._expired

    def message(self) -> str:
        """Return the error message for a spent budget, e.g. 'timed out after 20s'."""
        return f"timed out after {self.seconds:g}s"

    def watch(self, sock: socket.socket) -> None:
        """Given the socket about to be read, make it the one the watchdog shuts down.

        The deadline joins the watchdog's heap on the first call, so fetches that never
        reach the network (file://, a bad URL) cost it nothing.
        """
        with self._lock:
            if self.finished:
                return
            self._socket = sock
            if self._expired:
                _shutdown(sock)
            elif not self._armed:
                self._armed = True
                WATCHDOG.arm(self)

    def finish(self) -> None:
        """Disarm the watchdog; after this it never touches a socket again.

        This matters because the socket goes back to the pool and may serve this thread's
        next fetch.
        """
        with self._lock:
            self.finished = True
            self._socket = None
            armed = self._armed
        if armed:
            WATCHDOG.disarm()

    def _expire(self) -> None:
        with self._lock:
            if self.finished:
                return
            self._expired = True
            if self._socket is not None:
                _shutdown(self._socket)


def _shutdown(sock: socket.socket) -> None:
    """Wake any thread blocked reading `sock`; urllib3's own HTTPResponse.shutdown does this."""
    # OSError: already closed or never connected, so there is nothing left to wake.
    with suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


# The deadline of the fetch running on this thread, for the connection classes below:
# urllib3 gives no other way to reach a connection's socket before the headers arrive.
_active = threading.local()


class _WatchedConnectionMixin:
    """Hand the socket to the current fetch's watchdog just before waiting for headers."""

    sock: socket.socket | None

    def getresponse(self) -> Any:
        deadline: Deadline | None = getattr(_active, "deadline", None)
        if deadline is not None and self.sock is not None:
            deadline.watch(self.sock)
        return super().getresponse()  # type: ignore[misc]


class _WatchedHTTPConnection(_WatchedConnectionMixin, HTTPConnection):
    pass


class _WatchedHTTPSConnection(_WatchedConnectionMixin, HTTPSConnection):
    pass


class _WatchedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


_WATCHED_POOL_CLASSES = {"http": _WatchedHTTPConnectionPool, "https": _WatchedHTTPSConnectionPool}


class WatchedAdapter(HTTPAdapter):
    """An HTTPAdapter whose connections report their sockets to the fetch's watchdog."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _WATCHED_POOL_CLASSES

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        # SOCKS managers bring their own connection classes; they keep them and rely on the
        # body-phase watch in http_response.read_body instead.
        if isinstance(manager, urllib3.ProxyManager):
            manager.pool_classes_by_scheme = _WATCHED_POOL_CLASSES
        return manager
