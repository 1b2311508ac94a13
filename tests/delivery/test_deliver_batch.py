"""The outbox sends in batches (claims and outcomes written a few dozen at a time): the
guarantees must be those of one delivery at a time. Real SQLite (and PostgreSQL for the
store methods), real webhook receivers, real processes killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from feeds import Item, rss
from processes import DEADLINE_SECONDS, HIDDEN_VARIABLES, run_cli, wait_until
from texts import distinct_text

import monitor.delivery.outbox
from monitor.service.configuration import load_config
from monitor.service.daemon import Monitor
from monitor.store import HitToRecord, Store
from monitor.store.claims import claim_is_live, new_claimant, process_start

NOW = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)


def _items(count: int) -> list[Item]:
    return [
        Item(
            f"韩日对话 第{n}轮",
            link=f"https://e.org/{n}",
            guid=str(n),
            description=f"<p>{distinct_text(n)}</p>",  # each its own story
        )
        for n in range(count, 0, -1)
    ]


def _expected_titles(count: int) -> set[str]:
    return {f"[korea-japan] 韩日对话 第{n}轮" for n in range(1, count + 1)}


def _titles(hook, path: str | None = None) -> list[str]:
    return [
        request.json["title"]
        for request in hook.requests
        if path is None or request.path.split("?")[0] == path
    ]


def _config(write_config, server, channels: dict[str, object], count: int, **top: object):
    server.add_feed("/cn", rss(_items(count)))
    return write_config(
        feeds={"cn": {"url": server.url("/cn"), "notify_existing": True}},
        channels=channels,
        rules=[{"name": "korea-japan", "any": ["韩日"], "notify": list(channels)}],
        **top,
    )


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


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pages and claim batches of a few deliveries, so that a test of a few dozen crosses
    every boundary."""
    monkeypatch.setattr(monitor.delivery.outbox, "PAGE_SIZE", 7)
    monkeypatch.setattr(monitor.delivery.outbox, "CLAIM_BATCH", 5)


def _counts(config: Path) -> dict[str, int]:
    store = Store(load_config(config).database_url)
    try:
        return store.delivery_counts(datetime.now(UTC))
    finally:
        store.close()


# --------------------------------------------------------------------------- end to end


def test_batches_across_pages_send_each_delivery_once_per_channel(
    server, hook, write_config, monitors, small_batches
) -> None:
    count = 23
    config = _config(
        write_config, server, {"a": hook.json_url("/a"), "b": hook.json_url("/b")}, count
    )

    report = monitors(config).run_once().delivery

    assert (report.attempted, report.sent) == (2 * count, 2 * count)
    for path in ("/a", "/b"):
        titles = _titles(hook, path)
        assert sorted(titles) == sorted(_expected_titles(count))  # each once, none twice
    assert _counts(config) == {"pending": 0, "held": 0, "sent": 2 * count, "failed": 0}
    # A second pass finds nothing: every outcome was written before run_once returned.
    assert monitors(config).send_due(ignore_backoff=True).attempted == 0


def test_killed_mid_batch_loses_nothing_and_resends_at_most_the_message_in_flight(
    server, hook, write_config, tmp_path: Path
) -> None:
    count = 150
    config = _config(write_config, server, {"hook": hook.json_url("/alerts")}, count)
    hook.set_delay(0.02)  # about 50 sends a second: the kill lands mid-batch
    environment = {key: value for key, value in os.environ.items() if key not in HIDDEN_VARIABLES}
    first = subprocess.Popen(
        [sys.executable, "-m", "monitor", "run", "--once", "--config", str(config)],
        cwd=tmp_path,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: len(hook.requests) >= 100, "100 alerts to arrive")
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=DEADLINE_SECONDS)
    arrived_before_restart = len(hook.requests)
    assert first.returncode == -signal.SIGKILL
    assert arrived_before_restart < count  # it really died mid-pass
    hook.set_delay(0)

    second = run_cli("run", "--once", "--config", str(config), cwd=tmp_path)

    assert second.returncode == 0, second.stderr
    titles = _titles(hook)
    assert set(titles) == _expected_titles(count)  # nothing lost
    # Claimed in batches, but each outcome is written before the next send: what arrives
    # twice is at most the message in flight when the process died.
    twice = len(titles) - len(set(titles))
    assert twice <= 1
    assert _counts(config) == {"pending": 0, "held": 0, "sent": count, "failed": 0}


