"""robots.txt for article pages (RFC 9309), fetched with the feed fetcher and kept a while.

Feeds are published to be polled, so their own fetches do not ask robots.txt; an article
page is a page of the site, so full text does. What the RFC says, as done here:
- a robots.txt answered 2xx is parsed (protego: the most specific user-agent group, the
  longest matching rule wins); our product token is the User-Agent before its "/";
- 4xx (but 429) means there is none: every page may be fetched (2.3.1.3);
- 5xx, 429, a network failure or a timeout means it is unreachable: no page may be fetched
  (2.3.1.4), unless an earlier copy was read, which is used meanwhile;
- it is kept CACHE_SECONDS (the RFC allows up to a day), asked again with its validators
  (a 304 keeps it), and an unreachable answer is asked again after RETRY_SECONDS.
One fetch at a time per origin: the pages of a poll wait for their origin's robots.txt
rather than each asking for it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from monitor.ingest.fetch import Fetcher
from monitor.ingest.http_request import origin_of
from monitor.model import FetchError

if TYPE_CHECKING:
    from protego import Protego

CACHE_SECONDS = 24 * 3600.0
RETRY_SECONDS = 600.0
# Origins kept beyond this many have their expired entries dropped: a feed of links to
# many sites (an aggregator) must not grow the daemon's memory for months.
MAX_ORIGINS = 1000
# The RFC asks parsers to read at least 500 KiB.
MAX_ROBOTS_BYTES = 512 * 1024
ACCEPT = "text/plain, */*;q=0.5"

Origin = tuple[str, str, int]


@dataclass(frozen=True)
class RobotsVerdict:
    allowed: bool
    reason: str = ""  # why not, for status


@dataclass
class _Entry:
    """What is known of one origin's robots.txt."""

    expires_at: float  # time.monotonic()
    rules: Protego | None = None  # None: no robots.txt, everything allowed
    unreachable: str | None = None  # why it could not be read, when no copy is usable
    etag: str | None = None
    last_modified: str | None = None


class RobotsRules:
    """Each origin's robots.txt, as read with `fetcher` (its User-Agent and politeness)."""

    def __init__(self, fetcher: Fetcher, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.fetcher = fetcher
        self.product_token = fetcher.user_agent.split("/")[0].strip()
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[Origin, _Entry] = {}
        self._origin_locks: dict[Origin, threading.Lock] = {}

    def verdict(self, url: str, *, timeout_seconds: float) -> RobotsVerdict:
        """Given an http(s) page URL, say whether its site's robots.txt lets us fetch it,
        reading that robots.txt first if it is not known or too old (within
        `timeout_seconds`). Raise FetchError if the URL is not http(s)."""
        origin = origin_of(url)
        entry = self._current(origin)
        if entry is None:
            entry = self._refresh(origin, url, timeout_seconds)
        if entry.unreachable is not None:
            return RobotsVerdict(False, entry.unreachable)
        rules = entry.rules
        if rules is None or rules.can_fetch(url, self.product_token):
            return RobotsVerdict(True)
        return RobotsVerdict(False, "robots.txt disallows it")

    def known_origins(self) -> int:
        """How many origins' robots.txt are kept now (for tests)."""
        with self._lock:
            return len(self._entries)

    def _now(self) -> float:
        return self._clock()

    def _current(self, origin: Origin) -> _Entry | None:
        with self._lock:
            entry = self._entries.get(origin)
        return entry if entry is not None and entry.expires_at > self._now() else None

    def _refresh(self, origin: Origin, url: str, timeout_seconds: float) -> _Entry:
        started = self._now()
        with self._lock:
            origin_lock = self._origin_locks.setdefault(origin, threading.Lock())
        if not origin_lock.acquire(timeout=max(0.0, timeout_seconds)):
            return _Entry(started, unreachable="timed out waiting for robots.txt")
        try:
            entry = self._current(origin)  # read by another thread meanwhile
            if entry is None:
                remaining = timeout_seconds - (self._now() - started)
                entry = self._read(origin, url, remaining)
                with self._lock:
                    self._entries[origin] = entry
                    if len(self._entries) > MAX_ORIGINS:
                        self._forget_expired()
            return entry
        finally:
            origin_lock.release()

    def _forget_expired(self) -> None:
        # Called with self._lock held. A thread still holding a forgotten origin's lock
        # finishes as before; at worst that origin's robots.txt is read twice at once.
        now = self._now()
        for origin in [o for o, entry in self._entries.items() if entry.expires_at <= now]:
            del self._entries[origin]
            self._origin_locks.pop(origin, None)

    def _read(self, origin: Origin, url: str, timeout_seconds: float) -> _Entry:
        with self._lock:
            previous = self._entries.get(origin)
        parts = urlsplit(url)
        robots_url = urlunsplit((parts.scheme, parts.netloc, "/robots.txt", "", ""))
        now = self._now()
        if timeout_seconds <= 0:
            return self._unreachable(previous, now, "no time left to read robots.txt")
        try:
            fetched = self.fetcher.fetch(
                robots_url,
                etag=previous.etag if previous else None,
                last_modified=previous.last_modified if previous else None,
                timeout_seconds=timeout_seconds,
                max_bytes=MAX_ROBOTS_BYTES,
                accept=ACCEPT,
            )
        except FetchError as error:
            status = error.status
            if status is not None and 400 <= status < 500 and status != 429:
                return _Entry(now + CACHE_SECONDS)  # no robots.txt: everything allowed
            return self._unreachable(previous, now, f"robots.txt unreachable ({error})")
        if fetched.not_modified and previous is not None and previous.unreachable is None:
            return replace(previous, expires_at=now + CACHE_SECONDS)
        # Imported here: protego costs 14 ms, which a configuration without full text
        # never needs to pay.
        from protego import Protego

        text = (fetched.body or b"").decode("utf-8", errors="replace")
        return _Entry(
            now + CACHE_SECONDS,
            rules=Protego.parse(text),
            etag=fetched.etag,
            last_modified=fetched.last_modified,
        )

    @staticmethod
    def _unreachable(previous: _Entry | None, now: float, reason: str) -> _Entry:
        if previous is not None and previous.unreachable is None:
            # An earlier copy stands in while the server cannot answer (RFC 9309 2.4).
            return replace(previous, expires_at=now + RETRY_SECONDS)
        return _Entry(now + RETRY_SECONDS, unreachable=reason)
