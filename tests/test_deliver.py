"""The outbox end to end: local feeds -> real SQLite -> held batches and retries -> real
webhook and SMTP receivers, with an injected clock (never a sleep) for every time-dependent
feature. The timezone is Asia/Shanghai (conftest's write_config)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from feeds import Item, rss
from receivers import SmtpReceiver, disable_apprise_throttle

from monitor.config.loader import load_config
from monitor.service.daemon import Monitor
from monitor.store.claims import claim_is_live, new_claimant, process_start
from monitor.store.database import Store

SHANGHAI = ZoneInfo("Asia/Shanghai")


def cst(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    """A wall-clock time in Shanghai in November 2026, as aware UTC."""
    return datetime(2026, 11, day, hour, minute, second, tzinfo=SHANGHAI).astimezone(UTC)


class Clock:
    """The time the monitor sees; the test sets it."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def set(self, moment: datetime) -> None:
        self.now = moment


def item(number: int, published: datetime, title: str | None = None) -> Item:
    return Item(
        title or f"韩日对话 第{number}轮",
        link=f"https://www.rfi.fr/cn/korea-{number}",
        guid=f"korea-{number}",
        description=f"<p>韩日两国第{number}轮对话。</p>",
        published=published,
    )


def rule(**options: object) -> dict[str, object]:
    return {"name": "korea-japan", "any": ["韩日"], "notify": ["hook"], **options}


@pytest.fixture
def monitors() -> Iterator[list[Monitor]]:
    created: list[Monitor] = []
    yield created
    for monitor in created:
        monitor.close()


class Desk:
    """A feed, a monitor on it with an injected clock, and helpers to publish and poll."""

    def __init__(self, server, make: Callable[[], Monitor], clock: Clock) -> None:
        self.server = server
        self.make = make
        self.clock = clock
        self.items: list[Item] = []
        self.monitor = make()
        server.add_feed("/cn", rss([]))
        self.monitor.run_once()  # the baseline: alerts nothing

    def publish(self, *items: Item) -> None:
        self.items = [*items, *self.items]
        self.server.add_feed("/cn", rss(self.items))

    def poll_at(self, moment: datetime, *items: Item):
        """At `moment`: publish the items, poll, and send what is due (run --once)."""
        self.clock.set(moment)
        if items:
            self.publish(*items)
        return self.monitor.run_once()

    def send_at(self, moment: datetime):
        """At `moment`: what the daemon's sender does (honours retry backoff)."""
        self.clock.set(moment)
        return self.monitor.send_due(ignore_backoff=False)

    def restart(self) -> None:
        self.monitor.close()
        self.monitor = self.make()

    def counts(self) -> dict[str, int]:
        return self.monitor.store.delivery_counts(self.clock())


@pytest.fixture
def desk_for(server, hook, write_config, monitors):
    """desk_for(rule options..., channels=..., start=...) -> Desk."""

    def make_desk(
        *rules: dict[str, object],
        channels: dict[str, object] | None = None,
        start: datetime | None = None,
        **top_level: object,
    ) -> Desk:
        path = write_config(
            feeds={"rfi-cn": server.url("/cn")},
            channels=channels or {"hook": hook.json_url("/alerts")},
            rules=list(rules) or [rule()],
            **top_level,
        )
        clock = Clock(start or cst(26, 10, 0))

        def make() -> Monitor:
            monitor = Monitor(load_config(path), clock=clock)
            monitors.append(monitor)
            return monitor

        return Desk(server, make, clock)

    return make_desk


def titles(request) -> list[str]:
    """The article titles a digest lists, in order."""
    body = request.json["message"]
    return [line for line in body.splitlines() if "韩日对话" in line and line.startswith("**")]


# --------------------------------------------------------------------------- digests


def test_digest_hourly_sends_one_message_oldest_first_at_the_window_end(desk_for, hook) -> None:
    desk = desk_for(rule(digest="1h"), start=cst(26, 10, 0))

    desk.poll_at(cst(26, 10, 10), item(1, cst(26, 10, 5)))
    desk.poll_at(cst(26, 10, 40), item(2, cst(26, 10, 35)))
    # Published earlier than the second, seen later: listed before it.
    desk.poll_at(cst(26, 10, 50), item(3, cst(26, 10, 20)))
    assert hook.requests == []
    assert desk.counts() == {"pending": 0, "held": 1, "sent": 0, "failed": 0}
    desk.poll_at(cst(26, 10, 59, 59))
    assert hook.requests == []

    report = desk.send_at(cst(26, 11, 0))

    assert (report.released, report.sent) == (1, 1)
    (request,) = hook.requests
    assert request.json["title"] == "[korea-japan] 3 new articles"
    listed = titles(request)
    assert [next(n for n in ("第1轮", "第3轮", "第2轮") if n in line) for line in listed] == [
        "第1轮",
        "第3轮",
        "第2轮",
    ]
    assert "CST" in request.json["message"]  # times in the configured timezone
    assert desk.counts() == {"pending": 0, "held": 0, "sent": 1, "failed": 0}


