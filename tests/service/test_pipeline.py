"""The whole pipeline in-process: local feeds -> real SQLite -> rules -> real receivers."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from feeds import Item, fixture, rss
from processes import wait_until
from receivers import SmtpReceiver, disable_apprise_throttle
from texts import distinct_text

from monitor.config import RuleConfig
from monitor.ingest.parse_pool import ParsePool, default_worker_count
from monitor.matching import RuleSet
from monitor.model import Article
from monitor.service.configuration import load_config
from monitor.service.daemon import PARSE_WORKERS_MIN_FEEDS, Monitor
from monitor.service.pipeline import excerpt

KOREA_JAPAN = {"name": "korea-japan", "any": ["韩日", "日韩"], "notify": ["hook"]}


class Clock:
    """A clock the test moves by hand, so backoff is tested without waiting."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def monitors() -> Iterator[list[Monitor]]:
    created: list[Monitor] = []
    yield created
    for monitor in created:
        monitor.close()


@pytest.fixture
def make_monitor(write_config, monitors, hook):
    def make(*, feeds, rules=(KOREA_JAPAN,), channels=None, clock=None, **top_level) -> Monitor:
        path = write_config(
            feeds=feeds,
            channels=channels or {"hook": hook.json_url("/alerts")},
            rules=list(rules),
            **top_level,
        )
        monitor = Monitor(load_config(path), **({"clock": clock} if clock else {}))
        monitors.append(monitor)
        return monitor

    return make


def _korean_item(number: int, **changes) -> Item:
    values = {
        "title": f"时隔9年韩日重启副外长级战略对话 {number}",
        "link": f"https://www.rfi.fr/cn/%E4%BA%9A%E6%B4%B2/2023-korea-{number}",
        "guid": f"korea-{number}",
        # Each number its own story: grouping gives articles of one story one alert.
        "description": f"<p>韩日两国重启对话，第{number}次。{distinct_text(number)}</p>",
    }
    values.update(changes)
    return Item(**values)


def _other_item(number: int) -> Item:
    return Item(
        f"法国总统马克龙出席峰会 {number}",
        link=f"https://www.rfi.fr/cn/france-{number}",
        guid=f"france-{number}",
        description=f"<p>欧洲政治共同体峰会。{distinct_text(f'france-{number}')}</p>",
    )


def test_run_once_first_poll_is_a_baseline_that_alerts_nothing(server, hook, make_monitor) -> None:
    server.add_feed("/cn", rss([_korean_item(1), _other_item(1)]))
    monitor = make_monitor(feeds={"rfi-cn": server.url("/cn")})

    report = monitor.run_once()

    (poll,) = report.polls
    assert poll.ok and poll.baseline and poll.new_articles == 2
    assert hook.requests == []
    assert monitor.store.delivery_counts()["pending"] == 0


def test_run_once_new_matching_article_alerts_once_per_channel(server, hook, make_monitor) -> None:
    server.add_feed("/cn", rss([_other_item(1)]), etag='"v1"')
    monitor = make_monitor(feeds={"rfi-cn": server.url("/cn")})
    monitor.run_once()
    server.add_feed("/cn", rss([_korean_item(2), _other_item(1), _other_item(3)]), etag='"v2"')

    report = monitor.run_once()
    monitor.run_once()  # nothing new: nothing more is sent

    assert report.delivery.sent == 1
    (request,) = hook.requests
    message = request.json
    assert message["title"] == "[korea-japan] 时隔9年韩日重启副外长级战略对话 2"
    body = message["message"]
    assert "rfi-cn" in body  # the feed's configured name
    assert "韩日" in body  # the matched term
    assert "韩日两国重启对话" in body  # the excerpt
    assert "https://www.rfi.fr/cn/%E4%BA%9A%E6%B4%B2/2023-korea-2" in body
    assert "CST" in body  # published time in the configured timezone (Asia/Shanghai)
    assert monitor.store.delivery_counts() == {
        "pending": 0,
        "held": 0,
        "sent": 1,
        "failed": 0,
    }


