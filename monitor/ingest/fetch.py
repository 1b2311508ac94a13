"""Fetching feeds: turn a feed URL (http, https or file) into bytes plus the few response
facts the pipeline needs, or a `FetchError` with a short message that is safe to log.

This module holds the fetcher: per-thread sessions, the per-origin politeness limit, the
redirect loop and conditional GETs. Its parts live beside it: http_request (one GET, and
why redirects are followed here), http_response (body within the size cap), deadline (the
total time budget and its watchdog), freshness (next-poll hints), local_files (file://).
Nothing here parses feeds or decides when to poll; `Retry-After` is only reported, the
scheduler acts on it.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests

from monitor import __version__
from monitor.config import DEFAULT_MAX_BYTES, DEFAULT_TIMEOUT_SECONDS
from monitor.ingest.deadline import Deadline, enforced
from monitor.ingest.freshness import freshness_fields
from monitor.ingest.http_request import (
    HTTP_SCHEMES,
    PreparedRequests,
    auth_for_redirect,
    new_session,
    origin_of,
    resolve_redirect,
    send,
)
from monitor.ingest.http_response import (
    REDIRECT_STATUSES,
    read_body,
    release_connection,
    status_error,
)
from monitor.ingest.local_files import read_file_feed
from monitor.model import FetchError

DEFAULT_PER_ORIGIN_LIMIT = 2
MAX_REDIRECTS = 5

# Only these tell a client the resource moved for good (RFC 9110 15.4.2, 15.4.9).
_PERMANENT_REDIRECT_STATUSES = frozenset({301, 308})


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
        self._prepared = PreparedRequests()

    def fetch(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        max_bytes: int = DEFAULT_MAX_BYTES,
        accept: str | None = None,
    ) -> FetchResult:
        """Given a feed URL and the validators stored from its last 200, return the response.

        `timeout_seconds` bounds the whole call: waiting for a free slot on the origin,
        every redirect hop, connecting, the headers and the body. `max_bytes` caps the
        decoded body. `accept` replaces the Accept header of feeds (an article page asks for
        HTML). Raise FetchError, whose message never contains the URL (it may
        carry credentials), for every network failure, timeout, oversized body, redirect
        problem and non-2xx status other than 304.
        """
        started = time.monotonic()
        try:
            scheme = urlsplit(url).scheme.lower()
        except ValueError:
            raise FetchError("invalid URL") from None
        if scheme == "file":
            body = read_file_feed(url, max_bytes=max_bytes)
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
        if scheme not in HTTP_SCHEMES:
            raise FetchError("unsupported URL scheme (use http, https or file)")

        with enforced(Deadline(timeout_seconds)) as deadline:
            return self._fetch_http(
                url,
                etag=etag,
                last_modified=last_modified,
                deadline=deadline,
                max_bytes=max_bytes,
                started=started,
                accept=accept,
            )

    def close(self) -> None:
        """Close every thread's session and its pooled connections.

        The fetcher stays usable: a thread that fetches again gets a fresh session. That
        way a close() racing with a fetch in another thread cannot make the fetch crash.
        """
        with self._lock:
            sessions = list(self._sessions)
            self._sessions.clear()
            self._generation += 1
            self._prepared.clear()
        for session in sessions:
            session.close()

    def _session(self) -> requests.Session:
        """Return this thread's session, creating it on first use or after close()."""
        generation = self._generation
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is not None and getattr(self._local, "generation", None) == generation:
            return session
        session = new_session(self.user_agent)
        with self._lock:
            self._sessions.add(session)
        self._local.session = session
        self._local.generation = generation
        return session

    @contextmanager
    def _origin_slot(self, url: str, deadline: Deadline) -> Iterator[None]:
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
        deadline: Deadline,
        max_bytes: int,
        started: float,
        accept: str | None = None,
    ) -> FetchResult:
        """Given an http(s) URL, follow up to MAX_REDIRECTS redirects and return the result."""
        session = self._session()
        headers: dict[str, str] = {}
        if accept:
            headers["Accept"] = accept
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
                response = send(session, self._prepared, current_url, headers, auth, deadline)
                with response:
                    status = response.status_code
                    location = session.get_redirect_target(response)
                    if status in REDIRECT_STATUSES and location:
                        next_url = resolve_redirect(current_url, location)
                    elif status == 304:
                        max_age_seconds, max_age_source = freshness_fields(response.headers)
                        release_connection(response)
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
                            max_age_seconds=max_age_seconds,
                            max_age_source=max_age_source,
                        )
                    elif 200 <= status < 300:
                        body = read_body(response, deadline, max_bytes)
                        max_age_seconds, max_age_source = freshness_fields(response.headers)
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
                            max_age_seconds=max_age_seconds,
                            max_age_source=max_age_source,
                        )
                    else:
                        raise status_error(response)
            # Redirect: decide what carries over to the next hop. The response is closed
            # unread, so a 3xx body costs nothing.
            if status in _PERMANENT_REDIRECT_STATUSES and all_permanent_so_far:
                permanent_target = next_url
            else:
                all_permanent_so_far = False
            auth = auth_for_redirect(session, current_url, next_url, auth)
            current_url = next_url
        raise FetchError("too many redirects")