def test_digest_hourly_match_after_window_end_goes_to_the_next_window(desk_for, hook) -> None:
    desk = desk_for(rule(digest="1h"))
    desk.poll_at(cst(26, 10, 30), item(1, cst(26, 10, 25)))

    desk.poll_at(cst(26, 11, 0), item(2, cst(26, 10, 58)))  # the first window ends now

    (request,) = hook.requests
    assert request.json["title"] == "[korea-japan] 1 new article"  # a digest, even of one
    assert "第1轮" in request.json["message"] and "第2轮" not in request.json["message"]
    assert desk.counts()["held"] == 1
    desk.send_at(cst(26, 12, 0))
    assert len(hook.requests) == 2 and "第2轮" in hook.requests[1].json["message"]


def test_digest_cron_sends_at_the_next_fire_time_in_the_configured_timezone(desk_for, hook) -> None:
    desk = desk_for(rule(digest="0 8 * * *"), start=cst(26, 9, 0))
    desk.poll_at(cst(26, 9, 30), item(1, cst(26, 9, 20)))
    desk.poll_at(cst(26, 21, 0), item(2, cst(26, 20, 50)))

    desk.send_at(cst(27, 7, 59, 59))
    assert hook.requests == []
    desk.send_at(cst(27, 8, 0))  # 00:00 UTC

    (request,) = hook.requests
    assert request.json["title"] == "[korea-japan] 2 new articles"


def test_digest_per_channel_sends_one_message_to_each(desk_for, hook) -> None:
    desk = desk_for(
        rule(digest="1h", notify=["hook", "other"]),
        channels={"hook": hook.json_url("/a"), "other": hook.json_url("/b")},
    )
    desk.poll_at(cst(26, 10, 10), item(1, cst(26, 10, 5)), item(2, cst(26, 10, 6)))

    desk.send_at(cst(26, 11, 0))

    assert sorted(request.path for request in hook.requests) == ["/a", "/b"]
    assert desk.counts() == {"pending": 0, "held": 0, "sent": 2, "failed": 0}


def test_digest_held_survives_a_restart(desk_for, hook) -> None:
    desk = desk_for(rule(digest="1h"))
    desk.poll_at(cst(26, 10, 10), item(1, cst(26, 10, 5)))
    desk.poll_at(cst(26, 10, 20), item(2, cst(26, 10, 15)))

    desk.restart()  # a new Monitor on the same database
    assert desk.counts()["held"] == 1
    desk.poll_at(cst(26, 10, 30), item(3, cst(26, 10, 25)))
    desk.send_at(cst(26, 11, 0))

    (request,) = hook.requests
    assert request.json["title"] == "[korea-japan] 3 new articles"


def test_run_once_sends_a_due_batch_but_never_one_before_its_time(desk_for, hook) -> None:
    desk = desk_for(rule(digest="1h"))
    desk.poll_at(cst(26, 10, 10), item(1, cst(26, 10, 5)))

    early = desk.poll_at(cst(26, 10, 30))
    due = desk.poll_at(cst(26, 11, 5))

    assert (early.delivery.attempted, due.delivery.sent) == (0, 1)
    assert len(hook.requests) == 1


def test_run_once_with_dry_run_releases_and_marks_nothing(
    desk_for, hook, write_config, server, monitors
) -> None:
    desk = desk_for(rule(digest="1h"))
    desk.poll_at(cst(26, 10, 10), item(1, cst(26, 10, 5)))
    dry = Monitor(load_config(desk.monitor.runtime.config.path), dry_run=True, clock=desk.clock)
    monitors.append(dry)
    desk.clock.set(cst(26, 11, 5))

    report = dry.run_once()

    assert (report.delivery.attempted, report.delivery.sent, report.delivery.released) == (1, 0, 0)
    assert hook.requests == []
    assert desk.counts() == {"pending": 1, "held": 0, "sent": 0, "failed": 0}  # due, not sent
    desk.send_at(cst(26, 11, 6))
    assert len(hook.requests) == 1