def test_run_once_same_article_in_two_feeds_alerts_once(server, hook, make_monitor) -> None:
    server.add_feed("/cn", rss([]))
    server.add_feed("/asia", rss([]))
    monitor = make_monitor(feeds={"rfi-cn": server.url("/cn"), "rfi-asia": server.url("/asia")})
    monitor.run_once()
    article = _korean_item(5)
    # The section feed has its own guid and writes the link's escapes in lower case.
    in_section = _korean_item(5, guid="asia-5", link=article.link.lower())
    server.add_feed("/cn", rss([article]))
    server.add_feed("/asia", rss([in_section]))

    monitor.run_once()

    assert len(hook.requests) == 1
    assert monitor.store.article_count() == 1


def _alerts_for_tw_fixture(server, hook, make_monitor, rule: dict) -> list:
    """Baseline an empty feed, then publish the Traditional-Chinese fixture article."""
    server.add_feed("/tw", rss([]))
    monitor = make_monitor(
        feeds={"rfi-tw": {"url": server.url("/tw"), "max_age": "100000d"}}, rules=[rule]
    )
    monitor.run_once()
    server.add_feed("/tw", fixture("rfi-tw-rss.xml"))
    monitor.run_once()
    return hook.requests


def _run_once_in_background(monitor: Monitor) -> tuple[threading.Thread, list[Any]]:
    reports: list[Any] = []
    thread = threading.Thread(target=lambda: reports.append(monitor.run_once()), daemon=True)
    thread.start()
    return thread, reports


def test_run_once_sends_an_alert_while_other_feeds_are_still_polled(
    server, hook, make_monitor
) -> None:
    server.add_feed("/cn", rss([_korean_item(21)]))
    server.add_feed("/slow", rss([_other_item(22)]), blocking=True)
    monitor = make_monitor(
        feeds={
            "rfi-cn": {"url": server.url("/cn"), "notify_existing": True},
            "slow": {"url": server.url("/slow"), "timeout": 30},
        }
    )

    thread, reports = _run_once_in_background(monitor)
    try:
        (alert,) = hook.wait_for(1)
        # The slow feed's poll has not ended (nothing of it is stored): the alert did not
        # wait for it.
        assert monitor.store.feed_state("slow") is None
    finally:
        server.release()
        thread.join(timeout=30)

    assert alert.json["title"] == "[korea-japan] 时隔9年韩日重启副外长级战略对话 21"
    (report,) = reports
    assert report.delivery.sent == 1 and len(report.polls) == 2
    assert len(hook.requests) == 1
    assert monitor.store.delivery_counts() == {
        "pending": 0,
        "held": 0,
        "sent": 1,
        "failed": 0,
    }


def test_run_once_attempts_each_failing_delivery_once_over_all_its_passes(
    server, hook, make_monitor
) -> None:
    hook.set_status(500)
    server.add_feed("/cn", rss([_korean_item(23)]))
    server.add_feed("/slow", rss([_korean_item(24)]), blocking=True)
    monitor = make_monitor(
        feeds={
            "rfi-cn": {"url": server.url("/cn"), "notify_existing": True},
            "slow": {"url": server.url("/slow"), "notify_existing": True},
        }
    )

    thread, reports = _run_once_in_background(monitor)
    try:
        hook.wait_for(1)  # the first feed's alert failed while the slow feed was polled
    finally:
        server.release()
        thread.join(timeout=30)

    # Two deliveries, one attempt each: the passes after the first failure (the slow
    # feed's, the last one) leave it for the next run.
    (report,) = reports
    assert (report.delivery.attempted, report.delivery.retrying) == (2, 2)
    assert sorted(request.json["title"][-2:] for request in hook.requests) == ["23", "24"]
    assert monitor.store.delivery_counts()["pending"] == 2
    # The next run tries each again, once, although it makes two passes (at its start and
    # when its polls are over).
    server.add_feed("/slow", rss([_korean_item(24)]))
    hook.clear()
    again = monitor.run_once()
    assert (again.delivery.attempted, again.delivery.retrying) == (2, 2)
    assert len(hook.requests) == 2


def test_run_once_traditional_article_matches_simplified_term(server, hook, make_monitor) -> None:
    rule = {"name": "korea-japan", "any": ["韩日"], "all": ["强征劳工"], "notify": ["hook"]}

    (request,) = _alerts_for_tw_fixture(server, hook, make_monitor, rule)
    assert request.json["title"] == "[korea-japan] 時隔9年韓日重啓副外長級戰略對話"
    assert "韩日" in request.json["message"] and "强征劳工" in request.json["message"]


