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

Several instances may run different versions against one database during a rolling
upgrade, so steps are additive: a new table, a new nullable column, a new index. An older
instance then finds steps it does not know recorded, and keeps working. A step that an
older instance could not work with says so (`required_steps`: how many steps an instance
must know), and such an instance refuses to start with a message naming both versions.
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
from monitor import __version__
from monitor.model import StoreError
from monitor.store.engine import StoreBase, describe_error
from monitor.store.search import create_search_index
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


def add_missing_tables_and_columns(connection: Connection) -> None:
    """Create the tables the database lacks and add the columns and indexes it lacks."""
    create_missing_tables(connection)
    add_missing_columns(connection)


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
    # How many steps an instance must know to run against a database that has been through
    # this one: None for an additive step, which older instances keep working with.
    required_steps: int | None = None


# In the order they apply. Append only: a shipped step keeps its number and its meaning.
MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "set first-schema deliveries aside", set_legacy_deliveries_aside),
    Migration(2, "create missing tables", create_missing_tables),
    Migration(3, "add missing columns and indexes", add_missing_columns),
    Migration(4, "move first-schema deliveries", move_legacy_deliveries),
    Migration(5, "add the full-text columns of feed_state", add_missing_columns),
    Migration(6, "add stories", add_stories),
    # Several instances on PostgreSQL: feed leases, singleton jobs, instance leases, and the
    # version that applied each step.
    Migration(7, "add the tables and columns of shared work", add_missing_tables_and_columns),
    # The search index (monitor.store.search), empty, every stored article pending: the
    # daemon indexes them in short batches (Store.index_pending), and searches read them in
    # full meanwhile. An older version would store articles the index never hears of, and
    # could change the text of indexed ones (which SQLite's index must be told of, with the
    # old text): it refuses to start on a database with the index.
    Migration(8, "create the search index", create_search_index, required_steps=8),
    # Articles of a feed's first poll wait in story_pending to be grouped in the background
    # (monitor.store.stories). Additive: an older version groups them when it stores them,
    # and never reads the table.
    Migration(9, "add the articles waiting to be grouped", create_missing_tables),
)


class SchemaTooNewError(StoreError):
    """The database has been through a step this version does not know and cannot work with."""


def applied_migrations(connection: Connection) -> set[int]:
    """Return the numbers of the steps the database has recorded (none without the table)."""
    if not inspect(connection).has_table(SchemaMigrationRow.__tablename__):
        return set()
    table = table_of(SchemaMigrationRow)
    return set(connection.execute(select(table.c.number)).scalars())


def newer_steps(connection: Connection) -> list[tuple[int, str | None, int | None]]:
    """Return the steps recorded that this version does not know: (number, the version
    that applied it, the steps an instance must know to run with it), by number."""
    inspector = inspect(connection)
    if not inspector.has_table(SchemaMigrationRow.__tablename__):
        return []
    columns = {column["name"] for column in inspector.get_columns(SchemaMigrationRow.__tablename__)}
    if "required_steps" not in columns:
        return []  # recorded by a version older than this one
    table = table_of(SchemaMigrationRow)
    rows = connection.execute(
        select(table.c.number, table.c.version, table.c.required_steps)
        .where(table.c.number > len(MIGRATIONS))
        .order_by(table.c.number)
    ).all()
    return [(number, version, required) for number, version, required in rows]


def check_compatible(connection: Connection) -> None:
    """Raise SchemaTooNewError if the database has been through a step that needs an
    instance knowing more steps than this one; log the newer additive ones."""
    newer = newer_steps(connection)
    if not newer:
        return
    number, version, _ = newer[-1]
    needed = max((required or 0 for _, _, required in newer), default=0)
    if needed > len(MIGRATIONS):
        raise SchemaTooNewError(
            f"the database's schema is at step {number}, written by news-monitor "
            f"{version or 'unknown'}, and needs an instance that knows {needed} steps; this "
            f"news-monitor {__version__} knows {len(MIGRATIONS)}: upgrade it"
        )
    logger.info(
        "store schema=newer step=%d written_by=%s this_version=%s note='additive: working on'",
        number,
        version or "unknown",
        __version__,
    )


def migrate(connection: Connection, now: datetime) -> list[Migration]:
    """Apply, in order, every step the database has not recorded, recording each; return
    the steps applied. Raise SchemaTooNewError for a database this version cannot work
    with. The caller holds the write transaction."""
    if connection.dialect.name == "postgresql":
        # Instances starting at the same moment on an empty database queue here: the first
        # applies every step, the others find them recorded.
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})")
    check_compatible(connection)
    applied = applied_migrations(connection)
    pending = [migration for migration in MIGRATIONS if migration.number not in applied]
    if not pending:
        return []
    bookkeeping = table_of(SchemaMigrationRow)
    bookkeeping.create(connection, checkfirst=True)
    _add_bookkeeping_columns(connection)
    for migration in pending:
        migration.apply(connection)
        connection.execute(
            insert(bookkeeping).values(
                number=migration.number,
                name=migration.name,
                applied_at=now,
                version=__version__,
                required_steps=migration.required_steps,
            )
        )
        logger.debug("store schema_step=%d name='%s'", migration.number, migration.name)
    return pending


def _add_bookkeeping_columns(connection: Connection) -> None:
    """The step table of an earlier version lacks the columns each step is recorded with
    now: add them first (nullable, so an earlier version still records its steps)."""
    table = table_of(SchemaMigrationRow)
    present = {column["name"] for column in inspect(connection).get_columns(table.name)}
    dialect = connection.dialect
    quote = dialect.identifier_preparer.quote
    for column in table.columns:
        if column.name not in present:
            connection.exec_driver_sql(
                f"ALTER TABLE {quote(table.name)} ADD COLUMN "
                f"{quote(column.name)} {column.type.compile(dialect=dialect)}"
            )


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