def test_run_once_sends_every_due_alert_page_after_page(desk_for, hook, monkeypatch) -> None:
    import monitor.delivery.outbox

    monkeypatch.setattr(monitor.delivery.outbox, "PAGE_SIZE", 2)
    desk = desk_for(rule())

    report = desk.poll_at(cst(26, 10, 0), *(item(n, cst(26, 9, 50 + n)) for n in range(1, 6)))

    assert report.delivery.sent == 5
    assert len({request.json["title"] for request in hook.requests}) == 5


# --------------------------------------------------------------------------- quiet hours


def test_quiet_hours_across_midnight_hold_alerts_then_send_one_digest(
    desk_for, monkeypatch
) -> None:
    disable_apprise_throttle(monkeypatch)
    with SmtpReceiver() as smtp:
        desk = desk_for(
            rule(quiet_hours="23:00-07:00", notify=["mail"]),
            channels={"mail": smtp.mailto_url(to="desk@example.org")},
            start=cst(26, 22, 0),
        )
        desk.poll_at(cst(26, 22, 30), item(1, cst(26, 22, 25)))  # before: sent at once
        (before,) = smtp.wait_for(1)
        desk.poll_at(cst(26, 23, 30), item(2, cst(26, 23, 25)))
        desk.poll_at(cst(27, 2, 0), item(3, cst(27, 1, 55)))
        assert desk.counts() == {"pending": 0, "held": 1, "sent": 1, "failed": 0}
        desk.send_at(cst(27, 6, 59, 59))
        assert len(smtp.messages) == 1

        desk.send_at(cst(27, 7, 0))

        _, digest = smtp.wait_for(2)
        assert before.subject == "[korea-japan] 韩日对话 第1轮"
        assert digest.subject == "[korea-japan] 2 new articles"
        text = digest.text()
        assert text.index("第2轮") < text.index("第3轮")
        assert desk.counts() == {"pending": 0, "held": 0, "sent": 2, "failed": 0}


def test_quiet_hours_one_held_alert_is_sent_as_a_plain_alert(desk_for, hook) -> None:
    desk = desk_for(rule(quiet_hours="23:00-07:00"), start=cst(26, 23, 0))
    desk.poll_at(cst(27, 1, 0), item(1, cst(27, 0, 55)))
    assert hook.requests == []

    desk.poll_at(cst(27, 7, 0))

    (request,) = hook.requests
    assert request.json["title"] == "[korea-japan] 韩日对话 第1轮"
    assert "韩日两国第1轮对话" in request.json["message"]  # the alert's excerpt


# --------------------------------------------------------------------------- max_per_hour


def test_max_per_hour_sends_the_first_n_then_folds_the_rest_into_a_digest(desk_for, hook) -> None:
    desk = desk_for(rule(max_per_hour=2), start=cst(26, 10, 0))
    desk.poll_at(cst(26, 10, 5), item(1, cst(26, 10, 1)))
    desk.poll_at(cst(26, 10, 10), item(2, cst(26, 10, 6)), item(3, cst(26, 10, 7)))
    desk.poll_at(cst(26, 10, 50), item(4, cst(26, 10, 45)), item(5, cst(26, 10, 46)))
    assert [request.json["title"] for request in hook.requests] == [
        "[korea-japan] 韩日对话 第1轮",
        "[korea-japan] 韩日对话 第2轮",
    ]
    assert desk.counts() == {"pending": 0, "held": 1, "sent": 2, "failed": 0}

    desk.send_at(cst(26, 11, 0))
    desk.poll_at(cst(26, 11, 5), item(6, cst(26, 11, 1)))  # a new hour: immediate again

    assert len(hook.requests) == 4
    digest, next_hour = hook.requests[2:]
    assert digest.json["title"] == "[korea-japan] 3 new articles"
    body = digest.json["message"]
    assert body.index("第3轮") < body.index("第4轮") < body.index("第5轮")
    assert next_hour.json["title"] == "[korea-japan] 韩日对话 第6轮"


# --------------------------------------------------------------------------- retries


