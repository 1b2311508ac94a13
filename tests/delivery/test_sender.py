"""Channels send independently: a slow channel (an e-mail server that keeps mail waiting,
as Apprise's pause between two e-mails does) never holds back another channel's alerts,
in `run --once` and in the daemon, with every outbox guarantee kept. Real SQLite, a real
aiosmtpd server held by a gate (never a timed wait), real webhook receivers, a real
daemon process stopped with SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from feeds import Item, rss
from processes import DEADLINE_SECONDS, wait_until
from receivers import SmtpReceiver, disable_apprise_throttle

from monitor.delivery.notify import Notifier
from monitor.delivery.outbox import SendSettings
from monitor.delivery.sender import Sender
from monitor.service.configuration import load_config
from monitor.service.daemon import Monitor
from monitor.store.claims import new_claimant
from monitor.store.database import Store


def _items(count: int) -> list[Item]:
    return [
        Item(f"韩日对话 第{n}轮", link=f"https://e.org/{n}", guid=str(n))
        for n in range(count, 0, -1)
    ]


def _counts(config: Path) -> dict[str, int]:
    store = Store(load_config(config).database_url)
    try:
        return store.delivery_counts(datetime.now(UTC))
    finally:
        store.close()


def _channel_counts(config: Path) -> dict[tuple[str, str], int]:
    """(channel, status) -> deliveries."""
    store = Store(load_config(config).database_url)
    try:
        with store.engine.connect() as connection:
            rows = connection.exec_driver_sql(
                "SELECT channel, status, COUNT(*) FROM delivery GROUP BY channel, status"
            ).all()
        return {(channel, status): count for channel, status, count in rows}
    finally:
        store.close()


@pytest.fixture
def smtp() -> Iterator[SmtpReceiver]:
    with SmtpReceiver() as receiver:
        yield receiver


@pytest.fixture
def monitors() -> Iterator[Callable[..., Monitor]]:
    created: list[Monitor] = []

    def make(config: Path, **options: object) -> Monitor:
        made = Monitor(load_config(config), **options)
        created.append(made)
        return made

    yield make
    for made in created:
        made.close()


def _mail_and_hook_config(write_config, server, smtp, hook, count: int, **feed: object) -> Path:
    server.add_feed("/cn", rss(_items(count)))
    return write_config(
        feeds={"cn": {"url": server.url("/cn"), **feed}},
        # The e-mail channel first: sent one after another, its alerts came first.
        channels={"mail": smtp.mailto_url(), "hook": hook.json_url("/alerts")},
        rules=[{"name": "korea-japan", "any": ["韩日"], "notify": ["mail", "hook"]}],
    )


# --------------------------------------------------------------------------- run --once


def test_run_once_sends_webhook_alerts_while_an_email_is_still_going_out(
    server, hook, smtp, write_config, monitors, monkeypatch
) -> None:
    disable_apprise_throttle(monkeypatch)  # the gate is the slow part here
    count = 3
    config = _mail_and_hook_config(write_config, server, smtp, hook, count, notify_existing=True)
    monitor = monitors(config)
    smtp.hold()
    outcome: list[object] = []
    run = threading.Thread(target=lambda: outcome.append(monitor.run_once()))
    run.start()
    try:
        smtp.wait_for_held(1)  # the first e-mail is going out, and waits

        hooks = hook.wait_for(count)

        assert smtp.messages == []  # still going out
        assert sorted(request.json["title"] for request in hooks) == sorted(
            f"[korea-japan] 韩日对话 第{n}轮" for n in range(1, count + 1)
        )
    finally:
        smtp.release()
        run.join(timeout=DEADLINE_SECONDS)
    assert not run.is_alive()
    (report,) = outcome
    assert (report.delivery.attempted, report.delivery.sent) == (2 * count, 2 * count)
    assert len(smtp.messages) == count  # all there when run --once returns
    assert _counts(config) == {"pending": 0, "held": 0, "sent": 2 * count, "failed": 0}


# --------------------------------------------------------------------------- the daemon


def test_run_sends_webhook_alerts_while_an_email_is_still_going_out_and_stops_on_sigterm(
    server, hook, smtp, write_config, tmp_path: Path
) -> None:
    count = 3
    config = _mail_and_hook_config(write_config, server, smtp, hook, 0)
    smtp.hold()
    log_path = tmp_path / "daemon.log"
    with log_path.open("w", encoding="utf-8") as log:
        daemon = subprocess.Popen(
            [sys.executable, "-m", "monitor", "run", "--config", str(config)],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    try:
        wait_until(lambda: server.hits("/cn") >= 2, "two polls (the first is the baseline)")
        server.add_feed("/cn", rss(_items(count)))
        smtp.wait_for_held(1)  # the first e-mail is going out, and waits

        hook.wait_for(count, timeout_seconds=DEADLINE_SECONDS)
        assert smtp.messages == []  # still going out

        daemon.send_signal(signal.SIGTERM)
        stopping = "stopping: waiting for running polls and sends to finish"
        wait_until(lambda: stopping in log_path.read_text(encoding="utf-8"), "the stop")
        smtp.release()
        assert daemon.wait(timeout=DEADLINE_SECONDS) == 0
    finally:
        smtp.release()
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()

    # The e-mail in flight finished; the others stay pending, unclaimed, for the next start.
    assert len(smtp.messages) == 1
    assert _channel_counts(config) == {
        ("hook", "sent"): count,
        ("mail", "sent"): 1,
        ("mail", "pending"): count - 1,
    }
    store = Store(load_config(config).database_url)
    try:
        assert {due.claimed_by for due in store.due_deliveries(datetime.now(UTC))} == {None}
    finally:
        store.close()
    assert "Traceback" not in log_path.read_text(encoding="utf-8")


# --------------------------------------------------------------------------- the lanes


def _queued(write_config, server, monitors, channels: dict[str, str], count: int) -> Path:
    """A config whose rule notifies every channel, with `count` alerts queued for each."""
    server.add_feed("/cn", rss(_items(count)))
    config = write_config(
        feeds={"cn": {"url": server.url("/cn"), "notify_existing": True}},
        channels=channels,
        rules=[{"name": "korea-japan", "any": ["韩日"], "notify": list(channels)}],
    )
    monitors(config, dry_run=True).run_once()  # queued, nothing sent
    return config


def _sender(config: Path, **options: object) -> tuple[Sender, SendSettings, Store]:
    loaded = load_config(config)
    store = Store(loaded.database_url)
    settings = SendSettings(
        notifier=Notifier(loaded.channels),
        timezone=ZoneInfo(loaded.timezone),
        delivery=loaded.delivery,
        ignore_backoff=True,
    )
    sender = Sender(store, claimant=new_claimant(), now=lambda: datetime.now(UTC), **options)
    return sender, settings, store


def test_sender_with_fewer_threads_than_channels_gives_each_channel_its_turn(
    server, hook, write_config, monitors
) -> None:
    count = 3
    config = _queued(
        write_config, server, monitors, {"a": hook.json_url("/a"), "b": hook.json_url("/b")}, count
    )
    sender, settings, store = _sender(config, threads=1, once=True)
    try:
        sender.wake(settings)
        report = sender.wait()
    finally:
        sender.close()
        store.close()

    assert report.sent == 2 * count
    # One thread: a message of one channel, then one of the other, not all of one first.
    assert [request.path for request in hook.requests] == ["/a", "/b"] * count


def test_sender_sends_on_at_most_its_threads_whatever_the_number_of_channels(
    server, smtp, write_config, monitors
) -> None:
    channels = {f"mail{n}": smtp.mailto_url(to=f"desk{n}@example.org") for n in range(5)}
    config = _queued(write_config, server, monitors, channels, 1)
    sender, settings, store = _sender(config, threads=3, once=True)
    smtp.hold()
    try:
        sender.wake(settings)
        smtp.wait_for_held(3)

        sending = [thread for thread in threading.enumerate() if thread.name.startswith("send")]
        assert len(sending) == 3  # three e-mails wait: every thread is taken
        smtp.release()
        report = sender.wait()
    finally:
        smtp.release()
        sender.close()
        store.close()

    assert report.sent == 5
    assert sorted(mail.envelope_to for mail in smtp.messages) == sorted(
        (f"desk{n}@example.org",) for n in range(5)
    )


def test_sender_woken_while_a_pass_runs_sends_what_was_queued_meanwhile(
    server, hook, smtp, write_config, monitors
) -> None:
    config = _queued(
        write_config, server, monitors, {"mail": smtp.mailto_url(), "hook": hook.json_url()}, 1
    )
    sender, settings, store = _sender(config, once=True)
    smtp.hold()
    try:
        sender.wake(settings)
        smtp.wait_for_held(1)
        hook.wait_for(1)
        # More alerts are queued while the e-mail channel's pass still runs.
        server.add_feed("/cn", rss(_items(3)))
        monitors(config, dry_run=True).run_once()
        sender.wake(settings)

        hook.wait_for(3)
        smtp.release()
        report = sender.wait()
    finally:
        smtp.release()
        sender.close()
        store.close()

    assert report.sent == 6
    assert len(smtp.messages) == 3
