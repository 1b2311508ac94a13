"""Full text (`fulltext:`) end to end: a summary-only feed and its article pages from a local
server, a real SQLite store, rules, a local webhook receiver, and `status`."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from feeds import DATA, Item, rss

from monitor.service.configuration import load_config, load_database_settings
from monitor.service.daemon import Monitor
from monitor.service.status import format_status, read_status

PAGES = DATA / "fulltext"
HTML = "text/html; charset=utf-8"
FORCED_LABOUR = {"name": "forced-labour", "any": ["强征劳工"], "notify": ["hook"]}
# In the page's comments only (tests/data/fulltext/02-...): boilerplate that must stay out.
COMMENT_ON_THE_PAGE = "在法国生活十几年了"


def page(name: str) -> bytes:
    return next(PAGES.glob(f"{name}-*.html")).read_bytes()


def summary_item(number: int, server, **changes) -> Item:
    """An item whose summary says nothing of forced labour; its page (02) does."""
    values = {
        "title": f"韩国公布赔偿方案 {number}",
        "link": server.url(f"/article/{number}"),
        "guid": f"item-{number}",
        "description": "韩国政府周一公布方案，受害者团体表示反对。",
    }
    values.update(changes)
    return Item(**values)


@pytest.fixture
def monitors() -> Iterator[list[Monitor]]:
    created: list[Monitor] = []
    yield created
    for monitor in created:
        monitor.close()


@pytest.fixture
def make_monitor(write_config, monitors, hook):
    def make(*, feeds, rules=(FORCED_LABOUR,)) -> Monitor:
        path = write_config(
            feeds=feeds, channels={"hook": hook.json_url("/alerts")}, rules=list(rules)
        )
        monitor = Monitor(load_config(path))
        monitors.append(monitor)
        return monitor

    return make


def feed_status(monitor: Monitor, name: str) -> dict:
    settings = load_database_settings(monitor.runtime.config.path)
    report = read_status(settings, monitor.clock())
    return next(entry for entry in report.document()["feeds"] if entry["name"] == name)


def stored_content(monitor: Monitor, title: str) -> str:
    return next(a.content for a, _ in monitor.store.stored_articles() if a.title == title)


def test_fulltext_true_alerts_on_a_term_only_the_article_page_mentions(
    server, hook, make_monitor
) -> None:
    server.add_feed("/rss", rss([summary_item(1, server)]))
    server.add_feed("/article/1", page("01"), content_type=HTML)
    server.add_feed("/article/2", page("02"), content_type=HTML)
    monitor = make_monitor(feeds={"cn": {"url": server.url("/rss"), "fulltext": True}})
    monitor.run_once()
    server.add_feed("/rss", rss([summary_item(2, server), summary_item(1, server)]))

    (poll,) = monitor.run_once().polls

    assert (poll.pages, poll.pages_failed) == (1, 0)
    (alert,) = hook.requests
    assert alert.json["title"] == "[forced-labour] 韩国公布赔偿方案 2"
    assert "强征劳工" in alert.json["message"]
    content = stored_content(monitor, "韩国公布赔偿方案 2")
    assert "日帝强制动员受害者支援财团" in content  # the article's text
    assert COMMENT_ON_THE_PAGE not in content  # its comments stay out
    assert "京ICP备05002321号" not in content  # and its footer
    # Only the new item's page was fetched: the baseline's never was.
    assert (server.hits("/article/1"), server.hits("/article/2")) == (0, 1)
    assert feed_status(monitor, "cn")["fulltext"]["failed"] == 0


def test_without_fulltext_the_page_is_never_fetched_and_nothing_alerts(
    server, hook, make_monitor
) -> None:
    server.add_feed("/rss", rss([]))
    server.add_feed("/article/2", page("02"), content_type=HTML)
    monitor = make_monitor(feeds={"cn": server.url("/rss")})
    monitor.run_once()
    server.add_feed("/rss", rss([summary_item(2, server)]))

    monitor.run_once()

    assert hook.requests == []
    assert server.hits("/article/2") == 0 and server.hits("/robots.txt") == 0
    assert feed_status(monitor, "cn")["fulltext"] is None


def test_baseline_fetches_no_page_not_even_robots_txt(server, hook, make_monitor) -> None:
    server.add_feed("/rss", rss([summary_item(n, server) for n in range(1, 4)]))
    monitor = make_monitor(feeds={"cn": {"url": server.url("/rss"), "fulltext": "always"}})

    (poll,) = monitor.run_once().polls

    assert poll.baseline and poll.new_articles == 3 and poll.pages == 0
    assert [path for path, _ in server.requests] == ["/rss"]


def test_fulltext_true_keeps_content_encoded_and_always_replaces_it(
    server, hook, make_monitor
) -> None:
    teaser = "<p>韩国政府周一公布赔偿方案（摘要）。</p>"
    for path in ("/true", "/always"):
        server.add_feed(path, rss([]))
    server.add_feed("/article/2", page("02"), content_type=HTML)
    monitor = make_monitor(
        feeds={
            "keeps": {"url": server.url("/true"), "fulltext": True},
            "replaces": {"url": server.url("/always"), "fulltext": "always"},
        }
    )
    monitor.run_once()
    server.add_feed("/true", rss([summary_item(2, server, content=teaser)]))
    monitor.run_once()
    assert server.hits("/article/2") == 0
    assert stored_content(monitor, "韩国公布赔偿方案 2") == "韩国政府周一公布赔偿方案（摘要）。"
    assert hook.requests == []

    server.add_feed(
        "/always", rss([summary_item(3, server, link=server.url("/article/2"), content=teaser)])
    )
    monitor.run_once()

    assert server.hits("/article/2") == 1
    assert "日帝强制动员受害者支援财团" in stored_content(monitor, "韩国公布赔偿方案 3")
    (alert,) = hook.requests
    assert alert.json["title"] == "[forced-labour] 韩国公布赔偿方案 3"


HOSTILE_PAGES = {
    "missing": (lambda server: None, "HTTP 404"),
    "robots": (
        lambda server: server.add_feed("/article/9", page("02"), content_type=HTML),
        "robots.txt disallows it",
    ),
    "pdf": (
        lambda server: server.add_feed(
            "/article/9", b"%PDF-1.7 ...", content_type="application/pdf"
        ),
        "not an HTML page (application/pdf)",
    ),
    "huge": (
        lambda server: server.add_feed(
            "/article/9", b"<p>" + "强征劳工".encode() * 400_000, content_type=HTML
        ),
        "body larger than",
    ),
    "slow": (
        lambda server: server.add_drip(
            "/article/9", prefix=b"<html><body><p>", interval_seconds=0.2, content_type=HTML
        ),
        "timed out",
    ),
    "redirect-loop": (
        lambda server: (
            server.add_redirect("/article/9", "/article/10"),
            server.add_redirect("/article/10", "/article/9"),
        ),
        "too many redirects",
    ),
    "no-text": (
        lambda server: server.add_feed(
            "/article/9",
            b'<html><body><div id="app"></div><script src="/app.js"></script></body></html>',
            content_type=HTML,
        ),
        "no article text found",
    ),
    "broken-html": (
        lambda server: server.add_feed(
            "/article/9", b"\x00\xff<html><div><<<p \x00>", content_type=HTML
        ),
        "",
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_PAGES))
def test_a_page_that_fails_keeps_the_item_matched_on_its_summary_and_status_shows_why(
    server, hook, make_monitor, case: str
) -> None:
    serve, error = HOSTILE_PAGES[case]
    server.add_feed("/rss", rss([]))
    server.set_response(
        "/robots.txt",
        200,
        b"User-agent: news-monitor\nDisallow: /article/9\n" if case == "robots" else b"",
        {"Content-Type": "text/plain"},
    )
    serve(server)
    # max_bytes and timeout bound pages as they bound the feed.
    monitor = make_monitor(
        feeds={
            "cn": {"url": server.url("/rss"), "fulltext": True, "max_bytes": "1MB", "timeout": "1s"}
        }
    )
    monitor.run_once()
    item = summary_item(9, server, description="据报道，二战强征劳工受害者团体表示反对。")
    server.add_feed("/rss", rss([item]))

    (poll,) = monitor.run_once().polls

    assert poll.ok and poll.new_articles == 1 and (poll.pages, poll.pages_failed) == (1, 1)
    (alert,) = hook.requests  # matched on what the feed gave
    assert alert.json["title"] == "[forced-labour] 韩国公布赔偿方案 9"
    assert stored_content(monitor, "韩国公布赔偿方案 9") == ""
    fulltext = feed_status(monitor, "cn")["fulltext"]
    assert (fulltext["pages"], fulltext["failed"]) == (1, 1)
    (failure,) = fulltext["errors"]
    assert failure["link"] == item.link and error in failure["error"]
    if case == "robots":
        assert server.hits("/article/9") == 0


def test_status_text_shows_the_full_text_failures(server, hook, make_monitor) -> None:
    server.add_feed("/rss", rss([]))
    monitor = make_monitor(feeds={"cn": {"url": server.url("/rss"), "fulltext": True}})
    monitor.run_once()
    server.add_feed("/rss", rss([summary_item(4, server)]))
    monitor.run_once()

    settings = load_database_settings(monitor.runtime.config.path)
    lines = format_status(read_status(settings, monitor.clock()), settings)

    (line,) = [line for line in lines if line.startswith("cn ")]
    assert f"full text failed for 1 of 1 pages: HTTP 404 ({server.url('/article/4')})" in line


def test_pages_of_one_poll_are_fetched_at_once_within_the_per_origin_limit(
    server, hook, make_monitor
) -> None:
    server.add_feed("/rss", rss([]))
    for number in range(1, 7):
        server.add_feed(
            f"/article/{number}", page(f"{number:02d}"), content_type=HTML, blocking=True
        )
    monitor = make_monitor(
        feeds={"cn": {"url": server.url("/rss"), "fulltext": True, "timeout": "30s"}}
    )
    monitor.run_once()
    server.add_feed("/rss", rss([summary_item(n, server) for n in range(1, 7)]))

    reports: list = []
    thread = threading.Thread(target=lambda: reports.append(monitor.run_once()), daemon=True)
    thread.start()
    try:
        # Two pages wait at the server at once: fetched concurrently, two per origin.
        assert server.wait_for(lambda: server.blocked == 2)
    finally:
        server.release(6)
        thread.join(timeout=30)

    assert server.max_in_flight == 2
    ((poll,),) = [report.polls for report in reports]
    assert (poll.pages, poll.pages_failed) == (6, 0)
    assert server.hits("/robots.txt") == 1  # asked once for the six pages
    assert len(hook.requests) == 1  # page 02 mentions 强征劳工


def test_an_article_first_stored_with_its_page_keeps_it_when_another_feed_carries_it(
    server, hook, make_monitor
) -> None:
    server.add_feed("/full", rss([]))
    server.add_feed("/section", rss([]))
    server.add_feed("/article/2", page("02"), content_type=HTML)
    monitor = make_monitor(
        feeds={
            "full": {"url": server.url("/full"), "fulltext": True},
            "section": {"url": server.url("/section"), "fulltext": True},
        }
    )
    monitor.run_once()
    server.add_feed("/full", rss([summary_item(2, server)]))
    monitor.run_once()
    # The same article in a section feed, with its own guid: known by its link.
    server.add_feed("/section", rss([summary_item(2, server, guid="section-2")]))

    monitor.run_once()

    assert server.hits("/article/2") == 1  # the section feed asked for no page
    assert monitor.store.article_count() == 1
    assert "日帝强制动员受害者支援财团" in stored_content(monitor, "韩国公布赔偿方案 2")
    assert len(hook.requests) == 1


def test_an_edited_item_gets_its_page_again(server, hook, make_monitor) -> None:
    server.add_feed("/rss", rss([]))
    server.add_feed("/article/2", page("01"), content_type=HTML)
    monitor = make_monitor(feeds={"cn": {"url": server.url("/rss"), "fulltext": True}})
    monitor.run_once()
    server.add_feed("/rss", rss([summary_item(2, server)]))
    monitor.run_once()
    assert hook.requests == []
    # The site rewrites the article and the feed its headline.
    server.add_feed("/article/2", page("02"), content_type=HTML)
    server.add_feed("/rss", rss([summary_item(2, server, title="韩国公布强征劳工赔偿方案")]))

    monitor.run_once()

    assert server.hits("/article/2") == 2
    (alert,) = hook.requests
    assert alert.json["title"] == "[forced-labour] 韩国公布强征劳工赔偿方案"


def test_page_requests_carry_the_user_agent_and_ask_for_html(server, hook, make_monitor) -> None:
    server.add_feed("/rss", rss([]))
    server.add_feed("/article/2", page("02"), content_type=HTML)
    monitor = make_monitor(feeds={"cn": {"url": server.url("/rss"), "fulltext": True}})
    monitor.run_once()
    server.add_feed("/rss", rss([summary_item(2, server)]))

    monitor.run_once()

    headers = {path: sent for path, sent in server.requests}
    assert headers["/article/2"]["User-Agent"].startswith("news-monitor/")
    assert headers["/article/2"]["Accept"].startswith("text/html")
    assert headers["/robots.txt"]["User-Agent"] == headers["/rss"]["User-Agent"]


def test_a_file_link_is_never_read(server, hook, make_monitor, tmp_path: Path) -> None:
    secret = tmp_path / "secret.html"
    secret.write_text("<html><body><p>" + "强征劳工" * 100 + "</p></body></html>", encoding="utf-8")
    server.add_feed("/rss", rss([]))
    monitor = make_monitor(feeds={"cn": {"url": server.url("/rss"), "fulltext": True}})
    monitor.run_once()
    server.add_feed("/rss", rss([summary_item(2, server, link=secret.as_uri())]))

    monitor.run_once()

    assert hook.requests == []
    (failure,) = feed_status(monitor, "cn")["fulltext"]["errors"]
    assert failure["error"] == "not an http(s) link"
    assert json.dumps(failure)  # plain JSON for status --json
