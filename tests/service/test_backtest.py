"""`rules test`: backtests over a real SQLite store, feed files and a local feed server."""

from __future__ import annotations

import json
import socket
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from feed_server import FeedServer
from feeds import DATA, Item, fixture, rss
from processes import run_cli

from monitor.config import RuleConfig
from monitor.ingest.parse import parse_feed
from monitor.matching import SCAN_BATCH_ARTICLES, TermHit
from monitor.model import Article
from monitor.service.backtest import (
    CONTEXT_CHARACTERS,
    Backtest,
    UnknownRuleError,
    contexts_of,
    file_articles,
    format_hit,
    format_summary,
    hit_json,
    select_rules,
)
from monitor.service.configuration import load_config
from monitor.service.daemon import Monitor
from monitor.store.database import Store

NOW = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
TW_FEED = DATA / "feeds" / "rfi-tw-rss.xml"
CN_FEED = DATA / "feeds" / "rfi-cn-rss.xml"
TW_TITLE = "時隔9年韓日重啓副外長級戰略對話"
FEEDS = {"tw": TW_FEED.as_uri(), "cn": CN_FEED.as_uri()}
RULES = [
    {"name": "korea-japan", "any": ["韩日", "日韩"], "none": ["体育"]},
    {"name": "forced-labour", "any": ["强征劳工"], "fields": ["summary"]},
    {"name": "macron", "any": ["马克龙"], "feeds": ["cn"]},
]


def rule(name: str, **options: object) -> RuleConfig:
    return RuleConfig(name=name, **options)  # type: ignore[arg-type]


def store_articles(store: Store, feed: str, articles: list[Article], now: datetime) -> None:
    with store.transaction() as transaction:
        transaction.upsert_articles(feed, articles, baseline=True, now=now)


def article(title: str, link: str, summary: str = "", **fields: object) -> Article:
    return Article(
        guid=link,
        link=link,
        canonical_link=link,
        title=title,
        summary=summary,
        content="",
        published=NOW,
        **fields,  # type: ignore[arg-type]
    )


@pytest.fixture
def store(tmp_path: Path):
    store = Store(f"sqlite:///{tmp_path}/state/monitor.db")
    store.create_schema()
    yield store
    store.close()


# --------------------------------------------------------------------------- the store


def test_stored_articles_reads_in_batches_with_every_feed_of_each_article(store: Store) -> None:
    shared = article("韩日对话", "https://e.org/shared", categories=("亚洲", "国际"))
    store_articles(store, "cn", [article(f"新闻{n}", f"https://e.org/{n}") for n in range(4)], NOW)
    store_articles(store, "cn", [shared], NOW)
    store_articles(store, "asia", [shared], NOW + timedelta(minutes=5))

    stored = list(store.stored_articles(batch_size=2))

    assert [item.title for item, _ in stored] == ["新闻0", "新闻1", "新闻2", "新闻3", "韩日对话"]
    rebuilt, feeds = stored[-1]
    assert feeds == ("asia", "cn")
    assert (rebuilt.link, rebuilt.categories, rebuilt.published) == (
        "https://e.org/shared",
        ("亚洲", "国际"),
        NOW,
    )


def test_stored_articles_since_skips_articles_first_seen_before(store: Store) -> None:
    store_articles(store, "cn", [article("旧闻", "https://e.org/old")], NOW - timedelta(days=10))
    store_articles(store, "cn", [article("新闻", "https://e.org/new")], NOW - timedelta(hours=1))
    # Seen again recently by another feed: still first seen 10 days ago.
    store_articles(store, "tw", [article("旧闻", "https://e.org/old")], NOW)

    recent = [item.title for item, _ in store.stored_articles(NOW - timedelta(days=7))]

    assert recent == ["新闻"]


# --------------------------------------------------------------------------- matching


def test_run_with_traditional_text_shows_original_text_in_context() -> None:
    backtest = Backtest(select_rules([rule("korea-japan", any_terms=("韩日",))]))

    (hit,) = backtest.run((item, ("tw",)) for item in parse_feed(TW_FEED.read_bytes()).articles)

    assert hit.rule_name == "korea-japan" and hit.article.title == TW_TITLE
    title = next(context for context in hit.contexts if context.field == "title")
    assert (title.term, title.before, title.matched, title.after) == (
        "韩日",
        "時隔9年",
        "韓日",
        "重啓副外長級戰略對話",
    )
    assert hit.fields["title"] == ("韩日",) and hit.fields["summary"] == ("韩日",)
    assert backtest.hits_by_rule == {"korea-japan": 1} and backtest.articles_checked == 1


