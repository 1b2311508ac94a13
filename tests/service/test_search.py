"""Search end to end: two local feeds, cn and tw, serving RFI's article and its /tw version
and other news on the same topic, stored by the daemon's cycle in a real SQLite file, then
searched with the command line as a user runs it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from feeds import rss
from processes import run_cli
from story_articles import DIALOGUE_CN, DIALOGUE_TW, FINANCE_FOLLOW_UP, MINISTERS_MEETING, item

from monitor.service.backlog import build_search_index
from monitor.service.configuration import load_config
from monitor.service.daemon import Monitor
from monitor.service.search import search_articles
from monitor.store import Store

NOW = datetime.now(UTC)
# Queries of every kind, compared with what `rules test` matches for a rule with each.
QUERIES = [
    "韓日",
    "韩日 AND 东京",
    '"副外长级战略对话"',
    "韩日 NOT 会谈",
    "韩日 -會談",
    "会谈 OR 财长",
    "韩日 NEAR/5 财政部",
    "title:东京",
    "/林芳.正/",
    "安全合作 OR 劳工",
    "东",  # one character: the index cannot narrow it
]


@pytest.fixture
def archive(server, write_config) -> Path:
    """Four articles stored from rfi-cn and rfi-tw: the dialogue in both scripts, another
    meeting, a follow-up; and rules named q0, q1, ... with QUERIES."""
    server.add_feed(
        "/cn",
        rss(
            [
                item(FINANCE_FOLLOW_UP, "finance", NOW - timedelta(hours=1)),
                item(MINISTERS_MEETING, "ministers", NOW - timedelta(hours=2)),
                item(DIALOGUE_CN, "dialogue", NOW - timedelta(hours=3)),
            ]
        ),
    )
    server.add_feed(
        "/tw", rss([item(DIALOGUE_TW, "dialogue", NOW - timedelta(hours=2), site="tw")])
    )
    config = write_config(
        feeds={"rfi-cn": server.url("/cn"), "rfi-tw": server.url("/tw")},
        rules=[{"name": f"q{number}", "query": query} for number, query in enumerate(QUERIES)],
    )
    monitor = Monitor(load_config(config))
    try:
        monitor.run_once()
    finally:
        monitor.close()
    return config


def _cli(config: Path, *arguments: str) -> Any:
    return run_cli(*arguments, "--config", str(config), cwd=config.parent)


def _json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_search_finds_cn_and_tw_articles_with_marked_excerpts(archive: Path) -> None:
    result = _cli(archive, "search", "韓日")

    assert result.returncode == 0, result.stderr
    assert DIALOGUE_CN[0] in result.stdout and DIALOGUE_TW[0] in result.stdout
    assert "【韩日】" in result.stdout  # the /cn articles, as written
    assert "【韓日】" in result.stdout  # the /tw one, as written
    assert "https://www.rfi.fr/tw/news/dialogue" in result.stdout


def test_search_json_gives_one_object_per_result_newest_first_with_its_story(
    archive: Path,
) -> None:
    result = _cli(archive, "search", "韩日", "--json")

    found = _json_lines(result.stdout)
    # Newest first: the articles of one poll by their published time (the two feeds were
    # polled in either order).
    assert [document["title"] for document in found if document["feed"] == "rfi-cn"] == [
        FINANCE_FOLLOW_UP[0],
        MINISTERS_MEETING[0],
        DIALOGUE_CN[0],
    ]
    assert len(found) == 4
    assert set(found[0]) >= {"published", "feed", "title", "link", "excerpt", "story"}
    by_title = {document["title"]: document for document in found}
    assert by_title[DIALOGUE_TW[0]]["feed"] == "rfi-tw"
    assert by_title[DIALOGUE_CN[0]]["story"] is not None
    assert by_title[DIALOGUE_CN[0]]["story"] == by_title[DIALOGUE_TW[0]]["story"]
    assert by_title[MINISTERS_MEETING[0]]["story"] != by_title[DIALOGUE_CN[0]]["story"]
    assert "【韩日】" in by_title[FINANCE_FOLLOW_UP[0]]["excerpt"]


def test_search_limit_feed_and_since_narrow_the_results(archive: Path) -> None:
    limited = _json_lines(_cli(archive, "search", "韩日", "--json", "--limit", "2").stdout)
    tw = _json_lines(_cli(archive, "search", "韩日", "--json", "--feed", "rfi-tw").stdout)
    recent = _cli(archive, "search", "韩日", "--since", "1s")

    assert len(limited) == 2
    assert [document["title"] for document in tw] == [DIALOGUE_TW[0]]
    # The articles were first seen when the cycle stored them, more than a second ago or
    # not: either way nothing outside the period is shown, and no result is no error.
    assert recent.returncode == 0


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["韩日 AND ("], "^"),
        (["NOT 韩日"], "only excludes"),
        (["韩日", "--feed", "nowhere"], "unknown feed 'nowhere'"),
    ],
)
def test_a_bad_search_exits_2_saying_why(archive: Path, arguments: list[str], message: str) -> None:
    result = _cli(archive, "search", *arguments)

    assert result.returncode == 2
    assert message in result.stderr
    assert result.stdout == ""


def test_search_finds_exactly_what_rules_test_matches(archive: Path) -> None:
    tested = _cli(archive, "rules", "test", "--json")
    assert tested.returncode == 0, tested.stderr
    matched: dict[str, set[str]] = {}
    for hit in _json_lines(tested.stdout):
        matched.setdefault(hit["rule"], set()).add(hit["link"])

    for number, query in enumerate(QUERIES):
        found = _json_lines(_cli(archive, "search", query, "--json", "--limit", "50").stdout)
        assert {document["link"] for document in found} == matched.get(f"q{number}", set()), query
    assert len(matched) >= 8  # (most queries match something)


def test_a_search_while_the_index_is_built_finds_the_same(archive: Path) -> None:
    config = load_config(archive)
    store = Store(config.database_url)
    try:
        before = {q: _links(search_articles(store, q, since=None)) for q in QUERIES}
        store.rebuild_search_index()  # as after an upgrade or a copy: nothing indexed yet
        assert store.articles_to_index() == 4

        while_empty = {q: _links(search_articles(store, q, since=None)) for q in QUERIES}
        indexed = build_search_index(store)

        assert while_empty == before
        assert indexed == 4
        assert store.articles_to_index() == 0
        assert {q: _links(search_articles(store, q, since=None)) for q in QUERIES} == before
    finally:
        store.close()


def _links(outcome: Any) -> list[str]:
    assert outcome.complete
    return [result.link for result in outcome.results]


def test_status_says_how_many_articles_wait_for_the_index(archive: Path) -> None:
    store = Store(load_config(archive).database_url)
    try:
        indexed = json.loads(_cli(archive, "status", "--json").stdout)["search_index"]
        store.rebuild_search_index()
        waiting = _cli(archive, "status")
        waiting_json = json.loads(_cli(archive, "status", "--json").stdout)["search_index"]
    finally:
        store.close()

    assert indexed == {"articles_to_index": 0}
    assert waiting_json == {"articles_to_index": 4}
    assert "search index: 4 articles still to index" in waiting.stdout
