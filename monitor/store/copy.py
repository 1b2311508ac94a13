"""Copying a whole store into another database: `news-monitor db copy --to URL`, how a
SQLite store moves to PostgreSQL when one daemon no longer suffices.

What is copied is what keeps the past from alerting again: feed state (validators,
baselines done, next polls), articles with their identity keys, stories and the feeds that
carried them, rule hits, deliveries with their items (sent ones too: a rule alerts at most once per
article, ever), rule failures. Not copied: the instance table (who ran where), feed leases
(the instances make them from the feed state), singleton jobs, and the search index (rebuilt
on the target from the articles copied). Rows keep their ids, and
PostgreSQL's id sequences are moved past them.

The copy is table-driven: COPIED_TABLES lists the tables in an order where every foreign
key points to a table already copied; a new table whose rows must survive a move is one
line there. The target must be empty; everything is written in one transaction, so a copy
that fails leaves it empty. The source must have no daemon running: what it did after the
copy would be lost, and might alert again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Integer, func, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import SQLModel

from monitor.model import StoreError
from monitor.store.database import Store
from monitor.store.engine import describe_error
from monitor.store.tables import (
    ArticleKeyRow,
    ArticleRow,
    DeliveryItemRow,
    DeliveryRow,
    FeedArticleRow,
    FeedStateRow,
    RuleHitRow,
    RuleStateRow,
    StoryBandRow,
    StoryPendingRow,
    StoryRow,
    table_of,
)

# In the order they are copied: a table's foreign keys point to tables above it.
COPIED_TABLES: tuple[type[SQLModel], ...] = (
    FeedStateRow,
    ArticleRow,
    StoryRow,
    StoryBandRow,
    StoryPendingRow,
    ArticleKeyRow,
    FeedArticleRow,
    RuleHitRow,
    DeliveryRow,
    DeliveryItemRow,
    RuleStateRow,
)
# Values set on the way, by table: a claim names a process of the source's machine, which
# is stopped (a claim is void once its process is gone; here it would not be known so).
CLEARED_COLUMNS: dict[str, dict[str, object]] = {
    "delivery": {"claimed_by": None, "claimed_at": None},
}
BATCH_ROWS = 2000


class CopyError(StoreError):
    """The copy cannot be made: a daemon runs on the source, or the target is not empty."""


@dataclass(frozen=True)
class CopyReport:
    rows: dict[str, int]  # rows copied, by table, in the order copied


def copy_store(source: Store, target: Store, *, batch_rows: int = BATCH_ROWS) -> CopyReport:
    """Copy every table of COPIED_TABLES from `source` into the empty `target` (its schema
    made first), in one transaction on the target. Raise CopyError if a daemon runs on
    the source or the target holds rows; StoreError if a database fails."""
    now = datetime.now(UTC)
    running = [
        record
        for record in source.instance_records()
        if (record.process_runs(now) if not source.shared else record.is_alive(now))
    ]
    if running:
        record = running[0]
        raise CopyError(
            f"a daemon runs on the source database: {record.name} (host {record.host}, pid "
            f"{record.pid}); stop it first, so that nothing it does after the copy is lost"
        )
    target.create_schema()
    copied: dict[str, int] = {}
    try:
        with target.engine.begin() as writing, source.engine.connect() as reading:
            for model in COPIED_TABLES:
                table = table_of(model)
                if writing.execute(select(1).select_from(table).limit(1)).first():
                    raise CopyError(
                        f"the target database already holds rows in {table.name}: copy into "
                        "an empty database"
                    )
            for model in COPIED_TABLES:
                table = table_of(model)
                cleared = CLEARED_COLUMNS.get(table.name, {})
                result = reading.execution_options(stream_results=True).execute(
                    select(table).order_by(*table.primary_key.columns)
                )
                count = 0
                for batch in result.mappings().partitions(batch_rows):
                    writing.execute(table.insert(), [{**row, **cleared} for row in batch])
                    count += len(batch)
                copied[table.name] = count
            if writing.dialect.name == "postgresql":
                _move_sequences(writing)
            for model in COPIED_TABLES:
                table = table_of(model)
                stored = writing.execute(select(func.count()).select_from(table)).scalar_one()
                if stored != copied[table.name]:
                    raise StoreError(
                        f"copy of {table.name}: {copied[table.name]} rows read, {stored} stored"
                    )
    except SQLAlchemyError as error:
        raise StoreError(f"copy failed: {describe_error(error)}") from error
    # The search index is not copied (its form differs between databases): the target's
    # daemon builds it from the articles copied, and searches scan them meanwhile.
    target.rebuild_search_index()
    return CopyReport(copied)


def _move_sequences(connection: Connection) -> None:
    """Move each id sequence past the ids copied: new rows get new ids."""
    for model in COPIED_TABLES:
        table = table_of(model)
        keys = list(table.primary_key.columns)
        if len(keys) != 1 or not isinstance(keys[0].type, Integer):
            continue
        if keys[0].autoincrement is False:
            continue
        connection.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence('{table.name}', '{keys[0].name}'), "
                f"(SELECT COALESCE(MAX({keys[0].name}), 0) + 1 FROM {table.name}), false)"
            )
        )