def test_run_with_feed_limits_rule_sees_articles_any_of_its_feeds_carried() -> None:
    rules = [rule("asia-only", any_terms=("韩日",), feeds=("asia",))]
    articles = [
        (article("韩日一", "https://e.org/1"), ("asia", "cn")),
        (article("韩日二", "https://e.org/2"), ("cn",)),
    ]

    limited = [hit.article.title for hit in Backtest(select_rules(rules)).run(articles)]
    unlimited = Backtest(select_rules(rules), use_feeds=False)
    everything = [hit.article.title for hit in unlimited.run(articles)]

    assert limited == ["韩日一"]
    assert everything == ["韩日一", "韩日二"]


def test_run_without_explaining_hits_gives_the_same_json() -> None:
    # `rules test --json` skips explaining hits where the terms' order can be told without
    # (plain terms over text that normalises one to one); the JSON must not change, for
    # those and for the hits that still need explaining (NEAR, a regex, "……").
    rules = select_rules(
        [
            rule("korea-japan", any_terms=("副外长", "日韩", "韩日")),  # not in text order
            rule("near", query="韩日 NEAR/10 副外长"),
            rule("regex", query="/韓.{0,3}日/"),
        ]
    )
    articles = [(item, ("tw",)) for item in parse_feed(TW_FEED.read_bytes()).articles]
    articles += [(item, ("cn",)) for item in parse_feed(CN_FEED.read_bytes()).articles]
    articles.append((article("……韩日副外长", "https://e.org/dots", "日韩"), ()))

    explained = list(Backtest(rules).run(articles))
    unexplained = list(Backtest(rules, explain_hits=False).run(articles))

    assert len(explained) >= 7
    assert [hit_json(hit) for hit in unexplained] == [hit_json(hit) for hit in explained]
    # The plain-terms rule's hits in one-to-one text went without explaining.
    assert any(hit.rule_name == "korea-japan" and not hit.term_hits for hit in unexplained)
    assert all(hit.term_hits for hit in unexplained if hit.rule_name != "korea-japan")


def test_run_over_several_batches_gives_hits_in_article_order() -> None:
    # Backtest matches SCAN_BATCH_ARTICLES articles at a time: hits, counts and feed limits
    # must come out as if one article were matched at a time, across batch boundaries.
    rules = select_rules(
        [
            rule("korea-japan", any_terms=("韩日",)),
            rule("asia-only", any_terms=("外长",), feeds=("asia",)),
        ]
    )
    count = 2 * SCAN_BATCH_ARTICLES + 5
    articles = [
        (
            article(
                f"{index} 韩日外长" if index % 3 else f"{index} 外长", f"https://e.org/{index}"
            ),
            ("asia",) if index % 2 else ("cn",),
        )
        for index in range(count)
    ]
    backtest = Backtest(rules, explain_hits=False)

    hits = [(hit.rule_name, hit.article.link) for hit in backtest.run(articles)]

    expected = []
    for index in range(count):
        if index % 3:
            expected.append(("korea-japan", f"https://e.org/{index}"))
        if index % 2:
            expected.append(("asia-only", f"https://e.org/{index}"))
    assert hits == expected
    assert backtest.articles_checked == count
    assert backtest.hits_by_rule == Counter(name for name, _ in expected)


def test_run_with_none_term_present_reports_no_hit() -> None:
    backtest = Backtest(select_rules([rule("kj", any_terms=("韩日",), none_terms=("体育",))]))

    hits = list(backtest.run([(article("韩日体育交流", "https://e.org/1"), ())]))

    assert hits == [] and backtest.hits_by_rule == {"kj": 0}


def test_select_rules_skips_disabled_rules_unless_named() -> None:
    rules = [rule("on", any_terms=("a",)), rule("off", any_terms=("b",), enabled=False)]

    assert [item.name for item in select_rules(rules)] == ["on"]
    (named,) = select_rules(rules, "off")
    assert named.name == "off" and named.enabled


def test_select_rules_with_unknown_name_lists_known_names() -> None:
    rules = [rule("korea-japan", any_terms=("韩日",)), rule("labour", any_terms=("劳工",))]

    with pytest.raises(UnknownRuleError) as raised:
        select_rules(rules, "korea")

    assert str(raised.value) == "unknown rule 'korea' (known: korea-japan, labour)"


