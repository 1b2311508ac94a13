"""Build small RSS documents for tests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

DATA = Path(__file__).parent / "data"


@dataclass(frozen=True)
class Item:
    title: str
    link: str | None = None
    guid: str | None = None
    description: str = ""
    published: datetime | None = None
    content: str | None = None


def rss(items: list[Item], *, title: str = "Test feed", ttl_minutes: int | None = None) -> bytes:
    """Given items, return an RSS 2.0 document as UTF-8 bytes."""
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">',
        f"<channel><title>{escape(title)}</title><link>https://example.org/</link>",
        "<description>test</description>",
    ]
    if ttl_minutes is not None:
        parts.append(f"<ttl>{ttl_minutes}</ttl>")
    for item in items:
        parts.append("<item>")
        parts.append(f"<title>{escape(item.title)}</title>")
        if item.link is not None:
            parts.append(f"<link>{escape(item.link)}</link>")
        if item.guid is not None:
            parts.append(f'<guid isPermaLink="false">{escape(item.guid)}</guid>')
        published = item.published or datetime.now(UTC)
        parts.append(f"<pubDate>{format_datetime(published, usegmt=True)}</pubDate>")
        parts.append(f"<description>{escape(item.description)}</description>")
        if item.content is not None:
            parts.append(f"<content:encoded>{escape(item.content)}</content:encoded>")
        parts.append("</item>")
    parts.append("</channel></rss>")
    return "".join(parts).encode("utf-8")


def fixture(name: str) -> bytes:
    return (DATA / "feeds" / name).read_bytes()
