"""Running daemons: the `instance` table, their heartbeat, and what counts as alive.

Each `news-monitor run` records itself when it starts (name, host, pid, process start,
version), writes `last_seen_at` at every heartbeat, and marks its record stopped when it
stops cleanly. `status` and `health` read the table to tell whether a daemon runs: one is
alive while its record is not stopped and its heartbeat is fresh (HEARTBEAT_FRESH_SECONDS).
A daemon killed with SIGKILL, or one that hangs, stops beating and is seen as gone.

A record is keyed by the instance's name and its process's start time. A name is given
with `--instance NAME` or $NEWS_MONITOR_INSTANCE, else it is HOST:PID; a container restarted
with the same hostname runs its daemon as pid 1 again, so its new process replaces the stale
record of the old one when it starts. Several instances may share one database (PostgreSQL),
each with its own record.

Times are the daemons' own clocks (UTC): instances on several machines need synchronised
clocks (NTP), as their logs already do. Leases are the exception: `lease_until` is written
in the database's clock, and each instance measures its own lease from the moment it sent
the renewal (monitor.service.cluster), so that no instance can believe it still holds work
that the others already see as free, whatever its clock says.

On SQLite one daemon runs per database: register_instance(exclusive=True) refuses to
record a second one while the first one's process lives (host, pid and process start),
whatever its heartbeat says, so a restart right after kill -9 is never refused.

The table's queries are a part of Store (monitor.store.database), whose transactions they
use.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, inspect, or_, select, update
from sqlalchemy.engine import Connection
from sqlmodel import Field, SQLModel

from monitor import __version__
from monitor.model import StoreError
from monitor.store.claims import process_start
from monitor.store.engine import StoreBase, aware
from monitor.store.tables import table_of

logger = logging.getLogger(__name__)

# The daemon's heartbeat job runs this often: it writes `last_seen_at` (proof that the
# scheduler runs jobs and the database takes writes) and pings systemd's watchdog.
HEARTBEAT_INTERVAL_SECONDS = 10.0
# A heartbeat younger than this is fresh: the daemon is alive. Three intervals, so that one
# late or failed beat (a database busy for a few seconds, a slow disk) is not taken for a
# dead daemon, while a dead or hung one is noticed within half a minute.
HEARTBEAT_FRESH_SECONDS = 3 * HEARTBEAT_INTERVAL_SECONDS
# When an instance starts, records of instances that stopped, or whose heartbeat is older
# than this (killed long ago), are deleted: a restart under a new pid leaves no trail.
INSTANCE_RECORD_KEEP = timedelta(days=1)
INSTANCE_VARIABLE = "NEWS_MONITOR_INSTANCE"
MAXIMUM_NAME_LENGTH = 200


class InstanceRow(SQLModel, table=True):
    __tablename__ = "instance"

    name: str = Field(primary_key=True, max_length=MAXIMUM_NAME_LENGTH)
    # The process's start mark (monitor.store.claims.process_start): a restarted process with the
    # same name and even the same pid has another one.
    process_start: str = Field(primary_key=True, max_length=32)
    host: str = Field(max_length=255)
    pid: int
    version: str | None = Field(default=None, max_length=64)  # news-monitor's
    started_at: datetime
    last_seen_at: datetime
    stopped_at: datetime | None = None  # a clean stop
    # Its cluster.lease, and until when (the database's clock) its lease holds: its work
    # (polls and deliveries it claimed) is its own until then. NULL: recorded by a version
    # without leases.
    lease_seconds: float | None = None
    lease_until: datetime | None = None


def heartbeat_interval_seconds(lease_seconds: float | None) -> float:
    """How often an instance with this lease beats (and renews it): six times per lease,
    at most every HEARTBEAT_INTERVAL_SECONDS."""
    if lease_seconds is None:
        return HEARTBEAT_INTERVAL_SECONDS
    return min(HEARTBEAT_INTERVAL_SECONDS, lease_seconds / 6)


def heartbeat_fresh_seconds(lease_seconds: float | None) -> float:
    """A heartbeat younger than this is fresh: three beats (HEARTBEAT_FRESH_SECONDS with
    the default lease)."""
    return 3 * heartbeat_interval_seconds(lease_seconds)


class AlreadyRunningError(StoreError):
    """Another daemon's process runs on this SQLite database."""

    def __init__(self, running: InstanceRecord) -> None:
        self.running = running
        super().__init__(
            f"another daemon runs on this database: {running.name} (host {running.host}, "
            f"pid {running.pid}, started {running.started_at.isoformat(timespec='seconds')}). "
            "A SQLite database serves one daemon; to run several instances that share the "
            "work, use PostgreSQL (database: postgresql+psycopg://...). `run --once` may run "
            "beside it."
        )


