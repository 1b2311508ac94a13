"""SQLModel tables and every query; with monitor.store.instances (the instance table, a part of
Store), the only module that imports sqlmodel.

Identity (monitor.ingest.identity): an item is a known article if its feed gave the same guid
before, or if any feed gave the same canonical link (unless its feed gave the two items
different guids); otherwise it is new. Each such key is a row of `article_key`, whose
primary key makes the database itself enforce the rule.
"""

from __future__ import annotations

import functools
import importlib
import json
import logging
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import (
    Index,
    UniqueConstraint,
    bindparam,
    delete,
    event,
    exists,
    func,
    insert,
    inspect,
    text,
)
from sqlalchemy.engine import Connection, Engine, Result, make_url
from sqlalchemy.exc import DatabaseError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.schema import CreateIndex, Table
from sqlalchemy.sql import ColumnElement, Executable
from sqlalchemy.sql.dml import Update
from sqlmodel import Field, Session, SQLModel, col, create_engine, select, update

from monitor.delivery import Timing
from monitor.ingest import (
    Stored,
    StoredFacts,
    Target,
    UpgradePoll,
    assign,
    facts_needed,
    item_keys,
    lookup_keys,
)
from monitor.model import Article, StoreError
from monitor.store.instances import InstanceRecords

logger = logging.getLogger(__name__)

HELD, PENDING, SENT, FAILED = "held", "pending", "sent", "failed"
ALERT, DIGEST, BATCH = "alert", "digest", "batch"
# The delivery table of the first schema (one row per rule hit and channel), renamed while
# its rows move to the current tables.
LEGACY_DELIVERY_TABLE = "delivery_v1"
SQLITE_BUSY_TIMEOUT_MILLISECONDS = 30_000
# Any fixed 64-bit number: the PostgreSQL advisory lock that serialises article identity.
IDENTITY_LOCK_KEY = 0x6E6577735F6D6F6E  # "news_mon"


# --- tables ------------------------------------------------------------------------------


class FeedStateRow(SQLModel, table=True):
    __tablename__ = "feed_state"

    name: str = Field(primary_key=True, max_length=200)
    url: str
    etag: str | None = None
    last_modified: str | None = None
    last_poll_at: datetime | None = None
    last_success_at: datetime | None = None
    http_status: int | None = None
    error: str | None = None
    error_streak: int = 0
    last_new_count: int = 0
    last_item_count: int = 0
    next_poll_at: datetime | None = None
    baseline_done: bool = False
    redirected_to: str | None = None
    ttl_seconds: float | None = None
    # Digest of the last document stored: the same bytes again need no parsing, for
    # servers that send neither ETag nor Last-Modified.
    body_hash: str | None = Field(default=None, max_length=64)
    # Digests of the items of that document (known_items): a changed document's items
    # with one of these need no parsing.
    item_digests: bytes | None = None
    # The identity (monitor.ingest.identity.IDENTITY_VERSION) this feed's items were last stored
    # under; NULL: the first, from before link fragments counted.
    identity_version: int | None = None