@pytest.mark.parametrize(
    ("title", "alerts"),
    [("ＡＩ芯片出口管制", 1), ("用AI写新闻", 1), ("He said nothing new", 0), ("MAIL server", 0)],
)
def test_run_once_latin_term_matches_whole_words_only(
    server, hook, make_monitor, title: str, alerts: int
) -> None:
    server.add_feed("/cn", rss([]))
    rule = {"name": "ai", "any": ["AI"], "notify": ["hook"]}
    monitor = make_monitor(feeds={"rfi-cn": server.url("/cn")}, rules=[rule])
    monitor.run_once()
    server.add_feed("/cn", rss([Item(title, link="https://e.org/1", guid="1")]))

    monitor.run_once()

    assert len(hook.requests) == alerts


def test_run_once_second_poll_uses_conditional_get(server, make_monitor) -> None:
    server.add_feed("/cn", rss([_other_item(1)]), etag='"v1"')
    monitor = make_monitor(feeds={"rfi-cn": server.url("/cn")})
    monitor.run_once()

    (poll,) = monitor.run_once().polls

    assert poll.not_modified and poll.http_status == 304
    assert server.requests[-1][1].get("If-None-Match") == '"v1"'


def test_run_once_failing_feed_is_recorded_and_others_still_alert(
    server, hook, make_monitor
) -> None:
    server.add_feed("/cn", rss([]))
    server.set_response("/broken", 503, b"down", {"Retry-After": "120"})
    monitor = make_monitor(feeds={"rfi-cn": server.url("/cn"), "broken": server.url("/broken")})
    monitor.run_once()
    server.add_feed("/cn", rss([_korean_item(7)]))

    report = monitor.run_once()

    by_name = {poll.feed_name: poll for poll in report.polls}
    assert by_name["rfi-cn"].ok and not by_name["broken"].ok
    assert by_name["broken"].retry_after_seconds == 120
    assert len(hook.requests) == 1
    state = monitor.store.feed_state("broken")
    assert state.http_status == 503 and state.error_streak == 2 and "503" in state.error


def test_run_once_edited_article_alerts_a_rule_that_newly_matches_once(
    server, hook, make_monitor
) -> None:
    server.add_feed("/cn", rss([]))
    monitor = make_monitor(feeds={"rfi-cn": server.url("/cn")})
    monitor.run_once()
    server.add_feed("/cn", rss([_other_item(8)]))
    monitor.run_once()
    assert hook.requests == []
    edited = Item(
        "法国与韩日举行三方会谈", link="https://www.rfi.fr/cn/france-8-v2", guid="france-8"
    )
    server.add_feed("/cn", rss([edited]))

    monitor.run_once()
    server.add_feed("/cn", rss([Item("法国与韩日举行三方会谈（更新）", guid="france-8")]))
    monitor.run_once()

    assert len(hook.requests) == 1
    assert monitor.store.article_count() == 1


def test_run_once_item_older_than_max_age_never_alerts(server, hook, make_monitor) -> None:
    server.add_feed("/cn", rss([]))
    monitor = make_monitor(feeds={"rfi-cn": server.url("/cn")})
    monitor.run_once()
    old = _korean_item(9, published=datetime.now(UTC) - timedelta(days=3))
    server.add_feed("/cn", rss([old, _korean_item(10)]))

    monitor.run_once()

    (request,) = hook.requests
    assert request.json["title"].endswith(" 10")


def test_run_once_with_notify_existing_alerts_on_first_poll(server, hook, make_monitor) -> None:
    server.add_feed("/cn", rss([_korean_item(11)]))
    monitor = make_monitor(feeds={"rfi-cn": {"url": server.url("/cn"), "notify_existing": True}})

    monitor.run_once()

    assert len(hook.requests) == 1


def test_run_once_with_dry_run_sends_nothing_and_keeps_pending(
    server, hook, write_config, monitors
) -> None:
    server.add_feed("/cn", rss([_korean_item(12)]))
    path = write_config(
        feeds={"rfi-cn": {"url": server.url("/cn"), "notify_existing": True}},
        channels={"hook": hook.json_url("/alerts")},
        rules=[KOREA_JAPAN],
    )
    monitor = Monitor(load_config(path), dry_run=True)
    monitors.append(monitor)

    report = monitor.run_once()

    assert report.delivery.attempted == 1 and report.delivery.sent == 0
    assert hook.requests == []
    assert monitor.store.delivery_counts()["pending"] == 1