def test_contexts_of_cuts_context_each_side_and_counts_further_occurrences() -> None:
    text = "甲" * 40 + "韓日" + "乙" * 40 + "韓日" + "丙" * 5
    item = article("标题", "https://e.org/1", summary=text)
    hits = [TermHit("summary", "韩日", 82, 84), TermHit("summary", "韩日", 40, 42)]

    (context,) = contexts_of(item, hits)

    assert context.before == "…" + "甲" * CONTEXT_CHARACTERS
    assert context.matched == "韓日"
    assert context.after == "乙" * CONTEXT_CHARACTERS + "…"
    assert context.more == 1


def test_contexts_of_orders_fields_as_shown_and_keeps_context_on_one_line() -> None:
    item = article(
        "韩日", "https://e.org/1", summary="前\n文 韩日\t后文", categories=("亚洲", "韩日")
    )
    hits = [
        TermHit("categories", "韩日", 3, 5),
        TermHit("summary", "韩日", 4, 6),
        TermHit("title", "韩日", 0, 2),
    ]

    contexts = contexts_of(item, hits)

    assert [context.field for context in contexts] == ["title", "summary", "categories"]
    assert contexts[1].before == "前 文 " and contexts[1].after == " 后文"
    assert contexts[2].before == "亚洲 "


# --------------------------------------------------------------------------- output


def _tw_hit():
    backtest = Backtest(select_rules([rule("korea-japan", any_terms=("韩日",))]))
    (hit,) = backtest.run((item, ("tw",)) for item in parse_feed(TW_FEED.read_bytes()).articles)
    return backtest, hit


def test_format_hit_without_colour_marks_match_with_brackets() -> None:
    _, hit = _tw_hit()

    text = format_hit(hit, colour=False, timezone=UTC)

    lines = text.splitlines()
    assert lines[0] == f"[korea-japan] {TW_TITLE}"
    assert any(line.split() == ["link", hit.article.link] for line in lines)
    assert any(line.split() == ["published", "2023-10-05", "09:15", "UTC"] for line in lines)
    assert any(line.split() == ["title", "韩日:", "時隔9年【韓日】重啓副外長級戰略對話"]
               for line in lines)  # fmt: skip
    assert "\x1b[" not in text


def test_format_hit_of_regional_variant_shows_article_word_and_rule_term() -> None:
    backtest = Backtest(select_rules([rule("software", any_terms=("软件",))]))
    taiwan = article("台灣軟體公司宣佈裁員", "https://e.org/tw", summary="這家軟體公司裁員一成")
    mollusc = article("这种软体动物生活在海里", "https://e.org/cn")

    hits = list(backtest.run([(taiwan, ("tw",)), (mollusc, ("cn",))]))

    assert [hit.article for hit in hits] == [taiwan]
    assert hits[0].fields == {"title": ("软件",), "summary": ("软件",)}
    lines = format_hit(hits[0], colour=False, timezone=UTC).splitlines()
    assert any(line.split() == ["title", "软件:", "台灣【軟體】公司宣佈裁員"] for line in lines)
    assert any(line.split() == ["summary", "软件:", "這家【軟體】公司裁員一成"] for line in lines)


def test_format_hit_with_colour_marks_match_in_bold_red() -> None:
    _, hit = _tw_hit()

    text = format_hit(hit, colour=True, timezone=UTC)

    assert "時隔9年\x1b[1;31m韓日\x1b[0m重啓" in text and "【" not in text


def test_hit_json_gives_rule_article_and_terms_per_field() -> None:
    _, hit = _tw_hit()

    document = json.loads(hit_json(hit))

    assert document == {
        "rule": "korea-japan",
        "title": TW_TITLE,
        "link": hit.article.link,
        "published": "2023-10-05T09:15:00Z",
        "story": None,  # an article from no store
        "fields": {"title": ["韩日"], "summary": ["韩日"]},
    }


def test_format_summary_counts_hits_per_rule_and_articles() -> None:
    backtest = Backtest(select_rules([rule("a", any_terms=("韩日",)), rule("b", any_terms=("x",))]))
    list(backtest.run([(article(f"韩日{n}", f"https://e.org/{n}"), ()) for n in range(3)]))

    assert format_summary(backtest) == "a: 3 hits, b: 0 hits (3 articles checked)"


# --------------------------------------------------------------------------- end to end


