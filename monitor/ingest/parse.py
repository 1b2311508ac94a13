"""Feed bytes -> Articles: feedparser on the bytes (JSON Feed: monitor.ingest.jsonfeed),
identity keys, HTML -> plain text."""

from __future__ import annotations

import calendar
import codecs
import hashlib
import io
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from html import unescape
from html.parser import HTMLParser
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit, urlunsplit

from monitor.ingest.jsonfeed import JsonFeedItem, is_json_body, read_json_feed
from monitor.model import Article, ParseError

if TYPE_CHECKING:
    from feedparser import FeedParserDict

# Query parameters that identify a campaign or a click, never the article. Matched on the
# lower-cased parameter name, exactly or by prefix.
TRACKING_PARAMETERS = frozenset({"xtor", "fbclid", "gclid", "dclid", "msclkid", "mc_cid", "mc_eid"})
TRACKING_PREFIXES = ("utm_", "at_")

# RFC 3986 unreserved characters: percent-encoding them or not means the same URL.
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_PERCENT_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
# An escape that _normalise_encoding changes: lower-case hex, or an unreserved character
# (-, ., 0-9, A-Z, _, a-z, ~ are 2D, 2E, 30-39, 41-5A, 5F, 61-7A, 7E).
_ESCAPE_TO_NORMALISE = re.compile(
    r"%(?:[a-f][0-9A-Fa-f]|[0-9A-F][a-f]|2[DE]|3[0-9]|4[1-9A-F]|5[0-9AF]|6[1-9A-F]|7[0-9AE])"
)
_DEFAULT_PORTS = {"http": 80, "https": 443}
# An absolute http(s) URL that urljoin(base, url) returns unchanged whatever the base: ASCII,
# lower-case scheme, plain host, no ";" in the path (urljoin re-assembles path parameters),
# no empty "?" or "#" (it drops them), no whitespace or control characters (it strips them).
_PLAIN_ABSOLUTE_URL = re.compile(
    r"https?://[A-Za-z0-9.-]+(?::[0-9]+)?(?:/[!-\"$-:<->@-~]*)?(?:\?[!-\"$-~]+)?(?:#[!-~]+)?"
)


# feedparser's type for a field without markup (see _field_text).
PLAIN_TEXT = "text/plain"

# How much of a body that is no feed is looked at to say what it is instead.
_SNIFF_BYTES = 4096
# A byte order mark and whitespace before the first character that tells.
_LEADING_JUNK = b"\xef\xbb\xbf \t\r\n"
# What a document may hold that is no content: an XML declaration, comments.
_NO_CONTENT = re.compile(rb"<\?xml[^>]*>|<!--.*?-->", re.DOTALL)
_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
# An HTML page, possibly after an XML declaration, comments and a doctype.
_HTML_START = re.compile(
    rb"(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*(?:<!doctype\s+html|<html[\s>]|<head[\s>]|<body[\s>])",
    re.IGNORECASE | re.DOTALL,
)
# The first element of an XML document (after its declaration, comments and doctype).
_XML_ROOT = re.compile(rb"<([A-Za-z_][-A-Za-z0-9_.:]*)")


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
    if is_json_body(body, content_type):
        return _parse_json_feed(body, content_location or feed_url)
    # BytesIO, never bytes or str: feedparser treats a str as a URL or path to open itself.
    # Sanitising and relative-URI resolution are feedparser's slowest passes and we turn
    # HTML into plain text ourselves, so both are off.
    # Imported here: a cycle of 304s parses nothing, and feedparser takes 10 ms to import.
    import feedparser

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
        raise ParseError(_what_is_not_a_feed(body, content_type, feed_url))
    base_url = content_location or feed_url
    articles = tuple(_article_from_entry(entry, base_url) for entry in document.entries)
    feed = document.feed
    return ParsedFeed(
        title=_field_text(feed.get("title", ""), feed.get("title_detail")),
        articles=articles,
        ttl_seconds=_ttl_seconds(feed.get("ttl")),
        bozo_reason=bozo_reason,
    )


