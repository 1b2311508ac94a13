"""HTTP (and file://) fetching of feeds: deadlines, body caps, conditional GET, backoff hints.

One job: turn a feed URL into bytes plus the few response facts the pipeline needs, or a
`FetchError` with a short message that is safe to log. Nothing here parses feeds or decides
when to poll; `Retry-After` is only reported, the scheduler acts on it.

Why redirects are followed by hand instead of by requests: `Session.send` reads the whole
body of every 3xx response (`resp.content`, even with `stream=True` and even with
`allow_redirects=False`, because it precomputes `Response.next`), with no size cap and no
total deadline. A hostile redirect could stream forever. Following them here also lets each
hop count against the per-origin limit of the host it actually goes to, and lets a redirect
to `file://` be refused.

Why a watchdog: socket timeouts bound each `recv`, not their sum. A server that sends one
header byte per second, or gzip padding that decodes to nothing, keeps every `recv` short
and the fetch alive for ever; the body loop's own deadline check cannot run while urllib3
is still inside one `read1` call. So each fetch registers its deadline with one long-lived
watchdog thread, which shuts the socket down when the total deadline passes; that wakes the
blocked read with an error we report as a timeout. (One thread with a heap of deadlines, not
a `threading.Timer` per fetch: starting and cancelling a thread cost more than a whole 304.)
DNS resolution (`getaddrinfo`) happens before there is a socket and is not covered.

Why the environment is read once per session: `Session.request` looks up proxies (every
environment variable, twice), CA bundle variables and `~/.netrc` on every request. Here a
thread's session reads them when it is created (again after `close()`): with no proxy
variables set, requests go direct without looking again; with some set, NO_PROXY is still
applied per URL as requests does. `~/.netrc` is consulted per request only if it existed
when the session was made. Changing these variables in a running process takes effect on
the next session, not on the next request.
"""

from __future__ import annotations

import heapq
import http.client
import itertools
import os
import re
import socket
import ssl
import threading
import time
import weakref
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import unquote_to_bytes, urljoin, urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from requests.cookies import extract_cookies_to_jar
from requests.utils import (
    get_auth_from_url,
    get_environ_proxies,
    get_netrc_auth,
    getproxies,
    requote_uri,
)
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from monitor import __version__
from monitor.config import DEFAULT_MAX_BYTES, DEFAULT_TIMEOUT_SECONDS
from monitor.model import FetchError

DEFAULT_PER_ORIGIN_LIMIT = 2
# Connecting is quick or hopeless; a long connect wait only eats the budget for the body.
MAX_CONNECT_TIMEOUT_SECONDS = 10.0
MAX_REDIRECTS = 5
# read1() returns as soon as some bytes are available, at most this many decoded bytes, so
# the deadline and the size cap are checked at least once per 64 KiB.
READ_CHUNK_BYTES = 64 * 1024

# Feeds first, then generic XML, then anything: some servers send RSS as text/html.
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/rdf+xml;q=0.9, "
    "application/feed+json;q=0.9, application/xml;q=0.9, text/xml;q=0.8, */*;q=0.5"
)

_HTTP_SCHEMES = ("http", "https")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# Only these tell a client the resource moved for good (RFC 9110 15.4.2, 15.4.9).
_PERMANENT_REDIRECT_STATUSES = frozenset({301, 308})
# RFC 9110 10.2.3 defines Retry-After for 503 and RFC 6585 4 for 429.
_RETRY_AFTER_STATUSES = frozenset({429, 503})
_DIGITS = re.compile(r"[0-9]+")
# Which response header set how long a response stays fresh.
FRESHNESS_MAX_AGE, FRESHNESS_EXPIRES = "max_age", "expires"


