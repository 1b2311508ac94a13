"""Several instances on one PostgreSQL database: 1,000 farm feeds polled by 1, 2 and 3 real
daemons (`news-monitor run`), a cold cycle and a changed cycle each.

    .venv/bin/python bench/cluster.py                          # 1, 2 and 3 instances
    .venv/bin/python bench/cluster.py --instances 1,2 --feeds 300
    .venv/bin/python bench/cluster.py --logs DIR               # keep each daemon's log
    NEWS_MONITOR_BENCH_POSTGRES=postgresql+psycopg://postgres@127.0.0.1:5432/postgres ...

For each number of instances: a fresh database on the local PostgreSQL server (created and
dropped here; the URL above names the server), the farm (bench/farm.py: 1,000 RFI-style
feeds of 30 items, its 20 rules, its webhook), and that many daemons started at the same
moment, every feed's interval 600 s so that each cycle polls each feed once:

- cold: from the moment every daemon has started (logged its start line) until every feed
  has been fetched once (the farm's 200 answers): each feed's baseline stored;
- changed: every feed then gains 3 items (farm.publish(1.0, 3)) and the bench makes every
  feed due at once (one UPDATE of the feed leases: the daemons keep running, and the next
  polls start within a dispatcher round); from then until every feed has been fetched again.
  The new items alert (the farm's rules) through the farm's webhook.

Figures: the seconds of each cycle (time to cover all feeds), requests per feed over the
run (from the daemons' poll lines: each must be exactly 2), alerts (the webhook's keys:
each exactly once), and CPU seconds of the daemons (with their parser processes) and of
the PostgreSQL backends serving this database, read from /proc, and the database's share.
PostgreSQL's own background processes (WAL writer, checkpointer) are not counted.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from daemon import CLOCK_TICKS, _cpu_seconds
from farm import FarmProcess

ITEMS_PER_FEED = 30
INTERVAL_SECONDS = 600
SERVER_URL = os.environ.get(
    "NEWS_MONITOR_BENCH_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
POLL_LINE = re.compile(r"poll feed=(\S+) status=")


def _admin():
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(SERVER_URL)
    return psycopg.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 5432,
        user=url.username or "postgres",
        password=url.password,
        dbname=url.database or "postgres",
        autocommit=True,
    )


class BackendCpu:
    """CPU seconds of the PostgreSQL backends serving one database, summed over every
    backend seen (sampled twice a second: a backend's time is kept after it ends)."""

    def __init__(self, database: str) -> None:
        self._database = database
        self._ticks: dict[int, int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample_forever, daemon=True)

    def __enter__(self) -> BackendCpu:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def backends(self) -> int:
        """How many backends were seen: connections opened (a pool that keeps closing and
        opening them shows here)."""
        with self._lock:
            return len(self._ticks)

    def seconds(self) -> float:
        self._sample()
        with self._lock:
            return sum(self._ticks.values()) / CLOCK_TICKS

    def _sample_forever(self) -> None:
        while not self._stop.wait(0.5):
            self._sample()

    def _sample(self) -> None:
        with _admin() as connection:
            pids = [
                row[0]
                for row in connection.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = %s", (self._database,)
                )
            ]
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            with self._lock:
                self._ticks[pid] = max(self._ticks.get(pid, 0), int(fields[11]) + int(fields[12]))


