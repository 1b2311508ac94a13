"""JSON Feed 1.0 and 1.1 (jsonfeed.org): a body -> the feed's title and its items' fields.

feedparser reads RSS and Atom only (a JSON Feed gives it a SAX error), so JSON Feed has this
small reader beside it; monitor.ingest.parse makes Articles of its items exactly as of
feedparser's entries (identity, plain text, links), so a JSON Feed item is read like an RSS
item in every way that matters to a rule or an alert.

The body is untrusted and already within the feed's max_bytes. json.loads stops nesting
deeper than the interpreter's recursion limit with a RecursionError and an integer of more
than 4,300 digits with a ValueError: both, like broken JSON, become a ParseError saying so.
A field of the wrong type counts as absent, an item that is no object is skipped: the rest
of the feed is read. As in RSS, an item without an `id` is kept and known by its link (the
spec asks readers to drop it; a watcher would rather not miss it).
"""

from __future__ import annotations

import codecs
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from monitor.model import ParseError

# The media types a JSON Feed is served as: its own since 1.1, plain JSON before.
JSON_FEED_MEDIA_TYPES = frozenset({"application/feed+json", "application/json"})
# `version` is the URL of the spec: .../version/1 or .../version/1.1 (later ones read alike).
_VERSION_PREFIXES = ("https://jsonfeed.org/version/", "http://jsonfeed.org/version/")
_LEADING_WHITESPACE = b" \t\r\n"


@dataclass(frozen=True)
class JsonFeedItem:
    """One item's fields as the feed gives them; only content_html holds HTML."""

    guid: str | None
    url: str | None
    title: str
    summary: str
    content_html: str
    content_text: str
    author: str
    tags: tuple[str, ...]
    published: datetime | None  # aware UTC


@dataclass(frozen=True)
class JsonFeedDocument:
    title: str
    items: tuple[JsonFeedItem, ...]
    skipped_items: int  # entries of `items` that were no object


def is_json_body(body: bytes, content_type: str) -> bool:
    """Given a body and its Content-Type, return whether it is JSON to read as JSON Feed:
    its first character says so ({ or [), or, when that character tells nothing, its
    media type."""
    if body.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        start = body[:64].decode("utf-16", "replace").encode("utf-8")
    else:
        start = body[:64].removeprefix(codecs.BOM_UTF8)
    first = start.lstrip(_LEADING_WHITESPACE)[:1]
    if first in (b"{", b"["):
        return True
    if first == b"<" or not first:
        # XML served as JSON by a misconfigured server is feedparser's, and an empty body
        # is no more JSON than it is XML: parse_feed says what it is.
        return False
    media_type = content_type.partition(";")[0].strip().lower()
    return media_type in JSON_FEED_MEDIA_TYPES or media_type.endswith("+json")


def read_json_feed(body: bytes) -> JsonFeedDocument:
    """Given a JSON Feed body, return its title and items. Raise ParseError, with a
    message for people, if it is not JSON, or JSON that is not JSON Feed."""
    try:
        document = json.loads(body)
    except RecursionError:
        raise ParseError("not a feed (JSON nested too deeply to read)") from None
    except json.JSONDecodeError as error:
        raise ParseError(
            f"not a feed (broken JSON at line {error.lineno}, column {error.colno}: {error.msg})"
        ) from None
    except UnicodeDecodeError:
        raise ParseError("not a feed (JSON that is not UTF-8, UTF-16 or UTF-32 text)") from None
    except ValueError:  # an integer past int's digit limit
        raise ParseError("not a feed (JSON with a number too long to read)") from None
    if not isinstance(document, dict) or not _text(document, "version").lower().startswith(
        _VERSION_PREFIXES
    ):
        raise ParseError("not a feed (JSON that is not JSON Feed)")
    feed_authors = _authors(document)
    entries = document.get("items")
    entries = entries if isinstance(entries, list) else []
    items = tuple(_item(entry, feed_authors) for entry in entries if isinstance(entry, dict))
    return JsonFeedDocument(_text(document, "title"), items, len(entries) - len(items))


def _item(entry: dict[str, Any], feed_authors: str) -> JsonFeedItem:
    # "If an id is presented as a number, a JSON Feed reader should coerce it to a string."
    raw_id = entry.get("id")
    guid = raw_id if isinstance(raw_id, str) else None
    if isinstance(raw_id, int | float) and not isinstance(raw_id, bool):
        guid = str(raw_id)
    # external_url is the page a linkblog item is about: the link when there is no url.
    url = _text(entry, "url").strip() or _text(entry, "external_url").strip() or None
    return JsonFeedItem(
        guid=(guid or "").strip() or None,
        url=url,
        title=_text(entry, "title"),
        summary=_text(entry, "summary"),
        content_html=_text(entry, "content_html"),
        content_text=_text(entry, "content_text"),
        # An item without authors has the feed's (1.1); `author` is 1.0's single one.
        author=_authors(entry) or feed_authors,
        tags=tuple(
            tag.strip() for tag in _list(entry, "tags") if isinstance(tag, str) and tag.strip()
        ),
        published=_date(_text(entry, "date_published")) or _date(_text(entry, "date_modified")),
    )


def _text(mapping: dict[str, Any], key: str) -> str:
    value = mapping.get(key)
    return value if isinstance(value, str) else ""


def _list(mapping: dict[str, Any], key: str) -> list[Any]:
    value = mapping.get(key)
    return value if isinstance(value, list) else []


def _authors(mapping: dict[str, Any]) -> str:
    """The names of `authors` (1.1), else of `author` (1.0), joined by ", "."""
    authors = [author for author in _list(mapping, "authors") if isinstance(author, dict)]
    if not authors and isinstance(mapping.get("author"), dict):
        authors = [mapping["author"]]
    names = (" ".join(_text(author, "name").split()) for author in authors)
    return ", ".join(name for name in names if name)


def _date(text: str) -> datetime | None:
    """An RFC 3339 date as aware UTC; None if there is none or it cannot be read (the
    article then counts as published when first seen, as an RSS item without a date)."""
    if not text.strip():
        return None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if moment.tzinfo is None:  # RFC 3339 requires an offset; without one, read it as UTC
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # year 1 with a positive offset: before datetime's range in UTC
        return None
