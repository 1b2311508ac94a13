"""Feed state: one row per feed name, with what its next conditional GET needs, its errors,
its counts and its next poll."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime

from sqlalchemy import bindparam, func
from sqlalchemy.engine import Connection
from sqlmodel import select

from monitor.store.engine import StoreBase, TransactionBase
from monitor.store.tables import FeedArticleRow, FeedStateRow, table_of


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
    fulltext_at: datetime | None = None
    fulltext_pages: int | None = None
    fulltext_failed: int | None = None
    fulltext_errors: str | None = None


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


class FeedQueries(StoreBase):
    """Store's queries on feed state."""

    def feed_state(self, name: str) -> FeedState | None:
        with self._reading() as session:
            row = session.get(FeedStateRow, name)
            return _feed_state(row) if row else None

    def feed_states(self) -> dict[str, FeedState]:
        """Every feed's state by name, in one query (a cycle reads them all at its start).

        Read as plain rows: ORM objects for 1,000 feeds took twice as long as the query."""
        with self._reading() as session:
            rows = session.connection().execute(table_of(FeedStateRow).select()).mappings()
            return {row["name"]: FeedState(**row) for row in rows}

    def update_feed_states(self, updates: Sequence[FeedStateUpdate]) -> None:
        """Write several feeds' state in one transaction (a cycle's answers of 304)."""
        if not updates:
            return
        # One executemany per set of columns written (a cycle's 304s all write the same).
        groups: dict[tuple[str, ...], list[FeedStateUpdate]] = {}
        for update_ in updates:
            groups.setdefault(tuple(sorted(update_.values)), []).append(update_)
        table = table_of(FeedStateRow)
        statement = table.update().where(table.c.name == bindparam("state_name"))
        with self._writing() as session:
            connection = session.connection()
            for group in groups.values():
                result = connection.execute(
                    statement,
                    [{"state_name": u.name, "url": u.url, **u.values} for u in group],
                )
                if result.rowcount != len(group):  # a feed without a state row yet
                    for update_ in group:
                        write_feed_state(connection, update_.name, update_.url, update_.values)

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
        table = table_of(FeedStateRow)
        # Core, not an ORM update: that one would also look for the rows among the
        # session's objects (synchronize_session), which costs more than the statement.
        with self._connection() as connection:
            connection.execute(
                table.update().where(table.c.name.in_(names)).values(next_poll_at=None)
            )

    def set_next_poll(self, name: str, next_poll_at: datetime | None) -> None:
        table = table_of(FeedStateRow)
        with self._connection() as connection:
            connection.execute(
                table.update().where(table.c.name == name).values(next_poll_at=next_poll_at)
            )


class FeedTransaction(TransactionBase):
    """StoreTransaction's writes of feed state."""

    def update_feed_state(self, name: str, url: str, **values: object) -> None:
        """Create or update a feed's state row with the given column values."""
        write_feed_state(self.session.connection(), name, url, values)


def write_feed_state(
    connection: Connection, name: str, url: str, values: dict[str, object]
) -> None:
    """Create or update a feed's state row with the given column values.

    One UPDATE statement in the common case (every poll of a known feed): no ORM load
    and flush, which cost more than the write itself on an all-304 cycle."""
    unknown = set(values) - set(FeedStateRow.model_fields)
    if unknown:
        raise AttributeError(f"feed_state has no column {', '.join(sorted(unknown))}")
    table = table_of(FeedStateRow)
    result = connection.execute(
        table.update().where(table.c.name == name).values(url=url, **values)
    )
    if result.rowcount == 0:  # a feed's first poll; Core too (its columns have defaults)
        connection.execute(table.insert().values(name=name, url=url, **values))


def _feed_state(row: FeedStateRow) -> FeedState:
    # FeedState holds the table's columns, as Store.feed_states relies on too.
    return FeedState(**{name: getattr(row, name) for name in _FEED_STATE_FIELDS})


_FEED_STATE_FIELDS = tuple(field_.name for field_ in fields(FeedState))
