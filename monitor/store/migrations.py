"""The schema's history: an ordered list of numbered steps that bring any database made by
any version to this version's tables, each recorded in `schema_migration` once applied.

create_schema applies, in order, every step a database has not recorded, and records it,
all in one write transaction (BEGIN IMMEDIATE on SQLite; an advisory lock on PostgreSQL), so
two processes starting at once apply each step once: the second finds it recorded. A new
database goes through every step too; it then has this version's tables at step 2, and
the later steps find nothing to do.

Databases made before steps were recorded have no `schema_migration` table: they go
through every step, each of which looks at what the database holds and changes only what
is missing, so they reach this version whatever version made them. Stored articles,
identity keys and rule hits are kept as they are, so nothing already stored alerts again.

A table or column added to monitor.store.tables needs a new step at the end of MIGRATIONS
(add_missing_columns adds every column and index the tables lack); a recorded step is never
run again, so never change one that has shipped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import insert, inspect, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.schema import CreateIndex
from sqlmodel import SQLModel

import monitor.store.instances  # noqa: F401  (its table is one of this version's)
from monitor.model import StoreError
from monitor.store.engine import StoreBase, describe_error
from monitor.store.tables import SchemaMigrationRow, partial_indexes_on, table_of

logger = logging.getLogger(__name__)

# The delivery table of the first schema (one row per rule hit and channel), renamed while
# its rows move to the current tables.
LEGACY_DELIVERY_TABLE = "delivery_v1"
# Any fixed 64-bit number: the PostgreSQL advisory lock that serialises schema changes.
MIGRATION_LOCK_KEY = 0x6E6D5F736368656D  # "nm_schem"


def set_legacy_deliveries_aside(connection: Connection) -> None:
    """The first schema had one delivery row per (rule hit, channel), with a hit_id:
    rename that table, so that the current one can be created."""
    inspector = inspect(connection)
    if not inspector.has_table("delivery"):
        return
    if "hit_id" not in {column["name"] for column in inspector.get_columns("delivery")}:
        return
    connection.exec_driver_sql(f"ALTER TABLE delivery RENAME TO {LEGACY_DELIVERY_TABLE}")
    # Index names are per schema: free the one the current table would reuse.
    connection.exec_driver_sql("DROP INDEX IF EXISTS ix_delivery_status_due")


def create_missing_tables(connection: Connection) -> None:
    """Create every table (with its indexes) the database lacks."""
    SQLModel.metadata.create_all(connection)


def add_missing_columns(connection: Connection) -> None:
    """create_all adds missing tables, not columns: give the tables of a database made by
    an earlier version the columns (and indexes) added since. A new column must be
    nullable (its existing rows get NULL). PostgreSQL gets IF NOT EXISTS as well."""
    dialect = connection.dialect
    quote = dialect.identifier_preparer.quote
    inspector = inspect(connection)
    for table in SQLModel.metadata.sorted_tables:
        if not inspector.has_table(table.name):
            continue
        present = {column["name"] for column in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name in present:
                continue
            if not column.nullable:
                raise StoreError(
                    f"cannot add column {table.name}.{column.name} to an existing "
                    "table: it is NOT NULL"
                )
            guard = "IF NOT EXISTS " if dialect.name == "postgresql" else ""
            connection.exec_driver_sql(
                f"ALTER TABLE {quote(table.name)} ADD COLUMN {guard}"
                f"{quote(column.name)} {column.type.compile(dialect=dialect)}"
            )
            logger.warning("store migrated=column table=%s column=%s", table.name, column.name)
        indexes = {index["name"] for index in inspector.get_indexes(table.name)}
        for index in table.indexes:
            if index.name not in indexes:
                connection.execute(CreateIndex(index, if_not_exists=True))


def move_legacy_deliveries(connection: Connection) -> None:
    """Copy the renamed first-schema table's rows (each an alert of one article) to the
    current tables and drop it."""
    if not inspect(connection).has_table(LEGACY_DELIVERY_TABLE):
        return
    connection.exec_driver_sql(
        "INSERT INTO delivery (id, rule_name, channel, kind, status, release_at, "
        "attempts, next_attempt_at, last_error, sent_services, created_at, sent_at) "
        "SELECT d.id, h.rule_name, d.channel, 'alert', d.status, NULL, d.attempts, "
        "d.next_attempt_at, d.last_error, '[]', d.created_at, d.sent_at "
        f"FROM {LEGACY_DELIVERY_TABLE} d JOIN rule_hit h ON h.id = d.hit_id"
    )
    connection.exec_driver_sql(
        "INSERT INTO delivery_item (hit_id, channel, delivery_id) "
        f"SELECT hit_id, channel, id FROM {LEGACY_DELIVERY_TABLE}"
    )
    connection.exec_driver_sql(f"DROP TABLE {LEGACY_DELIVERY_TABLE}")
    if connection.dialect.name == "postgresql":
        # The copied ids were explicit: move the id sequence past them.
        connection.exec_driver_sql(
            "SELECT setval(pg_get_serial_sequence('delivery', 'id'), "
            "(SELECT COALESCE(MAX(id), 0) + 1 FROM delivery), false)"
        )
    logger.warning("store migrated=deliveries note='moved to the batch-capable schema'")


def add_stories(connection: Connection) -> None:
    """Stories (monitor.store.stories): the story and story_band tables, each article's story
    and signature, the story marks of delivery items. Articles stored before have no story
    (a later article cannot join one), and their rule hits and deliveries stay as they are,
    so nothing alerts again."""
    create_missing_tables(connection)
    add_missing_columns(connection)


@dataclass(frozen=True)
class Migration:
    number: int  # its place in MIGRATIONS, from 1
    name: str  # what it does, as recorded
    apply: Callable[[Connection], None]  # run inside the migration's write transaction


# In the order they apply. Append only: a shipped step keeps its number and its meaning.
MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "set first-schema deliveries aside", set_legacy_deliveries_aside),
    Migration(2, "create missing tables", create_missing_tables),
    Migration(3, "add missing columns and indexes", add_missing_columns),
    Migration(4, "move first-schema deliveries", move_legacy_deliveries),
    Migration(5, "add the full-text columns of feed_state", add_missing_columns),
    Migration(6, "add stories", add_stories),
)


def applied_migrations(connection: Connection) -> set[int]:
    """Return the numbers of the steps the database has recorded (none without the table)."""
    if not inspect(connection).has_table(SchemaMigrationRow.__tablename__):
        return set()
    table = table_of(SchemaMigrationRow)
    return set(connection.execute(select(table.c.number)).scalars())


def migrate(connection: Connection, now: datetime) -> list[Migration]:
    """Apply, in order, every step the database has not recorded, recording each; return
    the steps applied. The caller holds the write transaction."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})")
    applied = applied_migrations(connection)
    pending = [migration for migration in MIGRATIONS if migration.number not in applied]
    if not pending:
        return []
    table_of(SchemaMigrationRow).create(connection, checkfirst=True)
    for migration in pending:
        migration.apply(connection)
        connection.execute(
            insert(table_of(SchemaMigrationRow)).values(
                number=migration.number, name=migration.name, applied_at=now
            )
        )
        logger.debug("store schema_step=%d name='%s'", migration.number, migration.name)
    return pending


