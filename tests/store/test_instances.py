"""The instance table: daemons record themselves, beat, stop; on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.model import StoreError
from monitor.store.database import Store
from monitor.store.instances import (
    HEARTBEAT_FRESH_SECONDS,
    INSTANCE_RECORD_KEEP,
    InstanceIdentity,
    instance_name,
)

NOW = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)


def _identity(name: str = "web-1", process_start: str = "1000", pid: int = 1) -> InstanceIdentity:
    return InstanceIdentity(name=name, host="box", pid=pid, process_start=process_start)


def test_register_instance_then_heartbeat_keeps_it_alive(store: Store) -> None:
    identity = _identity()
    store.register_instance(identity, NOW)
    later = NOW + timedelta(minutes=5)
    store.record_heartbeat(identity, later)

    (record,) = store.instance_records()

    assert (record.name, record.host, record.pid, record.process_start) == (
        "web-1", "box", 1, "1000",
    )  # fmt: skip
    assert record.started_at == NOW and record.last_seen_at == later
    assert record.is_alive(later + timedelta(seconds=HEARTBEAT_FRESH_SECONDS - 1))
    assert not record.is_alive(later + timedelta(seconds=HEARTBEAT_FRESH_SECONDS))


def test_register_instance_with_same_name_replaces_the_stale_record(store: Store) -> None:
    # A container restarted with the same hostname: its daemon is HOST:1 again, in a new
    # process (another start time).
    old, new = _identity(process_start="1000"), _identity(process_start="2000")
    store.register_instance(old, NOW)
    store.register_instance(_identity("web-2", "3000", pid=7), NOW)

    store.register_instance(new, NOW + timedelta(minutes=1))

    records = {record.name: record for record in store.instance_records()}
    assert set(records) == {"web-1", "web-2"}
    assert records["web-1"].process_start == "2000"


def test_mark_instance_stopped_is_not_alive_and_goes_at_the_next_start(store: Store) -> None:
    stopping = _identity("web-1")
    store.register_instance(stopping, NOW)
    store.mark_instance_stopped(stopping, NOW + timedelta(seconds=1))

    (stopped,) = store.instance_records()
    store.register_instance(_identity("web-2", "2000"), NOW + timedelta(seconds=2))

    assert stopped.stopped_at == NOW + timedelta(seconds=1)
    assert not stopped.is_alive(NOW + timedelta(seconds=2))
    assert [record.name for record in store.instance_records()] == ["web-2"]


def test_register_instance_forgets_instances_unseen_for_long(store: Store) -> None:
    store.register_instance(_identity("killed", "1000"), NOW)
    store.register_instance(_identity("recent", "2000"), NOW + INSTANCE_RECORD_KEEP)

    store.register_instance(_identity("new", "3000"), NOW + INSTANCE_RECORD_KEEP * 1.5)

    assert {record.name for record in store.instance_records()} == {"recent", "new"}


def test_record_heartbeat_after_its_record_was_replaced_writes_it_again(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    first, second = _identity(process_start="1000"), _identity(process_start="2000")
    store.register_instance(first, NOW)
    store.register_instance(second, NOW)  # another process took the same name

    store.record_heartbeat(first, NOW + timedelta(seconds=10))

    assert sorted(record.process_start for record in store.instance_records()) == [
        "1000", "2000",
    ]  # fmt: skip
    assert "instance name=web-1 status=shared" in caplog.text


def test_instance_records_most_recently_seen_first(store: Store) -> None:
    store.register_instance(_identity("a", "1"), NOW)
    store.register_instance(_identity("b", "2"), NOW)
    store.record_heartbeat(_identity("a", "1"), NOW + timedelta(seconds=10))

    assert [record.name for record in store.instance_records()] == ["a", "b"]


def test_read_only_store_reads_instances_and_refuses_writes(store: Store) -> None:
    store.register_instance(_identity(), NOW)
    reader = Store(store.database_url, read_only=True)
    try:
        (record,) = reader.instance_records()
        with pytest.raises(StoreError):
            reader.register_instance(_identity("other", "2"), NOW)
    finally:
        reader.close()

    assert record.name == "web-1"
    assert [record.name for record in store.instance_records()] == ["web-1"]


def test_read_only_store_on_missing_sqlite_file_creates_nothing(tmp_path: Path) -> None:
    reader = Store(f"sqlite:///{tmp_path}/state/monitor.db", read_only=True)
    try:
        missing = reader.missing()
        with pytest.raises(StoreError):
            reader.instance_records()
    finally:
        reader.close()

    assert missing
    assert list(tmp_path.iterdir()) == []


def test_instance_records_of_a_database_without_the_table_are_none(tmp_path: Path) -> None:
    # A database made by an earlier version, read by a reader that cannot add the table.
    database_url = f"sqlite:///{tmp_path}/monitor.db"
    writer = Store(database_url)
    writer.create_schema()
    with writer.engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE instance")
    writer.close()
    reader = Store(database_url, read_only=True)
    try:
        records = reader.instance_records()
        current = reader.schema_is_current()
    finally:
        reader.close()

    assert records == [] and not current


def test_instance_name_from_option_else_variable_else_default() -> None:
    assert instance_name("cli", {"NEWS_MONITOR_INSTANCE": "env"}) == "cli"
    assert instance_name(None, {"NEWS_MONITOR_INSTANCE": "env"}) == "env"
    assert instance_name(None, {}) is None  # the daemon then is HOST:PID
    with pytest.raises(ValueError, match="instance name"):
        instance_name("  ", {})


def test_of_this_process_defaults_to_host_and_pid() -> None:
    import os
    import socket

    identity = InstanceIdentity.of_this_process()

    assert identity.name == f"{socket.gethostname()}:{os.getpid()}"
    assert identity.process_start not in ("", "?")  # /proc is there on Linux