def test_run_over_store_filled_by_monitor_finds_hits_in_every_feed(
    server: FeedServer, tmp_path: Path, write_config
) -> None:
    shared = Item("韩日峰会", link="https://e.org/summit", guid="s", description="韩日两国")
    server.add_feed("/cn", rss([shared, Item("马克龙访华", link="https://e.org/m", guid="m")]))
    server.add_feed("/asia", rss([Item("韩日峰会", link="https://e.org/summit", guid="a1")]))
    server.add_feed("/tw", fixture("rfi-tw-rss.xml"))
    config = load_config(
        write_config(
            feeds={"cn": server.url("/cn"), "asia": server.url("/asia"), "tw": server.url("/tw")},
            rules=RULES,
        )
    )
    monitor = Monitor(config)
    try:
        monitor.run_once()
    finally:
        monitor.close()
    store = Store(config.database_url)
    backtest = Backtest(select_rules(config.rules))
    try:
        hits = [(hit.rule_name, hit.article.title, hit.feeds) for hit in backtest.run(
            store.stored_articles())]  # fmt: skip
    finally:
        store.close()

    assert sorted(hits) == [
        ("forced-labour", TW_TITLE, ("tw",)),
        ("korea-japan", TW_TITLE, ("tw",)),
        ("korea-japan", "韩日峰会", ("asia", "cn")),
        ("macron", "马克龙访华", ("cn",)),
    ]
    assert backtest.articles_checked == 3