def test_retry_backoff_doubles_up_to_the_cap_then_fails_with_its_error(desk_for, hook) -> None:
    hook.set_status(500)
    desk = desk_for(rule(), delivery={"retry_base": "30s", "retry_cap": "1m", "attempts": 4})
    desk.poll_at(cst(26, 10, 0), item(1, cst(26, 9, 59)))  # attempt 1 at 10:00:00
    tries = [(cst(26, 10, 0, 29), 0), (cst(26, 10, 0, 30), 1)]  # +30 s
    tries += [(cst(26, 10, 1, 29), 0), (cst(26, 10, 1, 30), 1)]  # +60 s
    tries += [(cst(26, 10, 2, 29), 0), (cst(26, 10, 2, 30), 1)]  # +60 s: capped

    attempted = [desk.send_at(moment).attempted for moment, _ in tries]

    assert attempted == [expected for _, expected in tries]
    assert len(hook.requests) == 4
    assert desk.counts() == {"pending": 0, "held": 0, "sent": 0, "failed": 1}
    ((rule_name, channel, error),) = desk.monitor.store.last_delivery_errors()
    assert (rule_name, channel) == ("korea-japan", "hook") and "500" in error
    assert desk.send_at(cst(26, 12, 0)).attempted == 0  # failed for good


def test_failed_delivery_put_back_to_pending_is_sent_again(desk_for, hook) -> None:
    hook.set_status(500)
    desk = desk_for(rule(), delivery={"attempts": 1})
    desk.poll_at(cst(26, 10, 0), item(1, cst(26, 9, 59)))
    assert desk.counts()["failed"] == 1
    store = desk.monitor.store

    assert store.retry_failed(cst(26, 10, 5), rule_name="another-rule") == 0
    assert store.retry_failed(cst(26, 10, 5), rule_name="korea-japan") == 1
    hook.set_status(200)
    desk.send_at(cst(26, 10, 5))

    assert [request.status for request in hook.requests] == [500, 200]
    assert desk.counts() == {"pending": 0, "held": 0, "sent": 1, "failed": 0}


def test_channel_with_two_services_retries_only_the_failing_one(desk_for, hook) -> None:
    hook.set_status(500, path="/down")
    desk = desk_for(
        rule(),
        channels={"hook": [hook.json_url("/up"), hook.json_url("/down")]},
        delivery={"retry_base": "30s", "attempts": 5},
    )

    desk.poll_at(cst(26, 10, 0), item(1, cst(26, 9, 59)))
    desk.send_at(cst(26, 10, 0, 30))  # the second attempt: /down fails again
    hook.set_status(200, path="/down")
    desk.send_at(cst(26, 10, 1, 30))
    desk.send_at(cst(26, 10, 5))

    paths = [request.path for request in hook.requests]
    assert paths.count("/up") == 1
    assert paths.count("/down") == 3
    assert desk.counts() == {"pending": 0, "held": 0, "sent": 1, "failed": 0}


def test_channel_with_two_services_failing_for_good_keeps_the_sent_one_skipped(
    desk_for, hook
) -> None:
    hook.set_status(500, path="/down")
    desk = desk_for(
        rule(),
        channels={"hook": [hook.json_url("/up"), hook.json_url("/down")]},
        delivery={"attempts": 1},
    )
    desk.poll_at(cst(26, 10, 0), item(1, cst(26, 9, 59)))
    assert desk.counts()["failed"] == 1

    desk.monitor.store.retry_failed(cst(26, 10, 5))
    hook.set_status(200, path="/down")
    desk.send_at(cst(26, 10, 5))

    assert [request.path for request in hook.requests] == ["/up", "/down", "/down"]


# --------------------------------------------------------------------------- claims


def test_claim_of_a_live_process_is_respected_and_void_once_it_ends(desk_for, hook) -> None:
    desk = desk_for(rule(digest="1h"))
    desk.poll_at(cst(26, 10, 10), item(1, cst(26, 10, 5)))
    store = desk.monitor.store
    store.release_held(cst(26, 11, 0))
    (due,) = store.due_deliveries(cst(26, 11, 0))
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        start = process_start(other.pid)
        claimant = f"{new_claimant().split('/')[0]}/{other.pid}/{start}/other"
        assert claim_is_live(claimant, cst(26, 11, 0), cst(26, 11, 0))
        assert store.claim_deliveries([(due.delivery_id, None)], claimant, cst(26, 11, 0))

        skipped = desk.send_at(cst(26, 11, 0))
        assert (skipped.attempted, hook.requests) == (0, [])
    finally:
        other.kill()
        other.wait()

    assert not claim_is_live(claimant, cst(26, 11, 0), cst(26, 11, 0))
    desk.restart()  # a new start clears claims of processes that are gone
    (due,) = desk.monitor.store.due_deliveries(cst(26, 11, 1))
    assert due.claimed_by is None
    assert desk.send_at(cst(26, 11, 1)).sent == 1
    assert len(hook.requests) == 1


