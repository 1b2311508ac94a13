"""Stories end to end: two local feeds, cn and tw, serving RFI's article and its /tw version
(and other news on the same topic), a real SQLite file, webhooks to a local receiver, and
the command line as a user runs it."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from feeds import Item, rss
from processes import run_cli
from story_articles import DIALOGUE_CN, DIALOGUE_TW, MINISTERS_MEETING, article, item
from web_view import start_view

from monitor.service.configuration import load_config
from monitor.service.daemon import CycleReport, Monitor
from monitor.service.pipeline import story_grouping
from monitor.store import Store

SHANGHAI = ZoneInfo("Asia/Shanghai")
KOREA = {"name": "korea-japan", "any": ["韩日", "日韩"], "notify": ["a", "b"]}
DIALOGUE = {"name": "dialogue", "any": ["战略对话"], "notify": ["a"]}
CN_LINK = "https://www.rfi.fr/cn/news/dialogue"
TW_LINK = "https://www.rfi.fr/tw/news/dialogue"


def cst(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=SHANGHAI).astimezone(UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Newsroom:
    """Feeds rfi-cn and rfi-tw on the local server, a monitor polling them on a clock of
    its own (after a first, baseline cycle), and a webhook receiver with channels a, b."""

    def __init__(self, server, hook, config: Path, clock: Clock) -> None:
        self.server = server
        self.hook = hook
        self.clock = clock
        self.config = config
        server.add_feed("/cn", rss([]))
        server.add_feed("/tw", rss([]))
        self.monitor = Monitor(load_config(config), clock=clock)
        self.monitor.run_once()  # the baseline
        self.cn: list[Item] = []
        self.tw: list[Item] = []

    def publish(self, feed: str, text: tuple[str, str], key: str) -> None:
        """Add an article to rfi-cn or rfi-tw, published now."""
        items = self.cn if feed == "cn" else self.tw
        items.insert(0, item(text, key, self.clock.now, site=feed))
        self.server.add_feed(f"/{feed}", rss(items))

    def cycle_at(self, moment: datetime) -> CycleReport:
        self.clock.now = moment
        return self.monitor.run_once()

    def messages(self) -> Counter[tuple[str, str]]:
        """(channel, title) of every message received, counted."""
        return Counter((_channel(request), request.json["title"]) for request in self.hook.requests)

    def cli(self, *arguments: str) -> Any:
        return run_cli(*arguments, "--config", str(self.config), cwd=self.config.parent)


@pytest.fixture
def newsroom(server, hook, write_config) -> Iterator[Callable[..., Newsroom]]:
    made: list[Newsroom] = []

    def make(
        *rules: dict, now: datetime | None = None, channels: dict | None = None, **top: Any
    ) -> Newsroom:
        config = write_config(
            feeds={"rfi-cn": server.url("/cn"), "rfi-tw": server.url("/tw")},
            channels=channels or {"a": hook.json_url("/a"), "b": hook.json_url("/b")},
            rules=list(rules),
            **top,
        )
        room = Newsroom(server, hook, config, Clock(now or cst(26, 10)))
        made.append(room)
        return room

    yield make
    for room in made:
        room.monitor.close()


def _channel(request: Any) -> str:
    return request.path.split("?", 1)[0].strip("/")


def _json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


# --------------------------------------------------------------------------- alerts


def test_a_story_in_cn_then_tw_alerts_once_per_rule_and_channel(newsroom) -> None:
    room = newsroom(KOREA, DIALOGUE)
    room.publish("cn", DIALOGUE_CN, "dialogue")
    first = room.cycle_at(cst(26, 10, 5))
    room.publish("tw", DIALOGUE_TW, "dialogue")
    second = room.cycle_at(cst(26, 11, 5))

    assert room.messages() == {
        ("a", f"[korea-japan, dialogue] {DIALOGUE_CN[0]}"): 1,
        ("b", f"[korea-japan] {DIALOGUE_CN[0]}"): 1,
    }
    assert first.delivery.sent == 3
    # The /tw version matched both rules (韓日 and 戰略對話 folded to Simplified) and sent
    # nothing.
    assert sum(poll.matches for poll in second.polls) == 2
    assert (second.delivery.attempted, sum(poll.deliveries for poll in second.polls)) == (0, 0)


def test_a_story_in_cn_and_tw_in_one_cycle_alerts_once_per_rule_and_channel(newsroom) -> None:
    room = newsroom(KOREA, DIALOGUE)
    room.publish("cn", DIALOGUE_CN, "dialogue")
    room.publish("tw", DIALOGUE_TW, "dialogue")

    room.cycle_at(cst(26, 10, 5))

    # Whichever feed was stored first alerted; the other was listed under it or suppressed.
    by_channel = Counter(channel for channel, _ in room.messages().elements())
    assert by_channel == {"a": 1, "b": 1}
    assert room.monitor.store.delivery_counts()["sent"] == 3


def test_different_stories_sharing_the_keywords_alert_each(newsroom) -> None:
    room = newsroom(KOREA)
    room.publish("cn", DIALOGUE_CN, "dialogue")
    room.publish("tw", MINISTERS_MEETING, "meeting")

    room.cycle_at(cst(26, 10, 5))

    assert room.messages() == {
        ("a", f"[korea-japan] {DIALOGUE_CN[0]}"): 1,
        ("b", f"[korea-japan] {DIALOGUE_CN[0]}"): 1,
        ("a", f"[korea-japan] {MINISTERS_MEETING[0]}"): 1,
        ("b", f"[korea-japan] {MINISTERS_MEETING[0]}"): 1,
    }


def test_a_held_digest_lists_the_later_article_of_the_story_as_also(newsroom) -> None:
    room = newsroom({**KOREA, "notify": ["a"], "digest": "1h"})
    room.publish("cn", DIALOGUE_CN, "dialogue")
    room.cycle_at(cst(26, 10, 5))
    room.publish("tw", DIALOGUE_TW, "dialogue")
    room.publish("cn", MINISTERS_MEETING, "meeting")
    room.cycle_at(cst(26, 10, 35))
    assert room.hook.requests == []  # held until 11:00

    room.cycle_at(cst(26, 11, 0))

    (digest,) = room.hook.requests
    assert digest.json["title"] == "[korea-japan] 2 new articles"
    body = digest.json["message"]
    assert f"also: rfi-tw {DIALOGUE_TW[0]} <{TW_LINK}>" in body
    # Listed under the story's first article, before the next article of the digest.
    assert (
        body.index(DIALOGUE_CN[0]) < body.index("also: rfi-tw") < body.index(MINISTERS_MEETING[0])
    )
    assert body.count("also:") == 1


def test_an_alert_held_by_quiet_hours_lists_also_for_templates_too(newsroom, hook) -> None:
    template = (
        "{{ article.title }}\n"
        "{% for later in article.also %}ALSO {{ later.feed }} / {{ later.title }}{% endfor %}"
    )
    room = newsroom(
        {**KOREA, "notify": ["a", "b"], "quiet_hours": "09:00-11:00"},
        channels={
            "a": hook.json_url("/a"),
            "b": {"urls": hook.json_url("/b"), "template": template},
        },
    )
    room.publish("cn", DIALOGUE_CN, "dialogue")
    room.cycle_at(cst(26, 10, 5))
    room.publish("tw", DIALOGUE_TW, "dialogue")
    room.cycle_at(cst(26, 10, 35))

    room.cycle_at(cst(26, 11, 0))

    by_channel = {_channel(request): request.json for request in room.hook.requests}
    assert by_channel["a"]["title"] == f"[korea-japan] {DIALOGUE_CN[0]}"  # an alert
    assert f"also: rfi-tw {DIALOGUE_TW[0]}" in by_channel["a"]["message"]
    assert f"ALSO rfi-tw / {DIALOGUE_TW[0]}" in by_channel["b"]["message"]


def test_a_later_article_stored_between_reading_and_claiming_is_in_the_message(
    newsroom,
) -> None:
    room = newsroom({**KOREA, "notify": ["a"]})
    room.publish("cn", DIALOGUE_CN, "dialogue")
    store = room.monitor.store
    feeds = {feed.name: feed for feed in room.monitor.runtime.config.feeds}
    room.clock.now = cst(26, 10, 5)
    room.monitor.poll(feeds["rfi-cn"])
    room.publish("tw", DIALOGUE_TW, "dialogue")
    claim = store.claim_deliveries

    def poll_tw_then_claim(*arguments: Any, **options: Any) -> set[int]:
        # The sender has read the alert; the /tw version is stored before it claims it.
        room.monitor.poll(feeds["rfi-tw"])
        return claim(*arguments, **options)

    store.claim_deliveries = poll_tw_then_claim  # type: ignore[method-assign]
    room.monitor.send_due(ignore_backoff=True)

    (alert,) = room.hook.requests
    assert f"also: rfi-tw {DIALOGUE_TW[0]} <{TW_LINK}>" in alert.json["message"]


def test_a_later_article_stored_while_the_alert_is_in_flight_sends_nothing(newsroom) -> None:
    room = newsroom({**KOREA, "notify": ["a"]})
    room.publish("cn", DIALOGUE_CN, "dialogue")
    store = room.monitor.store
    feeds = {feed.name: feed for feed in room.monitor.runtime.config.feeds}
    room.clock.now = cst(26, 10, 5)
    room.monitor.poll(feeds["rfi-cn"])
    room.publish("tw", DIALOGUE_TW, "dialogue")
    claim = store.claim_deliveries

    def claim_then_poll_tw(*arguments: Any, **options: Any) -> set[int]:
        claimed = claim(*arguments, **options)
        room.monitor.poll(feeds["rfi-tw"])  # the alert is claimed: on its way
        return claimed

    store.claim_deliveries = claim_then_poll_tw  # type: ignore[method-assign]
    room.monitor.send_due(ignore_backoff=True)
    room.monitor.send_due(ignore_backoff=True)

    (alert,) = room.hook.requests
    assert "also:" not in alert.json["message"]
    assert store.delivery_counts() == {"pending": 0, "held": 0, "sent": 1, "failed": 0}


def test_per_story_false_alerts_every_article(newsroom) -> None:
    room = newsroom({**KOREA, "per_story": False})
    room.publish("cn", DIALOGUE_CN, "dialogue")
    room.cycle_at(cst(26, 10, 5))
    room.publish("tw", DIALOGUE_TW, "dialogue")
    room.cycle_at(cst(26, 11, 5))

    assert room.messages() == {
        ("a", f"[korea-japan] {DIALOGUE_CN[0]}"): 1,
        ("b", f"[korea-japan] {DIALOGUE_CN[0]}"): 1,
        ("a", f"[korea-japan] {DIALOGUE_TW[0]}"): 1,
        ("b", f"[korea-japan] {DIALOGUE_TW[0]}"): 1,
    }


# --------------------------------------------------------------------------- command line


def _dialogue_then_tw_an_hour_later(
    newsroom: Callable[..., Newsroom], *rules: dict, **top: Any
) -> tuple[Newsroom, datetime]:
    """The dialogue and another meeting in rfi-cn, polled an hour ago; the dialogue's /tw
    version polled now. Return the room and now."""
    now = datetime.now(UTC).replace(microsecond=0)
    room = newsroom(*rules, now=now - timedelta(hours=2), **top)
    room.publish("cn", DIALOGUE_CN, "dialogue")
    room.publish("cn", MINISTERS_MEETING, "meeting")
    room.cycle_at(now - timedelta(hours=1))
    room.publish("tw", DIALOGUE_TW, "dialogue")
    room.cycle_at(now)
    return room, now


def test_stories_lists_the_story_of_cn_and_tw_for_people_and_as_json(newsroom) -> None:
    room, now = _dialogue_then_tw_an_hour_later(newsroom, KOREA)

    text = room.cli("stories")
    as_json = room.cli("stories", "--json")
    every = room.cli("stories", "--all", "--json")
    none_recent = room.cli("stories", "--since", "30m")

    assert (text.returncode, as_json.returncode, every.returncode) == (0, 0, 0), text.stderr
    first_seen = (now - timedelta(hours=1)).astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")
    lines = text.stdout.splitlines()
    assert lines[0].endswith(f"] {DIALOGUE_CN[0]}")
    assert lines[1] == f"  first seen  {first_seen} CST"
    assert lines[2].startswith("  rfi-cn  ") and lines[2].endswith(DIALOGUE_CN[0])
    assert lines[3].strip() == CN_LINK
    assert lines[4].startswith("  rfi-tw  ") and lines[5].strip() == TW_LINK
    (story,) = _json_lines(as_json.stdout)
    assert story == {
        "id": story["id"],
        "first_seen": (now - timedelta(hours=1)).isoformat().replace("+00:00", "Z"),
        "title": DIALOGUE_CN[0],
        "articles": [
            {
                "feed": "rfi-cn",
                "title": DIALOGUE_CN[0],
                "link": CN_LINK,
                "published": (now - timedelta(hours=2)).isoformat().replace("+00:00", "Z"),
            },
            {
                "feed": "rfi-tw",
                "title": DIALOGUE_TW[0],
                "link": TW_LINK,
                "published": (now - timedelta(hours=1)).isoformat().replace("+00:00", "Z"),
            },
        ],
    }
    assert [len(each["articles"]) for each in _json_lines(every.stdout)] == [2, 1]
    assert none_recent.returncode == 0 and none_recent.stdout == ""
    assert "no story of several articles" in none_recent.stderr


def test_rules_test_json_gives_each_hit_its_story_and_what_suppressed_it(newsroom) -> None:
    room, _ = _dialogue_then_tw_an_hour_later(newsroom, KOREA, DIALOGUE)

    result = room.cli("rules", "test", "--json")
    text = room.cli("rules", "test", "--rule", "dialogue")

    assert result.returncode == 0, result.stderr
    hits = {(hit["rule"], hit["link"]): hit for hit in _json_lines(result.stdout)}
    story = hits[("korea-japan", CN_LINK)]["story"]
    meeting = hits[("korea-japan", "https://www.rfi.fr/cn/news/meeting")]
    assert isinstance(story, int) and meeting["story"] not in (None, story)
    assert {key: hit["story"] for key, hit in hits.items() if key[1] != meeting["link"]} == {
        ("korea-japan", CN_LINK): story,
        ("dialogue", CN_LINK): story,
        ("korea-japan", TW_LINK): story,
        ("dialogue", TW_LINK): story,
    }
    assert hits[("korea-japan", TW_LINK)]["suppressed_by"] == CN_LINK
    assert hits[("dialogue", TW_LINK)]["suppressed_by"] == CN_LINK
    assert "suppressed_by" not in hits[("korea-japan", CN_LINK)]
    assert "suppressed_by" not in meeting
    assert f"sent nothing: its story had alerted with {CN_LINK}" in text.stdout


def test_stories_false_groups_nothing(newsroom) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    room = newsroom(KOREA, now=now - timedelta(hours=2), stories=False)
    room.publish("cn", DIALOGUE_CN, "dialogue")
    room.cycle_at(now - timedelta(hours=1))
    room.publish("tw", DIALOGUE_TW, "dialogue")
    room.cycle_at(now)

    stories = room.cli("stories", "--all")
    hits = _json_lines(room.cli("rules", "test", "--json").stdout)

    assert sorted(title for _, title in room.messages()) == sorted(
        2 * [f"[korea-japan] {DIALOGUE_CN[0]}", f"[korea-japan] {DIALOGUE_TW[0]}"]
    )
    assert (stories.returncode, stories.stdout) == (0, "")
    assert "grouping is off" in stories.stderr
    assert [hit["story"] for hit in hits] == [None, None]
    assert all("suppressed_by" not in hit for hit in hits)


# --------------------------------------------------------------------------- web view


def test_the_web_view_lists_the_story_and_why_its_tw_match_sent_nothing(newsroom) -> None:
    room, _ = _dialogue_then_tw_an_hour_later(newsroom, KOREA, http={"listen": "127.0.0.1:0"})

    view = start_view(room.config)
    try:
        page = view.text("/stories")
        api = view.json("/api/stories")
        matches = view.json("/api/matches")["matches"]
        matches_page = view.text("/matches")
    finally:
        view.close()

    (story,) = api["stories"]  # the other meeting is a story of one article: not listed
    assert story["title"] == DIALOGUE_CN[0]
    assert [(article["feed"], article["link"]) for article in story["articles"]] == [
        ("rfi-cn", CN_LINK),
        ("rfi-tw", TW_LINK),
    ]
    assert DIALOGUE_TW[0] in page and f'href="{TW_LINK}"' in page
    assert MINISTERS_MEETING[0] not in page
    assert "2 articles" in page
    # The /tw article's match sent nothing: the story's alert (the /cn article's) had gone.
    (tw_match,) = [match for match in matches if match["feed"] == "rfi-tw"]
    assert {delivery["suppressed_by"] for delivery in tw_match["deliveries"]} == {CN_LINK}
    cn_match = next(match for match in matches if match["link"] == CN_LINK)
    assert {delivery["suppressed_by"] for delivery in cn_match["deliveries"]} == {None}
    assert "nothing sent: its story alerted" in matches_page


# ------------------------------------------------------------------ first polls, grouped later


def test_first_polls_are_grouped_after_the_cycle_and_status_counts_those_waiting(
    server, hook, write_config
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    server.add_feed(
        "/cn",
        rss([item(DIALOGUE_CN, "dialogue", now), item(MINISTERS_MEETING, "meeting", now)]),
    )
    server.add_feed("/tw", rss([item(DIALOGUE_TW, "dialogue", now, site="tw")]))
    config = write_config(
        feeds={"rfi-cn": server.url("/cn"), "rfi-tw": server.url("/tw")},
        channels={"a": hook.json_url("/a"), "b": hook.json_url("/b")},
        rules=[KOREA],
    )

    def cli(*arguments: str) -> Any:
        return run_cli(*arguments, "--config", str(config), cwd=config.parent)

    cycle = cli("run", "--once")
    grouped = _json_lines(cli("stories", "--all", "--json").stdout)
    after = json.loads(cli("status", "--json").stdout)["stories"]

    # The first polls (baselines: no alert) were grouped at the end of the cycle.
    assert cycle.returncode == 0, cycle.stderr
    assert hook.requests == []
    assert sorted([each["feed"] for each in story["articles"]] for story in grouped) == [
        ["rfi-cn"],
        ["rfi-cn", "rfi-tw"],
    ]
    assert after == {"articles_to_group": 0}

    # A first poll stored, not grouped yet (as while a daemon works through a large one).
    settings = load_config(config)
    store = Store(settings.database_url)
    try:
        with store.transaction() as transaction:
            transaction.upsert_articles(
                "wire",
                [article(DIALOGUE_CN, "again", now, site="wire")],
                baseline=True,
                now=now,
                stories=story_grouping(settings.stories),
            )
    finally:
        store.close()
    waiting = cli("status")
    waiting_json = json.loads(cli("status", "--json").stdout)["stories"]

    assert waiting_json == {"articles_to_group": 1}
    assert "stories: 1 articles of first polls still to group" in waiting.stdout