def _article_from_entry(entry: FeedParserDict, base_url: str) -> Article:
    # dict.get, not entry.get: FeedParserDict.get goes through key aliasing and exception
    # handling on every call. None of the keys read here is an alias (its keymap has no
    # title, summary, content, link, published_parsed, tags, id, author or value), so the
    # plain lookup returns the same values. updated_parsed is the one key with a fallback
    # (to published_parsed), and it is read only when published_parsed is absent or empty,
    # where that fallback gives the same empty value.
    get = dict.get
    raw_title = get(entry, "title", "")
    title = _field_text(raw_title, get(entry, "title_detail"))
    summary = _field_text(get(entry, "summary", ""), get(entry, "summary_detail"))
    content = ""
    if contents := get(entry, "content"):
        content = _field_text(get(contents[0], "value", ""), contents[0])
    link = get(entry, "link") or None
    if link and base_url and not _PLAIN_ABSOLUTE_URL.fullmatch(link):
        link = urljoin(base_url, link)
    if link:
        link = clean_link(link)
    published = _aware_utc(get(entry, "published_parsed") or get(entry, "updated_parsed"))
    categories = tuple(
        term for tag in get(entry, "tags", ()) if (term := (get(tag, "term") or "").strip())
    )
    guid = (get(entry, "id") or "").strip() or None
    published_text = published.isoformat() if published else ""
    legacy_fallback_key = ""
    if ("<" in raw_title or "&" in raw_title) and (
        read_as_html := html_to_text(raw_title)
    ) != title:
        legacy_fallback_key = _digest(read_as_html, published_text)
    return Article(
        guid=guid,
        link=link,
        canonical_link=canonical_link(link) if link else None,
        title=title,
        summary=summary,
        content=content,
        author=html_to_text(get(entry, "author", "")),
        categories=categories,
        published=published,
        fallback_key=_digest(title, published_text),
        content_hash=_digest(title, summary, content),
        legacy_fallback_key=legacy_fallback_key,
    )


def _parse_json_feed(body: bytes, base_url: str) -> ParsedFeed:
    document = read_json_feed(body)
    skipped = document.skipped_items
    return ParsedFeed(
        title=" ".join(document.title.split()),
        articles=tuple(_article_from_json_item(item, base_url) for item in document.items),
        ttl_seconds=None,  # JSON Feed has no <ttl>; Cache-Control still applies
        bozo_reason=f"{skipped} item(s) that are no JSON object skipped" if skipped else None,
    )


def _article_from_json_item(item: JsonFeedItem, base_url: str) -> Article:
    """A JSON Feed item as an Article, field for field as _article_from_entry makes one of an
    RSS item: title and summary are plain text in JSON Feed (kept as written), content is
    content_html made text, else content_text."""
    title = " ".join(item.title.split())
    summary = " ".join(item.summary.split())
    if item.content_html.strip():
        content = html_to_text(item.content_html)
    else:
        content = " ".join(item.content_text.split())
    link = item.url
    if link and base_url and not _PLAIN_ABSOLUTE_URL.fullmatch(link):
        link = urljoin(base_url, link)
    if link:
        link = clean_link(link)
    published_text = item.published.isoformat() if item.published else ""
    return Article(
        guid=item.guid,
        link=link,
        canonical_link=canonical_link(link) if link else None,
        title=title,
        summary=summary,
        content=content,
        author=" ".join(item.author.split()),
        categories=item.tags,
        published=item.published,
        fallback_key=_digest(title, published_text),
        content_hash=_digest(title, summary, content),
    )


def _field_text(value: str, detail: dict[str, object] | None) -> str:
    """The text of a feed field: HTML made text, plain text kept as written.

    feedparser says which a field is (`type` of its detail): "text/plain" for Atom
    type="text" and for RSS elements that hold no markup. Its value then has had its
    character references decoded once already, so `History of the <blink> tag` is what the
    feed says, not a tag, and `&amp;amp;` stays `&amp;`. Whitespace is collapsed either way.
    """
    if detail is not None and dict.get(detail, "type") == PLAIN_TEXT:
        return " ".join(value.split())
    return html_to_text(value)


