"""Tests for the schema's numbered steps (monitor.store.migrations): a real SQLite file, and
the local PostgreSQL server as in test_store.py."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from monitor.model import Article
from monitor.store import migrations
from monitor.store.database import Store
from monitor.store.deliveries import HitToRecord
from monitor.store.migrations import MIGRATIONS, Migration

NOW = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)


def _article(number: int) -> Article:
    link = f"https://www.rfi.fr/cn/article-{number}"
    return Article(
        guid=f"guid-{number}",
        link=link,
        canonical_link=link,
        title=f"韩日 标题 {number}",
        summary=f"摘要 {number}",
        content=f"正文 {number}",
        content_hash=f"hash-{number}",
    )


def _recorded(store: Store) -> list[tuple[int, str]]:
    with store.engine.connect() as connection:
        rows = connection.exec_driver_sql(
            "SELECT number, name FROM schema_migration ORDER BY number"
        ).all()
    return [(number, name) for number, name in rows]


def _poll(store: Store, articles: list[Article], when: datetime) -> int:
    """Store the articles as one poll of feed "cn" and queue a hit of every new one to
    "mail"; return how many (hit, channel) pairs were queued."""
    hit = HitToRecord("korea-japan", ("韩日",), "…韩日…", ("mail",))
    queued = 0
    with store.transaction() as transaction:
        changes, _ = transaction.upsert_articles("cn", articles, baseline=False, now=when)
        for change in changes:
            queued += transaction.record_hits(change.article_id, "cn", [hit], when)
    return queued


def test_migrations_are_numbered_from_one_in_the_order_they_apply() -> None:
    assert [migration.number for migration in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))
    assert len({migration.name for migration in MIGRATIONS}) == len(MIGRATIONS)


def test_create_schema_of_a_new_database_records_every_step_in_order(store: Store) -> None:
    assert _recorded(store) == [(migration.number, migration.name) for migration in MIGRATIONS]
    assert store.schema_is_current()


def test_create_schema_applies_a_recorded_step_never_again(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []

    def add_note_table(connection: Connection) -> None:
        calls.append(connection.dialect.name)

    step = Migration(len(MIGRATIONS) + 1, "a later step", add_note_table)
    monkeypatch.setattr(migrations, "MIGRATIONS", (*MIGRATIONS, step))
    assert not store.schema_is_current()  # a step this database has not been through

    store.create_schema()
    store.create_schema()

    assert calls == [store.engine.dialect.name]
    assert _recorded(store)[-1] == (step.number, "a later step")
    assert store.schema_is_current()


def test_create_schema_of_a_store_made_before_steps_were_recorded_alerts_nothing_again(
    store: Store,
) -> None:
    old_articles = [_article(1), _article(2)]
    assert _poll(store, old_articles, NOW) == 2
    (due,) = store.due_deliveries(NOW)[:1]
    store.mark_sent(due.delivery_id, NOW)
    # The tables as the version before recorded steps (and before retention) made them.
    with store.engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE schema_migration")
        connection.exec_driver_sql("DROP INDEX ix_article_unpruned_first_seen")
        connection.exec_driver_sql("ALTER TABLE article DROP COLUMN pruned_at")
    assert not store.schema_is_current()

    store.create_schema()

    assert store.schema_is_current()
    assert [number for number, _ in _recorded(store)] == [m.number for m in MIGRATIONS]
    assert "pruned_at" in {
        column["name"] for column in inspect(store.engine).get_columns("article")
    }
    # What it stored is kept: the same items are known, only a new one alerts.
    later = NOW + timedelta(minutes=5)
    assert _poll(store, [*old_articles, _article(3)], later) == 1
    assert store.article_count() == 3
    assert store.delivery_counts() == {"pending": 2, "held": 0, "sent": 1, "failed": 0}


def test_create_schema_from_two_processes_at_once_applies_each_step_once(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path}/state/monitor.db"
    stores = [Store(database_url), Store(database_url)]
    start = threading.Barrier(len(stores))
    errors: list[BaseException] = []

    def create(store: Store) -> None:
        try:
            start.wait()
            store.create_schema()
        except BaseException as error:  # noqa: BLE001 - collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=create, args=(store,)) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        recorded = _recorded(stores[0])
        current = stores[1].schema_is_current()
    finally:
        for store in stores:
            store.close()

    assert errors == []
    assert recorded == [(migration.number, migration.name) for migration in MIGRATIONS]
    assert current
