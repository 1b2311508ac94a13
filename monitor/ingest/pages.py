"""Article pages: fetch the pages new items link to and extract their main text, with the
feed fetcher's politeness (per-origin limit, deadline, size cap, User-Agent) and robots.txt.

The pages of one poll are fetched concurrently, but never more at once per origin than the
fetcher allows, and all within one budget of time: the feed's timeout bounds the whole, so
a poll with thirty new items takes at most its timeout longer, however slow the site.
Nothing here raises for one page: each page's outcome is its text or why there is none.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlsplit

from monitor.ingest.extract import PageRequest
from monitor.ingest.fetch import Fetcher
from monitor.ingest.http_request import HTTP_SCHEMES, origin_of
from monitor.ingest.parse_pool import ParsePool
from monitor.ingest.robots import RobotsRules
from monitor.model import FetchError, ParseError

logger = logging.getLogger(__name__)

# An article page is HTML; some servers answer */* with something else (an AMP JSON).
HTML_ACCEPT = "text/html, application/xhtml+xml;q=0.9, */*;q=0.1"
# Threads fetching one poll's pages. The per-origin limit decides how many requests one site
# sees at once; more threads only help a feed whose items link to several sites.
MAX_PAGE_THREADS = 8
MAX_ERROR_CHARACTERS = 200


@dataclass(frozen=True)
class PageText:
    """What became of one article page: its main text, or why there is none."""

    link: str
    text: str | None
    error: str | None = None


class ArticlePages:
    """Fetches article pages and extracts their text, for many threads at once.

    Shares the feeds' Fetcher, so an article page waits for the same per-origin slots as the
    feeds of its site; keeps each origin's robots.txt (monitor.ingest.robots).
    """

    def __init__(self, fetcher: Fetcher) -> None:
        self.fetcher = fetcher
        self.robots = RobotsRules(fetcher)

    def texts(
        self,
        links: Sequence[str],
        *,
        parser: ParsePool,
        timeout_seconds: float,
        max_bytes: int,
    ) -> dict[str, PageText]:
        """Given article links, return each one's PageText, by link. Pages are fetched at
        once up to the per-origin limit, each within `max_bytes`, and all of them within
        `timeout_seconds`; `parser` extracts their text (in its parser processes when it
        has some)."""
        unique = list(dict.fromkeys(links))
        if not unique:
            return {}
        deadline_at = time.monotonic() + timeout_seconds
        threads = min(len(unique), MAX_PAGE_THREADS)
        with ThreadPoolExecutor(threads, thread_name_prefix="article-page") as pool:
            futures = {
                link: pool.submit(
                    self._page_text, link, deadline_at, timeout_seconds, max_bytes, parser
                )
                for link in unique
            }
            return {link: future.result() for link, future in futures.items()}

    def _page_text(
        self,
        link: str,
        deadline_at: float,
        timeout_seconds: float,
        max_bytes: int,
        parser: ParsePool,
    ) -> PageText:
        try:
            return PageText(
                link, self._fetch_text(link, deadline_at, timeout_seconds, max_bytes, parser)
            )
        except (FetchError, ParseError) as error:
            return PageText(link, None, str(error)[:MAX_ERROR_CHARACTERS])
        # A bug here must cost the item its page, never the item: it is stored as its feed
        # gave it, and the traceback is logged.
        except Exception:
            logger.exception("fulltext status=crashed link=%s", link)
            return PageText(link, None, "internal error (see the log)")

    def _fetch_text(
        self,
        link: str,
        deadline_at: float,
        timeout_seconds: float,
        max_bytes: int,
        parser: ParsePool,
    ) -> str:
        if urlsplit(link).scheme.lower() not in HTTP_SCHEMES:
            # A feed must not make us read local files (file://) or other schemes.
            raise FetchError("not an http(s) link")
        origin_of(link)  # a link without a host fails here, before robots.txt is asked
        verdict = self.robots.verdict(link, timeout_seconds=_left(deadline_at, timeout_seconds))
        if not verdict.allowed:
            raise FetchError(verdict.reason)
        try:
            fetched = self.fetcher.fetch(
                link,
                timeout_seconds=_left(deadline_at, timeout_seconds),
                max_bytes=max_bytes,
                accept=HTML_ACCEPT,
            )
        except FetchError:
            # A page cut off by the poll's deadline says so in the feed's terms, not in
            # whatever was left of the budget when its fetch began.
            _left(deadline_at, timeout_seconds)
            raise
        # The deadline bounds fetching; extraction that would start after it is skipped, so
        # a poll's pages never cost much more than its timeout.
        _left(deadline_at, timeout_seconds)
        return parser.extract(PageRequest(fetched.body or b"", fetched.content_type, fetched.url))


def _left(deadline_at: float, timeout_seconds: float) -> float:
    """The seconds left until the deadline; raise FetchError once there are none."""
    remaining = deadline_at - time.monotonic()
    if remaining <= 0:
        raise FetchError(
            f"timed out: the pages of one poll share the feed's timeout ({timeout_seconds:g}s)"
        )
    return remaining