def _what_is_not_a_feed(body: bytes, content_type: str, feed_url: str) -> str:
    """The ParseError message for a body in no feed format: what it looks like, in words.

    Never the parser's own exception: "SAXParseException: <unknown>:2:0: syntax error" says
    nothing to a person about an HTML error page or a JSON API answered instead of a feed.
    """
    start = body[:_SNIFF_BYTES]
    if start.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        start = start.decode("utf-16", "replace").encode("utf-8")
    start = start.lstrip(_LEADING_JUNK)
    media_type = content_type.partition(";")[0].strip().lower()
    if not _NO_CONTENT.sub(b"", start).strip():
        return "not a feed (an empty document)"
    if media_type in _HTML_TYPES or _HTML_START.match(start):
        if feed_url.startswith(("http://", "https://")):
            return "the server sent an HTML page, not a feed"
        return "an HTML page, not a feed"
    if start[:1] in (b"{", b"[") or media_type.endswith(("/json", "+json")):
        return "not a feed (JSON that is not JSON Feed)"
    if root := _XML_ROOT.search(start):
        name = root.group(1).decode("ascii", "replace")
        return f"not a feed (an XML document whose root element <{name}> is not RSS or Atom)"
    return "not a feed (neither RSS, Atom nor JSON)"


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode("utf-8")).hexdigest()[:32]


