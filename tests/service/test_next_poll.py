"""When a feed is polled next, and the log line that says why it is later than its interval."""

from __future__ import annotations

import logging

import pytest
from feeds import Item, rss

from monitor.config import FeedConfig
from monitor.service.configuration import load_config
from monitor.service.daemon import Monitor
from monitor.service.next_poll import MAXIMUM_SERVER_HINT_SECONDS, NextPoll, next_poll
from monitor.service.pipeline import PollResult

FEED = FeedConfig(name="cn", url="https://www.rfi.fr/cn/rss", interval_seconds=5.0)


def _ok(**fields: object) -> PollResult:
    return PollResult("cn", ok=True, http_status=200, **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (_ok(), NextPoll(5.0, None)),
        (_ok(ttl_seconds=300.0), NextPoll(300.0, "ttl")),
        (_ok(ttl_seconds=3.0), NextPoll(5.0, None)),  # never sooner than the interval
        (_ok(max_age_seconds=60.0, max_age_source="max_age"), NextPoll(60.0, "max_age")),
        (_ok(max_age_seconds=600.0, max_age_source="expires", ttl_seconds=300.0),
         NextPoll(600.0, "expires")),
        (_ok(ttl_seconds=86400.0), NextPoll(MAXIMUM_SERVER_HINT_SECONDS, "ttl")),
        (PollResult("cn", ok=False, http_status=503, error_streak=1), NextPoll(5.0, None)),
        (PollResult("cn", ok=False, http_status=503, error_streak=3), NextPoll(20.0, "backoff")),
        (PollResult("cn", ok=False, http_status=429, error_streak=1, retry_after_seconds=90.0),
         NextPoll(90.0, "retry_after")),
    ],
)  # fmt: skip
def test_next_poll_says_what_made_it_later_than_the_interval(
    result: PollResult, expected: NextPoll
) -> None:
    assert next_poll(FEED, result, jitter_fraction=0.0) == expected


def test_next_poll_jitter_only_delays_and_is_no_reason() -> None:
    jittered = next_poll(FeedConfig("cn", FEED.url, jitter_seconds=30.0), _ok(), 0.5)

    assert jittered.delay_seconds == 600.0 + 15.0 and jittered.reason is None


def _poll_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.getMessage().startswith("poll feed=cn ")
    ]


def test_poll_log_says_once_why_the_next_poll_is_later_than_the_interval(
    server, write_config, caplog: pytest.LogCaptureFixture
) -> None:
    # `interval: 5s`, and the feed's <ttl>5</ttl> (minutes) makes it 5 minutes.
    server.add_feed("/cn", rss([Item("法国新闻", link="https://e.org/1", guid="1")], ttl_minutes=5))
    config = load_config(write_config(feeds={"cn": {"url": server.url("/cn"), "interval": "5s"}}))
    monitor = Monitor(config)
    feed = config.feed("cn")
    assert feed is not None
    caplog.set_level(logging.INFO, logger="monitor")
    try:
        results = [monitor.poll(feed, plan_next_poll=True) for _ in range(3)]
        # The feed drops its ttl, then its server sends Cache-Control: max-age.
        server.add_feed("/cn", rss([Item("法国新闻", link="https://e.org/1", guid="1")]))
        results.append(monitor.poll(feed, plan_next_poll=True))
        server.add_feed("/cn", rss([]), headers={"Cache-Control": "public, max-age=120"})
        results.append(monitor.poll(feed, plan_next_poll=True))
        results.append(monitor.poll(feed, plan_next_poll=True))
    finally:
        monitor.close()

    lines = _poll_lines(caplog)
    assert [result.next_poll_reason for result in results] == [
        "ttl", "ttl", "ttl", None, "max_age", "max_age"
    ]  # fmt: skip
    assert results[0].next_poll_seconds == 300  # the tests' configs have no jitter
    assert "next_poll_reason=ttl next_poll_in_seconds=300" in lines[0]
    assert "next_poll_reason" not in lines[1] + lines[2]
    assert "next_poll_reason=interval" in lines[3]
    assert "next_poll_reason=max_age next_poll_in_seconds=120" in lines[4]
    assert "next_poll_reason" not in lines[5]


def test_run_once_plans_no_next_poll_and_logs_no_reason(
    server, write_config, caplog: pytest.LogCaptureFixture
) -> None:
    server.add_feed("/cn", rss([], ttl_minutes=5))
    monitor = Monitor(load_config(write_config(feeds={"cn": server.url("/cn")})))
    caplog.set_level(logging.INFO, logger="monitor")
    try:
        (poll,) = monitor.run_once().polls
    finally:
        monitor.close()

    assert poll.next_poll_seconds is None
    assert all("next_poll_reason" not in line for line in _poll_lines(caplog))