def test_batch_claim_respects_a_live_process_and_takes_over_once_it_ends(
    server, hook, write_config, monitors
) -> None:
    count = 12
    config = _config(write_config, server, {"hook": hook.json_url("/alerts")}, count)
    monitors(config, dry_run=True).run_once()  # queued, nothing sent
    store = Store(load_config(config).database_url)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        due = store.due_deliveries(NOW, ignore_backoff=True)
        assert len(due) == count
        host = new_claimant().split("/")[0]
        theirs = f"{host}/{other.pid}/{process_start(other.pid)}/other"
        held = {due[1].delivery_id, due[6].delivery_id, due[7].delivery_id}
        assert store.claim_deliveries([(d, None) for d in held], theirs, NOW) == held

        report = monitors(config).send_due(ignore_backoff=True)

        assert (report.attempted, report.sent) == (count - 3, count - 3)
        assert len(hook.requests) == count - 3
        still = store.due_deliveries(NOW, ignore_backoff=True)
        assert {d.delivery_id for d in still} == held
        assert {d.claimed_by for d in still} == {theirs}
    finally:
        other.kill()
        other.wait()
    assert not claim_is_live(theirs, NOW, NOW)

    # A new start voids the dead process's claims; its deliveries go out, once.
    assert monitors(config).send_due(ignore_backoff=True).sent == 3
    titles = _titles(hook)
    assert sorted(titles) == sorted(_expected_titles(count))
    assert _counts(config)["sent"] == count
    store.close()


def test_batch_retries_only_the_failing_service_with_backoff(
    server, hook, write_config, monitors, small_batches
) -> None:
    count = 8
    hook.set_status(500, path="/down")
    config = _config(
        write_config,
        server,
        {"hook": [hook.json_url("/up"), hook.json_url("/down")]},
        count,
        delivery={"retry_base": "30s", "attempts": 3},
    )
    clock = _Clock(NOW)
    first = monitors(config, clock=clock)

    report = first.send_due(ignore_backoff=False)  # nothing polled yet
    assert report.attempted == 0
    report = first.run_once().delivery
    assert (report.attempted, report.retrying) == (count, count)
    store = first.store
    assert store.due_deliveries(NOW) == []  # backoff: not before 30 s
    due = store.due_deliveries(NOW + timedelta(seconds=30))
    assert [(d.attempts, d.sent_services) for d in due] == [(1, frozenset({0}))] * count

    hook.set_status(200, path="/down")
    clock.now = NOW + timedelta(seconds=29)
    assert first.send_due(ignore_backoff=False).attempted == 0
    clock.now = NOW + timedelta(seconds=30)
    report = first.send_due(ignore_backoff=False)

    assert (report.attempted, report.sent) == (count, count)
    assert sorted(_titles(hook, "/up")) == sorted(_expected_titles(count))  # not again
    assert Counter(_titles(hook, "/down")) == Counter(
        {title: 2 for title in _expected_titles(count)}
    )
    assert _counts(config)["sent"] == count


class _Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


# --------------------------------------------------------------------------- store level


def _deliveries(store: Store, count: int) -> list[int]:
    from feeds import fixture

    from monitor.ingest.parse import parse_feed

    articles = parse_feed(fixture("rfi-cn-rss.xml")).articles
    channels = tuple(f"c{n}" for n in range(count))
    with store.transaction() as transaction:
        (change, _), _ = transaction.upsert_articles("cn", articles, baseline=False, now=NOW)
        transaction.record_hits(change.article_id, "cn", [HitToRecord("r", (), "", channels)], NOW)
    return [due.delivery_id for due in store.due_deliveries(NOW)]


def test_claim_deliveries_takes_unclaimed_and_void_claims_only(store: Store) -> None:
    free, void, live, mine = _deliveries(store, 4)
    me = new_claimant()
    assert store.claim_deliveries([(void, None)], "gone-host/1/1/x", NOW)
    assert store.claim_deliveries([(live, None)], "other-host/2/2/y", NOW)
    assert store.claim_deliveries([(mine, None)], me, NOW)
    later = NOW + timedelta(seconds=5)

    claimed = store.claim_deliveries(
        [
            (free, None),
            (void, "gone-host/1/1/x"),  # found void: taken over
            (live, None),  # read before another process claimed it: not taken
            (mine, me),  # our own claim, renewed
        ],
        me,
        later,
    )

    assert claimed == {free, void, mine}
    by_id = {due.delivery_id: due for due in store.due_deliveries(NOW)}
    assert by_id[live].claimed_by == "other-host/2/2/y"
    assert {by_id[d].claimed_by for d in (free, void, mine)} == {me}
    assert store.claim_deliveries([(free, None)], "someone-else", later) == set()
    store.release_claims([free, void, live], me)
    by_id = {due.delivery_id: due for due in store.due_deliveries(NOW)}
    assert (by_id[free].claimed_by, by_id[void].claimed_by) == (None, None)
    assert by_id[live].claimed_by == "other-host/2/2/y"  # not ours to release
