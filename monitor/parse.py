"""Feed bytes -> Articles: feedparser on the bytes, identity keys, HTML -> plain text."""

from __future__ import annotations

import calendar
import hashlib
import io
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit, urlunsplit

import feedparser

from monitor.errors import ParseError
from monitor.items import Article

# Query parameters that identify a campaign or a click, never the article. Matched on the
# lower-cased parameter name, exactly or by prefix.
TRACKING_PARAMETERS = frozenset({"xtor", "fbclid", "gclid", "dclid", "msclkid", "mc_cid", "mc_eid"})
TRACKING_PREFIXES = ("utm_", "at_")

# RFC 3986 unreserved characters: percent-encoding them or not means the same URL.
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_PERCENT_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class ParsedFeed:
    title: str
    articles: tuple[Article, ...]
    ttl_seconds: float | None  # RSS <ttl>, converted from minutes
    bozo_reason: str | None  # why feedparser found the document malformed, if it did


def parse_feed(
    body: bytes,
    *,
    content_type: str = "",
    content_location: str = "",
    feed_url: str = "",
) -> ParsedFeed:
    """Given a feed body and its response headers, return its articles.

    Raise ParseError if the body is no feed at all (an HTML error page, a truncated
    download): feedparser then recognises no feed format and finds no items, which would
    otherwise look like a feed that emptied itself.
    """
    # BytesIO, never bytes or str: feedparser treats a str as a URL or path to open itself.
    # Sanitising and relative-URI resolution are feedparser's slowest passes and we turn
    # HTML into plain text ourselves, so both are off.
    headers = {"content-location": content_location or feed_url}
    if content_type:  # without one (file://), feedparser sniffs the document itself
        headers["content-type"] = content_type
    document = feedparser.parse(
        io.BytesIO(body),
        response_headers=headers,
        sanitize_html=False,
        resolve_relative_uris=False,
    )
    bozo_reason = None
    if document.get("bozo"):
        exception = document.get("bozo_exception")
        bozo_reason = f"{type(exception).__name__}: {exception}"[:300]
    if not document.entries and not document.get("version"):
        raise ParseError(f"not a feed ({bozo_reason or 'no feed format recognised'})")
    base_url = content_location or feed_url
    articles = tuple(_article_from_entry(entry, base_url) for entry in document.entries)
    return ParsedFeed(
        title=html_to_text(document.feed.get("title", "")),
        articles=articles,
        ttl_seconds=_ttl_seconds(document.feed.get("ttl")),
        bozo_reason=bozo_reason,
    )


def _article_from_entry(entry: feedparser.FeedParserDict, base_url: str) -> Article:
    title = html_to_text(entry.get("title", ""))
    summary = html_to_text(entry.get("summary", ""))
    content = ""
    if entry.get("content"):
        content = html_to_text(entry.content[0].get("value", ""))
    link = entry.get("link") or None
    if link and base_url:
        link = urljoin(base_url, link)
    published = _aware_utc(entry.get("published_parsed") or entry.get("updated_parsed"))
    categories = tuple(
        term for tag in entry.get("tags", ()) if (term := (tag.get("term") or "").strip())
    )
    guid = (entry.get("id") or "").strip() or None
    published_text = published.isoformat() if published else ""
    return Article(
        guid=guid,
        link=link,
        canonical_link=canonical_link(link) if link else None,
        title=title,
        summary=summary,
        content=content,
        author=html_to_text(entry.get("author", "")),
        categories=categories,
        published=published,
        fallback_key=_digest(title, published_text),
        content_hash=_digest(title, summary, content),
    )


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode("utf-8")).hexdigest()[:32]


def _aware_utc(parsed: object) -> datetime | None:
    # feedparser's *_parsed values are struct_time already converted to UTC.
    if parsed is None:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(parsed), UTC)  # type: ignore[arg-type]
    except (OverflowError, ValueError, TypeError):
        return None


def _ttl_seconds(value: object) -> float | None:
    try:
        minutes = float(str(value).strip())
    except ValueError:
        return None
    return minutes * 60 if minutes > 0 else None


def canonical_link(url: str) -> str | None:
    """Given an article URL, return the form that identifies the article across feeds.

    Scheme and host are lower-cased, the default port and the fragment dropped, tracking
    parameters (utm_*, xtor, at_*, fbclid, ...) removed, and percent-encoding made uniform,
    so `%E4`, `%e4` and the raw character give one URL. Return None for a non-URL.
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if not parts.scheme or not parts.netloc:
        return None
    scheme = parts.scheme.lower()
    # hostname drops any user:password@ part: credentials are not part of an article's identity.
    host = (parts.hostname or "").lower()
    if port is not None and port != _DEFAULT_PORTS.get(scheme):
        host = f"{host}:{port}"
    path = _normalise_encoding(parts.path) or "/"
    query = "&".join(
        _normalise_encoding(pair)
        for pair in parts.query.split("&")
        if pair and not _is_tracking_parameter(pair)
    )
    return urlunsplit((scheme, host, path, query, ""))


def _is_tracking_parameter(pair: str) -> bool:
    name = _PERCENT_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), pair.split("=", 1)[0]).lower()
    return name in TRACKING_PARAMETERS or name.startswith(TRACKING_PREFIXES)


def _normalise_encoding(component: str) -> str:
    """Decode escapes of unreserved characters, escape everything non-ASCII, upper-case hex.

    Escaped reserved characters (`%2F`, `%26`) stay escaped: decoding them would change
    what the URL means.
    """
    out: list[str] = []
    position = 0
    for match in _PERCENT_ESCAPE.finditer(component):
        out.append(_escape_non_ascii(component[position : match.start()]))
        character = chr(int(match.group(1), 16))
        out.append(character if character in _UNRESERVED else match.group(0).upper())
        position = match.end()
    out.append(_escape_non_ascii(component[position:]))
    return "".join(out)


def _escape_non_ascii(text: str) -> str:
    if text.isascii():
        return text
    return "".join(
        character
        if character.isascii()
        else "".join(f"%{byte:02X}" for byte in character.encode("utf-8"))
        for character in text
    )


class _TextExtractor(HTMLParser):
    # Block-level tags end a line of text, so words from two paragraphs never run together.
    BLOCK_TAGS = frozenset(
        {"p", "br", "div", "li", "ul", "ol", "tr", "td", "th", "blockquote", "section",
         "article", "header", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "figure",
         "figcaption", "table", "pre"}
    )  # fmt: skip
    SKIPPED_TAGS = frozenset({"script", "style", "noscript", "template", "head", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIPPED_TAGS:
            self.skip_depth += 1
        elif tag in self.BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIPPED_TAGS:
            self.skip_depth = max(0, self.skip_depth - 1)
        elif tag in self.BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skip_depth:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    """Given HTML (or plain text), return its text with whitespace collapsed to single spaces."""
    if not html:
        return ""
    if "<" not in html and "&" not in html:
        return " ".join(html.split())
    extractor = _TextExtractor()
    extractor.feed(html)
    extractor.close()
    return " ".join("".join(extractor.parts).split())
