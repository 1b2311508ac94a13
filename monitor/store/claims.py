"""Claims on deliveries, tied to the process that makes them.

A sender claims a delivery (a short transaction) before it sends it, so that two processes
sharing a database (a daemon and a `run --once`, or several daemons on PostgreSQL) never
send the same one at once. A claim names its process: "host/pid/start/instance", where
start is the process's start time (from /proc, so a recycled pid is not taken for the
same process) and instance tells apart two senders of one process.

No claim outlives the process that made it (docs/architecture.md): a claim whose process
is gone is void, and the delivery is pending again for whoever starts next. On this host
that is known at once; a process on another host is presumed alive for CLAIM_LEASE after
its claim, far longer than one send may take (monitor.delivery.notify bounds it).

A daemon sharing a PostgreSQL database holds a lease (monitor.store.instances): its claims
hold while its lease does, and are void once it is gone, even while its process lives (cut
off from the database, it sends nothing more: monitor.service.cluster).
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta

CLAIM_LEASE = timedelta(minutes=10)


def process_start(pid: int) -> str | None:
    """Given a pid, return a mark of when that process started ("?" where the system does
    not say), or None if no such process runs."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            # The command name (field 2) may hold spaces and parentheses: fields after the
            # last ")" start at field 3; the start time is field 22.
            return stat.read().rsplit(")", 1)[1].split()[19]
    except FileNotFoundError:
        if os.path.isdir("/proc/self"):
            return None  # /proc works, and this process is not in it
    except (OSError, IndexError):
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except OSError:
        return "?"  # it exists, owned by someone else
    return "?"


def new_claimant() -> str:
    """Return a claim name for a sender of this process."""
    pid = os.getpid()
    return f"{socket.gethostname()}/{pid}/{process_start(pid) or '?'}/{uuid.uuid4().hex[:8]}"


def claim_is_live(
    claimed_by: str,
    claimed_at: datetime | None,
    now: datetime,
    leases: Mapping[str, bool] | None = None,
) -> bool:
    """Given a claim and when it was made, return whether its process may still be sending.
    `leases` (Store.instance_leases): whether each leasing instance's lease holds, by claim
    prefix; the claim of such an instance holds only while its lease does."""
    try:
        host, pid, start, _instance = claimed_by.split("/")
        pid_number = int(pid)
    except ValueError:
        return False  # not one of ours
    lease_holds = leases.get(f"{host}/{pid}/{start}") if leases is not None else None
    if lease_holds is False:
        return False
    if host != socket.gethostname():
        if lease_holds:
            return True
        return claimed_at is not None and now - claimed_at < CLAIM_LEASE
    return process_start(pid_number) == start
