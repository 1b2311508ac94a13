"""monitor.delivery.markup and render: escaping per dialect, grapheme-safe cutting, fitting
to a length limit.

What each service finally receives is tested at the HTTP boundary in test_notify.py; these
tests pin the pieces: that escaped text shows exactly the original in each dialect, and
that cuts never break a character.
"""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from html.parser import HTMLParser
from zoneinfo import ZoneInfo

import pytest
import regex
from apprise.conversion import markdown_to_html

from monitor.delivery.markup import (
    Dialect,
    cut_graphemes,
    escape_for,
    escape_markdown,
    escape_slack,
    link_markup,
    repair_edges,
    safe_url,
    utf16_len,
)
from monitor.delivery.render import ArticleView, Target, fit_alert, fit_digest

FAMILY = "👨\u200d👩\u200d👧"  # one grapheme cluster, five code points, eight UTF-16 units
FLAG = "🇨🇳"
E_ACUTE = "e\u0301"  # e + combining acute: one cluster
HOSTILE = "[r] 5 * 3 = 15 <b>x</b> & rfi_cn _it_ *b* `c` ~s~ [z](http://evil) &amp; <!here>"
SHANGHAI = ZoneInfo("Asia/Shanghai")
LINK = "https://www.rfi.fr/cn/中国/20231005-韩日关系?xtor=RSS&a=1"


def view(**changes: object) -> ArticleView:
    fields: dict[str, object] = {
        "title": "韩日关系：首脑会谈重启",
        "link": LINK,
        "feed": "rfi-cn",
        "published": datetime(2023, 10, 5, 9, 15, tzinfo=UTC),
        "excerpt": "两国外长表示，韩日首脑会谈将于下月重启",
        "matched_terms": ("韩日", "首脑"),
        "timezone": SHANGHAI,
    }
    fields.update(changes)
    return ArticleView.create(**fields)  # type: ignore[arg-type]