class SchemaMigrations(StoreBase):
    """Store's schema: whether it is current, and bringing it up to date."""

    def schema_is_current(self) -> bool:
        """True if every step is recorded and every table and column of this version
        exists. A database made by an earlier version gets the rest from create_schema,
        which a reader cannot run. Raise StoreError if the database cannot be reached."""
        try:
            with self.engine.connect() as connection:
                applied = applied_migrations(connection)
                if any(step.number not in applied for step in MIGRATIONS):
                    return False
                inspector = inspect(connection)
                for table in SQLModel.metadata.sorted_tables:
                    if not inspector.has_table(table.name):
                        return False
                    present = {column["name"] for column in inspector.get_columns(table.name)}
                    if any(column.name not in present for column in table.columns):
                        return False
        except (SQLAlchemyError, OSError) as error:
            raise StoreError(f"cannot use database: {describe_error(error)}") from error
        return True

    def create_schema(self) -> None:
        """Bring the database to this version's schema (see MIGRATIONS), creating it if it
        is empty. Raise StoreError if the database cannot be reached."""
        try:
            if self.engine.dialect.name == "postgresql":
                partial_indexes_on("postgresql")
            with self.engine.begin() as connection:
                migrate(connection, datetime.now(UTC))
        except (SQLAlchemyError, OSError) as error:
            raise StoreError(f"cannot use database: {describe_error(error)}") from error
