"""The engine and its transactions: SQLite with WAL, a busy timeout and BEGIN IMMEDIATE, or
PostgreSQL; read-only stores for the commands that only read; the errors that mean the
database itself failed.

StoreBase and TransactionBase are what the per-domain parts of Store and StoreTransaction
(monitor.store.database) build on.
"""

from __future__ import annotations

import importlib
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import Connection, Engine, Result, make_url
from sqlalchemy.exc import DatabaseError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.schema import Table
from sqlalchemy.sql import Executable
from sqlmodel import Session, SQLModel, create_engine

from monitor.model import StoreError

SQLITE_BUSY_TIMEOUT_MILLISECONDS = 30_000
# SQLite copies its write-ahead log into the database file (a checkpoint) in whichever
# commit takes the log past this many pages. At SQLite's 1,000 (4 MB) that was one commit
# in twenty of a daemon storing single articles, each then 3-5 times slower than the
# rest; the daemon checkpoints every CHECKPOINT_INTERVAL_SECONDS on its housekeeping
# thread instead (Store.checkpoint), and this larger limit (about 40 MB) only bounds the
# log should that thread fall behind, or for `run --once`. The last connection to close
# checkpoints what remains.
SQLITE_AUTOCHECKPOINT_PAGES = 10_000
# Any fixed 64-bit number: the PostgreSQL advisory lock that serialises article identity.
IDENTITY_LOCK_KEY = 0x6E6577735F6D6F6E  # "news_mon"
# libpq's connection settings for PostgreSQL, unless the URL sets them: a connection attempt
# gives up after 10 s, and a connection whose peer stopped answering is dropped within
# about 30 s (TCP keepalives, and a bound on data left unacknowledged).
POSTGRES_DEFAULTS: dict[str, object] = {
    "connect_timeout": 10,
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 30_000,
}
# The server ends a session that stays inside a transaction, waiting for its client, this
# long: only a client cut off or stuck does.
IDLE_IN_TRANSACTION_MS = 15_000


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
        connect_args: dict[str, object] = {}
        if url.get_backend_name() == "postgresql":
            # What the URL does not set itself: a database out of reach (a partition) ends
            # in an error, not a thread waiting for ever, and a transaction whose client
            # vanished is ended by the server, so that its locks do not hold the other
            # instances up (ours never idle inside a transaction: no network I/O there).
            connect_args = {
                key: value for key, value in POSTGRES_DEFAULTS.items() if key not in url.query
            }
            given = url.query.get("options") or ()
            given = (given,) if isinstance(given, str) else given
            extra = ["-c default_transaction_read_only=on"] if read_only else []
            if not any("idle_in_transaction_session_timeout" in option for option in given):
                extra.append(f"-c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_MS}")
            connect_args["options"] = " ".join([*given, *extra])
        return create_engine(database_url, pool_pre_ping=True, connect_args=connect_args)
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
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event emit BEGIN; pysqlite's own implicit BEGIN is
        # deferred and lets read-then-write transactions lose updates.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if read_only:
            cursor.execute("PRAGMA query_only=ON")
        else:
            _use_write_ahead_log(cursor)
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MILLISECONDS}")
        cursor.execute(f"PRAGMA wal_autocheckpoint={SQLITE_AUTOCHECKPOINT_PAGES}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # A reader takes no write lock: it reads one snapshot while writers go on.
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


def _use_write_ahead_log(cursor: sqlite3.Cursor) -> None:
    """Put the database file in WAL mode (a property of the file: set once, kept).

    Two processes opening a new database at the same moment both try to switch it, and
    SQLite answers one of them "database is locked" at once instead of calling its busy
    handler; so the switch is retried until the busy timeout has passed."""
    if cursor.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
        return
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MILLISECONDS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def url_secrets(database_url: str) -> list[str]:
    """Given a database URL, return what of it must never be shown: the URL, and its
    password if it has one."""
    try:
        password = make_url(database_url).password
    except Exception:  # noqa: BLE001 - not a URL: the whole text stays hidden
        password = None
    return [database_url, *([str(password)] if password else [])]


def sqlite_file(database_url: str) -> Path | None:
    """Given a database URL, return its SQLite file; None for another database or memory."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    if url.database.startswith("file:"):
        return None  # a URI filename: its options are the user's own
    return Path(url.database)


class StoreBase:
    """The engine of a Store and the transactions its queries run in."""

    def __init__(self, database_url: str, *, read_only: bool = False) -> None:
        self.database_url = database_url
        self.read_only = read_only
        try:
            self.engine = make_engine(database_url, read_only=read_only)
        except (SQLAlchemyError, OSError, ValueError) as error:
            raise StoreError(f"cannot open database: {type(error).__name__}") from error

    def checkpoint(self) -> None:
        """Copy the SQLite write-ahead log into the database file as far as readers allow,
        waiting for no one (a PASSIVE checkpoint); nothing on PostgreSQL or read-only."""
        if self.engine.dialect.name != "sqlite" or self.read_only:
            return
        with systemic_errors():
            # On the driver's connection, outside any transaction: a checkpoint is no
            # statement of one.
            connection = self.engine.raw_connection()
            try:
                connection.cursor().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            finally:
                connection.close()

    def missing(self) -> bool:
        """True for a SQLite database whose file does not exist (nothing has run on it)."""
        file = sqlite_file(self.database_url)
        return file is not None and not file.exists()

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _reading(self) -> Iterator[Session]:
        with self._writing() as session:
            yield session

    @contextmanager
    def _writing(self) -> Iterator[Session]:
        """One transaction on an ORM session: everything in it is stored, or nothing is.
        Raise StoreError if the database fails; the transaction is rolled back."""
        with (
            systemic_errors(),
            Session(self.engine, expire_on_commit=False) as session,
            session.begin(),
        ):
            yield session

    @contextmanager
    def _connection(self) -> Iterator[Connection]:
        """A write transaction on a plain connection, for a single Core statement: opening
        and closing an ORM Session costs more than such a statement does."""
        with systemic_errors(), self.engine.begin() as connection:
            yield connection


def dialect_insert(session: Session, model: type[SQLModel] | Table) -> Any:
    """The dialect's own insert, for ON CONFLICT; imported on use, as only one is needed."""
    dialect = session.get_bind().dialect.name
    return importlib.import_module(f"sqlalchemy.dialects.{dialect}").insert(model)


class TransactionBase:
    """The session of one write transaction (see Store.transaction)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def _insert(self, model: type[SQLModel] | Table) -> Any:
        return dialect_insert(self.session, model)

    def _execute_many(self, statement: Executable, rows: list[dict[str, object]]) -> Result[Any]:
        """Run a Core statement once per row, as one executemany.

        The statement is the same whatever the number of rows, so SQLAlchemy compiles it
        once per process; a multi-row VALUES is a new statement for each length, and
        compiling it cost more than running it. Core, not the ORM: the ORM's bulk paths
        add per-row bookkeeping a feed's worth of rows does not need."""
        return self.session.connection().execute(statement, rows)


def aware(moment: datetime) -> datetime:
    """An aggregate may lose the column type on some backends: assume UTC when naive."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@contextmanager
def systemic_errors() -> Iterator[None]:
    """Raise StoreError for a failure of the database itself: a connection lost, the
    database locked past the busy timeout, a full disk. Callers stop on it instead of
    recording it against one feed."""
    try:
        yield
    except (OperationalError, InterfaceError, DatabaseError) as error:
        raise StoreError(f"database failure: {describe_error(error)}") from error


def describe_error(error: BaseException) -> str:
    """Given a database error, return its type and the first line of its message."""
    # The driver's message can name the host and user but not a password; the URL itself
    # (which can hold one) is never part of it.
    message = str(getattr(error, "orig", None) or error).splitlines()[0]
    return f"{type(error).__name__}: {message}"[:300]


def serialise_identity(session: Session) -> None:
    """Make deciding "new or known" and storing the answer one step across writers.

    SQLite's BEGIN IMMEDIATE already admits one writer at a time. PostgreSQL's READ
    COMMITTED would let two polls both see an article as new, store it twice and alert
    twice; a transaction-scoped advisory lock queues them instead (retention, and grouping
    the articles of first polls, take it too).
    """
    if session.get_bind().dialect.name == "postgresql":
        session.connection().execute(
            text("SELECT pg_advisory_xact_lock(:key)"), {"key": IDENTITY_LOCK_KEY}
        )
