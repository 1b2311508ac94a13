"""Cutting a changed feed's known items out of its body before the parse."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from feeds import Item, fixture, rss

from monitor.ingest.known_items import DIGEST_BYTES, known_digests, split_items
from monitor.ingest.parse import parse_feed

FEED_URL = "https://www.rfi.fr/cn/rss"
CONTEXT = f"application/rss+xml\n\n{FEED_URL}"
PUBLISHED = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def _items(numbers: range) -> list[Item]:
    return [
        Item(
            f"新闻标题 {number}",
            link=f"https://www.rfi.fr/cn/asia/2026-{number}",
            guid=f"rfi-{number}",
            description=f"<p>第{number}条新闻的正文。</p>",
            published=PUBLISHED - timedelta(minutes=number),
        )
        for number in numbers
    ]


TWO_ITEMS = rss(_items(range(1, 3)))


def _articles(body: bytes) -> tuple:
    return parse_feed(body, content_type="application/rss+xml", feed_url=FEED_URL).articles


def _known(body: bytes, context: str = CONTEXT) -> frozenset[bytes]:
    split = split_items(body, context=context)
    assert split is not None
    return known_digests(split.digest_blob())


def test_split_of_rfi_fixture_keeps_every_item_and_parses_the_same() -> None:
    body = fixture("rfi-cn-rss.xml")

    split = split_items(body, context=CONTEXT)

    assert split is not None and len(split.items) == len(split.digests) == 2
    uncut, kept = split.without(frozenset())
    assert kept == 2
    assert _articles(uncut) == _articles(body)


def test_changed_feed_keeps_only_new_items_and_parses_them_as_the_whole_body_does() -> None:
    before = rss(_items(range(1, 31)), title="RFI - 中文")
    # Three new items on top, the three oldest gone, and the channel's own text changed.
    after = rss(_items(range(-2, 28)), title="RFI - 中文（更新）")

    split = split_items(after, context=CONTEXT)
    assert split is not None
    cut, kept = split.without(_known(before))

    assert kept == 3
    assert len(cut) < len(after) / 5
    assert _articles(cut) == _articles(after)[:3]
    assert [article.guid for article in _articles(cut)] == ["rfi--2", "rfi--1", "rfi-0"]


def test_edited_item_is_not_known() -> None:
    items = _items(range(1, 4))
    before = rss(items)
    after = rss([replace(items[0], title="新闻标题 1（更正）"), *items[1:]])

    split = split_items(after, context=CONTEXT)
    assert split is not None
    cut, kept = split.without(_known(before))

    assert kept == 1
    assert [article.title for article in _articles(cut)] == ["新闻标题 1（更正）"]


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ('<rss version="2.0"', '<rss version="0.91"'),
        ("<channel>", '<channel xml:base="https://www.rfi.fr/tw/">'),
        ('encoding="UTF-8"', 'encoding="GB18030"'),
    ],
    ids=["rss-version", "xml-base", "encoding"],
)
def test_change_to_what_encloses_the_items_makes_every_item_new(old: str, new: str) -> None:
    before = rss(_items(range(1, 4)))
    after = before.replace(old.encode(), new.encode(), 1)
    assert after != before

    split = split_items(after, context=CONTEXT)

    assert split is not None and split.without(_known(before)) == (after, 3)


def test_other_headers_or_url_make_every_item_new() -> None:
    body = rss(_items(range(1, 4)))

    split = split_items(body, context=f"application/rss+xml\n\n{FEED_URL}?edition=tw")

    assert split is not None and split.without(_known(body))[1] == 3


def test_atom_entries_split_like_rss_items() -> None:
    def atom(numbers: range) -> bytes:
        entries = "".join(
            f"<entry><title>标题 {number}</title><id>urn:rfi:{number}</id>"
            f'<link href="https://www.rfi.fr/cn/{number}"/>'
            f"<updated>2026-01-05T12:{number:02d}:00Z</updated></entry>\n"
            for number in numbers
        )
        return (
            '<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">'
            f"<title>RFI</title><updated>2026-01-05T12:{numbers[0]:02d}:00Z</updated>"
            f"{entries}</feed>"
        ).encode()

    after = atom(range(10, 21))
    split = split_items(after, context=CONTEXT)
    assert split is not None
    cut, kept = split.without(_known(atom(range(11, 21))))

    assert kept == 1
    assert [article.guid for article in _articles(cut)] == ["urn:rfi:10"]


@pytest.mark.parametrize(
    "body",
    [
        rss([]),
        TWO_ITEMS.replace(b"</item><item>", b"</item>text<item>"),
        TWO_ITEMS.replace(b"<guid", b"<comments><![CDATA[</item>]]></comments><guid", 1),
        TWO_ITEMS.replace(b"<channel>", b"<channel><!-- <item>old</item> ", 1),
        TWO_ITEMS.replace(b"</channel>", b"<entry><title>x</title></entry></channel>"),
        TWO_ITEMS.replace(b"<rss", b'<!DOCTYPE rss [<!ENTITY a "b">]>\n<rss', 1),
    ],
    ids=["no-items", "text-between", "cdata-end", "open-comment", "item-and-entry", "entity"],
)
def test_body_that_does_not_split_plainly_gives_none(body: bytes) -> None:
    assert split_items(body, context=CONTEXT) is None


def test_known_digests_read_back_what_the_split_stored() -> None:
    split = split_items(rss(_items(range(1, 6))), context=CONTEXT)
    assert split is not None

    blob = split.digest_blob()

    assert len(blob) == 5 * DIGEST_BYTES
    assert known_digests(blob) == frozenset(split.digests)
    assert known_digests(None) == known_digests(b"") == frozenset()
