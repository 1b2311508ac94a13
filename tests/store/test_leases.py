"""The shared work's store side on PostgreSQL: feed leases claimed in rounds, instance
leases, singleton jobs, and schema steps an older instance does or does not know."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from monitor.store import (
    AlreadyRunningError,
    PollCompletion,
    SchemaTooNewError,
    Store,
    claim_is_live,
)
from monitor.store.instances import InstanceIdentity
from monitor.store.migrations import MIGRATIONS


@pytest.fixture
def shared(postgres_database: str) -> Iterator[Store]:
    store = Store(postgres_database)
    store.create_schema()
    yield store
    store.close()


NAMES = [f"feed-{n}" for n in range(10)]


def test_two_instances_claiming_at_once_never_take_the_same_feed(shared: Store) -> None:
    shared.ensure_feed_leases([(name, 60.0) for name in NAMES])
    claimed: dict[str, list[str]] = {}
    start = threading.Barrier(2)

    def claim(claimant: str) -> None:
        start.wait()
        done = shared.poll_round(claimant, feed_names=NAMES, claim=6, lease_seconds=30)
        claimed[claimant] = [poll.name for poll in done.claimed]

    threads = [threading.Thread(target=claim, args=(who,)) for who in ("a/1/1", "b/2/2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    everything = claimed["a/1/1"] + claimed["b/2/2"]
    assert len(everything) == len(set(everything)) == len(NAMES)
    # Claimed feeds are due one interval ahead: nobody claims them again now.
    again = shared.poll_round("c/3/3", feed_names=NAMES, claim=10, lease_seconds=30)
    assert again.claimed == []
    assert again.next_due_in_seconds is None  # every feed is claimed


def test_a_finished_poll_is_due_after_its_delay_and_a_lost_claim_writes_nothing(
    shared: Store,
) -> None:
    shared.ensure_feed_leases([("feed-0", 1.0)])
    first = shared.poll_round("a/1/1", feed_names=["feed-0"], claim=1, lease_seconds=30)
    assert [poll.name for poll in first.claimed] == ["feed-0"]
    with shared.engine.begin() as connection:  # as if a's claim had lapsed meanwhile
        connection.execute(text("UPDATE feed_lease SET claimed_by = 'b/2/2'"))

    done = shared.poll_round(
        "a/1/1",
        feed_names=["feed-0"],
        claim=0,
        lease_seconds=30,
        completions=[PollCompletion("feed-0", 300.0)],
    )

    assert done.lost == ["feed-0"]
    with shared.engine.connect() as connection:
        claimed_by, due_in = connection.execute(
            text("SELECT claimed_by, EXTRACT(EPOCH FROM due_at - now()) FROM feed_lease")
        ).one()
    assert claimed_by == "b/2/2" and due_in < 60  # a's completion changed nothing


def test_a_claim_holds_while_its_instances_lease_does(shared: Store) -> None:
    now = datetime.now(UTC)
    me = InstanceIdentity("me", "elsewhere", 4242, "123")
    shared.register_instance(me, now, lease_seconds=30)
    claim = f"{me.claim_prefix}/abcd1234"
    assert claim_is_live(claim, now, now, shared.instance_leases())
    with shared.engine.begin() as connection:
        connection.execute(text("UPDATE instance SET lease_until = now() - interval '1 second'"))
    assert not claim_is_live(claim, now, now, shared.instance_leases())


def test_on_sqlite_a_second_daemon_is_refused_while_the_first_process_lives(tmp_path) -> None:
    store = Store(f"sqlite:///{tmp_path}/monitor.db")
    store.create_schema()
    now = datetime.now(UTC)
    first = InstanceIdentity.of_this_process("first")  # a process that lives: this one
    store.register_instance(first, now, exclusive=True)
    second = InstanceIdentity("second", first.host, 999_999, "0")

    with pytest.raises(AlreadyRunningError, match=r"first .*PostgreSQL"):
        store.register_instance(second, now, exclusive=True)
    store.mark_instance_stopped(first, now)
    store.register_instance(second, now, exclusive=True)  # the first one stopped
    store.close()


def test_retention_is_started_by_one_instance_a_day(shared: Store) -> None:
    assert shared.start_singleton_job("retention", "a/1/1", 86400)
    assert not shared.start_singleton_job("retention", "b/2/2", 86400)


def test_statistics_are_taken_of_the_tables_that_grew(shared: Store, tmp_path) -> None:
    shared.ensure_feed_leases([(f"feed-{n}", 60.0) for n in range(500)])
    # The database counts changed rows a moment after the transaction that made them.
    deadline = time.monotonic() + 30
    analyzed: list[str] = []
    while "feed_lease" not in analyzed and time.monotonic() < deadline:
        analyzed += shared.analyze_grown_tables()
    assert "feed_lease" in analyzed
    with shared.engine.connect() as connection:
        rows = connection.execute(
            text("SELECT reltuples FROM pg_class WHERE relname = 'feed_lease'")
        ).scalar()
    assert rows == 500  # the statistics are there
    alone = Store(f"sqlite:///{tmp_path}/monitor.db")
    alone.create_schema()
    assert alone.analyze_grown_tables() == []  # one daemon per SQLite database: not needed
    alone.close()


def test_an_instance_works_on_with_a_newer_additive_schema_and_refuses_one_it_cannot(
    shared: Store,
) -> None:
    newer = len(MIGRATIONS) + 1
    with shared.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO schema_migration (number, name, applied_at, version) "
                "VALUES (:n, 'a later additive step', now(), '9.9.9')"
            ),
            {"n": newer},
        )
    shared.create_schema()  # works on

    with shared.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO schema_migration (number, name, applied_at, version, "
                "required_steps) VALUES (:n, 'a step older versions cannot use', now(), "
                "'10.0.0', :n)"
            ),
            {"n": newer + 1},
        )
    with pytest.raises(SchemaTooNewError) as refused:
        shared.create_schema()
    message = str(refused.value)
    assert "10.0.0" in message and "0.1.0" in message