@pytest.fixture
def filled(tmp_path: Path, write_config) -> Path:
    """A config with RULES whose store holds the tw fixture's article and the cn fixture's
    two, stored by `run --once` (a baseline: nothing is sent)."""
    config = write_config(feeds=FEEDS, rules=RULES)
    result = run_cli("run", "--once", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return config


def test_rules_test_prints_each_hit_with_terms_in_context_and_summary(
    filled: Path, tmp_path: Path
) -> None:
    result = run_cli("rules", "test", "--config", str(filled), cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    output = result.stdout
    assert f"[korea-japan] {TW_TITLE}" in output
    assert "[korea-japan] 时隔9年韩日重启副外长级战略对话" in output
    assert "時隔9年【韓日】重啓副外長級戰略對話" in output  # the original Traditional text
    assert "【強徵勞工】" in output and "[macron] 法国总统马克龙出席欧洲政治共同体峰会" in output
    assert "2023-10-05 17:15 CST" in output  # published, in the configured timezone
    assert "\x1b[" not in output  # not a TTY
    assert output.rstrip().splitlines()[-1] == (
        "korea-japan: 2 hits, forced-labour: 2 hits, macron: 1 hit (3 articles checked)"
    )


def test_rules_test_json_prints_one_object_per_hit_and_summary_on_stderr(
    filled: Path, tmp_path: Path
) -> None:
    result = run_cli("rules", "test", "--json", "--config", str(filled), cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    documents = [json.loads(line) for line in result.stdout.splitlines()]
    assert [document["rule"] for document in documents].count("korea-japan") == 2
    tw = next(d for d in documents if d["rule"] == "korea-japan" and d["title"] == TW_TITLE)
    assert tw == {
        "rule": "korea-japan",
        "title": TW_TITLE,
        "link": tw["link"],
        "published": "2023-10-05T09:15:00Z",
        "story": tw["story"],
        "fields": {"title": ["韩日"], "summary": ["韩日"]},
    }
    assert isinstance(tw["story"], int)  # a story of its own: grouping is on by default
    assert "korea-japan: 2 hits" in result.stderr


def test_rules_test_with_rule_tests_only_that_rule(filled: Path, tmp_path: Path) -> None:
    result = run_cli("rules", "test", "--rule", "macron", "--config", str(filled), cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert "[korea-japan]" not in result.stdout and "[macron]" in result.stdout
    assert result.stdout.rstrip().endswith("macron: 1 hit (3 articles checked)")


def test_rules_test_with_unknown_rule_exits_two_listing_known_rules(
    filled: Path, tmp_path: Path
) -> None:
    result = run_cli("rules", "test", "--rule", "korea", "--config", str(filled), cwd=tmp_path)

    assert result.returncode == 2
    assert "unknown rule 'korea' (known: korea-japan, forced-labour, macron)" in result.stderr
    assert result.stdout == ""


def test_rules_test_with_since_skips_articles_first_seen_earlier(
    tmp_path: Path, write_config
) -> None:
    config = write_config(feeds=FEEDS, rules=RULES)
    store = Store(f"sqlite:///{tmp_path}/state/monitor.db")
    store.create_schema()
    now = datetime.now(UTC)
    store_articles(store, "cn", [article("韩日旧闻", "https://e.org/old")], now - timedelta(days=9))
    store_articles(
        store, "cn", [article("韩日新闻", "https://e.org/new")], now - timedelta(hours=2)
    )
    store.close()

    week = run_cli("rules", "test", "--since", "7d", "--config", str(config), cwd=tmp_path)
    hour = run_cli("rules", "test", "--since", "1h", "--config", str(config), cwd=tmp_path)
    everything = run_cli("rules", "test", "--config", str(config), cwd=tmp_path)

    assert week.returncode == hour.returncode == everything.returncode == 0
    assert "韩日新闻" in week.stdout and "韩日旧闻" not in week.stdout
    assert "korea-japan: 0 hits" in hour.stdout and "(0 articles checked)" in hour.stdout
    assert "韩日新闻" in everything.stdout and "韩日旧闻" in everything.stdout


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("--since", "soon"), "argument --since: 'soon' is not a duration"),
        (("--since", "7d", "--file", "feed.xml"), "--since applies to stored articles"),
        (("--file", "a", "--url", "b"), "argument --url: not allowed with argument --file"),
    ],
)
def test_rules_test_with_bad_usage_exits_two(
    arguments: tuple[str, ...], message: str, tmp_path: Path, write_config
) -> None:
    config = write_config(feeds=FEEDS, rules=RULES)

    result = run_cli("rules", "test", *arguments, "--config", str(config), cwd=tmp_path)

    assert result.returncode == 2 and message in result.stderr
    assert "Traceback" not in result.stderr


def test_rules_test_with_file_ignores_feed_limits_and_store(tmp_path: Path, write_config) -> None:
    config = write_config(feeds=FEEDS, rules=RULES)
    feed = tmp_path / "sample.xml"
    feed.write_bytes(rss([Item("马克龙谈韩日关系", link="https://e.org/1", guid="1")]))

    result = run_cli("rules", "test", "--file", str(feed), "--config", str(config), cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert "[macron] 马克龙谈韩日关系" in result.stdout  # `feeds: [cn]` does not apply
    assert "[korea-japan] 马克龙谈韩日关系" in result.stdout
    assert "(1 article checked)" in result.stdout
    assert not (tmp_path / "state").exists()  # the store is not touched


def test_rules_test_with_file_matches_markup_of_plain_text_fields_and_shows_clean_links(
    tmp_path: Path, write_config
) -> None:
    config = write_config(feeds=FEEDS, rules=[{"name": "blink", "any": ["blink"]}])

    results = [
        run_cli("rules", "test", "--file", str(DATA / "feeds" / name), "--config", str(config),
                cwd=tmp_path)
        for name in ("atom-plain-text.xml", "rss-plain-text.xml")
    ]  # fmt: skip

    for result in results:
        assert result.returncode == 0, result.stderr
        assert "[blink] History of the <blink> tag" in result.stdout
    # The RSS item's link without its utm_* parameters.
    assert "https://markup.example.org/blink\n" in results[1].stdout
    assert "utm_" not in results[1].stdout


def test_rules_test_with_file_explains_taiwan_word_found_by_mainland_term(
    tmp_path: Path, write_config
) -> None:
    config = write_config(feeds=FEEDS, rules=[{"name": "software", "any": ["软件"]}])
    feed = tmp_path / "sample.xml"
    items = [
        Item("台灣軟體公司宣佈裁員", link="https://e.org/1", guid="1"),
        Item("这种软体动物生活在海里", link="https://e.org/2", guid="2"),
    ]
    feed.write_bytes(rss(items))

    result = run_cli("rules", "test", "--file", str(feed), "--config", str(config), cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert "[software] 台灣軟體公司宣佈裁員" in result.stdout
    assert "软件: 台灣【軟體】公司宣佈裁員" in result.stdout
    assert "软体动物" not in result.stdout and "(2 articles checked)" in result.stdout


def test_rules_test_with_file_that_is_no_feed_exits_two(tmp_path: Path, write_config) -> None:
    config = write_config(feeds=FEEDS, rules=RULES)
    (tmp_path / "page.html").write_text("<html><body>Not found</body></html>")

    missing = run_cli("rules", "test", "--file", "nowhere.xml", "--config", str(config),
                      cwd=tmp_path)  # fmt: skip
    broken = run_cli("rules", "test", "--file", "page.html", "--config", str(config), cwd=tmp_path)

    assert missing.returncode == broken.returncode == 2
    assert "nowhere.xml" in missing.stderr and "not a feed" in broken.stderr
    assert "Traceback" not in missing.stderr + broken.stderr


def test_rules_test_with_url_tests_items_fetched_from_server(
    server: FeedServer, tmp_path: Path, write_config
) -> None:
    server.add_feed("/tw/rss", fixture("rfi-tw-rss.xml"))
    config = write_config(feeds=FEEDS, rules=RULES)

    result = run_cli(
        "rules", "test", "--json", "--url", server.url("/tw/rss"), "--config", str(config),
        cwd=tmp_path,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    rules = [json.loads(line)["rule"] for line in result.stdout.splitlines()]
    assert rules == ["korea-japan", "forced-labour"]
    assert server.hits("/tw/rss") == 1
    assert "(1 article checked)" in result.stderr


def test_rules_test_with_unreachable_url_exits_one(tmp_path: Path, write_config) -> None:
    config = write_config(feeds=FEEDS, rules=RULES)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    result = run_cli("rules", "test", "--url", f"http://127.0.0.1:{port}/rss", "--config",
                     str(config), cwd=tmp_path)  # fmt: skip

    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"127.0.0.1:{port}" in result.stderr


def test_file_articles_reads_items_carried_by_no_feed() -> None:
    (only,) = file_articles(TW_FEED)

    assert only[0].title == TW_TITLE and only[1] == ()


# ------------------------------------------------------- many hits: per-article sharing


def _reference_hit_json(hit) -> str:  # type: ignore[no-untyped-def]
    published = hit.article.published
    return json.dumps(
        {
            "rule": hit.rule_name,
            "title": hit.article.title,
            "link": hit.article.link,
            "published": published.astimezone(UTC).isoformat().replace("+00:00", "Z")
            if published
            else None,
            "story": hit.story,
            "fields": {name: list(terms) for name, terms in hit.fields.items()},
        },
        ensure_ascii=False,
    )


def test_run_with_several_rules_per_article_gives_each_hit_as_alone() -> None:
    # One explainer serves every hit of an article, and hit_json() reuses the article's
    # part: each hit must read as if it were explained and written on its own.
    rules = select_rules(
        [
            rule("a", any_terms=("韩日",)),
            rule("b", any_terms=("韩日", "会谈"), fields=("title", "summary")),
            rule("c", query='"韩日" NEAR/3 会谈'),
            rule("d", any_terms=("AI", "sanction*")),
            rule("e", any_terms=("韩日会谈", "韩日")),  # two terms from one start
        ]
    )
    untimed = article('韓日會談 "AI"', "https://e.org/1", summary="據悉……韓日副外長会谈，sanctions")
    articles = [
        (untimed, ("cn",)),
        (article("会谈 AI", "https://e.org/2", summary="said 韩日"), ("tw",)),
        (replace(untimed, published=None, title="韩日\n会谈"), ()),
    ]
    backtest = Backtest(rules)

    hits = list(backtest.run(articles))

    assert [(hit.rule_name, hit.article.link) for hit in hits] == [
        ("a", "https://e.org/1"),
        ("b", "https://e.org/1"),
        ("c", "https://e.org/1"),
        ("d", "https://e.org/1"),
        ("e", "https://e.org/1"),
        ("a", "https://e.org/2"),
        ("b", "https://e.org/2"),
        ("d", "https://e.org/2"),
        ("e", "https://e.org/2"),
        ("a", "https://e.org/1"),
        ("b", "https://e.org/1"),
        ("c", "https://e.org/1"),
        ("d", "https://e.org/1"),
        ("e", "https://e.org/1"),
    ]
    matcher = backtest._matcher
    for hit in hits:
        contexts = contexts_of(hit.article, matcher.explain(hit.article, hit.rule_name))
        assert hit.contexts == contexts
        fields: dict[str, tuple[str, ...]] = {}
        for context in contexts:
            fields[context.field] = (*fields.get(context.field, ()), context.term)
        assert hit.fields == fields
        assert hit_json(hit) == _reference_hit_json(hit)
    assert hits[4].fields == {"title": ("韩日", "韩日会谈"), "summary": ("韩日",)}