@dataclass(frozen=True)
class FetchResult:
    """What one successful fetch returned; `body` is None when the server said 304.

    URL fields are left out of repr(): feed URLs may carry tokens, and a repr ends up in
    logs sooner or later. The body is left out because it is large.
    """

    url: str = field(repr=False)
    status: int | None
    body: bytes | None = field(repr=False)
    content_type: str
    content_location: str
    etag: str | None
    last_modified: str | None
    permanent_redirect_to: str | None = field(repr=False)
    elapsed_seconds: float
    # How long this response (200 or 304) stays fresh (Cache-Control max-age, or Expires):
    # the scheduler honours it, never polling faster than configured. Last, with defaults,
    # so code that builds a FetchResult from the fields above keeps working.
    max_age_seconds: float | None = None
    max_age_source: str | None = None  # FRESHNESS_MAX_AGE or FRESHNESS_EXPIRES

    @property
    def not_modified(self) -> bool:
        """Return True when the server answered 304, so the stored items are still current."""
        return self.status == 304


class Fetcher:
    """Fetches feeds for many threads at once, politely and within hard limits.

    Each thread gets its own `requests.Session` because Session thread safety is not
    documented (psf/requests#2766). The per-origin limit is shared by all threads, since
    politeness is about what the server sees, not about which worker asked.
    """

    def __init__(
        self,
        user_agent: str | None = None,
        per_origin_limit: int = DEFAULT_PER_ORIGIN_LIMIT,
    ) -> None:
        """Given an optional User-Agent and a per-origin limit, prepare an idle fetcher.

        Raise ValueError if `per_origin_limit` is below 1, which would block every fetch.
        """
        if per_origin_limit < 1:
            raise ValueError("per_origin_limit must be at least 1")
        self.user_agent = user_agent or f"news-monitor/{__version__}"
        self.per_origin_limit = per_origin_limit
        self._local = threading.local()
        self._lock = threading.Lock()
        # Weak, so the session of a worker thread that exits is collected with it.
        self._sessions: weakref.WeakSet[requests.Session] = weakref.WeakSet()
        # Bumped by close() so every thread notices its session is gone and makes another.
        self._generation = 0
        self._origin_slots: dict[tuple[str, str, int], threading.BoundedSemaphore] = {}

    def fetch(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> FetchResult:
        """Given a feed URL and the validators stored from its last 200, return the response.

        `timeout_seconds` bounds the whole call: waiting for a free slot on the origin,
        every redirect hop, connecting, the headers and the body. `max_bytes` caps the
        decoded body. Raise FetchError, whose message never contains the URL (it may
        carry credentials), for every network failure, timeout, oversized body, redirect
        problem and non-2xx status other than 304.
        """
        started = time.monotonic()
        try:
            scheme = urlsplit(url).scheme.lower()
        except ValueError:
            raise FetchError("invalid URL") from None
        if scheme == "file":
            return _fetch_file(url, max_bytes=max_bytes, started=started)
        if scheme not in _HTTP_SCHEMES:
            raise FetchError("unsupported URL scheme (use http, https or file)")

        deadline = _Deadline(timeout_seconds)
        _active.deadline = deadline
        try:
            return self._fetch_http(
                url,
                etag=etag,
                last_modified=last_modified,
                deadline=deadline,
                max_bytes=max_bytes,
                started=started,
            )
        finally:
            _active.deadline = None
            deadline.finish()

    def close(self) -> None:
        """Close every thread's session and its pooled connections.

        The fetcher stays usable: a thread that fetches again gets a fresh session. That
        way a close() racing with a fetch in another thread cannot make the fetch crash.
        """
        with self._lock:
            sessions = list(self._sessions)
            self._sessions.clear()
            self._generation += 1
        for session in sessions:
            session.close()

    def _session(self) -> _FeedSession:
        """Return this thread's session, creating it on first use or after close()."""
        generation = self._generation
        session = getattr(self._local, "session", None)
        if session is not None and getattr(self._local, "generation", None) == generation:
            return session
        session = _FeedSession()
        # max_retries=0: the scheduler polls again later, and urllib3 retries would both
        # break the deadline and sleep for a server-chosen Retry-After inside a worker.
        adapter = _WatchedAdapter(max_retries=0)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        session.headers.update({"User-Agent": self.user_agent, "Accept": ACCEPT})
        with self._lock:
            self._sessions.add(session)
        self._local.session = session
        self._local.generation = generation
        return session

    @contextmanager
    def _origin_slot(self, url: str, deadline: _Deadline) -> Iterator[None]:
        """Hold one of the origin's request slots for the duration of the block.

        Raise FetchError if no slot frees up before the deadline.
        """
        origin = origin_of(url)
        with self._lock:
            slot = self._origin_slots.get(origin)
            if slot is None:
                slot = threading.BoundedSemaphore(self.per_origin_limit)
                self._origin_slots[origin] = slot
        if not slot.acquire(timeout=deadline.remaining()):
            raise FetchError(
                f"{deadline.message()} waiting for a turn "
                f"(at most {self.per_origin_limit} requests at once per host)"
            )
        try:
            yield
        finally:
            slot.release()

    def _fetch_http(
        self,
        url: str,
        *,
        etag: str | None,
        last_modified: str | None,
        deadline: _Deadline,
        max_bytes: int,
        started: float,
    ) -> FetchResult:
        """Given an http(s) URL, follow up to MAX_REDIRECTS redirects and return the result."""
        session = self._session()
        headers: dict[str, str] = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified

        current_url = url
        auth: tuple[str, str] | None = None
        permanent_target: str | None = None
        # Only an unbroken run of permanent redirects from the configured URL moves the
        # feed: after a 302 the client must keep asking the URL that answered 302.
        all_permanent_so_far = True
        for _hop in range(MAX_REDIRECTS + 1):
            with self._origin_slot(current_url, deadline):
                response = _send(session, current_url, headers, auth, deadline)
                with response:
                    status = response.status_code
                    location = session.get_redirect_target(response)
                    if status in _REDIRECT_STATUSES and location:
                        next_url = _resolve_redirect(current_url, location)
                    elif status == 304:
                        _release_connection(response)
                        return FetchResult(
                            url=current_url,
                            status=status,
                            body=None,
                            content_type=response.headers.get("Content-Type", ""),
                            content_location=response.headers.get("Content-Location", ""),
                            etag=None,
                            last_modified=None,
                            permanent_redirect_to=permanent_target,
                            elapsed_seconds=time.monotonic() - started,
                            **_freshness_fields(response.headers),
                        )
                    elif 200 <= status < 300:
                        body = _read_body(response, deadline, max_bytes)
                        return FetchResult(
                            url=current_url,
                            status=status,
                            body=body,
                            content_type=response.headers.get("Content-Type", ""),
                            content_location=response.headers.get("Content-Location", ""),
                            etag=response.headers.get("ETag"),
                            last_modified=response.headers.get("Last-Modified"),
                            permanent_redirect_to=permanent_target,
                            elapsed_seconds=time.monotonic() - started,
                            **_freshness_fields(response.headers),
                        )
                    else:
                        raise _status_error(response)
            # Redirect: decide what carries over to the next hop. The response is closed
            # unread, so a 3xx body costs nothing.
            if status in _PERMANENT_REDIRECT_STATUSES and all_permanent_so_far:
                permanent_target = next_url
            else:
                all_permanent_so_far = False
            auth = _auth_for_redirect(session, current_url, next_url, auth)
            current_url = next_url
        raise FetchError("too many redirects")


@dataclass(frozen=True)
class _SessionEnvironment:
    """What requests would read from the environment on every request, read once.

    The same variables and files as `Session.merge_environment_settings` and
    `Session.prepare_request` with `trust_env=True`: proxies (HTTP_PROXY, HTTPS_PROXY,
    ALL_PROXY, NO_PROXY...), REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE, and NETRC or ~/.netrc.
    """

    # Whether any proxy variable is set; only then is NO_PROXY matched per URL.
    proxies: bool
    ca_bundle: str | None
    netrc: bool

    @classmethod
    def read(cls) -> _SessionEnvironment:
        """Return the current environment's proxy, CA bundle and netrc settings."""
        return cls(
            proxies=bool(getproxies()),
            ca_bundle=os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE"),
            netrc=_netrc_exists(),
        )

    def proxies_for(self, url: str) -> dict[str, str]:
        """Given a request URL, return the proxies requests would use for it."""
        # get_environ_proxies applies NO_PROXY (and the OS bypass list) to this URL's host.
        return get_environ_proxies(url) if self.proxies else {}

    def netrc_auth(self, url: str) -> tuple[str, str] | None:
        """Given a request URL, return its ~/.netrc credentials, as requests would look up."""
        return get_netrc_auth(url) if self.netrc else None


def _netrc_exists() -> bool:
    """Return True if the netrc file requests would read exists (NETRC, else ~/.netrc)."""
    configured = os.environ.get("NETRC")
    names = (configured,) if configured is not None else ("~/.netrc", "~/_netrc")
    return any(os.path.exists(os.path.expanduser(name)) for name in names)


class _FeedSession(requests.Session):
    """A Session that reads the environment once, when it is made (module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self.environment = _SessionEnvironment.read()
        # Off so that prepare_request does not look for ~/.netrc again on every request;
        # _send applies self.environment instead, with the same precedence.
        self.trust_env = False


class _Watchdog:
    """One daemon thread that enforces every fetch's deadline, earliest first.

    Deadlines wait in a heap ordered by expiry time. A finished fetch is not searched for
    in the heap: it is dropped when it reaches the top, or in a sweep once finished
    entries are most of the heap, so a burst of quick 304s never makes the heap large.
    """

    # Below this many finished entries a sweep costs more than it saves.
    _SWEEP_MINIMUM = 256

    def __init__(self) -> None:
        self._condition = threading.Condition(threading.Lock())
        self._heap: list[tuple[float, int, _Deadline]] = []
        self._order = itertools.count()  # ties on expiry never compare _Deadline objects
        self._finished = 0
        self._thread: threading.Thread | None = None

    def arm(self, deadline: _Deadline) -> None:
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


_WATCHDOG = _Watchdog()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_WATCHDOG._after_fork_in_child)


class _Deadline:
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
                _WATCHDOG.arm(self)

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
            _WATCHDOG.disarm()

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
        deadline: _Deadline | None = getattr(_active, "deadline", None)
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


class _WatchedAdapter(HTTPAdapter):
    """An HTTPAdapter whose connections report their sockets to the fetch's watchdog."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _WATCHED_POOL_CLASSES

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        # SOCKS managers bring their own connection classes; they keep them and rely on the
        # body-phase watch in _read_body instead.
        if isinstance(manager, urllib3.ProxyManager):
            manager.pool_classes_by_scheme = _WATCHED_POOL_CLASSES
        return manager


def _send(
    session: _FeedSession,
    url: str,
    headers: dict[str, str],
    auth: tuple[str, str] | None,
    deadline: _Deadline,
) -> requests.Response:
    """Send one GET without following redirects and return the response, body unread.

    Raise FetchError for network failures and timeouts.
    """
    remaining = deadline.remaining()
    if remaining <= 0:
        raise FetchError(deadline.message())
    connect_timeout = min(remaining, MAX_CONNECT_TIMEOUT_SECONDS)
    environment = session.environment
    try:
        if not auth and not session.auth:
            # What prepare_request does with trust_env (off here, see Fetcher._session).
            auth = environment.netrc_auth(url)
        prepared = _prepare_get(session, url, headers, auth)
        prepared_url = prepared.url or url
        # The environment handling Session.request does (proxies and NO_PROXY, the CA bundle
        # variables), from what the session read when it was made.
        proxies = {**session.proxies, **environment.proxies_for(prepared_url)}
        response = session.get_adapter(prepared_url).send(
            prepared,
            stream=True,
            timeout=(connect_timeout, remaining),
            verify=environment.ca_bundle or session.verify,
            cert=session.cert,
            proxies=proxies,
        )
    except (requests.exceptions.InvalidURL, urllib3.exceptions.LocationValueError):
        raise FetchError("invalid URL") from None
    except requests.RequestException as error:
        # `from None`: the original exception's text includes the URL, and a traceback
        # printed by the caller's logger would show it.
        raise FetchError(_network_error_message(error, deadline, connect_timeout)) from None
    headers_received = response.headers
    if "Set-Cookie" in headers_received or "Set-Cookie2" in headers_received:
        extract_cookies_to_jar(session.cookies, prepared, response.raw)
    return response


def _prepare_get(
    session: _FeedSession, url: str, headers: dict[str, str], auth: tuple[str, str] | None
) -> requests.PreparedRequest:
    """Return what session.prepare_request would for this GET, more cheaply.

    Session.prepare_request merges the session's and the request's settings the general
    way (cookies copied into a new jar, every setting turned into key-value lists): about
    a third of the client side of a 304. Here only what can differ is merged: the session's
    headers under this request's, its cookie jar (read, not copied) and its auth. Hooks are
    never set on our sessions and trust_env is off (_send applies the environment).
    """
    prepared = requests.PreparedRequest()
    # PreparedRequest.prepare's steps, but for cookies: an empty jar (the common case)
    # gives no Cookie header, and asking it costs a urlparse and a cookie policy pass.
    prepared.prepare_method("GET")
    prepared.prepare_url(url, None)
    prepared.prepare_headers({**session.headers, **headers})
    if session.cookies:
        prepared.prepare_cookies(session.cookies)
    else:
        prepared._cookies = session.cookies  # what prepare_cookies keeps for redirects
    prepared.prepare_body(None, None)
    prepared.prepare_auth(auth if auth is not None else session.auth, url)
    return prepared


def _read_body(response: requests.Response, deadline: _Deadline, max_bytes: int) -> bytes:
    """Return the decoded body, reading it in chunks so the deadline and cap always hold.

    Raise FetchError if the body is larger than `max_bytes` once decoded (a gzip bomb is
    stopped after `max_bytes`, not after inflating), or the deadline passes.
    """
    too_large = f"body larger than {max_bytes} bytes"
    declared = response.headers.get("Content-Length", "").strip()
    if _DIGITS.fullmatch(declared) and int(declared) > max_bytes:
        raise FetchError(too_large)

    raw = response.raw
    connection = getattr(raw, "connection", None)
    if connection is not None and getattr(connection, "sock", None) is not None:
        # Normally already watched since getresponse(); this covers connection classes we
        # do not control (SOCKS proxies).
        deadline.watch(connection.sock)

    body = bytearray()
    try:
        while True:
            if deadline.exceeded():
                raise FetchError(deadline.message())
            # read1, unlike iter_content(n), returns as soon as some bytes arrive, so a
            # server dripping one byte a second cannot hold us past the deadline; with
            # decode_content it returns at most READ_CHUNK_BYTES of *decoded* data.
            chunk = raw.read1(READ_CHUNK_BYTES, decode_content=True)
            if not chunk:
                break
            body += chunk
            if len(body) > max_bytes:
                raise FetchError(too_large)
        # A body delimited by the connection closing looks complete when the watchdog
        # shuts the socket down; it is a truncated body, not a feed.
        if deadline.fired():
            raise FetchError(deadline.message())
    except (urllib3.exceptions.HTTPError, OSError) as error:
        raise FetchError(_network_error_message(error, deadline, None)) from None
    except ValueError:
        # A read on a TLS socket the watchdog shut down can raise ValueError.
        if deadline.exceeded():
            raise FetchError(deadline.message()) from None
        raise
    return bytes(body)


def _release_connection(response: requests.Response) -> None:
    """Hand the connection of a bodiless answer (304) back to the pool.

    Closing an unread response closes its socket, so every 304 would cost a new TCP (and
    TLS) connection on the next poll. A 304 has no body: draining reads nothing.
    """
    try:
        response.raw.drain_conn()
        response.raw.release_conn()
    except (urllib3.exceptions.HTTPError, OSError):
        pass  # the connection is closed instead: correct, only slower


def _status_error(response: requests.Response) -> FetchError:
    """Given a non-2xx, non-304 response, return the FetchError that describes it."""
    status = response.status_code
    if status in _REDIRECT_STATUSES:
        return FetchError(f"HTTP {status} without a Location header", status=status)
    retry_after = None
    if status in _RETRY_AFTER_STATUSES:
        retry_after = _parse_retry_after(response.headers.get("Retry-After"))
    return FetchError(f"HTTP {status}", status=status, retry_after_seconds=retry_after)


def _parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Given a Retry-After header value, return the seconds to wait, or None if unusable.

    RFC 9110 10.2.3 allows delta-seconds or an HTTP-date; a date in the past means 0.
    """
    if value is None:
        return None
    value = value.strip()
    if _DIGITS.fullmatch(value):
        return float(int(value))
    when = _parse_http_date(value)
    if when is None:
        return None
    now = now or datetime.now(UTC)
    return max(0.0, (when - now).total_seconds())


def freshness_seconds(headers: Mapping[str, str], now: datetime | None = None) -> float | None:
    """Given response headers, return how long the response stays fresh, or None."""
    found = freshness(headers, now)
    return found[0] if found else None


def freshness(headers: Mapping[str, str], now: datetime | None = None) -> tuple[float, str] | None:
    """Given response headers, return how long the response stays fresh and which header
    says so (FRESHNESS_MAX_AGE or FRESHNESS_EXPIRES), or None.

    RFC 9111 4.2.1: Cache-Control max-age wins; otherwise Expires minus Date (the server's
    own clock, so a skewed local clock does not matter), or minus now without a Date. An
    unusable or past Expires gives None: it never makes us poll faster than configured.
    """
    max_age = _parse_max_age(headers.get("Cache-Control"))
    if max_age is not None:
        return max_age, FRESHNESS_MAX_AGE
    expires = _parse_http_date(headers.get("Expires"))
    if expires is None:
        return None
    reference = _parse_http_date(headers.get("Date")) or now or datetime.now(UTC)
    seconds = (expires - reference).total_seconds()
    return (seconds, FRESHNESS_EXPIRES) if seconds > 0 else None


def _freshness_fields(headers: Mapping[str, str]) -> dict[str, object]:
    found = freshness(headers)
    if found is None:
        return {}
    return {"max_age_seconds": found[0], "max_age_source": found[1]}


def _parse_http_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        when = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    # parsedate_to_datetime returns a naive datetime for "-0000"; HTTP dates are GMT.
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _parse_max_age(value: str | None) -> float | None:
    """Given a Cache-Control header value, return its max-age in seconds, or None.

    RFC 9111 5.2: directives are comma-separated and case-insensitive; the argument may be
    quoted. An unusable max-age is ignored rather than treated as 0, so a broken header
    can never make us poll faster.
    """
    if not value:
        return None
    for directive in value.split(","):
        name, _, argument = directive.strip().partition("=")
        if name.strip().lower() == "max-age":
            argument = argument.strip().strip('"')
            return float(int(argument)) if _DIGITS.fullmatch(argument) else None
    return None


def _resolve_redirect(current_url: str, location: str) -> str:
    """Given the URL that redirected and its Location, return the absolute next URL.

    Raise FetchError for anything but http(s): a feed server must not be able to make us
    read a local file.
    """
    next_url = urljoin(current_url, requote_uri(location))
    if urlsplit(next_url).scheme.lower() not in _HTTP_SCHEMES:
        raise FetchError("redirect to an unsupported URL scheme")
    return next_url


def _auth_for_redirect(
    session: requests.Session,
    current_url: str,
    next_url: str,
    auth: tuple[str, str] | None,
) -> tuple[str, str] | None:
    """Return the credentials to send to `next_url`, with requests' rules for stripping.

    Credentials from URL userinfo survive a same-host redirect (http to https included)
    and are dropped when the host changes, as requests does for its own redirects.
    """
    if session.should_strip_auth(current_url, next_url):
        return None
    if urlsplit(next_url).username is not None:
        return None  # the next URL brings its own userinfo
    if auth is not None:
        return auth
    username, password = get_auth_from_url(current_url)
    return (username, password) if username or password else None


def origin_of(url: str) -> tuple[str, str, int]:
    """Given an http(s) URL, return its origin (scheme, host, port) for the politeness limit.

    Raise FetchError if the URL is not http(s), or has no host or a bad port.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise FetchError("invalid URL") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise FetchError("not an http(s) URL")
    if not parts.hostname:
        raise FetchError("invalid URL: no host")
    return scheme, parts.hostname, port or _DEFAULT_PORTS[scheme]


def _network_error_message(
    error: BaseException, deadline: _Deadline, connect_timeout: float | None
) -> str:
    """Given a requests/urllib3/socket error, return a short message without the URL.

    The exceptions' own text is never used: urllib3 puts the host, path and query in it.
    """
    causes = list(_exception_chain(error))

    def caused_by(*types: type[BaseException]) -> bool:
        return any(isinstance(cause, types) for cause in causes)

    if deadline.exceeded():
        return deadline.message()
    if caused_by(requests.exceptions.ConnectTimeout) and connect_timeout is not None:
        return f"timed out connecting after {connect_timeout:g}s"
    if caused_by(ConnectionRefusedError):
        return "connection refused"
    if caused_by(urllib3.exceptions.NameResolutionError, socket.gaierror):
        return "host name could not be resolved"
    for cause in causes:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"TLS certificate not accepted: {cause.verify_message}"
    if caused_by(ssl.SSLError, requests.exceptions.SSLError):
        return "TLS handshake failed"
    if caused_by(requests.exceptions.ProxyError):
        return "proxy error"
    if caused_by(http.client.RemoteDisconnected):
        return "server closed the connection without a response"
    if caused_by(http.client.IncompleteRead, urllib3.exceptions.IncompleteRead):
        return "server closed the connection before the body was complete"
    if caused_by(ConnectionResetError):
        return "connection reset by the server"
    # urllib3's NewConnectionError subclasses its TimeoutError for backward compatibility,
    # so "no route to host" would otherwise be reported as a timeout.
    if any(
        isinstance(cause, requests.exceptions.Timeout | urllib3.exceptions.TimeoutError)
        and not isinstance(cause, urllib3.exceptions.NewConnectionError)
        for cause in causes
    ) or caused_by(TimeoutError):
        return deadline.message()
    if caused_by(urllib3.exceptions.DecodeError, requests.exceptions.ContentDecodingError):
        return "could not decode the compressed body"
    for cause in causes:
        if isinstance(cause, OSError) and cause.strerror:
            return f"network error: {cause.strerror.lower()}"
    if caused_by(urllib3.exceptions.ProtocolError, http.client.HTTPException):
        return "invalid or broken response from the server"
    return f"request failed ({type(error).__name__})"


def _exception_chain(error: BaseException) -> Iterator[BaseException]:
    """Yield `error` and everything it wraps (cause, context, urllib3 `reason`, args)."""
    pending: list[BaseException] = [error]
    seen: set[int] = set()
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        wrapped = [current.__cause__, current.__context__, getattr(current, "reason", None)]
        wrapped.extend(current.args)
        pending.extend(item for item in wrapped if isinstance(item, BaseException))


def _fetch_file(url: str, *, max_bytes: int, started: float) -> FetchResult:
    """Given a file:// URL, return the file's bytes as a FetchResult with status None.

    Local feeds have no validators, so there is no conditional GET; the size cap still
    applies. Raise FetchError if the file cannot be read or is too large.
    """
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise FetchError("file URL must not name a remote host")
    # Percent-decode to bytes, then to a filesystem path, so any file name round-trips.
    path = os.fsdecode(unquote_to_bytes(parts.path))
    try:
        with open(path, "rb") as handle:
            body = handle.read(max_bytes + 1)
    except FileNotFoundError:
        raise FetchError("file not found") from None
    except IsADirectoryError:
        raise FetchError("file URL names a directory") from None
    except PermissionError:
        raise FetchError("permission denied reading the file") from None
    except OSError as error:
        raise FetchError(f"could not read the file: {(error.strerror or '').lower()}") from None
    if len(body) > max_bytes:
        raise FetchError(f"body larger than {max_bytes} bytes")
    return FetchResult(
        url=url,
        status=None,
        body=body,
        content_type="",
        content_location="",
        etag=None,
        last_modified=None,
        permanent_redirect_to=None,
        elapsed_seconds=time.monotonic() - started,
    )
