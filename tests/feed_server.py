"""A local HTTP server that serves feeds, and misbehaves on request, for tests.

    with FeedServer() as server:
        server.add_feed("/rss", body, etag='"v1"')
        fetcher.fetch(server.url("/rss"))
        assert server.hits("/rss") == 1

It listens on 127.0.0.1 on a free port, answers each connection in its own daemon thread
(HTTP/1.1, keep-alive) and records every request. Routes can be replaced while it runs,
which is how a test "publishes" a new version of a feed. Besides plain feeds and fixed
responses it can: gzip a feed, redirect, drip a body or the headers byte by byte, stream
for ever, and hold requests until the test releases them (to measure concurrency).
Every waiting loop also ends when the server closes, so a test can never hang on it.
"""

from __future__ import annotations

import gzip
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import urlsplit

RSS_CONTENT_TYPE = "application/rss+xml; charset=utf-8"
# Upper bound on how long a blocked request waits for release(), so a test that forgets to
# release cannot leave a handler thread behind for ever.
MAX_BLOCK_SECONDS = 60.0

Route = Callable[["_Handler"], None]


class FeedServer:
    """A threaded HTTP server on 127.0.0.1:0 with programmable routes; see module docstring."""

    def __init__(self) -> None:
        self._httpd = _HTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.feed_server = self
        # A short poll interval keeps close() (which waits for the serve loop) quick.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.05,), name="feed-server", daemon=True
        )
        # One re-entrant condition guards all state, so wait_for() predicates may read the
        # properties below (which take the lock again) while the lock is held.
        self._condition = threading.Condition(threading.RLock())
        self._routes: dict[str, Route] = {}
        self._requests: list[tuple[str, dict[str, str]]] = []
        self._targets: list[str] = []
        self._hits: Counter[str] = Counter()
        self._hit_times: dict[str, list[float]] = {}
        self._in_flight = 0
        self._max_in_flight = 0
        self._blocked = 0
        self._releases = 0
        self._completed = 0
        self._connections = 0
        self._stopping = threading.Event()
        self._started = False

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> FeedServer:
        """Start serving in a daemon thread and return self."""
        if not self._started:
            self._thread.start()
            self._started = True
        return self

    def close(self) -> None:
        """Stop serving, wake every blocked or dripping handler, and free the port."""
        self._stopping.set()
        with self._condition:
            self._condition.notify_all()
        if self._started:
            self._httpd.shutdown()
            self._thread.join(timeout=10)
        self._httpd.server_close()

    def __enter__(self) -> FeedServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- addresses and records ------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str = "/") -> str:
        """Given a path (query string allowed), return the absolute URL on this server."""
        return self.base_url + (path if path.startswith("/") else "/" + path)

    @property
    def requests(self) -> list[tuple[str, dict[str, str]]]:
        """Every request so far as (path without query, headers as sent), oldest first."""
        with self._condition:
            return list(self._requests)

    @property
    def targets(self) -> list[str]:
        """Every request's target as sent (path and query, still percent-encoded), oldest first."""
        with self._condition:
            return list(self._targets)

    def hits(self, path: str) -> int:
        """Return how many requests reached `path` (query strings ignored)."""
        with self._condition:
            return self._hits[path]

    def hit_times(self, path: str) -> list[float]:
        """When each request to `path` arrived (time.monotonic()), oldest first."""
        with self._condition:
            return list(self._hit_times.get(path, ()))

    @property
    def in_flight(self) -> int:
        """Requests currently being answered (received, response not fully written)."""
        with self._condition:
            return self._in_flight

    @property
    def max_in_flight(self) -> int:
        """The most requests that were ever being answered at the same time."""
        with self._condition:
            return self._max_in_flight

    @property
    def blocked(self) -> int:
        """Requests to blocking routes that are waiting for release()."""
        with self._condition:
            return self._blocked

    @property
    def completed(self) -> int:
        """Requests whose handler has finished (response written or client gone)."""
        with self._condition:
            return self._completed

    @property
    def connections(self) -> int:
        """TCP connections accepted so far: a client that reuses its connections opens few."""
        with self._condition:
            return self._connections

    def _count_connection(self) -> None:
        with self._condition:
            self._connections += 1

    def wait_for(self, predicate: Callable[[], bool], timeout_seconds: float = 10.0) -> bool:
        """Wait until `predicate()` is true, re-checking whenever the server's state changes.

        Return False if it is still false after `timeout_seconds`. This replaces sleeps in
        tests: it returns as soon as the condition holds.
        """
        with self._condition:
            return self._condition.wait_for(predicate, timeout=timeout_seconds)

    # -- routes ---------------------------------------------------------------------------

    def add_feed(
        self,
        path: str,
        body: bytes,
        content_type: str = RSS_CONTENT_TYPE,
        etag: str | None = None,
        last_modified: str | None = None,
        *,
        gzip_encoded: bool = False,
        blocking: bool = False,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Serve `body` at `path`, with 304 when the client's validators match.

        Calling it again replaces the feed (new body, new etag), as a publisher would.
        `gzip_encoded` sends the body with Content-Encoding: gzip. `blocking` makes each
        request wait for release() before it is answered. `headers` are added as given.
        """
        encoded = gzip.compress(body) if gzip_encoded else body
        extra = dict(headers or {})

        def route(handler: _Handler) -> None:
            if blocking:
                self._wait_for_release()
            validators = {}
            if etag is not None:
                validators["ETag"] = etag
            if last_modified is not None:
                validators["Last-Modified"] = last_modified
            if _not_modified(handler, etag, last_modified):
                handler.respond(304, b"", {**validators, **extra})
                return
            response_headers = {"Content-Type": content_type, **validators, **extra}
            if gzip_encoded:
                response_headers["Content-Encoding"] = "gzip"
            handler.respond(200, encoded, response_headers)

        self._set_route(path, route)

    def set_response(
        self,
        path: str,
        status: int,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Answer every request to `path` with this status, body and headers.

        A Content-Length in `headers` is sent as given, even if it is a lie (the
        connection is then closed after the body), to test clients against it.
        """
        fixed_headers = dict(headers or {})

        def route(handler: _Handler) -> None:
            handler.respond(status, body, fixed_headers)

        self._set_route(path, route)

    def add_redirect(self, path: str, location: str, status: int = 302) -> None:
        """Redirect `path` to `location` (a path on this server or an absolute URL)."""
        self.set_response(path, status, b"", {"Location": location})

    def add_drip(
        self,
        path: str,
        *,
        chunk: bytes = b" ",
        interval_seconds: float = 0.1,
        prefix: bytes = b"",
        content_type: str = RSS_CONTENT_TYPE,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Send headers and `prefix` at once, then one `chunk` every interval, for ever.

        It stops when the client disconnects or the server closes. With a long interval it
        is a server that goes silent after the headers.
        """
        extra = dict(headers or {})

        def route(handler: _Handler) -> None:
            handler.start_stream(200, {"Content-Type": content_type, **extra})
            handler.wfile.write(prefix)
            while not self._stopping.wait(interval_seconds):
                handler.wfile.write(chunk)

        self._set_route(path, route)

    def add_endless(self, path: str, chunk: bytes = b"x" * 65536) -> None:
        """Stream `chunk` as fast as the client reads, for ever (no Content-Length)."""

        def route(handler: _Handler) -> None:
            handler.start_stream(200, {"Content-Type": RSS_CONTENT_TYPE})
            while not self._stopping.is_set():
                handler.wfile.write(chunk)

        self._set_route(path, route)

    def add_slow_headers(self, path: str, interval_seconds: float = 0.1) -> None:
        """Send the status line, then one header byte every interval, never ending them."""

        def route(handler: _Handler) -> None:
            handler.close_connection = True
            handler.wfile.write(b"HTTP/1.1 200 OK\r\nX-Padding: ")
            while not self._stopping.wait(interval_seconds):
                handler.wfile.write(b"a")

        self._set_route(path, route)

    def release(self, count: int = 1) -> None:
        """Let `count` requests to blocking routes (waiting now or arriving later) proceed."""
        with self._condition:
            self._releases += count
            self._condition.notify_all()

    # -- internals ------------------------------------------------------------------------

    def _set_route(self, path: str, route: Route) -> None:
        with self._condition:
            self._routes[path] = route

    def _wait_for_release(self) -> None:
        with self._condition:
            self._blocked += 1
            self._condition.notify_all()
            self._condition.wait_for(
                lambda: self._releases > 0 or self._stopping.is_set(),
                timeout=MAX_BLOCK_SECONDS,
            )
            if self._releases > 0:
                self._releases -= 1
            self._blocked -= 1
            self._condition.notify_all()

    def _handle(self, handler: _Handler) -> None:
        path = urlsplit(handler.path).path
        with self._condition:
            self._requests.append((path, dict(handler.headers.items())))
            self._targets.append(handler.path)
            self._hits[path] += 1
            self._hit_times.setdefault(path, []).append(time.monotonic())
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
            route = self._routes.get(path)
            self._condition.notify_all()
        try:
            if route is None:
                handler.respond(404, b"not found\n", {"Content-Type": "text/plain"})
            else:
                route(handler)
        except ConnectionError:
            # The client gave up (a deadline or size cap test): nothing more to send.
            handler.close_connection = True
        finally:
            with self._condition:
                self._in_flight -= 1
                self._completed += 1
                self._condition.notify_all()


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    feed_server: FeedServer

    def handle_error(self, request: object, client_address: object) -> None:
        """Ignore clients that hang up (closing a keep-alive connection with unread data
        resets it); print anything else, since that is a bug in a route."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Idle keep-alive connections are dropped after this, so no handler thread outlives
    # its test by much even if the client never closes.
    timeout = 30
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()  # runs once per TCP connection, however many requests it carries
        self.server.feed_server._count_connection()

    def do_GET(self) -> None:
        self.server.feed_server._handle(self)

    def respond(self, status: int, body: bytes, headers: Mapping[str, str]) -> None:
        """Send a complete response; Content-Length is added unless `headers` has one."""
        self.send_response(status)
        names = {name.lower() for name in headers}
        for name, value in headers.items():
            self.send_header(name, value)
        if "content-length" not in names and status != 304:
            self.send_header("Content-Length", str(len(body)))
        elif "content-length" in names:
            # The declared length may not match the body; do not reuse the connection.
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if status != 304:
            self.wfile.write(body)

    def start_stream(self, status: int, headers: Mapping[str, str]) -> None:
        """Send headers for a body delimited by closing the connection."""
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Connection", "close")
        self.close_connection = True
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Stay quiet: pytest shows server chatter as noise on every failure."""


def _not_modified(handler: _Handler, etag: str | None, last_modified: str | None) -> bool:
    """Return True if the request's validators say the client's copy is current.

    RFC 9110 13.1.3: If-None-Match wins over If-Modified-Since when both are present.
    ETags are compared weakly, as RFC 9110 13.1.2 requires for If-None-Match.
    """
    if_none_match = handler.headers.get("If-None-Match")
    if if_none_match is not None:
        if etag is None:
            return False
        if if_none_match.strip() == "*":
            return True
        wanted = _strip_weak(etag)
        return any(_strip_weak(tag.strip()) == wanted for tag in if_none_match.split(","))
    if_modified_since = handler.headers.get("If-Modified-Since")
    if if_modified_since is None or last_modified is None:
        return False
    try:
        return parsedate_to_datetime(if_modified_since) >= parsedate_to_datetime(last_modified)
    except (TypeError, ValueError):
        return if_modified_since == last_modified


def _strip_weak(tag: str) -> str:
    return tag[2:] if tag.startswith("W/") else tag
