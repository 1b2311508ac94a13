"""Feed discovery (`feeds discover URL`): the feeds a web page declares, or the URL itself
when it is a feed.

A page declares its feeds in its head as `<link rel="alternate" type="application/rss+xml"
href="..." title="...">` (Atom, RSS 1.0 and JSON Feed alike, each with its media type). The
page is fetched by the Fetcher, with a feed's deadline, size cap and User-Agent; relative
links are resolved against the page's address after redirects, or its `<base href>`.
JSON Feed 1.0 declared itself as application/json, a type WordPress also gives its REST API
on every page, so such a link is fetched and kept only if it is a JSON Feed.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

from monitor.config import DEFAULT_MAX_BYTES, DEFAULT_TIMEOUT_SECONDS
from monitor.ingest.fetch import Fetcher, FetchResult
from monitor.ingest.parse import parse_feed
from monitor.model import FetchError, MonitorError, ParseError

# Media type of a <link rel="alternate"> -> the kind of feed it declares.
FEED_LINK_TYPES = {
    "application/rss+xml": "RSS",
    "application/rdf+xml": "RSS",  # RSS 1.0
    "application/atom+xml": "Atom",
    "application/feed+json": "JSON Feed",
    "application/json": "JSON Feed",  # JSON Feed 1.0; checked before it is kept
}
_UNCHECKED_JSON = "application/json"
# At most this many application/json links are fetched to see whether they are JSON Feeds.
MAX_JSON_LINKS_CHECKED = 3
_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
# An HTML page, possibly after an XML declaration (XHTML), comments and a doctype.
_HTML_START = re.compile(
    rb"\s*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*(?:<!doctype\s+html|<html[\s>]|<head[\s>])",
    re.IGNORECASE | re.DOTALL,
)
# <meta charset="gbk"> or <meta http-equiv="Content-Type" content="text/html; charset=gbk">
_META_CHARSET = re.compile(rb"<meta[^>]+charset\s*=\s*[\"']?\s*([-\w.:]+)", re.I)
_CHARSET_PARAMETER = re.compile(r"charset\s*=\s*[\"']?([-\w.:]+)", re.I)


@dataclass(frozen=True)
class DiscoveredFeed:
    url: str  # absolute
    title: str  # the link's title (or the feed's own, for a URL that is a feed); may be ""
    kind: str  # "RSS", "Atom", "JSON Feed"; "feed" for a URL that is itself a feed


class NoFeedFound(MonitorError):
    """The page could be fetched but declares no feed, or the body is neither page nor feed."""


def discover_feeds(
    url: str,
    fetcher: Fetcher,
    *,
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> tuple[str, list[DiscoveredFeed]]:
    """Given a page or feed URL, return the page's title and the feeds it declares, in the
    page's order; for a feed URL, the feed's title and the URL itself.

    Raise FetchError if it cannot be fetched, NoFeedFound (saying why) if it declares no
    feed or is neither a web page nor a feed."""
    fetched = fetcher.fetch(url, timeout_seconds=timeout_seconds, max_bytes=max_bytes)
    body = fetched.body or b""
    if not _is_html(body, fetched.content_type):
        try:
            parsed = parse_feed(
                body,
                content_type=fetched.content_type,
                content_location=fetched.content_location,
                feed_url=fetched.url,
            )
        except ParseError as error:
            raise NoFeedFound(f"neither a web page nor a feed: {error}") from None
        return parsed.title, [DiscoveredFeed(url, parsed.title, "feed")]
    page = _read_page(body, fetched)
    feeds: list[DiscoveredFeed] = []
    json_links_checked = 0
    for link in page.links:
        if any(feed.url == link.url for feed in feeds):
            continue
        if link.media_type == _UNCHECKED_JSON:
            if json_links_checked >= MAX_JSON_LINKS_CHECKED:
                continue
            json_links_checked += 1
            if not _is_json_feed(link.url, fetcher, timeout_seconds, max_bytes):
                continue
        feeds.append(DiscoveredFeed(link.url, link.title, FEED_LINK_TYPES[link.media_type]))
    if not feeds:
        raise NoFeedFound(
            'the page declares no feed (no <link rel="alternate"> of an RSS, Atom or JSON '
            "Feed type)"
        )
    return page.title, feeds


def _is_json_feed(url: str, fetcher: Fetcher, timeout_seconds: float, max_bytes: int) -> bool:
    try:
        fetched = fetcher.fetch(url, timeout_seconds=timeout_seconds, max_bytes=max_bytes)
        parse_feed(fetched.body or b"", content_type=fetched.content_type, feed_url=fetched.url)
    except (FetchError, ParseError):
        return False
    return True


def _is_html(body: bytes, content_type: str) -> bool:
    media_type = content_type.partition(";")[0].strip().lower()
    return media_type in _HTML_TYPES or bool(
        _HTML_START.match(body[:4096].removeprefix(codecs.BOM_UTF8))
    )


@dataclass(frozen=True)
class _Link:
    url: str
    title: str
    media_type: str


@dataclass(frozen=True)
class _Page:
    title: str
    links: list[_Link]


def _read_page(body: bytes, fetched: FetchResult) -> _Page:
    reader = _LinkReader()
    reader.feed(body.decode(_charset(body, fetched.content_type), "replace"))
    reader.close()
    base = fetched.url
    if reader.base_href:
        base = urljoin(base, reader.base_href)
    page_scheme = urlsplit(fetched.url).scheme.lower()
    links = []
    for href, title, media_type in reader.links:
        absolute = urljoin(base, href.strip())
        # A feed is fetched like the page was: over the web, or a local file for a local page.
        if urlsplit(absolute).scheme.lower() in {"http", "https", page_scheme}:
            links.append(_Link(absolute, title, media_type))
    return _Page(" ".join(reader.title.split()), links)


def _charset(body: bytes, content_type: str) -> str:
    """The page's character encoding: its Content-Type's, else its <meta>'s, else UTF-8."""
    for match in (_CHARSET_PARAMETER.search(content_type), _META_CHARSET.search(body[:4096])):
        if match is None:
            continue
        name = match.group(1)
        name = name.decode("ascii", "replace") if isinstance(name, bytes) else name
        try:
            return codecs.lookup(name).name
        except LookupError:
            continue
    return "utf-8"


class _LinkReader(HTMLParser):
    """Collects <link rel="alternate"> of the feed types, <base href> and <title>."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[tuple[str, str, str]] = []  # href, title, media type
        self.base_href: str | None = None
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name.lower(): value or "" for name, value in attrs}
        if tag == "link":
            relations = attributes.get("rel", "").lower().split()
            media_type = attributes.get("type", "").partition(";")[0].strip().lower()
            href = attributes.get("href", "").strip()
            if "alternate" in relations and media_type in FEED_LINK_TYPES and href:
                title = " ".join(attributes.get("title", "").split())
                self.links.append((href, title, media_type))
        elif tag == "base" and self.base_href is None and attributes.get("href"):
            self.base_href = attributes["href"].strip()
        elif tag == "title" and not self.title:
            self._in_title = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
