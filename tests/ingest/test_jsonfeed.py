"""JSON Feed 1.0 and 1.1 read like RSS: the spec's examples, the same Articles as the same
item in RSS, the media types it is served as, and hostile JSON that must not crash."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from feeds import Item, fixture, rss

from monitor.ingest.parse import parse_feed
from monitor.model import ParseError
from monitor.service.configuration import load_config
from monitor.service.daemon import Monitor

JSON_FEED = "application/feed+json"


def json_feed(items: list[Any], **top: Any) -> bytes:
    document = {"version": "https://jsonfeed.org/version/1.1", "title": "Test", **top}
    document["items"] = items
    return json.dumps(document, ensure_ascii=False).encode("utf-8")


@pytest.mark.parametrize("version", ["1.0", "1.1"])
def test_the_specs_simple_example_gives_both_items(version: str) -> None:
    parsed = parse_feed(
        fixture(f"jsonfeed-{version}-simple.json"),
        content_type=JSON_FEED,
        feed_url="https://example.org/feed.json",
    )

    assert parsed.title == "My Example Feed" and parsed.bozo_reason is None
    second, first = parsed.articles
    assert (second.guid, second.link, second.title) == ("2", "https://example.org/second-item", "")
    assert second.content == "This is a second item." and second.summary == ""
    assert first.guid == "1" and first.content == "Hello, world!"  # content_html as text
    assert first.canonical_link == "https://example.org/initial-post"
    assert first.published is None


@pytest.mark.parametrize("version", ["1.0", "1.1"])
def test_the_specs_podcast_example_reads_title_summary_html_content_and_date(
    version: str,
) -> None:
    (episode,) = parse_feed(fixture(f"jsonfeed-{version}-podcast.json")).articles

    assert episode.title == "Special #1 - Chris Parrish"
    assert episode.summary.startswith("Brent interviews Chris Parrish, co-host of The Record")
    # content_html wins over content_text, its markup made text.
    assert "worked at Adobe and as a founder" in episode.content
    assert "<a" not in episode.content and "Aged & Distilled" in episode.content
    assert episode.published == datetime(2014, 5, 9, 21, 4, tzinfo=UTC)
    assert episode.guid == episode.link == "http://therecord.co/chris-parrish"


@pytest.mark.parametrize("version", ["1.0", "1.1"])
def test_the_specs_microblog_example_takes_the_feeds_author(version: str) -> None:
    parsed = parse_feed(fixture(f"jsonfeed-{version}-microblog.json"))

    (post,) = parsed.articles
    assert parsed.title == "Brent Simmons’s Microblog"
    assert post.author == "Brent Simmons"  # authors (1.1) or author (1.0), of the feed
    assert post.title == "" and post.content == "Cats are neat. https://example.org/cats"
    assert post.published == datetime(2016, 2, 9, 21, 22, tzinfo=UTC)


def test_a_json_feed_item_is_the_same_article_as_the_same_item_in_rss() -> None:
    published = datetime(2023, 10, 5, 9, 15, tzinfo=UTC)
    link = "https://www.rfi.fr/cn/20231005-韩日?utm_source=rss&id=7#xtor=RSS-1"
    from_rss = parse_feed(
        rss(
            [
                Item(
                    "时隔9年韩日重启副外长级战略对话",
                    link=link,
                    guid="rfi-2023-1005",
                    description="韩日两国时隔9年重启",
                    published=published,
                    content="<p>韩日两国<b>副外长</b>在首尔会面。</p>",
                )
            ]
        )
    )
    from_json = parse_feed(
        json_feed(
            [
                {
                    "id": "rfi-2023-1005",
                    "url": link,
                    "title": "时隔9年韩日重启副外长级战略对话",
                    "summary": "韩日两国时隔9年重启",
                    "content_html": "<p>韩日两国<b>副外长</b>在首尔会面。</p>",
                    "date_published": "2023-10-05T17:15:00+08:00",
                }
            ]
        ),
        content_type=JSON_FEED,
    )

    assert from_json.articles == from_rss.articles
    (article,) = from_json.articles
    assert article.link == "https://www.rfi.fr/cn/20231005-韩日?id=7"
    assert article.canonical_link == ("https://www.rfi.fr/cn/20231005-%E9%9F%A9%E6%97%A5?id=7")


def test_items_without_an_id_are_kept_and_known_by_their_link_as_in_rss() -> None:
    (article,) = parse_feed(
        json_feed([{"url": "/a?utm_medium=feed", "title": "标题", "id": "  "}]),
        feed_url="https://e.org/feed.json",
    ).articles

    assert article.guid is None
    assert article.link == article.canonical_link == "https://e.org/a"


def test_numbers_as_ids_become_text_and_external_url_is_the_link_without_url() -> None:
    first, second = parse_feed(
        json_feed(
            [
                {"id": 42, "external_url": "https://other.org/story"},
                {"id": 1.5, "url": "https://e.org/1", "external_url": "https://other.org/x"},
            ]
        )
    ).articles

    assert (first.guid, first.link) == ("42", "https://other.org/story")
    assert (second.guid, second.link) == ("1.5", "https://e.org/1")


@pytest.mark.parametrize(
    "content_type",
    [JSON_FEED, "application/json; charset=utf-8", "text/plain", ""],
)
def test_a_json_feed_is_read_whatever_it_is_served_as(content_type: str) -> None:
    body = b"\xef\xbb\xbf\n  " + json_feed([{"id": "1", "title": "韩日"}])

    (article,) = parse_feed(body, content_type=content_type).articles

    assert article.title == "韩日"


def test_plain_text_fields_are_kept_as_written_and_only_content_html_is_html() -> None:
    (article,) = parse_feed(
        json_feed(
            [
                {
                    "id": "1",
                    "title": "History of the <blink> tag &amp; co",
                    "summary": "a <b>b</b>",
                    "content_text": "x < y",
                    "tags": ["韩日", " 外交 ", 7, ""],
                }
            ]
        )
    ).articles

    assert article.title == "History of the <blink> tag &amp; co"
    assert article.summary == "a <b>b</b>" and article.content == "x < y"
    assert article.categories == ("韩日", "外交")


# ---------------------------------------------------------------------------- hostile JSON


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"[" * 200_000 + b"]" * 200_000, "not a feed (JSON nested too deeply to read)"),
        (
            b'{"version": "https://jsonfeed.org/version/1.1",\n "items": [}',
            "not a feed (broken JSON at line 2, column 12: Expecting value)",
        ),
        (b'{"items": []}', "not a feed (JSON that is not JSON Feed)"),
        (b'"https://jsonfeed.org/version/1.1"', "not a feed (JSON that is not JSON Feed)"),
        (b'[{"version": "https://jsonfeed.org/version/1"}]',
         "not a feed (JSON that is not JSON Feed)"),
        (b'{"version": 1.1, "items": []}', "not a feed (JSON that is not JSON Feed)"),
        (b'{"version": "https://jsonfeed.org/version/1", "n": ' + b"9" * 5000 + b"}",
         "not a feed (JSON with a number too long to read)"),
        (b'{"version": "https://jsonfeed.org/version/1", "title": "\xff"}',
         "not a feed (JSON that is not UTF-8, UTF-16 or UTF-32 text)"),
        (b"", "not a feed (an empty document)"),
    ],
)  # fmt: skip
def test_json_that_is_no_json_feed_gets_a_clear_error(body: bytes, expected: str) -> None:
    with pytest.raises(ParseError) as raised:
        parse_feed(body, content_type=JSON_FEED, feed_url="https://e.org/feed.json")

    assert str(raised.value) == expected


def test_fields_of_the_wrong_type_count_as_absent_and_the_rest_is_read() -> None:
    body = json_feed(
        [
            "an item that is text",
            None,
            [1, 2],
            {
                "id": {"not": "text"},
                "url": 7,
                "title": ["list"],
                "summary": None,
                "content_html": 3.5,
                "content_text": "正文",
                "authors": "nobody",
                "author": ["x"],
                "tags": "韩日",
                "date_published": 20231005,
                "date_modified": "yesterday",
            },
            {"id": True, "title": "第二条", "date_published": "0001-01-01T00:00:00+01:00"},
        ],
        title={"wrong": "type"},
        authors=[7, {"name": 3}],
    )

    parsed = parse_feed(body, content_type=JSON_FEED)

    first, second = parsed.articles
    assert parsed.title == "" and parsed.bozo_reason == "3 item(s) that are no JSON object skipped"
    assert (first.guid, first.link, first.title, first.summary) == (None, None, "", "")
    assert first.content == "正文" and first.author == "" and first.categories == ()
    assert first.published is None and first.fallback_key  # known by title and time
    assert (second.guid, second.title, second.published) == (None, "第二条", None)


def test_items_that_is_no_list_gives_a_feed_without_items() -> None:
    parsed = parse_feed(
        b'{"version": "https://jsonfeed.org/version/1.1", "title": "t", "items": {"a": 1}}'
    )

    assert parsed.articles == () and parsed.title == "t"


def test_huge_strings_are_read_within_the_feeds_size_cap() -> None:
    title = "韩日" * 500_000  # 3 MB of UTF-8, under the default 5 MB cap
    (article,) = parse_feed(json_feed([{"id": "1", "title": title}])).articles

    assert article.title == title


def test_run_once_reads_a_json_feed_and_alerts_on_a_new_item(server, hook, write_config) -> None:
    server.add_feed(
        "/feed.json",
        json_feed([{"id": "1", "title": "法国新闻", "url": "https://e.org/1"}]),
        content_type=JSON_FEED,
    )
    config = load_config(
        write_config(
            feeds={"json": server.url("/feed.json")},
            channels={"hook": hook.json_url("/alerts")},
            rules=[{"name": "korea-japan", "any": ["韩日"], "notify": ["hook"]}],
        )
    )
    monitor = Monitor(config)
    try:
        (baseline,) = monitor.run_once().polls
        server.add_feed(
            "/feed.json",
            json_feed(
                [
                    {"id": "2", "content_html": "<p>韩日重启对话</p>", "url": "https://e.org/2"},
                    {"id": "1", "title": "法国新闻", "url": "https://e.org/1"},
                ]
            ),
            content_type=JSON_FEED,
        )
        (poll,) = monitor.run_once().polls
    finally:
        monitor.close()

    assert baseline.ok and baseline.baseline and baseline.items == 1
    assert poll.ok and poll.new_articles == 1 and poll.deliveries == 1
    (alert,) = hook.requests
    assert "韩日重启对话" in alert.json["message"]


def test_run_once_records_broken_json_as_the_feeds_error(server, write_config) -> None:
    server.add_feed("/feed.json", b'{"version": ', content_type=JSON_FEED)
    monitor = Monitor(load_config(write_config(feeds={"json": server.url("/feed.json")})))
    try:
        (poll,) = monitor.run_once().polls
        state = monitor.store.feed_state("json")
    finally:
        monitor.close()

    assert not poll.ok
    assert state.error == "not a feed (broken JSON at line 1, column 13: Expecting value)"