def test_claim_is_live_for_another_host_only_within_the_lease() -> None:
    claimed_at = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)
    claimant = "some-other-host.invalid/1/12345/abcd"

    assert claim_is_live(claimant, claimed_at, claimed_at + timedelta(minutes=9))
    assert not claim_is_live(claimant, claimed_at, claimed_at + timedelta(minutes=11))
    assert not claim_is_live("garbage", claimed_at, claimed_at)


# --------------------------------------------------------------------------- status


def test_status_json_counts_a_waiting_digest_once_as_held(
    tmp_path: Path, server, hook, write_config
) -> None:
    from processes import run_cli

    server.add_feed("/cn", rss([]))
    # January 1st, 08:00: far enough ahead of the real clock that status sees it waiting.
    config = write_config(
        feeds={"rfi-cn": server.url("/cn")},
        channels={"hook": hook.json_url("/alerts")},
        rules=[rule(digest="0 8 1 1 *")],
    )
    assert run_cli("run", "--once", "--config", str(config), cwd=tmp_path).returncode == 0
    now = datetime.now(UTC)
    server.add_feed("/cn", rss([item(n, now - timedelta(minutes=n)) for n in range(1, 4)]))

    run = run_cli("run", "--once", "--config", str(config), cwd=tmp_path)
    status = run_cli("status", "--json", "--config", str(config), cwd=tmp_path)
    text = run_cli("status", "--config", str(config), cwd=tmp_path)

    assert run.returncode == status.returncode == text.returncode == 0, run.stderr
    assert hook.requests == []
    counts = json.loads(status.stdout)["deliveries"]
    assert counts == {"pending": 0, "held": 1, "sent": 0, "failed": 0}
    assert "deliveries: pending 0, held 1, sent 0, failed 0" in text.stdout
    assert "next held batch goes out at" in text.stdout and "-01-01 08:00 CST" in text.stdout


# --------------------------------------------------------------------------- schema


LEGACY_DELIVERY_DDL = """
CREATE TABLE delivery (
    id INTEGER NOT NULL,
    hit_id INTEGER NOT NULL,
    channel VARCHAR(200) NOT NULL,
    status VARCHAR(16) NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at DATETIME NOT NULL,
    last_error VARCHAR,
    created_at DATETIME NOT NULL,
    sent_at DATETIME,
    PRIMARY KEY (id),
    CONSTRAINT uq_delivery_hit_channel UNIQUE (hit_id, channel),
    FOREIGN KEY(hit_id) REFERENCES rule_hit (id)
)
"""


def test_create_schema_moves_deliveries_of_the_first_schema(desk_for, hook) -> None:
    hook.set_status(500)
    desk = desk_for(rule(), delivery={"attempts": 3})
    desk.poll_at(cst(26, 10, 0), item(1, cst(26, 9, 59)))
    url = desk.monitor.runtime.config.database_url
    desk.monitor.close()
    # Rewrite the tables as the first schema had them: one delivery row per hit.
    legacy = Store(url)
    with legacy.engine.begin() as connection:
        row = connection.exec_driver_sql(
            "SELECT i.hit_id, d.channel, d.status, d.attempts, d.next_attempt_at, "
            "d.last_error, d.created_at FROM delivery d JOIN delivery_item i "
            "ON i.delivery_id = d.id"
        ).one()
        connection.exec_driver_sql("DROP TABLE delivery_item")
        connection.exec_driver_sql("DROP TABLE delivery")
        connection.exec_driver_sql(LEGACY_DELIVERY_DDL)
        connection.exec_driver_sql(
            "CREATE INDEX ix_delivery_status_due ON delivery (status, next_attempt_at)"
        )
        connection.exec_driver_sql(
            "INSERT INTO delivery (id, hit_id, channel, status, attempts, next_attempt_at, "
            "last_error, created_at) VALUES (7, ?, ?, ?, ?, ?, ?, ?)",
            tuple(row),
        )
    legacy.close()

    desk.restart()
    hook.set_status(200)
    desk.send_at(cst(26, 10, 5))

    assert [request.status for request in hook.requests] == [500, 200]
    assert desk.counts() == {"pending": 0, "held": 0, "sent": 1, "failed": 0}