class _HtmlText(HTMLParser):
    """Visible text and the tags of an HTML fragment."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self.tags: list[str] = []
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.hrefs += [value or "" for name, value in attrs if name == "href"]

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse_html(fragment: str) -> _HtmlText:
    parser = _HtmlText()
    parser.feed(fragment)
    parser.close()
    return parser


def clusters(text: str) -> list[str]:
    return regex.findall(r"\X", text)


# --------------------------------------------------------------------------- escaping


def test_escape_markdown_hostile_text_renders_as_the_same_text() -> None:
    hostile = HOSTILE.replace("&amp;", "&")  # an entity is one character; see below
    html_out = markdown_to_html(escape_markdown(hostile))

    parsed = parse_html(html_out)
    assert "".join(parsed.text) == hostile
    assert parsed.tags == ["p"]  # no <b>, <em>, <code>, <a>, <del> from the article


def test_escape_markdown_underscore_inside_word_is_left_alone() -> None:
    assert escape_markdown("rfi_cn snake_case_name") == "rfi_cn snake_case_name"
    assert escape_markdown("_x_ a_") == r"\_x\_ a\_"


def test_escape_markdown_entities_become_characters_never_markup() -> None:
    escaped = escape_markdown("AT&T &lt;b&gt;x &#42;y&#42;")

    assert escaped == "AT&T &lt;b&gt;x &#42;y&#42;"
    parsed = parse_html(markdown_to_html(escaped))
    assert parsed.tags == ["p"]
    assert "".join(parsed.text) == "AT&T <b>x *y*"


def test_escape_markdown_mid_line_does_not_escape_block_markers() -> None:
    assert escape_markdown("- x", line_start=False) == "- x"
    assert escape_markdown("- x") == r"\- x"


def test_escape_markdown_control_characters_and_newlines_removed() -> None:
    assert escape_markdown("a\x1b[31mb\nc\x00") == r"a\[31mb c"


def test_escape_slack_formatting_characters_outside_words_become_lookalikes() -> None:
    escaped = escape_slack("*b* _i_ ~s~ `c` rfi_cn 10~20 5 * 3")

    assert escaped == "∗b∗ ˍiˍ ∼s∼ ˋcˋ rfi_cn 10~20 5 * 3"


def test_escape_slack_angle_brackets_and_brackets_are_escaped_for_the_converter() -> None:
    assert escape_slack("<!here> [x](y) & z") == r"\<!here\> \[x\](y) & z"


def test_escape_slack_backslash_before_punctuation_cannot_escape() -> None:
    assert escape_slack(r"C:\Users a\<b end\\") == "C:\\Users a⧵\\<b end⧵⧵"


def test_escape_slack_quote_or_heading_at_line_start_is_neutralised() -> None:
    assert escape_slack("> quoted") == "\u00ad\\> quoted"
    assert escape_slack("# title") == r"\# title"
    assert escape_slack("# title", line_start=False) == "# title"


@pytest.mark.parametrize("dialect", [Dialect.HTML, Dialect.TELEGRAM])
def test_escape_for_html_dialects_shows_the_same_text(dialect: Dialect) -> None:
    escaped = escape_for(dialect, HOSTILE)

    parsed = parse_html(escaped)
    assert parsed.tags == []
    assert "".join(parsed.text) == HOSTILE


def test_escape_for_text_dialect_keeps_text_and_drops_control_characters() -> None:
    assert escape_for(Dialect.TEXT, "a\tb\x07 *c*") == "a b *c*"


# --------------------------------------------------------------------------- links


def test_safe_url_non_http_link_is_refused() -> None:
    assert safe_url("javascript:alert(1)") is None
    assert safe_url("/cn/relative") is None
    assert safe_url("") is None
    assert safe_url('https://a.example/x y<z>"|`') == "https://a.example/x%20y%3Cz%3E%22%7C%60"


def test_link_markup_javascript_link_is_text_in_every_dialect() -> None:
    for dialect in Dialect:
        markup = link_markup(dialect, "javascript:alert(1)", "click")
        assert "javascript" not in markup
        assert "click" in markup


def test_link_markup_html_link_escapes_text_and_href() -> None:
    markup = link_markup(Dialect.HTML, "https://a.example/?a=1&b=2", "<b>t</b>")

    assert markup == '<a href="https://a.example/?a=1&amp;b=2">&lt;b&gt;t&lt;/b&gt;</a>'


# --------------------------------------------------------------------------- cutting


def test_cut_graphemes_family_emoji_at_cut_is_kept_whole_or_dropped() -> None:
    text = "ab" + FAMILY + "cd"

    assert cut_graphemes(text, 3) == "ab…"
    assert cut_graphemes(text, 4) == "ab" + FAMILY + "…"
    assert cut_graphemes(text, 5) == text


def test_cut_graphemes_cjk_flags_and_combining_marks_never_split() -> None:
    text = ("韩日" + FLAG + E_ACUTE) * 10

    for limit in range(1, 45):
        cut = cut_graphemes(text, limit)
        assert len(clusters(cut)) <= limit
        assert set(clusters(cut)) <= {"韩", "日", FLAG, E_ACUTE, "…"}


def test_cut_graphemes_limit_below_one_returns_empty() -> None:
    assert cut_graphemes("abc", 0) == ""


def test_repair_edges_text_cut_inside_clusters_loses_the_broken_pieces() -> None:
    # What a cut by code points leaves: a ZWJ sequence's tail at the start, its head with
    # the joiner at the end, a combining mark without its letter.
    assert repair_edges("\u200d👧韩日👨\u200d") == "👧韩日👨"
    assert repair_edges("…\u0301abc…") == "…abc…"
    assert repair_edges("韩日" + FAMILY) == "韩日" + FAMILY


def test_utf16_len_counts_astral_characters_twice() -> None:
    assert utf16_len("韩a") == 2
    assert utf16_len(FAMILY) == 8


# --------------------------------------------------------------------------- fitting


def test_fit_alert_within_limit_keeps_link_and_cuts_excerpt_on_clusters() -> None:
    article = view(excerpt=("韩日" + FAMILY) * 300)
    target = Target(Dialect.TELEGRAM, title_in_body=True, body_limit=600)

    rendition = fit_alert(target, "[kj] title", article)

    assert utf16_len(rendition.body) <= 600
    parsed = parse_html(rendition.body)
    assert parsed.hrefs == [html.unescape(html.escape(safe_url(LINK) or ""))]
    lines = "".join(parsed.text).splitlines()
    excerpt = next(line for line in lines if line.startswith("韩日" + FAMILY))
    assert excerpt.endswith("…")
    assert set(clusters(excerpt)) <= {"韩", "日", FAMILY, "…"}


def test_fit_alert_tiny_limit_drops_facts_before_link() -> None:
    target = Target(Dialect.TEXT, title_in_body=True, body_limit=140)

    rendition = fit_alert(target, "[kj] 韩日关系：首脑会谈重启", view())

    assert utf16_len(rendition.body) <= 140
    assert rendition.body.endswith(safe_url(LINK) or "")
    assert "Matched" not in rendition.body


def test_fit_alert_no_limit_shows_everything() -> None:
    rendition = fit_alert(Target(Dialect.TEXT), "[kj] t", view())

    assert rendition.title == "[kj] t"
    assert rendition.body.split("\n") == [
        "Feed: rfi-cn",
        "Published: 2023-10-05 17:15 CST (UTC+08:00)",
        "Matched: 韩日, 首脑",
        "",
        "两国外长表示，韩日首脑会谈将于下月重启",
        "",
        safe_url(LINK),
    ]


def test_fit_alert_of_several_rules_lists_each_rules_terms_and_drops_them_first() -> None:
    article = view(matched_by=(("korea-japan", ("韩日",)), ("forced-labour", ("强征劳工",))))

    full = fit_alert(Target(Dialect.TEXT), "[korea-japan, forced-labour] t", article)
    tiny = fit_alert(Target(Dialect.TEXT, body_limit=90), "[korea-japan, forced-labour] t", article)

    assert full.body.split("\n")[:4] == [
        "Feed: rfi-cn",
        "Published: 2023-10-05 17:15 CST (UTC+08:00)",
        "Matched by korea-japan: 韩日",
        "Matched by forced-labour: 强征劳工",
    ]
    assert utf16_len(tiny.body) <= 90
    assert tiny.body.endswith(safe_url(LINK) or "") and "Matched" not in tiny.body


def test_fit_alert_title_over_title_limit_is_cut_on_a_cluster() -> None:
    target = Target(Dialect.HTML, title_limit=10)

    rendition = fit_alert(target, "[kj] 韩日" + FAMILY * 5, view())

    assert utf16_len(rendition.title) <= 10
    assert rendition.title.endswith("…")
    assert set(clusters(rendition.title[len("[kj] 韩日") : -1])) <= {FAMILY}


def test_fit_digest_many_articles_shows_what_fits_and_counts_the_rest() -> None:
    articles = [view(title=f"第{n}篇 " + "韩日" * 20, link=f"{LINK}&n={n}") for n in range(200)]
    target = Target(Dialect.TELEGRAM, title_in_body=True, body_limit=4096)

    rendition = fit_digest(target, "[kj] 200 new articles", articles)

    assert utf16_len(rendition.body) <= 4096
    parsed = parse_html(rendition.body)
    shown = len(parsed.hrefs)
    assert 5 < shown < 200
    assert parsed.hrefs == [html.unescape(safe_url(a.link) or "") for a in articles[:shown]]
    assert f"… and {200 - shown} more articles" in rendition.body


def test_fit_digest_long_excerpts_are_shortened_before_articles_are_dropped() -> None:
    articles = [view(excerpt="韩日" * 400) for _ in range(5)]
    target = Target(Dialect.MARKDOWN, body_limit=2000)

    rendition = fit_digest(target, "[kj] 5 new articles", articles)

    assert utf16_len(rendition.body) <= 2000
    assert rendition.body.count(f"(<{safe_url(LINK)}>)") == 5
    assert "more article" not in rendition.body


def test_fit_digest_markdown_body_lists_title_links_meta_and_excerpt() -> None:
    rendition = fit_digest(Target(Dialect.MARKDOWN), "[kj] 1 new article", [view()])

    first, meta, excerpt = rendition.body.split("  \n")
    assert first == f"**[韩日关系：首脑会谈重启](<{safe_url(LINK)}>)**"
    assert meta == "rfi-cn · 2023-10-05 17:15 CST (UTC+08:00) · matched 韩日, 首脑"
    assert excerpt == "两国外长表示，韩日首脑会谈将于下月重启"
    assert re.fullmatch(r"[^\\]*", rendition.body)  # nothing needed escaping here
