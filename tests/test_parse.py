from __future__ import annotations

from datetime import UTC, datetime

import pytest
from feeds import Item, fixture, rss

from monitor.config.loader import load_config
from monitor.ingest.parse import canonical_link, clean_link, html_to_text, parse_feed
from monitor.model import ParseError
from monitor.service.daemon import Monitor


def test_parse_feed_with_rfi_fixture_returns_plain_text_articles() -> None:
    parsed = parse_feed(fixture("rfi-cn-rss.xml"), feed_url="https://www.rfi.fr/cn/rss")

    assert parsed.title == "RFI - 中文"
    assert parsed.ttl_seconds == 300
    first, second = parsed.articles
    assert first.title == "时隔9年韩日重启副外长级战略对话"
    assert first.guid == "https://www.rfi.fr/cn/20231005-korea-japan-strategic-dialogue"
    assert first.published == datetime(2023, 10, 5, 9, 15, tzinfo=UTC)
    assert first.categories == ("亚洲",)
    assert "<" not in first.summary and "韩日两国时隔9年重启副外长战略对话会议" in first.summary
    assert first.content == ""
    # The tracking parameters of the second item are not part of its identity, nor of the
    # link stored and shown.
    assert second.canonical_link == (
        "https://www.rfi.fr/cn/%E6%B3%95%E5%9B%BD/20231005-%E9%A9%AC%E5%85%8B%E9%BE%99"
    )
    assert second.link == second.canonical_link


def test_canonical_link_with_any_percent_encoding_gives_one_url() -> None:
    upper = "https://www.rfi.fr/cn/%E4%BA%9A%E6%B4%B2/rss"
    lower = "https://www.rfi.fr/cn/%e4%ba%9a%e6%b4%b2/rss"
    raw = "https://www.rfi.fr/cn/亚洲/rss"

    assert canonical_link(upper) == canonical_link(lower) == canonical_link(raw) == upper


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("HTTPS://WWW.RFI.FR:443/a#top", "https://www.rfi.fr/a#top"),
        ("https://e.org/live#post-2", "https://e.org/live#post-2"),
        ("https://e.org/a#xtor=RSS-1", "https://e.org/a"),
        ("https://e.org/a#at_medium=rss&at_campaign=x", "https://e.org/a"),
        ("https://e.org/a#utm_source=x&comment-3", "https://e.org/a#comment-3"),
        ("https://e.org/a#", "https://e.org/a"),
        (
            "http://example.org:8080/a?utm_source=x&id=1&xtor=RSS-1",
            "http://example.org:8080/a?id=1",
        ),
        ("https://e.org/a?AT_medium=x&fbclid=y", "https://e.org/a"),
        ("https://e.org/a%2Fb?q=%7e", "https://e.org/a%2Fb?q=~"),
        ("https://user:pw@e.org/a", "https://e.org/a"),
        ("not a url", None),
    ],
)
def test_canonical_link_with_variants_normalises(url: str, expected: str | None) -> None:
    assert canonical_link(url) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://e.org/a?utm_source=x&id=1&xtor=RSS-1", "https://e.org/a?id=1"),
        ("https://E.org/A?Id=1&fbclid=z#xtor=RSS-2", "https://E.org/A?Id=1"),
        ("https://e.org/a?utm_medium=feed#post-2", "https://e.org/a#post-2"),
        ("https://e.org/live#post-2", "https://e.org/live#post-2"),
        ("https://e.org/a?x=1&&y=2#top", "https://e.org/a?x=1&&y=2#top"),  # as written
        ("https://e.org/%e4%b8%ad?at_medium=rss", "https://e.org/%e4%b8%ad"),
    ],
)
def test_clean_link_drops_only_tracking_parameters_and_fragments(url: str, expected: str) -> None:
    assert clean_link(url) == expected


def test_html_to_text_with_markup_and_entities_returns_text() -> None:
    html = "<p><b>Bold</b> title &amp; co</p><script>alert(1)</script><p>第二段</p>"

    assert html_to_text(html) == "Bold title & co 第二段"


def test_parse_feed_with_atom_plain_text_fields_keeps_them_as_written() -> None:
    parsed = parse_feed(fixture("atom-plain-text.xml"))

    plain, html = parsed.articles
    assert parsed.title == "Markup & its <history>"
    assert plain.title == "History of the <blink> tag"
    # Entities are decoded once (by the XML parser), never twice.
    assert plain.summary == "Why <blink> went away. AT&amp;T wrote &lt;b&gt; for bold."
    assert plain.content == "<b>"
    # HTML fields (type="html", type="xhtml") still become text.
    assert html.title == "The marquee element"
    assert html.summary == "It scrolled & scrolled."
    assert html.content == "Write <marquee> never."


def test_parse_feed_with_rss_plain_text_title_keeps_it_and_html_becomes_text() -> None:
    plain, marked_up = parse_feed(fixture("rss-plain-text.xml")).articles

    assert plain.title == "History of the <blink> tag"
    assert plain.summary == "The <blink> tag made text flash."
    assert marked_up.title == "A bold claim & more"  # markup in a title is HTML