def test_send_due_with_smtp_down_retries_with_backoff_and_delivers_once(
    server, make_monitor, monkeypatch
) -> None:
    disable_apprise_throttle(monkeypatch)
    clock = Clock()
    server.add_feed("/cn", rss([_korean_item(13)]))
    with SmtpReceiver() as smtp:
        monitor = make_monitor(
            feeds={"rfi-cn": {"url": server.url("/cn"), "notify_existing": True}},
            channels={"mail": smtp.mailto_url(to="desk@example.org")},
            rules=[{**KOREA_JAPAN, "notify": ["mail"]}],
            clock=clock,
        )
        smtp.stop()

        first = monitor.run_once()
        assert (first.delivery.attempted, first.delivery.retrying) == (1, 1)
        assert monitor.store.delivery_counts()["pending"] == 1
        # The daemon honours the backoff: 30 s after the first failure, not before.
        assert monitor.send_due(ignore_backoff=False).attempted == 0
        clock.advance(29)
        assert monitor.send_due(ignore_backoff=False).attempted == 0
        clock.advance(2)
        assert monitor.send_due(ignore_backoff=False).retrying == 1  # still down
        smtp.start()
        clock.advance(61)

        assert monitor.send_due(ignore_backoff=False).sent == 1
        monitor.run_once()

        (mail,) = smtp.wait_for(1)
        assert mail.subject == "[korea-japan] 时隔9年韩日重启副外长级战略对话 13"
        assert "rfi-cn" in mail.text() and "韩日" in mail.text()
        assert monitor.store.delivery_counts() == {
            "pending": 0,
            "held": 0,
            "sent": 1,
            "failed": 0,
        }


def test_send_due_after_last_attempt_marks_failed_with_error(server, hook, make_monitor) -> None:
    hook.set_status(500)
    server.add_feed("/cn", rss([_korean_item(14)]))
    monitor = make_monitor(
        feeds={"rfi-cn": {"url": server.url("/cn"), "notify_existing": True}},
        delivery={"attempts": 2},
    )

    monitor.run_once()
    monitor.run_once()
    monitor.run_once()  # a failed delivery is not tried again

    assert len(hook.requests) == 2
    assert monitor.store.delivery_counts()["failed"] == 1
    ((rule, channel, error),) = monitor.store.last_delivery_errors()
    assert (rule, channel) == ("korea-japan", "hook") and "500" in error


def test_run_once_with_file_url_feed_polls_local_file(tmp_path: Path, hook, make_monitor) -> None:
    feed_file = tmp_path / "feed.xml"
    feed_file.write_bytes(rss([]))
    monitor = make_monitor(feeds={"local": feed_file.as_uri()})
    monitor.run_once()
    feed_file.write_bytes(rss([_korean_item(15)]))

    monitor.run_once()

    assert len(hook.requests) == 1


def test_run_once_query_rule_matches_traditional_article(server, hook, make_monitor) -> None:
    rule = {"name": "forced-labour", "query": "(强征劳工 OR 强制劳动) -广告", "notify": ["hook"]}

    (request,) = _alerts_for_tw_fixture(server, hook, make_monitor, rule)
    assert request.json["title"].startswith("[forced-labour] ")
    # The excerpt is the original Traditional text around the hit.
    assert "強徵勞工" in request.json["message"]


def test_run_once_regex_out_of_time_marks_rule_failing_and_others_alert(
    server, hook, make_monitor
) -> None:
    server.add_feed("/cn", rss([]))
    slow = {"name": "slow", "query": "/(a+)+$/", "notify": ["hook"]}
    monitor = make_monitor(feeds={"rfi-cn": server.url("/cn")}, rules=[slow, KOREA_JAPAN])
    monitor.run_once()
    server.add_feed("/cn", rss([_korean_item(16, description="a" * 5000 + "!")]))

    monitor.run_once()

    (request,) = hook.requests
    assert request.json["title"].startswith("[korea-japan] ")
    (state,) = monitor.store.rule_states()
    assert state.rule_name == "slow" and state.failures >= 1
    assert "ran out of time" in state.last_error


