"""The web view over HTTP: pages and API on a store with real matches, made by the pipeline
from feeds on a local server; authentication, base path, escaping, bad queries."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
from feed_server import FeedServer
from feeds import Item, rss
from processes import DEADLINE_SECONDS, HIDDEN_VARIABLES, wait_until
from receivers import WebhookReceiver
from web_view import (
    JAVASCRIPT_LINK,
    SCRIPT_TITLE,
    RunningView,
    record_matches,
    start_view,
    write_monitored_config,
)

from monitor.service.search import SearchQueryError, search_articles
from monitor.store import Store


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """The folder of a store with real matches, and its database URL."""
    folder = tmp_path_factory.mktemp("web")
    database = f"sqlite:///{folder}/monitor.db"
    with FeedServer() as server, WebhookReceiver() as hook:
        config = write_monitored_config(folder / "plain", server, hook, database)
        record_matches(config, server, hook)
        yield folder, database


def _view(recorded: tuple[Path, str], name: str, **http: object) -> Iterator[RunningView]:
    folder, database = recorded
    # Feed URLs only matter to polls: the view reads the store the polls wrote.
    with FeedServer() as server, WebhookReceiver() as hook:
        config = write_monitored_config(folder / name, server, hook, database, **http)
    view = start_view(config)
    yield view
    view.close()


@pytest.fixture(scope="module")
def view(recorded) -> Iterator[RunningView]:
    yield from _view(recorded, "view")


@pytest.fixture(scope="module")
def guarded(recorded) -> Iterator[RunningView]:
    yield from _view(
        recorded, "guarded", auth={"user": "desk", "password": "Tr0ub4dor-&-3"}, base_path="/news"
    )


def _quoted(path: str) -> str:
    return urllib.parse.quote(path, safe="/?=&")


def _text(html: str) -> str:
    """The page's text, tags removed: roughly what a reader sees."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


# ---------------------------------------------------------------------------------- pages


def test_overview_shows_the_chart_deliveries_and_feeds_failing_now(view: RunningView) -> None:
    html = view.text("/")

    chart = re.search(r'<svg class="chart".*?</svg>', html, re.S)
    assert chart is not None
    # Today's bar: korea-japan 3, forced-labour 1, france 1, each a rect with its count.
    bars = re.findall(r"<title>(\d{4}-\d\d-\d\d) ([\w-]+): (\d+)</title>", chart.group())
    assert sorted((rule, int(count)) for _, rule, count in bars) == [
        ("forced-labour", 1),
        ("france", 1),
        ("korea-japan", 3),
    ]
    text = _text(html)
    assert "deliveries pending 3" in text and "held (digests, quiet hours) 1" in text
    assert "feeds failing now 1" in text and "broken HTTP 500 3 never" in text
    # The quiet rule is listed too: a rule without matches is what one looks for.
    assert "tariffs 0 0 never" in text


def test_matches_page_lists_each_match_with_its_delivery_per_channel(view: RunningView) -> None:
    html = view.text("/matches")

    rows = re.findall(r"<tr>(.*?)</tr>", html, re.S)[1:]  # the head row first
    assert len(rows) == 5
    first = _text(rows[0])  # the newest: the Taiwan article
    assert "korea-japan" in first and "rfi-tw" in first and "韓日外長會談" in first
    assert "down: retrying" in first and "hook: sent" in first and "error=500" in first
    assert 'href="https://www.rfi.fr/cn/102"' in rows[0]
    digest = next(_text(row) for row in rows if "法国总统访华" in row)
    assert "hook: held until" in digest and "(digest)" in digest


def test_matches_page_filters_by_rule(view: RunningView) -> None:
    html = view.text("/matches?rule=forced-labour")

    assert "日本企业回应强征劳工判决" in html
    assert "韩日重启战略对话" not in html and "法国总统访华" not in html


def test_stored_text_is_escaped_and_a_script_link_is_no_link(view: RunningView) -> None:
    for path in ("/matches", _quoted("/search?q=韩日峰会")):
        html = view.text(path)

        assert "<script>document.body" not in html
        assert "&lt;script&gt;document.body.setAttribute(" in html
        assert "javascript:" not in html