def test_parse_feed_with_content_encoded_and_no_guid_uses_link_and_fallback() -> None:
    body = rss(
        [
            Item(
                "有链接", link="https://e.org/1", description="<p>摘要</p>", content="<p>全文</p>"
            ),
            Item("无链接"),
        ]
    )

    with_link, without = parse_feed(body).articles

    assert with_link.guid is None and with_link.canonical_link == "https://e.org/1"
    assert with_link.content == "全文" and with_link.summary == "摘要"
    assert without.link is None and without.canonical_link is None
    assert without.fallback_key and without.fallback_key != with_link.fallback_key


def test_parse_feed_with_relative_link_resolves_against_feed_url() -> None:
    body = rss([Item("相对", link="/cn/a")])

    (article,) = parse_feed(body, feed_url="https://www.rfi.fr/cn/rss").articles

    assert article.link == "https://www.rfi.fr/cn/a"


def test_parse_feed_with_empty_feed_and_no_content_type_returns_no_articles() -> None:
    parsed = parse_feed(rss([]))

    assert parsed.articles == () and parsed.title == "Test feed"


HTML_PAGE = b"<!DOCTYPE html>\n<html><head><title>502</title></head><body>Bad Gateway</body></html>"


@pytest.mark.parametrize(
    ("body", "content_type", "feed_url", "expected"),
    [
        (HTML_PAGE, "text/html; charset=utf-8", "https://e.org/rss",
         "the server sent an HTML page, not a feed"),
        (b"\xef\xbb\xbf\n<html><body>x", "application/rss+xml", "https://e.org/rss",
         "the server sent an HTML page, not a feed"),
        (HTML_PAGE, "", "file:///srv/feed.xml", "an HTML page, not a feed"),
        (b'{"items": []}', "application/json", "https://e.org/feed.json",
         "not a feed (JSON that is not JSON Feed)"),
        (b"[1, 2]", "", "https://e.org/api", "not a feed (JSON that is not JSON Feed)"),
        (b"", "application/rss+xml", "https://e.org/rss", "not a feed (an empty document)"),
        (b" \r\n\t", "", "https://e.org/rss", "not a feed (an empty document)"),
        (b'<?xml version="1.0"?>\n<!-- Description: empty -->\n', "", "https://e.org/rss",
         "not a feed (an empty document)"),
        ("\ufeff<!DOCTYPE html><html>".encode("utf-16-le"), "", "https://e.org/rss",
         "the server sent an HTML page, not a feed"),
        (b'<?xml version="1.0"?>\n<!-- x -->\n<sitemap><url/></sitemap>', "text/xml",
         "https://e.org/rss",
         "not a feed (an XML document whose root element <sitemap> is not RSS or Atom)"),
        (b"\x1f\x8b\x08\x00 binary", "", "https://e.org/rss",
         "not a feed (neither RSS, Atom nor JSON)"),
    ],
)  # fmt: skip
def test_parse_feed_with_no_feed_says_what_the_body_is(
    body: bytes, content_type: str, feed_url: str, expected: str
) -> None:
    with pytest.raises(ParseError) as raised:
        parse_feed(body, content_type=content_type, feed_url=feed_url)

    assert str(raised.value) == expected  # never a parser's "<unknown>:2:0: syntax error"


def test_run_once_with_html_instead_of_a_feed_records_what_the_server_sent(
    server, write_config
) -> None:
    server.add_feed("/rss", HTML_PAGE, content_type="text/html; charset=utf-8")
    monitor = Monitor(load_config(write_config(feeds={"cn": server.url("/rss")})))
    try:
        (poll,) = monitor.run_once().polls
        state = monitor.store.feed_state("cn")
    finally:
        monitor.close()

    assert not poll.ok
    assert poll.error == state.error == "the server sent an HTML page, not a feed"


def test_parse_feed_with_a_local_path_as_body_never_opens_it(tmp_path) -> None:
    secret = tmp_path / "secret.xml"
    secret.write_bytes(rss([Item("secret item", link="https://e.org/s")]))

    with pytest.raises(ParseError):
        parse_feed(str(secret).encode())


def test_parse_feed_with_broken_markup_keeps_items() -> None:
    body = rss([Item("第一", link="https://e.org/1"), Item("第二", link="https://e.org/2")])
    broken = body.replace(b"</title>", b"</titel>", 1)

    parsed = parse_feed(broken)

    assert parsed.bozo_reason is not None
    assert len(parsed.articles) >= 1


def test_parse_feed_with_big5_body_and_charset_header_decodes() -> None:
    text = rss([Item("韓日對話", link="https://e.org/1")]).decode("utf-8")
    big5 = text.replace('encoding="UTF-8"', 'encoding="big5"').encode("big5")

    (article,) = parse_feed(big5, content_type="application/rss+xml; charset=big5").articles

    assert article.title == "韓日對話"


def test_parse_feed_with_entity_expansion_attack_does_not_expand() -> None:
    # Billion laughs with every declaration on one line: feedparser's own entity filter only
    # sees declarations that start a line, so this reaches expat and its amplification limit.
    entities = "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10))
    body = (
        '<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY lol0 "lol">' + entities + "]>"
        '<rss version="2.0"><channel><title>t</title><item><title>&lol9;</title>'
        "<link>https://e.org/x</link></item></channel></rss>"
    ).encode()

    try:
        parsed = parse_feed(body)
    except ParseError:
        return
    assert all(len(article.title) < 10_000 for article in parsed.articles)