def test_excerpt_around_hit_never_splits_an_emoji_sequence() -> None:
    family = "👨\u200d👩\u200d👧"  # one grapheme cluster of five code points
    article = Article(
        guid=None,
        link=None,
        canonical_link=None,
        title="标题",
        summary=family * 60 + "韩日" + family * 200,
        content="",
    )
    matcher = RuleSet.compile([RuleConfig(name="kj", any_terms=("韩日",))])
    (match,) = matcher.match(article, "rfi-cn")

    text = excerpt(article, match, matcher)

    assert text.startswith("…") and text.endswith("…") and "韩日" in text
    assert text.strip("…").replace("韩日", "").replace(family, "") == ""


def test_run_once_with_retention_prunes_old_bodies_and_never_realerts(
    server, hook, make_monitor
) -> None:
    clock = Clock()
    item = _korean_item(17)
    server.add_feed("/cn", rss([item]))
    monitor = make_monitor(
        feeds={"rfi-cn": {"url": server.url("/cn"), "notify_existing": True, "max_age": "30d"}},
        retention="1d",
        clock=clock,
    )
    monitor.run_once()
    assert len(hook.requests) == 1
    clock.advance(2 * 86400)

    monitor.run_once()  # polls (nothing new), sends, then prunes
    monitor.run_once()  # polls the same item again, now pruned

    ((article, _),) = list(monitor.store.stored_articles(None))
    assert article.summary == "" and article.title == item.title
    assert len(hook.requests) == 1  # the pruned article is still known: no second alert


def test_run_once_same_body_without_validators_is_not_parsed_again(
    server, hook, make_monitor, monkeypatch
) -> None:
    # A server with neither ETag nor Last-Modified answers 200 with the same bytes.
    server.add_feed("/cn", rss([_other_item(1)]))
    clock = Clock()
    monitor = make_monitor(feeds={"rfi-cn": server.url("/cn")}, clock=clock)
    monitor.run_once()
    parsed_again = []
    real_parse = monitor.parser.parse
    monkeypatch.setattr(monitor.parser, "parse", lambda request: parsed_again.append(request))
    clock.advance(600)

    (poll,) = monitor.run_once().polls

    assert poll.ok and poll.not_modified and poll.http_status == 200
    assert parsed_again == []
    state = monitor.store.feed_state("rfi-cn")
    assert state.last_poll_at == clock.now and state.last_item_count == 1
    # Different bytes are parsed, stored and matched as usual.
    monkeypatch.setattr(monitor.parser, "parse", real_parse)
    server.add_feed("/cn", rss([_korean_item(2), _other_item(1)]))
    (poll,) = monitor.run_once().polls
    assert not poll.not_modified and poll.new_articles == 1
    assert len(hook.requests) == 1


def _dated(items: list[Item]) -> list[Item]:
    """The items with publication times fixed now, so that the same item is the same bytes
    in every body built from it."""
    published = datetime.now(UTC).replace(microsecond=0)
    return [
        replace(item, published=published - timedelta(minutes=number))
        for number, item in enumerate(items)
    ]


def _recording_parses(monitor: Monitor, monkeypatch) -> list[bytes]:
    bodies: list[bytes] = []
    real_parse = monitor.parser.parse

    def parse(request):
        bodies.append(request.body)
        return real_parse(request)

    monkeypatch.setattr(monitor.parser, "parse", parse)
    return bodies


def test_run_once_changed_feed_parses_only_the_items_it_did_not_carry(
    server, hook, make_monitor, monkeypatch
) -> None:
    items = _dated([_other_item(number) for number in range(20)])
    server.add_feed("/cn", rss(items))
    monitor = make_monitor(feeds={"rfi-cn": server.url("/cn")})
    monitor.run_once()
    parsed_bodies = _recording_parses(monitor, monkeypatch)
    # One new item on top, the oldest gone, and the channel's own text changed.
    (korean,) = _dated([_korean_item(1)])
    server.add_feed("/cn", rss([korean, *items[:-1]], title="Test feed (updated)"))

    (poll,) = monitor.run_once().polls

    assert (poll.items, poll.new_items, poll.new_articles, poll.matches) == (20, 1, 1, 1)
    (body,) = parsed_bodies
    assert body.count(b"<item>") == 1 and b"korea-1" in body
    assert monitor.store.feed_state("rfi-cn").last_item_count == 20
    wait_until(lambda: len(hook.requests) == 1, "the alert")
    # A known item edited in place is parsed again (and found edited).
    edited = replace(items[3], title="法国总统马克龙出席峰会（更新）")
    server.add_feed("/cn", rss([korean, *items[:3], edited, *items[4:-1]]))
    (poll,) = monitor.run_once().polls
    assert len(parsed_bodies) == 2 and parsed_bodies[1].count(b"<item>") == 1
    assert b"france-3" in parsed_bodies[1] and poll.items == 20