def measure(instances: int, feeds: int, timeout: float, logs: Path | None = None) -> dict:
    database = f"nm_bench_{uuid.uuid4().hex[:10]}"
    with _admin() as connection:
        connection.execute(f'CREATE DATABASE "{database}"')
    from sqlalchemy.engine import make_url

    url = make_url(SERVER_URL).set(database=database).render_as_string(hide_password=False)
    try:
        with (
            tempfile.TemporaryDirectory(prefix="bench-cluster-") as folder,
            FarmProcess(feeds, ITEMS_PER_FEED) as farm,
        ):
            try:
                return _run(Path(folder), farm, url, database, instances, feeds, timeout)
            finally:
                if logs is not None:
                    logs.mkdir(parents=True, exist_ok=True)
                    for log in Path(folder).glob("node-*.log"):
                        shutil.copy(log, logs / f"{instances}-{log.name}")
    finally:
        with _admin() as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def _run(
    work: Path,
    farm: FarmProcess,
    url: str,
    database: str,
    instances: int,
    feeds: int,
    timeout: float,
) -> dict:
    config = work / "monitor.yaml"
    config.write_text(
        json.dumps(
            {
                "database": url,
                "timezone": "UTC",
                "defaults": {"interval": f"{INTERVAL_SECONDS}s", "jitter": "0s"},
                "feeds": [{"name": f"f{i}", "url": farm.url(i)} for i in range(feeds)],
                "channels": {"hook": farm.hook_url("cluster")},
                "rules": [{**rule, "notify": ["hook"]} for rule in farm.rules()],
            }
        ),
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWS_MONITOR_")}
    logs = [work / f"node-{n}.log" for n in range(instances)]
    daemons = []
    deadline = time.monotonic() + timeout
    for n, log_path in enumerate(logs):
        with log_path.open("wb") as log:
            daemons.append(
                subprocess.Popen(
                    [sys.executable, "-m", "monitor", "run", "--config", str(config)],
                    cwd=work,
                    env={**env, "NEWS_MONITOR_INSTANCE": f"node-{n}"},
                    stdout=subprocess.DEVNULL,
                    stderr=log,
                )
            )

    def fetched() -> int:
        return farm.stats().get("200", 0)

    def wait(predicate, what: str) -> None:
        while not predicate():
            for daemon in daemons:
                if daemon.poll() is not None:
                    raise RuntimeError(f"a daemon exited ({daemon.returncode}) before {what}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out waiting for {what}")
            time.sleep(0.1)

    backends = BackendCpu(database).__enter__()

    def cpu() -> tuple[float, float]:
        return sum(_cpu_seconds(d.pid) for d in daemons), backends.seconds()

    try:
        wait(lambda: all("started feeds=" in p.read_text() for p in logs), "every start")
        started = time.monotonic()
        cpu_started = cpu()
        wait(lambda: fetched() >= feeds, "the cold cycle")
        cold_seconds = time.monotonic() - started
        cpu_cold = cpu()

        farm.publish(1.0, 3)
        import psycopg

        with psycopg.connect(
            url.replace("postgresql+psycopg", "postgresql"), autocommit=True
        ) as db:
            changed_from = time.monotonic()
            db.execute("UPDATE feed_lease SET due_at = now()")
        wait(lambda: fetched() >= 2 * feeds, "the changed cycle")
        changed_seconds = time.monotonic() - changed_from
        cpu_changed = cpu()
        wait(lambda: _quiet(farm), "the last alerts")
    finally:
        backends_seen = backends.backends()
        backends.__exit__()
        for daemon in daemons:
            daemon.send_signal(signal.SIGTERM)
        for daemon in daemons:
            try:
                daemon.wait(timeout=120)
            except subprocess.TimeoutExpired:
                daemon.kill()
    texts = [p.read_text(encoding="utf-8", errors="replace") for p in logs]
    polls = Counter(match for text in texts for match in POLL_LINE.findall(text))
    per_node = [len(POLL_LINE.findall(text)) for text in texts]
    keys = farm.hook("cluster")["keys"]
    return {
        "instances": instances,
        "feeds": feeds,
        "load_average_1min": round(os.getloadavg()[0], 2),
        "cold_seconds": round(cold_seconds, 1),
        "changed_seconds": round(changed_seconds, 1),
        "polls_by_instance": per_node,
        "requests_per_feed": sorted(Counter(polls.values()).items()),
        "feeds_polled": len(polls),
        "alerts": len(keys),
        "alerts_twice": len(keys) - len(set(keys)),
        "daemon_cpu_seconds": {
            "cold": round(cpu_cold[0] - cpu_started[0], 1),
            "changed": round(cpu_changed[0] - cpu_cold[0], 1),
        },
        "database_cpu_seconds": {
            "cold": round(cpu_cold[1] - cpu_started[1], 1),
            "changed": round(cpu_changed[1] - cpu_cold[1], 1),
        },
        "database_share": {
            phase: round(db / (db + own), 3) if db + own else None
            for phase, db, own in (
                ("cold", cpu_cold[1] - cpu_started[1], cpu_cold[0] - cpu_started[0]),
                ("changed", cpu_changed[1] - cpu_cold[1], cpu_changed[0] - cpu_cold[0]),
            )
        },
        "database_backends_seen": backends_seen,
        "exit_codes": [daemon.returncode for daemon in daemons],
        "errors_in_logs": sum(text.count(" ERROR ") for text in texts),
        "tracebacks": sum(text.count("Traceback") for text in texts),
    }


def _quiet(farm: FarmProcess, settle_seconds: float = 3.0) -> bool:
    """No alert arrived in the last few seconds (the senders have drained)."""
    last = farm.hook("cluster")["last"]
    return last is not None and time.time() - last > settle_seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", default="1,2,3", help="comma-separated counts")
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--timeout", type=float, default=1200)
    parser.add_argument(
        "--logs", type=Path, help="copy each daemon's log here (as INSTANCES-node-N.log)"
    )
    arguments = parser.parse_args(argv)
    for count in (int(n) for n in arguments.instances.split(",")):
        print(
            json.dumps(measure(count, arguments.feeds, arguments.timeout, arguments.logs)),
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
