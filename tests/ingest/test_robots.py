"""robots.txt for article pages (RFC 9309), read from a local server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from monitor.ingest import Fetcher, robots
from monitor.ingest.robots import CACHE_SECONDS, RETRY_SECONDS, RobotsRules

ROBOTS = b"""User-agent: *
Disallow: /private/

User-agent: news-monitor
Disallow: /no-monitors/
Allow: /no-monitors/but-this
"""


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fetcher() -> Iterator[Fetcher]:
    created = Fetcher()
    yield created
    created.close()


def allowed(rules: RobotsRules, url: str) -> bool:
    return rules.verdict(url, timeout_seconds=5).allowed


def test_our_group_of_robots_txt_decides_and_the_longest_rule_wins(server, fetcher) -> None:
    server.add_feed("/robots.txt", ROBOTS, content_type="text/plain")
    rules = RobotsRules(fetcher)

    # The group naming our product token applies, not the one for every robot.
    assert allowed(rules, server.url("/private/page"))
    assert not allowed(rules, server.url("/no-monitors/page"))
    assert allowed(rules, server.url("/no-monitors/but-this/page"))
    assert rules.verdict(server.url("/no-monitors/x"), timeout_seconds=5).reason == (
        "robots.txt disallows it"
    )
    assert server.hits("/robots.txt") == 1


@pytest.mark.parametrize("status", [404, 410, 401, 403])
def test_a_robots_txt_answered_4xx_allows_every_page(server, fetcher, status) -> None:
    server.set_response("/robots.txt", status, b"gone")

    assert allowed(RobotsRules(fetcher), server.url("/any/page"))


@pytest.mark.parametrize("status", [500, 503, 429])
def test_an_unreachable_robots_txt_allows_no_page_and_is_asked_again_later(
    server, fetcher, status
) -> None:
    server.set_response("/robots.txt", status, b"busy")
    clock = Clock()
    rules = RobotsRules(fetcher, clock=clock)

    verdict = rules.verdict(server.url("/page"), timeout_seconds=5)
    assert not verdict.allowed and f"robots.txt unreachable (HTTP {status})" in verdict.reason
    assert not allowed(rules, server.url("/other"))
    assert server.hits("/robots.txt") == 1

    server.set_response("/robots.txt", 404, b"")
    clock.now += RETRY_SECONDS + 1
    assert allowed(rules, server.url("/page"))
    assert server.hits("/robots.txt") == 2


def test_robots_txt_is_kept_a_day_then_asked_again_with_its_validators(server, fetcher) -> None:
    server.add_feed("/robots.txt", ROBOTS, content_type="text/plain", etag='"r1"')
    clock = Clock()
    rules = RobotsRules(fetcher, clock=clock)
    assert not allowed(rules, server.url("/no-monitors/page"))

    clock.now += CACHE_SECONDS - 1
    assert not allowed(rules, server.url("/no-monitors/page"))
    assert server.hits("/robots.txt") == 1
    clock.now += 2
    assert not allowed(rules, server.url("/no-monitors/page"))  # 304: the same rules

    assert server.hits("/robots.txt") == 2
    (_, first), (_, second) = [r for r in server.requests if r[0] == "/robots.txt"]
    assert "If-None-Match" not in first and second["If-None-Match"] == '"r1"'


def test_an_earlier_copy_stands_in_while_robots_txt_is_unreachable(server, fetcher) -> None:
    server.add_feed("/robots.txt", ROBOTS, content_type="text/plain")
    clock = Clock()
    rules = RobotsRules(fetcher, clock=clock)
    assert allowed(rules, server.url("/page"))

    server.set_response("/robots.txt", 503, b"")
    clock.now += CACHE_SECONDS + 1

    assert allowed(rules, server.url("/page"))
    assert not allowed(rules, server.url("/no-monitors/page"))


def test_each_origin_has_its_own_robots_txt(server, fetcher) -> None:
    server.add_feed("/robots.txt", ROBOTS, content_type="text/plain")
    rules = RobotsRules(fetcher)
    other = server.url("/no-monitors/page").replace("127.0.0.1", "localhost")

    assert not allowed(rules, server.url("/no-monitors/page"))
    assert not allowed(rules, other)
    assert server.hits("/robots.txt") == 2


def test_expired_origins_are_forgotten_once_many_are_kept(server, fetcher, monkeypatch) -> None:
    monkeypatch.setattr(robots, "MAX_ORIGINS", 1)
    server.add_feed("/robots.txt", ROBOTS, content_type="text/plain")
    clock = Clock()
    rules = RobotsRules(fetcher, clock=clock)
    assert allowed(rules, server.url("/page"))
    clock.now += CACHE_SECONDS + 1

    # A second origin: the first one's expired entry goes.
    assert allowed(rules, server.url("/page").replace("127.0.0.1", "localhost"))

    assert rules.known_origins() == 1