def _aware_utc(parsed: object) -> datetime | None:
    # feedparser's *_parsed values are struct_time already converted to UTC.
    if parsed is None:
        return None
    try:
        # The same instant as the timegm() route below whenever every field is in range,
        # at a fraction of its cost (timegm is pure Python).
        return datetime(*parsed[:6], tzinfo=UTC)  # type: ignore[index, misc]
    except (ValueError, TypeError, IndexError):
        pass  # a leap second or another out-of-range field: timegm() normalises it
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

    Scheme and host are lower-cased, the default port dropped, tracking parameters (utm_*,
    xtor, at_*, fbclid, ...) and tracking fragments (#xtor=..., #at_..., #utm_...) removed,
    and percent-encoding made uniform, so `%E4`, `%e4` and the raw character give one URL.
    Any other fragment is kept: live blogs and comment feeds link each post as `page#post-2`,
    and those are different articles. Return None for a non-URL.
    """
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    scheme, netloc, path, query, fragment = parts
    if ":" in netloc or "@" in netloc or "[" in netloc:
        try:
            port = parts.port
        except ValueError:
            return None
        # hostname drops any user:password@ part: credentials are not part of an article's
        # identity.
        host = (parts.hostname or "").lower()
        if port is not None and port != _DEFAULT_PORTS.get(scheme.lower()):
            host = f"{host}:{port}"
    else:  # no credentials, port or IPv6 literal: the host is the whole netloc
        host = netloc.lower()
    if not scheme or not netloc:
        return None
    scheme = scheme.lower()
    path = _normalise_encoding(path) or "/"
    if query:
        query = "&".join(
            _normalise_encoding(pair)
            for pair in query.split("&")
            if pair and not _is_tracking_parameter(pair)
        )
    if fragment:
        fragment = _normalise_encoding(_without_tracking_fragment(fragment))
    if not host:  # "https://:443/": leave the odd case to urlunsplit
        return urlunsplit((scheme, host, path, query, fragment))
    # What urlunsplit gives for a non-empty host and a path that starts with "/".
    url = f"{scheme}://{host}{path}?{query}" if query else f"{scheme}://{host}{path}"
    return f"{url}#{fragment}" if fragment else url


def link_without_fragment(canonical: str) -> str:
    """Given a canonical link, return it as identity knew it before fragments counted.

    canonical_link's path and query never hold a raw "#" (urlsplit cuts the fragment at the
    first one, and an escaped %23 stays escaped), so this is the same URL up to its fragment.
    """
    return canonical.partition("#")[0]


def clean_link(url: str) -> str:
    """Given an article URL as a feed gives it, return it without tracking parameters and
    tracking fragments (those canonical_link ignores), everything else as written.

    This is the link people see (alerts, `rules test`): the same page, minus the campaign.
    """
    if "?" not in url and "#" not in url:
        return url  # the common case: nothing to remove
    base, has_fragment, fragment = url.partition("#")
    address, has_query, query = base.partition("?")
    if has_query:
        pairs = query.split("&")
        kept = [pair for pair in pairs if not _is_tracking_parameter(pair)]
        if len(kept) < len(pairs):
            query = "&".join(pair for pair in kept if pair)
        address = f"{address}?{query}" if query else address
    if has_fragment:
        fragment = _without_tracking_fragment(fragment)
        address = f"{address}#{fragment}" if fragment else address
    return address


def _without_tracking_fragment(fragment: str) -> str:
    """A fragment without its tracking parameters (`xtor=RSS-1`, `at_medium=...`).

    Only `name=value` pairs can be tracking: an anchor (`post-2`, `at_top`) never is.
    """
    if "=" not in fragment:
        return fragment
    pairs = fragment.split("&")
    kept = [pair for pair in pairs if not ("=" in pair and _is_tracking_parameter(pair))]
    return fragment if len(kept) == len(pairs) else "&".join(pair for pair in kept if pair)


def _is_tracking_parameter(pair: str) -> bool:
    name = pair.partition("=")[0]
    if "%" in name:
        name = _PERCENT_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), name)
    name = name.lower()
    return name in TRACKING_PARAMETERS or name.startswith(TRACKING_PREFIXES)


def _normalise_encoding(component: str) -> str:
    """Decode escapes of unreserved characters, escape everything non-ASCII, upper-case hex.

    Escaped reserved characters (`%2F`, `%26`) stay escaped: decoding them would change
    what the URL means.
    """
    if component.isascii() and not _ESCAPE_TO_NORMALISE.search(component):
        return component  # the common case: already in canonical form
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


# Block-level tags end a line of text, so words from two paragraphs never run together.
BLOCK_TAGS = frozenset(
    {"p", "br", "div", "li", "ul", "ol", "tr", "td", "th", "blockquote", "section",
     "article", "header", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "figure",
     "figcaption", "table", "pre"}
)  # fmt: skip
# Elements whose text is never shown. Tags inside them still count (a <p> inside <title>
# still separates words), as they always did with the HTMLParser-based extractor.
SKIPPED_TAGS = frozenset({"script", "style", "noscript", "template", "head", "title"})

# html_to_text() tokenises with one regex, several times faster than html.parser, and gives
# exactly the text the HTMLParser-based extractor (`_TextExtractor`, with Python 3.11's
# html.parser) gave: stored content_hash and fallback_key values are digests of that text.
# The regex only accepts markup whose reading by html.parser is unambiguous: whole tags with
# well-formed attributes, comments, declarations, and "<" as text. Anything else (a broken
# or unterminated tag, an unterminated comment, "<![CDATA[", a Unicode space inside a tag)
# sends the whole string through `_TextExtractor`: odd markup costs time, never different
# text. tests/test_parse_equivalence.py checks both against a frozen copy of the old code.
_WS = r"[ \t\n\r\f]"  # html.parser's \s also takes Unicode spaces: those go to the fallback
_TAG_NAME = r"[a-zA-Z][-a-zA-Z0-9:_.]*"
_ATTRIBUTE = rf"""{_WS}+[^\s"'<>/=]+(?:{_WS}*={_WS}*(?:"[^"]*"|'[^']*'|[^\s"'<>=`]+))?"""
_TOKEN = re.compile(
    # One leading "<" for all: the regex engine then skips text at the speed of a find().
    r"<(?:"
    rf"({_TAG_NAME})(?:{_ATTRIBUTE})*+{_WS}*+(/)?>"  # 1: start tag; 2: the "/" of <br/>
    rf"|/({_TAG_NAME}){_WS}*+>"  # 3: end tag
    r"|!--.*?--\s*>"  # comment, ended as html.parser ends it
    r"|!(?!--|\[)[^>]*>"  # <!DOCTYPE ...> and other declarations
    r"|\?[^>]*>"  # processing instruction (<?xml:namespace ...> in Word HTML)
    # 4: any other "<" that html.parser would not take as text: a broken or unusual tag.
    r"|([a-zA-Z/!?])"
    r")",
    re.DOTALL,
)
_START, _EMPTY_START, _END, _OTHER = 1, 2, 3, 4
_MARKED_SECTION = re.compile(r"<!\[[^>]*>?")
# html.parser reads script and style as raw text up to their end tag.
_RAW_TEXT_END = {
    "script": re.compile(r"</\s*script\s*>", re.IGNORECASE),
    "style": re.compile(r"</\s*style\s*>", re.IGNORECASE),
}


def html_to_text(html: str) -> str:
    """Given HTML (or plain text), return its text with whitespace collapsed to single spaces.

    Script, style, noscript, template, head and title elements are dropped with their
    content; block-level tags separate words; other tags and comments vanish; character
    references are decoded. A `<` that starts no tag ("a < b") is text.
    """
    if not html:
        return ""
    if "<" not in html:
        return " ".join((unescape(html) if "&" in html else html).split())
    text = _fast_html_to_text(html)
    if text is None:
        text = _slow_html_to_text(html)
    return " ".join(text.split())


def _fast_html_to_text(html: str) -> str | None:
    """The text of `html`, whitespace not yet collapsed; None if its markup is unusual."""
    parts: list[str] = []
    append = parts.append
    skip_depth = 0
    position = 0  # end of the last token handled
    # search() from `position`, not finditer(): after a script element's raw text the
    # tokens must be found afresh (a "<!--" in a script may hide a tag after it).
    search = _TOKEN.search
    while match := search(html, position):
        start = match.start()
        # Text between tokens (it may hold a literal "<"): references never span a tag.
        if start > position and not skip_depth:
            chunk = html[position:start]
            append(unescape(chunk) if "&" in chunk else chunk)
        position = match.end()
        kind = match.lastindex
        if kind is None:  # comment, declaration, processing instruction
            continue
        if kind == _OTHER:
            return None
        tag = match[kind].lower() if kind == _END else match[_START].lower()
        if tag in BLOCK_TAGS:
            append("\n")
        elif tag not in SKIPPED_TAGS or kind == _EMPTY_START:  # <title/> opens and closes
            continue
        elif kind == _END:
            if skip_depth:
                skip_depth -= 1
        else:
            skip_depth += 1
            if raw_text_end := _RAW_TEXT_END.get(tag):
                closing = raw_text_end.search(html, position)
                if closing is None:  # html.parser drops the rest of the document
                    return "".join(parts)
                skip_depth -= 1
                position = closing.end()
    if position < len(html) and not skip_depth:
        chunk = html[position:]
        append(unescape(chunk) if "&" in chunk else chunk)
    return "".join(parts)


def _slow_html_to_text(html: str) -> str:
    extractor = _TextExtractor()
    try:
        extractor.feed(html)
        extractor.close()
    except AssertionError:
        # html.parser raises on a marked section it does not know ("<![foo]>", "<![ x"),
        # which used to fail the whole feed. Read those as HTML5 does, as bogus comments.
        extractor = _TextExtractor()
        extractor.feed(_MARKED_SECTION.sub("", html))
        extractor.close()
    return "".join(extractor.parts)


class _TextExtractor(HTMLParser):
    """The reference extractor, for markup that _fast_html_to_text does not accept."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in SKIPPED_TAGS:
            self.skip_depth += 1
        elif tag in BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in SKIPPED_TAGS:
            self.skip_depth = max(0, self.skip_depth - 1)
        elif tag in BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skip_depth:
            self.parts.append(data)