@dataclass(frozen=True)
class InstanceIdentity:
    """Who this process is in the instance table."""

    name: str
    host: str
    pid: int
    process_start: str

    @property
    def claim_prefix(self) -> str:
        """How this process's claims begin (monitor.store.claims): host/pid/start."""
        return f"{self.host}/{self.pid}/{self.process_start}"

    @classmethod
    def of_this_process(cls, name: str | None = None) -> InstanceIdentity:
        """Given the name asked for (or None: HOST:PID), return this process's identity."""
        host, pid = socket.gethostname(), os.getpid()
        return cls(name or f"{host}:{pid}", host, pid, process_start(pid) or "?")


@dataclass(frozen=True)
class InstanceRecord:
    """One row of the instance table."""

    name: str
    host: str
    pid: int
    process_start: str
    version: str | None
    started_at: datetime
    last_seen_at: datetime
    stopped_at: datetime | None
    lease_seconds: float | None = None

    def is_alive(self, now: datetime) -> bool:
        """Not stopped, and its heartbeat is fresh at `now`."""
        age_seconds = (now - self.last_seen_at).total_seconds()
        return self.stopped_at is None and age_seconds < heartbeat_fresh_seconds(self.lease_seconds)

    def process_runs(self, now: datetime) -> bool:
        """Whether its process still runs: asked of the system on this host; elsewhere, a
        fresh heartbeat is all there is to go by."""
        if self.stopped_at is not None:
            return False
        if self.host != socket.gethostname():
            return self.is_alive(now)
        return process_start(self.pid) == self.process_start


def instance_name(given: str | None, environ: Mapping[str, str] | None = None) -> str | None:
    """Given --instance (or None), return the instance name asked for: it, else
    $NEWS_MONITOR_INSTANCE, else None (the default, HOST:PID, for a daemon). Raise
    ValueError for a name that cannot be one."""
    environ = os.environ if environ is None else environ
    name = given if given is not None else environ.get(INSTANCE_VARIABLE) or None
    if name is None:
        return None
    if not name.strip() or len(name) > MAXIMUM_NAME_LENGTH or not name.isprintable():
        raise ValueError(
            f"an instance name is 1 to {MAXIMUM_NAME_LENGTH} printable characters, "
            f"not {name[:MAXIMUM_NAME_LENGTH]!r}"
        )
    return name