class ArticleRow(SQLModel, table=True):
    __tablename__ = "article"
    __table_args__ = (
        # What retention has yet to prune, oldest first: pruned rows leave the index, so a
        # daily prune reads only what it changes.
        Index(
            "ix_article_unpruned_first_seen",
            "first_seen_at",
            sqlite_where=text("pruned_at IS NULL"),  # and on PostgreSQL: _partial_indexes_on
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    first_feed: str = Field(max_length=200)
    title: str = ""
    link: str | None = None
    canonical_link: str | None = None
    summary: str = ""
    content: str = ""
    author: str = ""
    categories_json: str = "[]"
    published_at: datetime | None = None
    first_seen_at: datetime
    updated_at: datetime
    content_hash: str = Field(default="", max_length=64)
    # Recorded by a feed's first (baseline) poll: such an article never alerts.
    baseline: bool = False
    # When retention emptied its summary and content (Store.prune_articles). Its keys stay,
    # so it is never new again; edits to it are ignored, so it never alerts again either.
    pruned_at: datetime | None = None


class ArticleKeyRow(SQLModel, table=True):
    __tablename__ = "article_key"

    # See monitor.ingest.identity.item_keys: a sha256, one namespace for every kind of key.
    key: str = Field(primary_key=True, max_length=64)
    article_id: int = Field(foreign_key="article.id", index=True)


class FeedArticleRow(SQLModel, table=True):
    __tablename__ = "feed_article"

    feed_name: str = Field(primary_key=True, max_length=200)
    article_id: int = Field(primary_key=True, foreign_key="article.id")
    first_seen_at: datetime
    # Whether this feed gave the article a guid: another guid of the same feed is then
    # another article, even with the same link. NULL: stored before this was recorded.
    guid_given: bool | None = None


class RuleHitRow(SQLModel, table=True):
    __tablename__ = "rule_hit"
    # A rule notifies at most once per article, ever.
    __table_args__ = (UniqueConstraint("rule_name", "article_id", name="uq_rule_hit"),)

    id: int | None = Field(default=None, primary_key=True)
    rule_name: str = Field(max_length=200)
    article_id: int = Field(foreign_key="article.id", index=True)
    feed_name: str = Field(max_length=200)
    terms_json: str = "[]"
    excerpt: str = ""
    matched_at: datetime


class DeliveryRow(SQLModel, table=True):
    """One message to one channel: an alert about one article, or a batch of several.

    status: held (a batch waiting for release_at: a digest window, quiet hours or the
    excess of max_per_hour), pending (due at next_attempt_at), sent, failed (attempts
    exhausted). kind: alert (one article), digest (a `digest:` window, a digest whatever
    its size), batch (quiet hours or max_per_hour: a plain alert when it holds one article).
    A held batch takes more articles until it is released; at most one is open per
    (rule, channel, release time).
    """

    __tablename__ = "delivery"
    __table_args__ = (
        Index("ix_delivery_due", "status", "next_attempt_at"),
        Index("ix_delivery_rule_channel_created", "rule_name", "channel", "created_at"),
        Index(
            "uq_delivery_open_batch",
            "rule_name",
            "channel",
            "release_at",
            unique=True,
            sqlite_where=text("status = 'held'"),  # and on PostgreSQL: _partial_indexes_on
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    rule_name: str = Field(max_length=200)
    channel: str = Field(max_length=200)
    kind: str = Field(default=ALERT, max_length=16)
    status: str = Field(default=PENDING, max_length=16)
    release_at: datetime | None = None  # a batch: when it goes out
    attempts: int = 0
    next_attempt_at: datetime
    last_error: str | None = None
    # JSON list of the channel's service indexes (URL positions) that already succeeded:
    # a retry skips them.
    sent_services: str = "[]"
    # The process sending it now (see monitor.store.claims); a claim of a dead process is void.
    claimed_by: str | None = Field(default=None, max_length=200)
    claimed_at: datetime | None = None
    created_at: datetime
    sent_at: datetime | None = None


class DeliveryItemRow(SQLModel, table=True):
    """An article (rule hit) carried by a delivery: once per (hit, channel), ever."""

    __tablename__ = "delivery_item"

    hit_id: int = Field(primary_key=True, foreign_key="rule_hit.id")
    channel: str = Field(primary_key=True, max_length=200)
    delivery_id: int = Field(foreign_key="delivery.id", index=True)


class RuleStateRow(SQLModel, table=True):
    __tablename__ = "rule_state"

    rule_name: str = Field(primary_key=True, max_length=200)
    failures: int = 0  # articles the rule could not be evaluated on, ever
    last_error: str | None = None
    last_error_at: datetime | None = None


# --- values handed to other modules -----------------------------------------------------


@dataclass(frozen=True)
class FeedState:
    name: str
    url: str
    etag: str | None
    last_modified: str | None
    last_poll_at: datetime | None
    last_success_at: datetime | None
    http_status: int | None
    error: str | None
    error_streak: int
    last_new_count: int
    last_item_count: int
    next_poll_at: datetime | None
    baseline_done: bool
    redirected_to: str | None
    ttl_seconds: float | None
    body_hash: str | None = None
    item_digests: bytes | None = None
    identity_version: int | None = None


@dataclass(frozen=True)
class FeedStateUpdate:
    """Column values to write to one feed's state row (see Store.update_feed_states)."""

    name: str
    url: str
    values: dict[str, object]


@dataclass(frozen=True)
class FeedStatus:
    state: FeedState
    articles: int  # distinct articles this feed has carried


@dataclass(frozen=True)
class ArticleChange:
    """An article that rules must look at: new to the store, or known and edited."""

    article_id: int
    article: Article
    is_new: bool
    baseline: bool  # recorded by a baseline: never alerts


@dataclass(frozen=True)
class HitToRecord:
    rule_name: str
    terms: tuple[str, ...]
    excerpt: str
    channels: tuple[str, ...]
    timing: Timing = field(default_factory=Timing)  # when its deliveries go out


@dataclass(frozen=True)
class RuleState:
    rule_name: str
    failures: int
    last_error: str | None
    last_error_at: datetime | None


@dataclass(frozen=True)
class DeliveryArticle:
    """One article of a delivery, as the message shows it."""

    article_id: int
    feed_name: str
    terms: tuple[str, ...]
    excerpt: str
    title: str
    link: str | None
    published: datetime | None
    matched_at: datetime


@dataclass(frozen=True)
class PruneReport:
    """What one Store.prune_articles() run changed."""

    articles_pruned: int = 0  # articles whose summary and content were emptied
    deliveries_removed: int = 0  # sent or failed deliveries that carried only pruned articles
    delivery_items_removed: int = 0  # the (hit, channel) rows of those deliveries
    hits_removed: int = 0  # rule hits of pruned articles that no delivery carries any more


@dataclass(frozen=True)
class DueDelivery:
    delivery_id: int
    rule_name: str
    channel: str
    kind: str  # ALERT, DIGEST or BATCH
    attempts: int
    sent_services: frozenset[int]  # service indexes that already succeeded
    claimed_by: str | None
    claimed_at: datetime | None
    articles: tuple[DeliveryArticle, ...]  # oldest first
    next_attempt_at: datetime | None = None  # when it became due (its release, or a retry)

    @property
    def as_digest(self) -> bool:
        """A digest whatever its size, or a batch of several: one message listing them."""
        return self.kind == DIGEST or len(self.articles) > 1


# --- engine -------------------------------------------------------------------------------


def make_engine(database_url: str, *, read_only: bool = False) -> Engine:
    """Given a SQLAlchemy URL, return an engine; SQLite gets WAL, a busy timeout and
    BEGIN IMMEDIATE, so concurrent writers queue instead of failing or losing updates.

    With `read_only`, the engine never writes: a SQLite file is opened read-only (one that
    does not exist is an error, never created, nor is its folder) and PostgreSQL sessions
    are read-only. Commands that only read (status, health) use it, so that running them
    as root on a service's database creates no file there that the service could not write.
    """
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        if not read_only:
            return create_engine(database_url, pool_pre_ping=True)
        # Every transaction of the session read-only, from the connection's start.
        options = " ".join(
            filter(None, [url.query.get("options"), "-c default_transaction_read_only=on"])
        )
        return create_engine(database_url, pool_pre_ping=True, connect_args={"options": options})
    file = sqlite_file(database_url)
    timeout_seconds = SQLITE_BUSY_TIMEOUT_MILLISECONDS / 1000
    if read_only and file is not None:
        # SQLite's own read-only mode: mode=ro opens an existing file and never creates one.
        # (The -wal and -shm files SQLite may still create are given the database file's
        # owner by SQLite itself when it runs as root.)
        location = f"{file.absolute().as_uri()}?mode=ro"

        def connect() -> sqlite3.Connection:
            return sqlite3.connect(
                location, uri=True, timeout=timeout_seconds, check_same_thread=False
            )

        engine = create_engine(database_url, creator=connect)
    else:
        if file is not None:
            file.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            database_url,
            connect_args={"timeout": timeout_seconds, "check_same_thread": False},
        )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        # Let SQLAlchemy's "begin" event emit BEGIN; pysqlite's own implicit BEGIN is
        # deferred and lets read-then-write transactions lose updates.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if read_only:
            cursor.execute("PRAGMA query_only=ON")
        else:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MILLISECONDS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection) -> None:  # type: ignore[no-untyped-def]
        # A reader takes no write lock: it reads one snapshot while writers go on.
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


def sqlite_file(database_url: str) -> Path | None:
    """Given a database URL, return its SQLite file; None for another database or memory."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    if url.database.startswith("file:"):
        return None  # a URI filename: its options are the user's own
    return Path(url.database)


def _partial_indexes_on(dialect_name: str) -> None:
    """Give each partial index the condition it has on SQLite on `dialect_name` as well.

    The tables declare it for SQLite only: a `postgresql_where` in a table definition makes
    SQLAlchemy import its PostgreSQL dialect to check the option, 20 ms of every start,
    for a database most installs never use.
    """
    for table in SQLModel.metadata.tables.values():
        for index in table.indexes:
            where = index.dialect_options["sqlite"]["where"]
            if where is not None:
                index.dialect_options[dialect_name]["where"] = where


class Store(InstanceRecords):
    """The database: one per process, safe to use from several threads.

    `read_only`: see make_engine; such a store only answers queries."""

    def __init__(self, database_url: str, *, read_only: bool = False) -> None:
        self.database_url = database_url
        self.read_only = read_only
        try:
            self.engine = make_engine(database_url, read_only=read_only)
        except (SQLAlchemyError, OSError, ValueError) as error:
            raise StoreError(f"cannot open database: {type(error).__name__}") from error

    def missing(self) -> bool:
        """True for a SQLite database whose file does not exist (nothing has run on it)."""
        file = sqlite_file(self.database_url)
        return file is not None and not file.exists()

    def schema_is_current(self) -> bool:
        """True if every table and column of this version exists. A database made by an
        earlier version gets the rest from create_schema, which a reader cannot run.
        Raise StoreError if the database cannot be reached."""
        try:
            with self.engine.connect() as connection:
                inspector = inspect(connection)
                for table in SQLModel.metadata.sorted_tables:
                    if not inspector.has_table(table.name):
                        return False
                    present = {column["name"] for column in inspector.get_columns(table.name)}
                    if any(column.name not in present for column in table.columns):
                        return False
        except (SQLAlchemyError, OSError) as error:
            raise StoreError(f"cannot use database: {_describe(error)}") from error
        return True

    def create_schema(self) -> None:
        """Create missing tables, moving deliveries of the first schema to the current one.
        Raise StoreError if the database cannot be reached."""
        try:
            if self.engine.dialect.name == "postgresql":
                _partial_indexes_on("postgresql")
            self._set_legacy_deliveries_aside()
            SQLModel.metadata.create_all(self.engine)
            self._add_missing_columns()
            self._move_legacy_deliveries()
        except (SQLAlchemyError, OSError) as error:
            raise StoreError(f"cannot use database: {_describe(error)}") from error

    def _set_legacy_deliveries_aside(self) -> None:
        """The first schema had one delivery row per (rule hit, channel), with a hit_id:
        rename that table, so that the current one can be created."""
        inspector = inspect(self.engine)
        if not inspector.has_table("delivery"):
            return
        if "hit_id" not in {column["name"] for column in inspector.get_columns("delivery")}:
            return
        with self.engine.begin() as connection:
            connection.exec_driver_sql(f"ALTER TABLE delivery RENAME TO {LEGACY_DELIVERY_TABLE}")
            # Index names are per schema: free the one the current table would reuse.
            connection.exec_driver_sql("DROP INDEX IF EXISTS ix_delivery_status_due")

    def _add_missing_columns(self) -> None:
        """create_all adds missing tables, not columns: give the tables of a database made
        by an earlier version the columns (and indexes) added since. A new column must be
        nullable (its existing rows get NULL). Inspection and change share one write
        transaction (BEGIN IMMEDIATE on SQLite), so two processes starting at once cannot
        both add a column; PostgreSQL has IF NOT EXISTS for the same purpose."""
        with self.engine.begin() as connection:
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
                    logger.warning(
                        "store migrated=column table=%s column=%s", table.name, column.name
                    )
                indexes = {index["name"] for index in inspector.get_indexes(table.name)}
                for index in table.indexes:
                    if index.name not in indexes:
                        connection.execute(CreateIndex(index, if_not_exists=True))

    def _move_legacy_deliveries(self) -> None:
        """Copy the renamed table's rows (each an alert of one article) and drop it."""
        if not inspect(self.engine).has_table(LEGACY_DELIVERY_TABLE):
            return
        with self.engine.begin() as connection:
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

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def transaction(self) -> Iterator[StoreTransaction]:
        """One write transaction: everything in it is stored, or nothing is.

        Raise StoreError if the database fails; the transaction is rolled back."""
        with self._session() as session:
            yield StoreTransaction(session)

    @contextmanager
    def _reading(self) -> Iterator[Session]:
        with self._session() as session:
            yield session

    @contextmanager
    def _session(self) -> Iterator[Session]:
        with (
            _systemic_errors(),
            Session(self.engine, expire_on_commit=False) as session,
            session.begin(),
        ):
            yield session

    @contextmanager
    def _connection(self) -> Iterator[Connection]:
        """A write transaction on a plain connection, for a single Core statement: opening
        and closing an ORM Session costs more than such a statement does."""
        with _systemic_errors(), self.engine.begin() as connection:
            yield connection

    # --- feeds ------------------------------------------------------------------------

    def feed_state(self, name: str) -> FeedState | None:
        with self._reading() as session:
            row = session.get(FeedStateRow, name)
            return _feed_state(row) if row else None

    def feed_states(self) -> dict[str, FeedState]:
        """Every feed's state by name, in one query (a cycle reads them all at its start).

        Read as plain rows: ORM objects for 1,000 feeds took twice as long as the query."""
        with self._reading() as session:
            rows = session.connection().execute(FeedStateRow.__table__.select()).mappings()
            return {row["name"]: FeedState(**row) for row in rows}

    def update_feed_states(self, updates: Sequence[FeedStateUpdate]) -> None:
        """Write several feeds' state in one transaction (a cycle's answers of 304)."""
        if not updates:
            return
        # One executemany per set of columns written (a cycle's 304s all write the same).
        groups: dict[tuple[str, ...], list[FeedStateUpdate]] = {}
        for update_ in updates:
            groups.setdefault(tuple(sorted(update_.values)), []).append(update_)
        table = FeedStateRow.__table__
        statement = table.update().where(table.c.name == bindparam("state_name"))
        with self.transaction() as transaction:
            connection = transaction.session.connection()
            for group in groups.values():
                result = connection.execute(
                    statement,
                    [{"state_name": u.name, "url": u.url, **u.values} for u in group],
                )
                if result.rowcount != len(group):  # a feed without a state row yet
                    for update_ in group:
                        transaction.update_feed_state(update_.name, update_.url, **update_.values)

    def feed_statuses(self) -> list[FeedStatus]:
        with self._reading() as session:
            counts = dict(
                session.exec(
                    select(FeedArticleRow.feed_name, func.count()).group_by(
                        FeedArticleRow.feed_name
                    )
                ).all()
            )
            rows = session.exec(select(FeedStateRow).order_by(FeedStateRow.name)).all()
            return [FeedStatus(_feed_state(row), counts.get(row.name, 0)) for row in rows]

    def clear_next_polls(self, names: list[str]) -> None:
        """Mark these feeds as having no poll scheduled (after `run --once`), in one statement."""
        if not names:
            return
        table = FeedStateRow.__table__
        # Core, not an ORM update: that one would also look for the rows among the
        # session's objects (synchronize_session), which costs more than the statement.
        with self._connection() as connection:
            connection.execute(
                table.update().where(table.c.name.in_(names)).values(next_poll_at=None)
            )

    def set_next_poll(self, name: str, next_poll_at: datetime | None) -> None:
        table = FeedStateRow.__table__
        with self._connection() as connection:
            connection.execute(
                table.update().where(table.c.name == name).values(next_poll_at=next_poll_at)
            )

    # --- deliveries -------------------------------------------------------------------

    def release_held(self, now: datetime) -> int:
        """Make every held batch whose time has come pending (it takes no more articles
        from then on). Return how many were released."""
        with self.transaction() as transaction:
            result = transaction.session.exec(
                update(DeliveryRow)
                .where(col(DeliveryRow.status) == HELD)
                .where(col(DeliveryRow.release_at) <= now)
                .values(status=PENDING)
            )
            return result.rowcount

    def due_deliveries(
        self,
        now: datetime,
        *,
        ignore_backoff: bool = False,
        include_due_held: bool = False,
        channel: str | None = None,
        after_id: int = 0,
        limit: int = 200,
    ) -> list[DueDelivery]:
        """Return pending deliveries whose time has come (every pending one with
        ignore_backoff), with their articles, by id, from after_id on; only the channel's
        when one is named. With include_due_held, held batches whose release time has come
        too (a dry run reads them without releasing them)."""
        statement = (
            select(DeliveryRow)
            .where(_due(now, ignore_backoff=ignore_backoff, include_due_held=include_due_held))
            .where(col(DeliveryRow.id) > after_id)
            .order_by(col(DeliveryRow.id))
            .limit(limit)
        )
        if channel is not None:
            statement = statement.where(col(DeliveryRow.channel) == channel)
        with self._reading() as session:
            rows = session.exec(statement).all()
            articles = self._delivery_articles(session, [row.id or 0 for row in rows])
        return [
            DueDelivery(
                delivery_id=row.id or 0,
                rule_name=row.rule_name,
                channel=row.channel,
                kind=row.kind,
                attempts=row.attempts,
                sent_services=frozenset(json.loads(row.sent_services or "[]")),
                claimed_by=row.claimed_by,
                claimed_at=row.claimed_at,
                articles=tuple(articles.get(row.id or 0, ())),
                next_attempt_at=_aware(row.next_attempt_at),
            )
            for row in rows
        ]

    def due_channels(
        self, now: datetime, *, ignore_backoff: bool = False, include_due_held: bool = False
    ) -> set[str]:
        """Return the channels that have deliveries due_deliveries would return."""
        due = _due(now, ignore_backoff=ignore_backoff, include_due_held=include_due_held)
        with self._reading() as session:
            return set(session.exec(select(DeliveryRow.channel).where(due).distinct()).all())

    @staticmethod
    def _delivery_articles(
        session: Session, delivery_ids: list[int]
    ) -> dict[int, list[DeliveryArticle]]:
        """Given delivery ids, return each one's articles, oldest first (by published time,
        else by when the rule matched)."""
        if not delivery_ids:
            return {}
        rows = session.exec(
            select(DeliveryItemRow.delivery_id, RuleHitRow, ArticleRow)
            .join(RuleHitRow, col(RuleHitRow.id) == DeliveryItemRow.hit_id)
            .join(ArticleRow, col(ArticleRow.id) == RuleHitRow.article_id)
            .where(col(DeliveryItemRow.delivery_id).in_(delivery_ids))
            .order_by(col(RuleHitRow.id))
        ).all()
        articles: dict[int, list[DeliveryArticle]] = {}
        for delivery_id, hit, article in rows:
            articles.setdefault(delivery_id, []).append(
                DeliveryArticle(
                    article_id=article.id or 0,
                    feed_name=hit.feed_name,
                    terms=tuple(json.loads(hit.terms_json)),
                    excerpt=hit.excerpt,
                    title=article.title,
                    link=article.link,
                    published=article.published_at,
                    matched_at=hit.matched_at,
                )
            )
        for group in articles.values():
            group.sort(key=lambda item: item.published or item.matched_at)
        return articles

    def claim_deliveries(
        self, claims: Sequence[tuple[int, str | None]], claimant: str, now: datetime
    ) -> set[int]:
        """claim_delivery for several deliveries in one transaction: each (delivery_id,
        previous) is taken if it is still pending and its claim is still `previous`. With
        previous == claimant this renews our own claim (claimed_at = now). Return the ids
        this caller has."""
        if not claims:
            return set()
        table = DeliveryRow.__table__
        by_previous: dict[str | None, list[int]] = {}
        for delivery_id, previous in claims:
            by_previous.setdefault(previous, []).append(delivery_id)
        claimed: set[int] = set()
        with self.transaction() as transaction:
            for previous, ids in by_previous.items():
                claim = table.c.claimed_by
                result = transaction.session.execute(
                    table.update()
                    .where(table.c.id.in_(ids))
                    .where(table.c.status == PENDING)
                    .where(claim.is_(None) if previous is None else claim == previous)
                    .values(claimed_by=claimant, claimed_at=now)
                    .returning(table.c.id)
                )
                claimed.update(result.scalars())
        return claimed

    def release_claims(self, delivery_ids: Sequence[int], claimant: str) -> None:
        """release_claim for several deliveries in one transaction."""
        if not delivery_ids:
            return
        with self.transaction() as transaction:
            transaction.session.exec(
                update(DeliveryRow)
                .where(col(DeliveryRow.id).in_(list(delivery_ids)))
                .where(col(DeliveryRow.claimed_by) == claimant)
                .values(claimed_by=None, claimed_at=None)
            )

    def release_void_claims(self, is_live: Callable[[str, datetime | None], bool]) -> int:
        """Clear every claim whose process is gone (is_live(claimed_by, claimed_at) is
        False). Return how many were cleared."""
        with self.transaction() as transaction:
            claims = transaction.session.exec(
                select(DeliveryRow.id, DeliveryRow.claimed_by, DeliveryRow.claimed_at).where(
                    col(DeliveryRow.claimed_by).is_not(None)
                )
            ).all()
            void = [
                delivery_id
                for delivery_id, claimed_by, claimed_at in claims
                if not is_live(claimed_by or "", claimed_at)
            ]
            if void:
                transaction.session.exec(
                    update(DeliveryRow)
                    .where(col(DeliveryRow.id).in_(void))
                    .values(claimed_by=None, claimed_at=None)
                )
            return len(void)

    def mark_sent(
        self, delivery_id: int | Sequence[int], now: datetime, *, sent_services: Iterable[int] = ()
    ) -> None:
        """Record a successful try of a delivery, or of the deliveries one message carried
        (in one transaction: they share the outcome)."""
        self._record_attempt(
            delivery_id,
            status=SENT,
            sent_at=now,
            last_error=None,
            sent_services=_indexes_json(sent_services),
        )

    def mark_attempt_failed(
        self,
        delivery_id: int | Sequence[int],
        error: str,
        next_attempt_at: datetime | None,
        *,
        sent_services: Iterable[int] | None = None,
    ) -> None:
        """Record a failed try of a delivery, or of the deliveries of one message; with no
        next attempt time they are failed for good. sent_services: the service indexes
        that have succeeded so far (kept as they are when None)."""
        values: dict[str, object] = {"last_error": error}
        if next_attempt_at is None:
            values["status"] = FAILED
        else:
            values["next_attempt_at"] = next_attempt_at
        if sent_services is not None:
            values["sent_services"] = _indexes_json(sent_services)
        self._record_attempt(delivery_id, **values)

    def _record_attempt(self, delivery_id: int | Sequence[int], **values: object) -> None:
        """Count one more attempt of the deliveries, release their claims and set these
        columns, in one transaction.

        One Core statement for every outcome (the SET clause takes the columns given), built
        once: an ORM update built per call cost more than the send itself, every alert."""
        ids = [delivery_id] if isinstance(delivery_id, int) else list(delivery_id)
        with self._connection() as connection:
            connection.execute(
                _attempt_statement(),
                [{"delivery_id": one, **values} for one in ids],
            )

    def retry_failed(self, now: datetime, *, rule_name: str | None = None) -> int:
        """Put failed deliveries (of one rule, or all) back to pending, due now, with their
        attempts reset; services that already succeeded stay skipped. Return how many."""
        statement = update(DeliveryRow).where(col(DeliveryRow.status) == FAILED)
        if rule_name is not None:
            statement = statement.where(col(DeliveryRow.rule_name) == rule_name)
        with self.transaction() as transaction:
            result = transaction.session.exec(
                statement.values(status=PENDING, attempts=0, next_attempt_at=now)
            )
            return result.rowcount

    def delivery_counts(self, now: datetime | None = None) -> dict[str, int]:
        """Return how many deliveries are pending, held, sent and failed: one per (rule,
        article or batch, channel). A batch whose release time (at `now`) has come counts
        as pending: it no longer waits."""
        with self._reading() as session:
            rows = session.exec(
                select(DeliveryRow.status, func.count()).group_by(DeliveryRow.status)
            ).all()
            released = 0
            if now is not None:
                released = session.exec(
                    select(func.count())
                    .select_from(DeliveryRow)
                    .where(col(DeliveryRow.status) == HELD)
                    .where(col(DeliveryRow.release_at) <= now)
                ).one()
        counts = {PENDING: 0, HELD: 0, SENT: 0, FAILED: 0}
        counts.update(dict(rows))
        counts[HELD] -= released
        counts[PENDING] += released
        return counts

    def next_delivery_time(self, after: datetime) -> datetime | None:
        """Return the earliest time after `after` that a delivery waits for: a held batch's
        release or a pending delivery's next attempt; None when none waits."""
        with self._reading() as session:
            attempt = session.exec(
                select(func.min(DeliveryRow.next_attempt_at))
                .where(col(DeliveryRow.status) == PENDING)
                .where(col(DeliveryRow.next_attempt_at) > after)
            ).one()
        times = [
            _aware(moment)
            for moment in (attempt, self.next_release_time(after))
            if moment is not None
        ]
        return min(times) if times else None

    def next_release_time(self, after: datetime) -> datetime | None:
        """Return the earliest release time after `after` of a held batch, or None."""
        with self._reading() as session:
            release = session.exec(
                select(func.min(DeliveryRow.release_at))
                .where(col(DeliveryRow.status) == HELD)
                .where(col(DeliveryRow.release_at) > after)
            ).one()
        return _aware(release) if release is not None else None

    def last_delivery_errors(self, limit: int = 5) -> list[tuple[str, str, str]]:
        """Return (rule, channel, last error) of the most recent failed or retrying deliveries."""
        statement = (
            select(DeliveryRow.rule_name, DeliveryRow.channel, DeliveryRow.last_error)
            .where(col(DeliveryRow.last_error).is_not(None))
            .where(col(DeliveryRow.status) != SENT)
            .order_by(col(DeliveryRow.id).desc())
            .limit(limit)
        )
        with self._reading() as session:
            rows = session.exec(statement).all()
        return [(rule, channel, error or "") for rule, channel, error in rows]

    def rule_states(self) -> list[RuleState]:
        """Return the rules that have failed at least once, most recent failure first."""
        with self._reading() as session:
            rows = session.exec(
                select(RuleStateRow).order_by(col(RuleStateRow.last_error_at).desc())
            ).all()
            return [
                RuleState(row.rule_name, row.failures, row.last_error, row.last_error_at)
                for row in rows
            ]

    # --- retention ----------------------------------------------------------------------

    def prune_articles(self, older_than: datetime, *, batch_size: int = 1000) -> PruneReport:
        """Given a time, empty the summary and content of every article first seen before
        it, and delete the delivery history that only concerned such articles. Return
        what was changed; a second run with the same time changes nothing.

        Kept: each article's row (title, link, published time, content hash; so `status`,
        `rules test` and pending alerts can still name it), its identity keys and its feed
        links, so it is never new again; every pending or held delivery with its hits.
        Deleted: sent and failed deliveries created before the time that carried only
        pruned articles (with their items), then the rule hits of pruned articles that no
        delivery carries any more.

        Works in batches of `batch_size` rows, each its own short transaction, so pollers
        and senders wait at most one batch; nothing is vacuumed (SQLite reuses the pages
        freed). Raise StoreError if the database fails (batches done so far stay done).
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size}")
        now = datetime.now(UTC)
        articles = 0
        while True:
            with self.transaction() as transaction:
                pruned = self._prune_article_batch(transaction.session, older_than, now, batch_size)
            articles += pruned
            if pruned < batch_size:
                break
        deliveries = items = 0
        after = 0
        while True:
            with self.transaction() as transaction:
                removed_ids, removed_items = self._remove_delivery_batch(
                    transaction.session, older_than, after, batch_size
                )
            deliveries += len(removed_ids)
            items += removed_items
            if len(removed_ids) < batch_size:
                break
            after = removed_ids[-1]
        hits = 0
        after = 0
        while True:
            with self.transaction() as transaction:
                removed_ids = self._remove_hit_batch(transaction.session, after, batch_size)
            hits += len(removed_ids)
            if len(removed_ids) < batch_size:
                break
            after = removed_ids[-1]
        return PruneReport(
            articles_pruned=articles,
            deliveries_removed=deliveries,
            delivery_items_removed=items,
            hits_removed=hits,
        )

    @staticmethod
    def _prune_article_batch(
        session: Session, older_than: datetime, now: datetime, batch_size: int
    ) -> int:
        """Empty the bodies of up to batch_size unpruned articles first seen before
        older_than, oldest first; return how many."""
        if session.get_bind().dialect.name == "postgresql":
            # The same lock upsert_articles holds (see _serialise_identity): a poll that
            # is deciding whether an article was edited finishes before it is pruned.
            session.exec(
                text("SELECT pg_advisory_xact_lock(:key)").bindparams(key=IDENTITY_LOCK_KEY)
            )
        batch = (
            select(ArticleRow.id)
            .where(col(ArticleRow.pruned_at).is_(None))
            .where(col(ArticleRow.first_seen_at) < older_than)
            .order_by(col(ArticleRow.first_seen_at))
            .limit(batch_size)
        )
        result = session.exec(
            update(ArticleRow)
            .where(col(ArticleRow.id).in_(batch.scalar_subquery()))
            .values(summary="", content="", pruned_at=now)
        )
        return result.rowcount

    @staticmethod
    def _remove_delivery_batch(
        session: Session, older_than: datetime, after_id: int, batch_size: int
    ) -> tuple[list[int], int]:
        """Delete up to batch_size finished deliveries (sent or failed) created before
        older_than whose every article is pruned, with their items, from after_id on.
        Return their ids (ascending) and how many items went with them."""
        carries_unpruned = exists(
            select(DeliveryItemRow.hit_id)
            .join(RuleHitRow, col(RuleHitRow.id) == DeliveryItemRow.hit_id)
            .join(ArticleRow, col(ArticleRow.id) == RuleHitRow.article_id)
            .where(col(DeliveryItemRow.delivery_id) == DeliveryRow.id)
            .where(col(ArticleRow.pruned_at).is_(None))
        )
        ids = list(
            session.exec(
                select(DeliveryRow.id)
                .where(col(DeliveryRow.id) > after_id)
                .where(col(DeliveryRow.status).in_((SENT, FAILED)))
                .where(col(DeliveryRow.created_at) < older_than)
                .where(~carries_unpruned)
                .order_by(col(DeliveryRow.id))
                .limit(batch_size)
                # PostgreSQL: a failed delivery put back to pending meanwhile is skipped.
                .with_for_update()
            ).all()
        )
        if not ids:
            return [], 0
        items = session.exec(
            delete(DeliveryItemRow).where(col(DeliveryItemRow.delivery_id).in_(ids))
        ).rowcount
        session.exec(delete(DeliveryRow).where(col(DeliveryRow.id).in_(ids)))
        return ids, items

    @staticmethod
    def _remove_hit_batch(session: Session, after_id: int, batch_size: int) -> list[int]:
        """Delete up to batch_size rule hits of pruned articles that no delivery carries,
        from after_id on; return their ids (ascending). A pruned article is never matched
        again, so its hits are no longer needed to keep a rule from notifying twice."""
        carried = exists(
            select(DeliveryItemRow.hit_id).where(col(DeliveryItemRow.hit_id) == RuleHitRow.id)
        )
        ids = list(
            session.exec(
                select(RuleHitRow.id)
                .join(ArticleRow, col(ArticleRow.id) == RuleHitRow.article_id)
                .where(col(RuleHitRow.id) > after_id)
                .where(col(ArticleRow.pruned_at).is_not(None))
                .where(~carried)
                .order_by(col(RuleHitRow.id))
                .limit(batch_size)
            ).all()
        )
        if ids:
            session.exec(delete(RuleHitRow).where(col(RuleHitRow.id).in_(ids)))
        return ids

    def article_count(self) -> int:
        with self._reading() as session:
            return session.exec(select(func.count()).select_from(ArticleRow)).one()

    def stored_articles(
        self, since: datetime | None = None, *, batch_size: int = 500
    ) -> Iterator[tuple[Article, tuple[str, ...]]]:
        """Given a time (or None for all), yield every stored article first seen at or after
        it, oldest first, with the names of the feeds that carried it (sorted).

        Rows are read `batch_size` at a time, each batch in its own short transaction, so
        the whole store never sits in memory and a running daemon is never locked out for
        long (a SQLite read here takes the write lock: see make_engine). Articles stored
        while this runs are included when they match. The Article has no guid (only the
        keys derived from it are stored) and no fallback key.
        """
        last_id = 0
        while True:
            statement = (
                select(ArticleRow)
                .where(col(ArticleRow.id) > last_id)
                .order_by(col(ArticleRow.id))
                .limit(batch_size)
            )
            if since is not None:
                statement = statement.where(col(ArticleRow.first_seen_at) >= since)
            with self._reading() as session:
                rows = session.exec(statement).all()
                if not rows:
                    return
                feeds: dict[int, list[str]] = {}
                for article_id, feed_name in session.exec(
                    select(FeedArticleRow.article_id, FeedArticleRow.feed_name).where(
                        col(FeedArticleRow.article_id).in_([row.id for row in rows])
                    )
                ).all():
                    feeds.setdefault(article_id, []).append(feed_name)
                batch = [
                    (
                        _article_from_row(row),
                        tuple(sorted(feeds.get(row.id or 0, [row.first_feed]))),
                    )
                    for row in rows
                ]
            yield from batch
            last_id = rows[-1].id or last_id
            if len(rows) < batch_size:
                return


class StoreTransaction:
    """Methods that must run together in one write transaction (see Store.transaction)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def _insert(self, model: type[SQLModel] | Table):  # type: ignore[no-untyped-def]
        # The dialect's own insert, for ON CONFLICT; imported on use, as only one is needed.
        dialect = self.session.get_bind().dialect.name
        return importlib.import_module(f"sqlalchemy.dialects.{dialect}").insert(model)

    def _execute_many(self, statement: Executable, rows: list[dict[str, object]]) -> Result:
        """Run a Core statement once per row, as one executemany.

        The statement is the same whatever the number of rows, so SQLAlchemy compiles it
        once per process; a multi-row VALUES is a new statement for each length, and
        compiling it cost more than running it. Core, not the ORM: the ORM's bulk paths
        add per-row bookkeeping a feed's worth of rows does not need."""
        return self.session.connection().execute(statement, rows)

    def upsert_articles(
        self,
        feed_name: str,
        articles: Sequence[Article],
        *,
        baseline: bool,
        now: datetime,
        upgrade: UpgradePoll | None = None,
    ) -> tuple[list[ArticleChange], int]:
        """Store a feed's items. Return (the changes rules must see, how many items were new
        to this feed). A change is a new article, or a known one whose text was edited.

        `upgrade`: the feed's items were last stored under an earlier identity (its feed
        state's identity_version is older than identity.IDENTITY_VERSION): see
        monitor.ingest.identity. The text of a known article an item the feed's last document held
        byte for byte gives anew is updated then, but not returned as a change: the same
        bytes read by a newer parser (plain-text fields kept as written) are no edit, and
        rules must not alert on an article stored before because of it.

        A few statements per feed, whatever its length: one lookup of every identity key,
        one multi-row insert of the new articles, one of their keys, one of the feed links;
        items known by their guid, or new by every key, need nothing more.
        """
        self._serialise_identity()
        items = [item_keys(feed_name, article) for article in articles]
        known = self._known_keys(lookup_keys(items))
        carried_ids, link_ids = facts_needed(items, known, upgrade=upgrade)
        facts = StoredFacts(
            known,
            carried=self._carried(feed_name, carried_ids),
            links=self._stored_links(link_ids),
        )
        assignment = assign(items, facts, upgrade=upgrade)

        new_articles = [articles[index] for index in assignment.new_items]
        seen_before = assignment.seen_before
        new_ids = self._insert_articles(
            feed_name,
            new_articles,
            baselines=[baseline or index in seen_before for index in range(len(new_articles))],
            now=now,
        )

        def article_id(target: Target) -> int:
            if isinstance(target, Stored):
                return target.article_id
            return new_ids[target.index]

        self._insert_keys({key: article_id(target) for key, target in assignment.keys.items()})
        self._move_keys({key: article_id(target) for key, target in assignment.moved_keys.items()})
        changes = [
            ArticleChange(article_id_, article, is_new=True, baseline=baseline)
            for index, (article_id_, article) in enumerate(zip(new_ids, new_articles, strict=True))
            if index not in seen_before
        ]
        changes += self._update_edited(
            [
                (target.article_id, article, upgrade is not None and upgrade.held_before(index))
                for index, (target, article) in enumerate(
                    zip(assignment.targets, articles, strict=True)
                )
                if isinstance(target, Stored)
            ],
            now,
        )
        linked = self._link_feed_articles(
            feed_name,
            {
                article_id(target): target in assignment.guided
                for target in dict.fromkeys(assignment.targets)
            },
            now,
        )
        self._record_guids_given(feed_name, assignment.newly_guided)
        taken_apart = {new_ids[index] for index in seen_before}
        return changes, sum(article_id_ not in taken_apart for article_id_ in linked)

    def _serialise_identity(self) -> None:
        """Make deciding "new or known" and storing the answer one step across writers.

        SQLite's BEGIN IMMEDIATE already admits one writer at a time. PostgreSQL's READ
        COMMITTED would let two polls both see an article as new, store it twice and alert
        twice; a transaction-scoped advisory lock queues them instead.
        """
        if self.session.get_bind().dialect.name == "postgresql":
            self.session.exec(
                text("SELECT pg_advisory_xact_lock(:key)").bindparams(key=IDENTITY_LOCK_KEY)
            )

    def _known_keys(self, keys: set[str]) -> dict[str, int]:
        if not keys:
            return {}
        rows = self.session.exec(
            select(ArticleKeyRow.key, ArticleKeyRow.article_id).where(
                col(ArticleKeyRow.key).in_(keys)
            )
        ).all()
        return dict(rows)

    def _carried(self, feed_name: str, article_ids: set[int]) -> dict[int, bool | None]:
        """Of these articles, those the feed carried, and whether it gave each a guid."""
        if not article_ids:
            return {}
        rows = self.session.exec(
            select(FeedArticleRow.article_id, FeedArticleRow.guid_given)
            .where(col(FeedArticleRow.feed_name) == feed_name)
            .where(col(FeedArticleRow.article_id).in_(article_ids))
        ).all()
        return dict(rows)

    def _stored_links(self, article_ids: set[int]) -> dict[int, str | None]:
        if not article_ids:
            return {}
        rows = self.session.exec(
            select(ArticleRow.id, ArticleRow.link).where(col(ArticleRow.id).in_(article_ids))
        ).all()
        return {article_id: link for article_id, link in rows if article_id is not None}

    def _record_guids_given(self, feed_name: str, article_ids: frozenset[int]) -> None:
        """Record that the feed gave these articles (which it carries) a guid."""
        if not article_ids:
            return
        table = FeedArticleRow.__table__
        self.session.connection().execute(
            table.update()
            .where(table.c.feed_name == feed_name)
            .where(table.c.article_id.in_(article_ids))
            .values(guid_given=True)
        )

    def _insert_articles(
        self, feed_name: str, articles: list[Article], *, baselines: list[bool], now: datetime
    ) -> list[int]:
        """Insert articles (each recorded by a baseline or not); return their ids in the
        same order."""
        if not articles:
            return []
        rows = [
            {
                "first_feed": feed_name,
                "first_seen_at": now,
                "updated_at": now,
                "baseline": baseline,
                **_article_columns(article),
            }
            for article, baseline in zip(articles, baselines, strict=True)
        ]
        table = ArticleRow.__table__
        result = self._execute_many(
            insert(table).returning(table.c.id, sort_by_parameter_order=True), rows
        )
        return list(result.scalars())

    def _insert_keys(self, article_id_by_key: dict[str, int]) -> None:
        if not article_id_by_key:
            return
        self._execute_many(
            self._insert(ArticleKeyRow.__table__).on_conflict_do_nothing(index_elements=["key"]),
            [{"key": key, "article_id": id_} for key, id_ in article_id_by_key.items()],
        )

    def _move_keys(self, article_id_by_key: dict[str, int]) -> None:
        """Point stored keys at another article (see identity: taking apart old merges)."""
        if not article_id_by_key:
            return
        table = ArticleKeyRow.__table__
        self._execute_many(
            table.update()
            .where(table.c.key == bindparam("moved_key"))
            .values(article_id=bindparam("to_article")),
            [{"moved_key": key, "to_article": id_} for key, id_ in article_id_by_key.items()],
        )

    def _update_edited(
        self, items: list[tuple[int, Article, bool]], now: datetime
    ) -> list[ArticleChange]:
        """Update known articles whose text changed; return them as changes, but those
        given with True (updated quietly: see upsert_articles)."""
        if not items:
            return []
        stored = {
            article_id: (content_hash, baseline)
            for article_id, content_hash, baseline in self.session.exec(
                select(ArticleRow.id, ArticleRow.content_hash, ArticleRow.baseline)
                .where(col(ArticleRow.id).in_({article_id for article_id, _, _ in items}))
                # A pruned article is past retention: its rule hits may be gone, so
                # matching an edit of it again could notify a rule a second time.
                .where(col(ArticleRow.pruned_at).is_(None))
            ).all()
        }
        changes = []
        for article_id, article, quietly in items:
            content_hash, was_baseline = stored.get(article_id, (article.content_hash, False))
            if content_hash == article.content_hash:
                continue
            self.session.exec(
                update(ArticleRow)
                .where(col(ArticleRow.id) == article_id)
                .values(updated_at=now, **_article_columns(article))
            )
            stored[article_id] = (article.content_hash, was_baseline)
            if not quietly:
                changes.append(
                    ArticleChange(article_id, article, is_new=False, baseline=was_baseline)
                )
        return changes

    def _link_feed_articles(
        self, feed_name: str, guid_given: dict[int, bool], now: datetime
    ) -> list[int]:
        """Insert-or-ignore (feed, article) rows, given {article id: whether the feed gave it
        a guid}; return the ids of the articles new to the feed."""
        if not guid_given:
            return []
        rows = [
            {
                "feed_name": feed_name,
                "article_id": article_id,
                "first_seen_at": now,
                "guid_given": given,
            }
            for article_id, given in guid_given.items()
        ]
        table = FeedArticleRow.__table__
        inserted = self._execute_many(
            self._insert(table)
            .on_conflict_do_nothing(index_elements=["feed_name", "article_id"])
            .returning(table.c.article_id),
            rows,
        )
        return list(inserted.scalars())

    def record_hits(
        self, article_id: int, feed_name: str, hits: Sequence[HitToRecord], now: datetime
    ) -> int:
        """Record rule hits and put each on its way to each of its channels: a delivery of
        its own, or a held batch (hit.timing). A rule that already hit this article is
        ignored. Return the number of (hit, channel) pairs queued."""
        queued = 0
        for hit in hits:
            inserted = (
                self.session.exec(
                    self._insert(RuleHitRow)
                    .values(
                        rule_name=hit.rule_name,
                        article_id=article_id,
                        feed_name=feed_name,
                        terms_json=json.dumps(list(hit.terms), ensure_ascii=False),
                        excerpt=hit.excerpt,
                        matched_at=now,
                    )
                    .on_conflict_do_nothing(index_elements=["rule_name", "article_id"])
                    .returning(RuleHitRow.id)
                )
                .scalars()
                .all()
            )
            if not inserted:
                continue
            for channel in dict.fromkeys(hit.channels):
                delivery_id = self._delivery_for(hit.rule_name, channel, hit.timing, now)
                self.session.exec(
                    insert(DeliveryItemRow).values(
                        hit_id=inserted[0], channel=channel, delivery_id=delivery_id
                    )
                )
                queued += 1
        return queued

    def _delivery_for(self, rule_name: str, channel: str, timing: Timing, now: datetime) -> int:
        """Return the delivery that will carry a new hit of the rule to the channel."""
        if timing.hold_until is not None:
            kind = DIGEST if timing.digest else BATCH
            return self._open_batch(rule_name, channel, kind, timing.hold_until, now)
        limit = timing.rate_limit
        if limit is not None:
            immediate = self.session.exec(
                select(func.count())
                .select_from(DeliveryRow)
                .where(col(DeliveryRow.rule_name) == rule_name)
                .where(col(DeliveryRow.channel) == channel)
                .where(col(DeliveryRow.kind) == ALERT)
                .where(col(DeliveryRow.created_at) >= limit.window_start)
                .where(col(DeliveryRow.created_at) < limit.window_end)
            ).one()
            if immediate >= limit.limit:
                return self._open_batch(rule_name, channel, BATCH, limit.release_at, now)
        return self._new_delivery(rule_name, channel, ALERT, None, now)

    def _open_batch(
        self, rule_name: str, channel: str, kind: str, release_at: datetime, now: datetime
    ) -> int:
        """Return the held batch of the rule for the channel released at that time, created
        if need be. The row is locked (PostgreSQL), so a release cannot slip in between."""
        existing = self.session.exec(
            select(DeliveryRow.id)
            .where(col(DeliveryRow.rule_name) == rule_name)
            .where(col(DeliveryRow.channel) == channel)
            .where(col(DeliveryRow.status) == HELD)
            .where(col(DeliveryRow.release_at) == release_at)
            .with_for_update()
        ).first()
        if existing is not None:
            return existing
        return self._new_delivery(rule_name, channel, kind, release_at, now)

    def _new_delivery(
        self, rule_name: str, channel: str, kind: str, release_at: datetime | None, now: datetime
    ) -> int:
        return self.session.exec(
            insert(DeliveryRow)
            .values(
                rule_name=rule_name,
                channel=channel,
                kind=kind,
                status=PENDING if release_at is None else HELD,
                release_at=release_at,
                attempts=0,
                next_attempt_at=release_at or now,
                sent_services="[]",
                created_at=now,
            )
            .returning(DeliveryRow.id)
        ).scalar_one()

    def record_rule_failure(self, rule_name: str, message: str, now: datetime) -> None:
        """Count one article a rule could not be evaluated on, keeping the last error."""
        row = self.session.get(RuleStateRow, rule_name) or RuleStateRow(rule_name=rule_name)
        row.failures += 1
        row.last_error = message
        row.last_error_at = now
        self.session.add(row)
        self.session.flush()

    def known_rule_hits(self, article_id: int) -> set[str]:
        return set(
            self.session.exec(
                select(RuleHitRow.rule_name).where(RuleHitRow.article_id == article_id)
            ).all()
        )

    def update_feed_state(self, name: str, url: str, **values: object) -> None:
        """Create or update a feed's state row with the given column values.

        One UPDATE statement in the common case (every poll of a known feed): no ORM load
        and flush, which cost more than the write itself on an all-304 cycle."""
        unknown = set(values) - set(FeedStateRow.model_fields)
        if unknown:
            raise AttributeError(f"feed_state has no column {', '.join(sorted(unknown))}")
        table = FeedStateRow.__table__
        result = self.session.connection().execute(
            table.update().where(table.c.name == name).values(url=url, **values)
        )
        if result.rowcount == 0:  # a feed's first poll; Core too (its columns have defaults)
            self.session.connection().execute(table.insert().values(name=name, url=url, **values))


def _article_columns(article: Article) -> dict[str, object]:
    return {
        "title": article.title,
        "link": article.link,
        "canonical_link": article.canonical_link,
        "summary": article.summary,
        "content": article.content,
        "author": article.author,
        "categories_json": json.dumps(list(article.categories), ensure_ascii=False),
        "published_at": article.published,
        "content_hash": article.content_hash,
    }


def _article_from_row(row: ArticleRow) -> Article:
    """Given a stored article row, return the Article it was stored from (less its guid)."""
    return Article(
        guid=None,
        link=row.link,
        canonical_link=row.canonical_link,
        title=row.title,
        summary=row.summary,
        content=row.content,
        author=row.author,
        categories=tuple(json.loads(row.categories_json or "[]")),
        published=row.published_at,
        content_hash=row.content_hash,
    )


def _feed_state(row: FeedStateRow) -> FeedState:
    # FeedState holds the table's columns, as Store.feed_states relies on too.
    return FeedState(**{name: getattr(row, name) for name in _FEED_STATE_FIELDS})


_FEED_STATE_FIELDS = tuple(field_.name for field_ in fields(FeedState))


@functools.cache
def _attempt_statement() -> Update:
    """UPDATE delivery SET attempts = attempts + 1, no claim, <the columns given> WHERE id = ?"""
    table = DeliveryRow.__table__
    return (
        table.update()
        .where(table.c.id == bindparam("delivery_id"))
        .values(attempts=table.c.attempts + 1, claimed_by=None, claimed_at=None)
    )


def _due(now: datetime, *, ignore_backoff: bool, include_due_held: bool) -> ColumnElement[bool]:
    """The condition of a delivery due at `now` (see Store.due_deliveries)."""
    due = col(DeliveryRow.status) == PENDING
    if not ignore_backoff:
        due = due & (col(DeliveryRow.next_attempt_at) <= now)
    if include_due_held:
        due = due | ((col(DeliveryRow.status) == HELD) & (col(DeliveryRow.release_at) <= now))
    return due


def _indexes_json(indexes: Iterable[int]) -> str:
    return json.dumps(sorted(set(indexes)))


def _aware(moment: datetime) -> datetime:
    """An aggregate may lose the column type on some backends: assume UTC when naive."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@contextmanager
def _systemic_errors() -> Iterator[None]:
    """Raise StoreError for a failure of the database itself: a connection lost, the
    database locked past the busy timeout, a full disk. Callers stop on it instead of
    recording it against one feed."""
    try:
        yield
    except (OperationalError, InterfaceError, DatabaseError) as error:
        raise StoreError(f"database failure: {_describe(error)}") from error


def _describe(error: BaseException) -> str:
    # The driver's message can name the host and user but not a password; the URL itself
    # (which can hold one) is never part of it.
    message = str(getattr(error, "orig", None) or error).splitlines()[0]
    return f"{type(error).__name__}: {message}"[:300]
