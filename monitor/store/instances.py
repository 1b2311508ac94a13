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
clocks (NTP), as their logs already do.

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

from sqlalchemy import delete, insert, inspect, or_, update
from sqlmodel import Field, SQLModel, col, select

from monitor import __version__
from monitor.store.claims import process_start
from monitor.store.engine import StoreBase
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


@dataclass(frozen=True)
class InstanceIdentity:
    """Who this process is in the instance table."""

    name: str
    host: str
    pid: int
    process_start: str

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

    def is_alive(self, now: datetime) -> bool:
        """Not stopped, and its heartbeat is fresh at `now`."""
        age_seconds = (now - self.last_seen_at).total_seconds()
        return self.stopped_at is None and age_seconds < HEARTBEAT_FRESH_SECONDS


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

    def register_instance(self, identity: InstanceIdentity, now: datetime) -> None:
        """Record `identity` as running since `now`, replacing earlier records of its name
        (a restarted process), and forget instances that stopped or died long ago."""
        table = table_of(InstanceRow)
        with self._connection() as connection:
            connection.execute(delete(table).where(table.c.name == identity.name))
            connection.execute(
                delete(table).where(
                    or_(
                        table.c.stopped_at.is_not(None),
                        table.c.last_seen_at < now - INSTANCE_RECORD_KEEP,
                    )
                )
            )
            connection.execute(insert(table).values(**_row_values(identity, now)))

    def record_heartbeat(self, identity: InstanceIdentity, now: datetime) -> None:
        """Write `now` as the last time `identity` was seen alive. Its record is written
        again if it is gone: another process that took the same name replaced it."""
        table = table_of(InstanceRow)
        with self._connection() as connection:
            updated = connection.execute(
                update(table)
                .where(table.c.name == identity.name)
                .where(table.c.process_start == identity.process_start)
                .values(last_seen_at=now)
            ).rowcount
            if updated:
                return
            others = connection.execute(
                select(table.c.host, table.c.pid).where(table.c.name == identity.name)
            ).all()
            connection.execute(insert(table).values(**_row_values(identity, now)))
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
            if not inspect(session.connection()).has_table(InstanceRow.__tablename__):
                return []
            rows = session.exec(
                select(InstanceRow).order_by(col(InstanceRow.last_seen_at).desc())
            ).all()
            return [
                InstanceRecord(
                    name=row.name,
                    host=row.host,
                    pid=row.pid,
                    process_start=row.process_start,
                    version=row.version,
                    started_at=row.started_at,
                    last_seen_at=row.last_seen_at,
                    stopped_at=row.stopped_at,
                )
                for row in rows
            ]


def _row_values(identity: InstanceIdentity, now: datetime) -> dict[str, object]:
    return {
        "name": identity.name,
        "process_start": identity.process_start,
        "host": identity.host,
        "pid": identity.pid,
        "version": __version__,
        "started_at": now,
        "last_seen_at": now,
        "stopped_at": None,
    }