class InstanceRecords(StoreBase):
    """Store's queries on the instance table."""

    def register_instance(
        self,
        identity: InstanceIdentity,
        now: datetime,
        *,
        lease_seconds: float | None = None,
        exclusive: bool = False,
    ) -> None:
        """Record `identity` as running since `now`, its lease starting, replacing earlier
        records of its name (a restarted process), and forget instances that stopped or
        died long ago. With `exclusive` (SQLite), raise AlreadyRunningError instead if
        another recorded daemon's process still runs; checked and recorded in one write
        transaction, so two daemons started at once cannot both pass."""
        table = table_of(InstanceRow)
        with self._connection() as connection:
            if exclusive:
                for record in _records(connection):
                    if record.process_start == identity.process_start and (
                        record.host,
                        record.pid,
                    ) == (identity.host, identity.pid):
                        continue
                    if record.process_runs(now):
                        raise AlreadyRunningError(record)
            connection.execute(delete(table).where(table.c.name == identity.name))
            connection.execute(
                delete(table).where(
                    or_(
                        table.c.stopped_at.is_not(None),
                        table.c.last_seen_at < now - INSTANCE_RECORD_KEEP,
                    )
                )
            )
            connection.execute(
                insert(table).values(**_row_values(identity, now, lease_seconds, connection))
            )

    def record_heartbeat(
        self, identity: InstanceIdentity, now: datetime, *, lease_seconds: float | None = None
    ) -> None:
        """Write `now` as the last time `identity` was seen alive, and renew its lease for
        `lease_seconds` from the database's now. Its record is written again if it is gone:
        another process that took the same name replaced it."""
        table = table_of(InstanceRow)
        with self._connection() as connection:
            updated = connection.execute(
                update(table)
                .where(table.c.name == identity.name)
                .where(table.c.process_start == identity.process_start)
                .values(
                    last_seen_at=now,
                    lease_seconds=lease_seconds,
                    lease_until=_lease_until(connection, now, lease_seconds),
                )
            ).rowcount
            if updated:
                return
            others = connection.execute(
                select(table.c.host, table.c.pid).where(table.c.name == identity.name)
            ).all()
            connection.execute(
                insert(table).values(**_row_values(identity, now, lease_seconds, connection))
            )
        if others:
            logger.warning(
                "instance name=%s status=shared other_processes=%s hint='give each daemon "
                "its own name with --instance or $NEWS_MONITOR_INSTANCE'",
                identity.name,
                ",".join(f"{host}:{pid}" for host, pid in others),
            )

    def mark_instance_stopped(self, identity: InstanceIdentity, now: datetime) -> None:
        """Record that `identity` stopped cleanly at `now`."""
        table = table_of(InstanceRow)
        with self._connection() as connection:
            connection.execute(
                update(table)
                .where(table.c.name == identity.name)
                .where(table.c.process_start == identity.process_start)
                .values(last_seen_at=now, stopped_at=now)
            )

    def instance_records(self) -> list[InstanceRecord]:
        """Return every instance recorded, the most recently seen first; none when the
        database has no instance table yet (made by an earlier version, read-only)."""
        with self._reading() as session:
            connection = session.connection()
            if not inspect(connection).has_table(InstanceRow.__tablename__):
                return []
            return _records(connection)

    def instance_leases(self) -> dict[str, bool]:
        """Return, for every instance recorded with a lease, whether its lease holds now
        (by the database's clock; a stopped instance holds none), by claim prefix
        (InstanceIdentity.claim_prefix)."""
        table = table_of(InstanceRow)
        with self._connection() as connection:
            if connection.dialect.name != "postgresql":
                return {}  # one daemon per SQLite database: its process tells it all
            rows = connection.execute(
                select(
                    table.c.host,
                    table.c.pid,
                    table.c.process_start,
                    table.c.stopped_at,
                    table.c.lease_until,
                    func.now(),
                ).where(table.c.lease_until.is_not(None))
            ).all()
        return {
            f"{host}/{pid}/{start}": stopped_at is None and aware(until) > aware(database_now)
            for host, pid, start, stopped_at, until, database_now in rows
        }


def _records(connection: Connection) -> list[InstanceRecord]:
    table = table_of(InstanceRow)
    rows = connection.execute(select(table).order_by(table.c.last_seen_at.desc())).mappings()
    return [
        InstanceRecord(
            name=row["name"],
            host=row["host"],
            pid=row["pid"],
            process_start=row["process_start"],
            version=row["version"],
            started_at=aware(row["started_at"]),
            last_seen_at=aware(row["last_seen_at"]),
            stopped_at=aware(row["stopped_at"]) if row["stopped_at"] else None,
            lease_seconds=row["lease_seconds"],
        )
        for row in rows
    ]


def _lease_until(connection: Connection, now: datetime, lease_seconds: float | None) -> Any:
    """When a lease renewed now ends: by the database's clock on PostgreSQL; on SQLite,
    where one daemon runs and nobody compares leases, by this process's."""
    if lease_seconds is None:
        return None
    if connection.dialect.name == "postgresql":
        return func.now() + timedelta(seconds=lease_seconds)
    return now + timedelta(seconds=lease_seconds)


def _row_values(
    identity: InstanceIdentity,
    now: datetime,
    lease_seconds: float | None,
    connection: Connection,
) -> dict[str, object]:
    return {
        "name": identity.name,
        "process_start": identity.process_start,
        "host": identity.host,
        "pid": identity.pid,
        "version": __version__,
        "started_at": now,
        "last_seen_at": now,
        "stopped_at": None,
        "lease_seconds": lease_seconds,
        "lease_until": _lease_until(connection, now, lease_seconds),
    }
