"""Several rules, one article, one channel: alerts due at the same moment go out as one
message naming every rule, while each rule keeps its own delivery (counts, retries).
Real SQLite, a real feed server, real SMTP and webhook receivers, an injected clock."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from feeds import Item, rss
from processes import run_cli
from receivers import SmtpReceiver
from texts import distinct_text

import monitor.delivery.outbox
from monitor.service.configuration import load_config
from monitor.service.daemon import Monitor

SHANGHAI = ZoneInfo("Asia/Shanghai")
KOREA = {"name": "korea-japan", "any": ["韩日"], "notify": ["hook"]}
LABOUR = {"name": "forced-labour", "any": ["强征劳工"], "notify": ["hook"]}
BOTH_TITLE = "[korea-japan, forced-labour] 韩日强征劳工诉讼 第1轮"


def cst(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, second, tzinfo=SHANGHAI).astimezone(UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def both(number: int = 1, published: datetime | None = None, **fields: str) -> Item:
    """An article that both rules match (韩日 and 强征劳工 in its title)."""
    return Item(
        **{
            "title": f"韩日强征劳工诉讼 第{number}轮",
            "link": f"https://www.rfi.fr/cn/case-{number}",
            "guid": f"case-{number}",
            "description": f"<p>韩日两国就强征劳工问题再起争议。{distinct_text(number)}</p>",
            "published": published or cst(26, 9, 59),
            **fields,
        }
    )


class Desk:
    """A feed, a monitor with an injected clock, and helpers to publish, poll and send."""

    def __init__(self, server, config: Path, clock: Clock, monitors: list[Monitor]) -> None:
        self.server = server
        self.clock = clock
        self.monitor = Monitor(load_config(config), clock=clock)
        monitors.append(self.monitor)
        server.add_feed("/cn", rss([]))
        self.monitor.run_once()  # the baseline

    def poll_at(self, moment: datetime, *items: Item):
        self.clock.now = moment
        if items:
            self.server.add_feed("/cn", rss(list(items)))
        return self.monitor.run_once()

    def send_at(self, moment: datetime):
        self.clock.now = moment
        return self.monitor.send_due(ignore_backoff=False)

    def counts(self) -> dict[str, int]:
        return self.monitor.store.delivery_counts(self.clock())


@pytest.fixture
def desk_for(server, hook, write_config) -> Iterator[Callable[..., Desk]]:
    monitors: list[Monitor] = []

    def make(*rules: dict, channels: dict | None = None, **top_level: object) -> Desk:
        config = write_config(
            feeds={"rfi-cn": server.url("/cn")},
            channels=channels or {"hook": hook.json_url("/alerts")},
            rules=list(rules),
            **top_level,
        )
        return Desk(server, config, Clock(cst(26, 10, 0)), monitors)

    yield make
    for made in monitors:
        made.close()


def _titles(hook) -> list[str]:
    return [request.json["title"] for request in hook.requests]


# --------------------------------------------------------------------------- one message


def test_two_rules_one_channel_one_article_send_one_email_naming_both(
    server, write_config, tmp_path: Path
) -> None:
    with SmtpReceiver() as smtp:
        server.add_feed("/cn", rss([both(published=datetime.now(UTC) - timedelta(minutes=1))]))
        config = write_config(
            feeds={"rfi-cn": {"url": server.url("/cn"), "notify_existing": True}},
            channels={"mail": smtp.mailto_url()},
            rules=[{**KOREA, "notify": ["mail"]}, {**LABOUR, "notify": ["mail"]}],
        )

        run = run_cli("run", "--once", "--config", str(config), cwd=tmp_path)
        status = run_cli("status", "--json", "--config", str(config), cwd=tmp_path)

        assert run.returncode == 0, run.stderr
        (mail,) = smtp.messages  # run --once returns once every send is done
        assert mail.subject == BOTH_TITLE
        text = mail.part("text/plain") or ""
        assert "Matched by korea-japan: 韩日" in text
        assert "Matched by forced-labour: 强征劳工" in text
        assert "韩日两国就强征劳工问题再起争议" in text  # the excerpt, once
        assert json.loads(status.stdout)["deliveries"] == {
            "pending": 0,
            "held": 0,
            "sent": 2,  # one per rule
            "failed": 0,
        }


def test_two_rules_two_channels_send_one_message_to_each(desk_for, hook) -> None:
    channels = {"hook": hook.json_url("/a"), "other": hook.json_url("/b")}
    desk = desk_for(
        {**KOREA, "notify": ["hook", "other"]},
        {**LABOUR, "notify": ["other", "hook"]},
        channels=channels,
    )

    report = desk.poll_at(cst(26, 10, 0), both())

    assert sorted((request.path, request.json["title"]) for request in hook.requests) == [
        ("/a", BOTH_TITLE),
        ("/b", BOTH_TITLE),
    ]
    assert (report.delivery.attempted, report.delivery.sent) == (4, 4)
    assert desk.counts() == {"pending": 0, "held": 0, "sent": 4, "failed": 0}


def test_one_rule_notifying_a_channel_alone_is_not_joined_by_another_rules_article(
    desk_for, hook
) -> None:
    desk = desk_for(KOREA, LABOUR)
    labour_only = Item("强征劳工诉讼", link="https://e.org/l", guid="l", published=cst(26, 9, 58))
    korea_only = Item("韩日对话", link="https://e.org/k", guid="k", published=cst(26, 9, 57))

    desk.poll_at(cst(26, 10, 0), labour_only, korea_only, both())

    assert sorted(_titles(hook)) == sorted(
        [BOTH_TITLE, "[forced-labour] 强征劳工诉讼", "[korea-japan] 韩日对话"]
    )


# --------------------------------------------------------------------------- held ones


def test_digest_rule_and_immediate_rule_send_the_immediate_alert_alone_now_the_digest_later(
    desk_for, hook
) -> None:
    desk = desk_for(KOREA, {**LABOUR, "digest": "1h"})

    desk.poll_at(cst(26, 10, 10), both())

    assert _titles(hook) == ["[korea-japan] 韩日强征劳工诉讼 第1轮"]
    body = hook.requests[0].json["message"]
    assert "Matched:** 韩日" in body and "forced-labour" not in body
    assert desk.counts() == {"pending": 0, "held": 1, "sent": 1, "failed": 0}

    desk.send_at(cst(26, 11, 0))

    assert _titles(hook)[1:] == ["[forced-labour] 1 new article"]
    assert desk.counts() == {"pending": 0, "held": 0, "sent": 2, "failed": 0}


def test_quiet_hours_rules_released_together_stay_one_message_per_rule(desk_for, hook) -> None:
    quiet = {"quiet_hours": "23:00-07:00"}
    desk = desk_for({**KOREA, **quiet}, {**LABOUR, **quiet})
    desk.poll_at(cst(27, 1, 0), both(published=cst(27, 0, 55)))
    assert hook.requests == []

    desk.send_at(cst(27, 7, 0))

    assert sorted(_titles(hook)) == [
        "[forced-labour] 韩日强征劳工诉讼 第1轮",
        "[korea-japan] 韩日强征劳工诉讼 第1轮",
    ]


# --------------------------------------------------------------------------- templates


def test_rule_template_applies_only_to_messages_of_that_rule_alone(desk_for, hook) -> None:
    channels = {
        "hook": hook.json_url("/plain"),
        "styled": {
            "urls": [hook.json_url("/styled")],
            "template": "CHANNEL {{ rules|join(' & ') }}: {{ article.title }}",
        },
    }
    notify = {"notify": ["hook", "styled"]}
    korea = {**KOREA, **notify, "template": "KOREA-TEMPLATE {{ article.title }}"}
    desk = desk_for(korea, {**LABOUR, **notify}, channels=channels)
    korea_only = Item("韩日对话", link="https://e.org/k", guid="k", published=cst(26, 9, 57))

    desk.poll_at(cst(26, 10, 0), korea_only, both())

    by_path_title = {
        (request.path, request.json["title"]): request.json["message"] for request in hook.requests
    }
    assert len(by_path_title) == 4
    # Alone, the rule's own template, on both channels.
    assert by_path_title[("/plain", "[korea-japan] 韩日对话")] == "KOREA-TEMPLATE 韩日对话"
    assert by_path_title[("/styled", "[korea-japan] 韩日对话")] == "KOREA-TEMPLATE 韩日对话"
    # With another rule: the channel's template, or the default message.
    assert by_path_title[("/styled", BOTH_TITLE)] == (
        "CHANNEL korea-japan & forced-labour: 韩日强征劳工诉讼 第1轮"
    )
    plain = by_path_title[("/plain", BOTH_TITLE)]
    assert "TEMPLATE" not in plain and "Matched by korea-japan:** 韩日" in plain


# --------------------------------------------------------------------------- retries


def test_failed_combined_message_is_retried_as_one_message(desk_for, hook) -> None:
    hook.set_status(500)
    desk = desk_for(KOREA, LABOUR, delivery={"retry_base": "30s", "attempts": 3})
    desk.poll_at(cst(26, 10, 0), both())
    assert desk.counts() == {"pending": 2, "held": 0, "sent": 0, "failed": 0}
    hook.set_status(200)

    assert desk.send_at(cst(26, 10, 0, 29)).attempted == 0  # both wait for their retry
    report = desk.send_at(cst(26, 10, 0, 30))

    assert (report.attempted, report.sent) == (2, 2)
    assert _titles(hook) == [BOTH_TITLE, BOTH_TITLE]
    assert [request.status for request in hook.requests] == [500, 200]
    assert desk.counts() == {"pending": 0, "held": 0, "sent": 2, "failed": 0}


def test_combined_message_failing_for_good_fails_both_and_retry_sends_them_together(
    desk_for, hook
) -> None:
    hook.set_status(500)
    desk = desk_for(KOREA, LABOUR, delivery={"attempts": 1})
    desk.poll_at(cst(26, 10, 0), both())
    assert desk.counts()["failed"] == 2
    hook.set_status(200)

    assert desk.monitor.store.retry_failed(cst(26, 10, 5)) == 2
    desk.send_at(cst(26, 10, 5))

    assert _titles(hook) == [BOTH_TITLE, BOTH_TITLE]
    assert desk.counts() == {"pending": 0, "held": 0, "sent": 2, "failed": 0}


# --------------------------------------------------------------------------- not together


def test_rule_matching_after_an_edit_sends_its_own_message_later(desk_for, hook) -> None:
    desk = desk_for(KOREA, LABOUR)
    first = both(title="韩日对话 第1轮", description="<p>韩日两国外长会谈。</p>")
    desk.poll_at(cst(26, 10, 0), first)

    edited = both(title="韩日对话 第1轮", description="<p>会谈涉及强征劳工问题。</p>")
    desk.poll_at(cst(26, 10, 5), edited)

    assert _titles(hook) == ["[korea-japan] 韩日对话 第1轮", "[forced-labour] 韩日对话 第1轮"]
    assert desk.counts() == {"pending": 0, "held": 0, "sent": 2, "failed": 0}


def test_rule_matching_after_an_edit_while_the_other_waits_for_a_retry_goes_alone(
    desk_for, hook
) -> None:
    hook.set_status(500, path="/down")
    channels = {"hook": [hook.json_url("/up"), hook.json_url("/down")]}
    desk = desk_for(KOREA, LABOUR, channels=channels, delivery={"attempts": 5})
    first = both(title="韩日对话 第1轮", description="<p>韩日两国外长会谈。</p>")
    desk.poll_at(cst(26, 10, 0), first)  # /up has it, /down failed: a retry in 30 s
    hook.set_status(200, path="/down")

    edited = both(title="韩日对话 第1轮", description="<p>会谈涉及强征劳工问题。</p>")
    desk.poll_at(cst(26, 10, 0, 10), edited)  # run --once: the retry is attempted too

    sent = [(request.path, request.json["title"]) for request in hook.requests]
    assert sent[:2] == [
        ("/up", "[korea-japan] 韩日对话 第1轮"),
        ("/down", "[korea-japan] 韩日对话 第1轮"),
    ]
    # Not due together (one waited for its retry, its /up service done): two messages.
    assert sorted(sent[2:]) == [
        ("/down", "[forced-labour] 韩日对话 第1轮"),
        ("/down", "[korea-japan] 韩日对话 第1轮"),
        ("/up", "[forced-labour] 韩日对话 第1轮"),
    ]
    assert desk.counts() == {"pending": 0, "held": 0, "sent": 2, "failed": 0}


def test_deliveries_of_one_message_across_a_page_boundary_stay_one_message(
    desk_for, hook, monkeypatch
) -> None:
    monkeypatch.setattr(monitor.delivery.outbox, "PAGE_SIZE", 3)
    monkeypatch.setattr(monitor.delivery.outbox, "CLAIM_BATCH", 3)
    desk = desk_for(KOREA, LABOUR)
    articles = [both(number, cst(26, 9, 50 + number)) for number in range(1, 6)]

    report = desk.poll_at(cst(26, 10, 0), *articles)

    assert (report.delivery.attempted, report.delivery.sent) == (10, 10)
    assert sorted(_titles(hook)) == sorted(
        f"[korea-japan, forced-labour] 韩日强征劳工诉讼 第{n}轮" for n in range(1, 6)
    )


def test_dry_run_shows_the_combined_message_and_marks_nothing(
    desk_for, hook, write_config, caplog
) -> None:
    desk = desk_for(KOREA, LABOUR)
    dry = Monitor(load_config(desk.monitor.runtime.config.path), dry_run=True, clock=desk.clock)
    try:
        desk.clock.now = cst(26, 10, 0)
        desk.server.add_feed("/cn", rss([both()]))
        with caplog.at_level("INFO", logger="monitor.delivery.outbox"):
            report = dry.run_once()
    finally:
        dry.close()

    assert (report.delivery.attempted, report.delivery.sent) == (2, 0)
    assert hook.requests == []
    lines = [
        record.getMessage() for record in caplog.records if "status=dry_run" in record.getMessage()
    ]
    assert len(lines) == 1 and repr(BOTH_TITLE) in lines[0]
    assert "rule=korea-japan,forced-labour" in lines[0]
    assert desk.counts()["pending"] == 2


def test_status_text_counts_each_rule_of_a_combined_message(
    server, hook, write_config, tmp_path: Path
) -> None:
    server.add_feed("/cn", rss([both(published=datetime.now(UTC) - timedelta(minutes=1))]))
    config = write_config(
        feeds={"rfi-cn": {"url": server.url("/cn"), "notify_existing": True}},
        channels={"hook": hook.json_url("/alerts")},
        rules=[KOREA, LABOUR],
    )

    run = run_cli("run", "--once", "--config", str(config), cwd=tmp_path)
    status = run_cli("status", "--config", str(config), cwd=tmp_path)

    assert run.returncode == status.returncode == 0, run.stderr
    assert _titles(hook) == [BOTH_TITLE]
    assert "deliveries: pending 0, held 0, sent 2, failed 0" in status.stdout