def test_run_once_when_cut_body_parses_to_fewer_articles_parses_it_whole(
    server, make_monitor, monkeypatch
) -> None:
    items = _dated([_other_item(number) for number in range(5)])
    server.add_feed("/cn", rss(items[1:]))
    monitor = make_monitor(feeds={"rfi-cn": server.url("/cn")})
    monitor.run_once()
    whole = rss(items)
    server.add_feed("/cn", whole)
    parsed_bodies: list[bytes] = []
    real_parse = monitor.parser.parse

    def parse_losing_an_item(request):
        # As if a body cut at the wrong places had lost an item in the parse.
        parsed_bodies.append(request.body)
        parsed = real_parse(request)
        return parsed if request.body == whole else replace(parsed, articles=())

    monkeypatch.setattr(monitor.parser, "parse", parse_losing_an_item)

    (poll,) = monitor.run_once().polls

    assert len(parsed_bodies) == 2 and parsed_bodies[1] == whole
    assert (poll.items, poll.new_articles) == (5, 1)


def test_run_once_clears_the_next_poll_a_daemon_scheduled(server, make_monitor) -> None:
    server.add_feed("/cn", rss([_other_item(1)]))
    server.add_feed("/tw", rss([_other_item(2)]))
    monitor = make_monitor(feeds={"rfi-cn": server.url("/cn"), "rfi-tw": server.url("/tw")})
    monitor.run_once()
    monitor.store.set_next_poll("rfi-cn", datetime.now(UTC) + timedelta(minutes=5))

    monitor.run_once()

    states = monitor.store.feed_states()
    assert states["rfi-cn"].next_poll_at is None and states["rfi-tw"].next_poll_at is None


def test_run_once_writes_every_unchanged_feeds_state(server, make_monitor) -> None:
    clock = Clock()
    feeds = {}
    for number in range(3):
        server.add_feed(f"/f{number}", rss([_other_item(number)]), etag=f'"v{number}"')
        feeds[f"feed-{number}"] = server.url(f"/f{number}")
    monitor = make_monitor(feeds=feeds, clock=clock)
    monitor.run_once()
    clock.advance(600)

    polls = monitor.run_once().polls

    assert all(poll.not_modified and poll.http_status == 304 for poll in polls)
    states = monitor.store.feed_states()
    assert {name: states[name].last_poll_at for name in feeds} == dict.fromkeys(feeds, clock.now)
    assert all(states[name].etag == f'"v{number}"' for number, name in enumerate(feeds))


@pytest.mark.skipif(default_worker_count() == 0, reason="one core: no parser processes")
def test_run_once_with_many_feeds_parses_in_worker_processes(
    server, hook, make_monitor, monkeypatch
) -> None:
    monkeypatch.setattr(ParsePool, "SMALL_BODY_BYTES", 0)  # these test feeds are small
    feeds = {}
    for number in range(PARSE_WORKERS_MIN_FEEDS):
        server.add_feed(f"/f{number}", rss([_other_item(number)]))
        feeds[f"feed-{number}"] = server.url(f"/f{number}")
    monitor = make_monitor(feeds=feeds)

    report = monitor.run_once()

    assert monitor.parser.worker_pids(), "no feed was parsed in a worker process"
    assert sum(poll.new_articles for poll in report.polls) == PARSE_WORKERS_MIN_FEEDS
    assert all(poll.ok for poll in report.polls)
    # Articles parsed in workers are matched like any other.
    for number in range(PARSE_WORKERS_MIN_FEEDS):
        server.add_feed(f"/f{number}", rss([_korean_item(100 + number), _other_item(number)]))
    monitor.run_once()
    assert len(hook.requests) == PARSE_WORKERS_MIN_FEEDS
    pids = monitor.parser.worker_pids()
    monitor.close()
    wait_until(lambda: not any(Path(f"/proc/{pid}").exists() for pid in pids), "workers to exit")