def test_feeds_page_shows_each_feeds_state_and_new_articles_per_day(view: RunningView) -> None:
    html = view.text("/feeds")

    rows = {row[0]: row[1] for row in re.findall(r'<tr id="feed-([\w-]+)">(.*?)</tr>', html, re.S)}
    assert list(rows) == ["rfi-cn", "rfi-tw", "broken"]
    assert "5 in 30 days" in rows["rfi-cn"] and "2 in 30 days" in rows["rfi-tw"]
    assert len(re.findall(r"<rect ", rows["rfi-cn"])) == 30  # a bar a day
    broken = _text(rows["broken"])
    assert "HTTP 500" in broken and " 500 " in broken and "never" in broken


def test_a_secret_in_a_feed_url_is_masked_on_the_page_and_in_the_api(
    tmp_path: Path, write_config, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FEED_TOKEN", "tok-58a1c9e2")
    config = write_config(
        feeds={"private": "https://news.example.org/rss?token=${FEED_TOKEN}"},
        http={"listen": "127.0.0.1:0"},
    )
    Store(f"sqlite:///{tmp_path}/state/monitor.db").create_schema()
    view = start_view(config)
    try:
        (feed,) = view.json("/api/feeds")["feeds"]
        page = view.text("/feeds")
    finally:
        view.close()

    assert feed["url"] == "https://news.example.org/rss?token=****"
    assert "tok-58a1c9e2" not in page and "token=****" in page


def test_stories_page_is_empty_without_stories(view: RunningView) -> None:
    assert "No stories of several articles to show." in view.text("/stories")
    assert view.json("/api/stories") == {"stories": []}


# ------------------------------------------------------------------------------------ API


def test_api_matches_gives_each_match_with_its_deliveries(view: RunningView) -> None:
    matches = view.json("/api/matches")["matches"]

    assert [match["rule"] for match in matches] == [
        "korea-japan",
        "forced-labour",
        "france",
        "korea-japan",
        "korea-japan",
    ]
    newest = matches[0]
    assert newest["title"] == "韓日外長會談" and newest["feed"] == "rfi-tw"
    assert newest["link"] == "https://www.rfi.fr/cn/102" and newest["terms"] == ["韩日"]
    assert newest["matched_at"].endswith("Z")
    channels = {delivery["channel"]: delivery for delivery in newest["deliveries"]}
    assert channels["hook"]["status"] == "sent" and channels["hook"]["sent_at"]
    assert channels["down"]["status"] == "pending" and channels["down"]["attempts"] == 1
    assert "error=500" in channels["down"]["last_error"]
    script = next(match for match in matches if match["title"] == SCRIPT_TITLE)
    assert script["link"] == JAVASCRIPT_LINK  # data as stored: JSON is no HTML


def test_api_matches_filters_by_rule_and_pages_back(view: RunningView) -> None:
    first = view.json("/api/matches?rule=korea-japan&limit=2")["matches"]
    older = view.json(f"/api/matches?rule=korea-japan&limit=2&before={first[-1]['id']}")

    assert [match["title"] for match in first] == ["韓日外長會談", SCRIPT_TITLE]
    assert [match["title"] for match in older["matches"]] == ["韩日重启战略对话"]


def test_api_feeds_gives_state_and_new_articles_per_day(view: RunningView) -> None:
    feeds = {feed["name"]: feed for feed in view.json("/api/feeds")["feeds"]}

    cn, broken = feeds["rfi-cn"], feeds["broken"]
    assert cn["http_status"] == 200 and cn["error_streak"] == 0 and cn["articles"] == 5
    assert cn["last_attempt"] and cn["last_success"]
    assert len(cn["new_articles_per_day"]) == 30
    assert sum(day["count"] for day in cn["new_articles_per_day"]) == 5
    assert broken["error_streak"] == 3 and broken["last_success"] is None
    assert broken["http_status"] == 500 and "500" in broken["error"]


def test_search_finds_traditional_and_simplified_with_marked_excerpts(view: RunningView) -> None:
    found = view.json(_quoted("/api/search?q=韩日 -峰会"))

    assert found["complete"] is True
    assert [(result["feed"], result["title"]) for result in found["results"]] == [
        ("rfi-tw", "韓日外長會談"),
        ("rfi-cn", "韩日重启战略对话"),
    ]
    assert found["results"][0]["excerpt"].startswith("【韓日】外長會談")
    html = view.text(_quoted("/search?q=韩日 -峰会"))
    assert "2 results" in html and "<mark>韓日</mark>外長會談" in html


def test_search_by_feed_and_by_field(view: RunningView) -> None:
    only_tw = view.json(_quoted("/api/search?q=韩日&feed=rfi-tw"))["results"]
    in_titles = view.json(_quoted("/api/search?q=title:强征劳工"))["results"]

    assert [result["title"] for result in only_tw] == ["韓日外長會談"]
    assert [result["title"] for result in in_titles] == ["日本企业回应强征劳工判决"]


@pytest.mark.parametrize("query", ["(韩日", "韩日 OR", "/[/", "-韩日"])
def test_a_bad_query_is_a_400_with_the_error(view: RunningView, query: str) -> None:
    status, headers, body = view.get(_quoted(f"/api/search?q={query}"))
    page_status, _, page = view.get(_quoted(f"/search?q={query}"))

    error = json.loads(body)["error"]
    assert status == 400 and headers["content-type"] == "application/json"
    assert page_status == 400 and '<pre class="error" role="alert">' in page.decode()
    assert error and error.splitlines()[0] in page.decode()


def test_a_syntax_error_shows_the_query_and_a_caret(view: RunningView) -> None:
    _, _, body = view.get(_quoted("/api/search?q=(韩日"))

    *_, query_line, caret_line = json.loads(body)["error"].splitlines()
    assert query_line.strip() == "(韩日" and caret_line.strip() == "^"
    assert caret_line.index("^") == query_line.index("(")


@pytest.mark.parametrize(
    "path",
    [
        "/api/search",
        "/api/search?q=x&limit=0",
        "/api/search?q=x&since=soon",
        "/api/matches?limit=many",
        "/matches?before=-3",
    ],
)
def test_a_bad_parameter_is_a_400_that_says_why(view: RunningView, path: str) -> None:
    status, _, body = view.get(path)

    assert status == 400 and body.strip()


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_nothing_changes_state(view: RunningView, method: str) -> None:
    for path in ("/", "/matches", "/api/matches", "/api/search?q=x", "/healthz"):
        assert view.get(path, method=method)[0] == 405


def test_pages_forbid_scripts_and_referrers(view: RunningView) -> None:
    _, headers, body = view.get("/")

    policy = headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src" not in policy
    assert headers["referrer-policy"] == "no-referrer"
    assert "<script" not in body.decode()


# ------------------------------------------------------------------ auth and base path


def test_auth_is_required_on_pages_and_api(guarded: RunningView) -> None:
    for path in ("/", "/matches", "/feeds", "/stories", "/search", "/api/matches", "/api/feeds"):
        status, headers, _ = guarded.get(path, credentials=("nobody", "nothing"))
        assert status == 401, path
        assert headers["www-authenticate"].startswith('Basic realm="news-monitor"')


@pytest.mark.parametrize(
    "credentials", [("desk", "Tr0ub4dor-&-"), ("desk", "Tr0ub4dor-&-3x"), ("Desk", "Tr0ub4dor-&-3")]
)
def test_auth_refuses_near_misses(guarded: RunningView, credentials: tuple[str, str]) -> None:
    assert guarded.get("/api/feeds", credentials=credentials)[0] == 401


def test_auth_accepts_the_configured_credentials(guarded: RunningView) -> None:
    status, _, body = guarded.get("/api/feeds")  # the view's own credentials

    assert status == 200 and json.loads(body)["feeds"]


def test_healthz_and_metrics_stay_open_under_auth(guarded: RunningView) -> None:
    assert guarded.get("/healthz", credentials=("x", "y"))[0] == 200
    assert guarded.get("/metrics", credentials=("x", "y"))[0] == 200


def test_base_path_serves_everything_under_it_and_links_stay_under_it(
    guarded: RunningView,
) -> None:
    html = guarded.text("/")
    links = re.findall(r'(?:href|action)="([^"]+)"', html)

    assert {"/news/", "/news/matches", "/news/feeds", "/news/stories", "/news/search"} <= set(links)
    assert all(link.startswith("/news/") for link in links), links
    at_the_root = RunningView(guarded.port, "", "desk", "Tr0ub4dor-&-3")
    assert at_the_root.get("/matches")[0] == 404 and at_the_root.get("/")[0] == 404
    status, _, body = guarded.get("")  # /news leads to /news/
    assert status == 200 and b"Overview" in body


def test_auth_failures_never_log_a_password(
    guarded: RunningView, caplog: pytest.LogCaptureFixture
) -> None:
    guarded.get("/", credentials=("desk", "wrong-guess-771"))
    guarded.get("/")

    assert "wrong-guess-771" not in caplog.text and "Tr0ub4dor" not in caplog.text


# ----------------------------------------------------------------------------- search


def test_search_at_its_time_limit_answers_with_what_it_found(recorded) -> None:
    _, database = recorded
    store = Store(database, read_only=True)
    ticks = iter(range(1000))
    try:
        # A clock that moves one second per reading: a limit of 1.5 s allows one batch.
        outcome = search_articles(
            store, "新闻 OR 韩日", since=None, time_limit_seconds=1.5, clock=lambda: next(ticks)
        )
        unlimited = search_articles(store, "新闻 OR 韩日", since=None)
    finally:
        store.close()

    assert outcome.complete is False and outcome.articles_checked > 0
    assert unlimited.complete is True and len(unlimited.results) >= len(outcome.results)


def test_search_of_a_bad_query_raises_with_the_reason(recorded) -> None:
    store = Store(recorded[1], read_only=True)
    try:
        with pytest.raises(SearchQueryError, match="only excludes"):
            search_articles(store, "-体育", since=None)
    finally:
        store.close()


# ------------------------------------------------------------------------ in the daemon


def test_the_daemon_serves_the_web_view_with_live_matches(
    tmp_path: Path, server: FeedServer, hook: WebhookReceiver, write_config
) -> None:
    password = "Xq7-web-pass-2931"
    server.add_feed("/cn", rss([Item("法国新闻", link="https://e.org/1", guid="1")]))
    config = write_config(
        feeds={"rfi-cn": server.url("/cn")},
        channels={"hook": hook.json_url("/alerts")},
        rules=[{"name": "korea-japan", "any": ["韩日"], "notify": ["hook"]}],
        http={"listen": "127.0.0.1:0", "auth": {"user": "desk", "password": "${WEB_PASSWORD}"}},
    )
    log_path = tmp_path / "daemon.log"
    environment = {key: value for key, value in os.environ.items() if key not in HIDDEN_VARIABLES}
    with log_path.open("w", encoding="utf-8") as log:
        daemon = subprocess.Popen(
            [sys.executable, "-m", "monitor", "run", "--config", str(config)],
            cwd=tmp_path,
            env={**environment, "WEB_PASSWORD": password},
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    try:
        wait_until(lambda: "http listening=" in log_path.read_text(), "the web view to listen")
        port = re.search(r"http listening=127\.0\.0\.1:(\d+)", log_path.read_text())
        assert port is not None
        view = RunningView(int(port.group(1)), "", "desk", password)
        wait_until(lambda: server.hits("/cn") >= 1, "the baseline poll")
        server.add_feed(
            "/cn",
            rss(
                [
                    Item("韩日重启战略对话", link="https://e.org/2", guid="2"),
                    Item("法国新闻", link="https://e.org/1", guid="1"),
                ]
            ),
        )
        hook.wait_for(1, timeout_seconds=DEADLINE_SECONDS)

        def match_sent() -> bool:
            matches = view.json("/api/matches")["matches"]
            return bool(matches) and matches[0]["deliveries"][0]["status"] == "sent"

        wait_until(match_sent, "the match to show as sent")
        wait_until(lambda: view.get("/healthz", credentials=("x", "y"))[0] == 200, "healthy")
        assert view.get("/", credentials=("desk", "wrong"))[0] == 401
        assert "韩日重启战略对话" in view.text("/matches")
    finally:
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=DEADLINE_SECONDS) == 0
    log_text = log_path.read_text()
    assert password not in log_text and "Traceback" not in log_text
    assert "stopped" in log_text
