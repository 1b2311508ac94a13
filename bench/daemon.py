"""Daemon steady state (STAND-IN: the full bench/daemon.py replaces this file).

measure_steady_state(product_dir, feeds, polls) starts the real daemon (`news-monitor run`)
on a farm of `feeds` unchanged feeds (bench/farm.py) polled every 10 s, waits for its
baseline poll, then counts the farm's 304 answers as polls. Between the 1,000th and the
last poll it reads the CPU of the daemon and its child processes from /proc (utime + stime,
and the reaped children's cutime + cstime) and the tree's summed RSS, and at the end counts
APScheduler's "maximum number of running instances reached" warnings in the daemon's log.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from farm import FarmProcess
from scenarios import _rollup_kb, _tree

INTERVAL_SECONDS = 10
WARNING = "maximum number of running instances reached"
_TICKS = os.sysconf("SC_CLK_TCK")


def _tree_cpu_seconds(pid: int) -> float:
    total = 0.0
    for index, member in enumerate(_tree(pid)):
        try:
            with open(f"/proc/{member}/stat", encoding="ascii", errors="replace") as file:
                fields = file.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
        if index == 0:
            total += int(fields[13]) + int(fields[14])  # cutime, cstime: reaped children
    return total / _TICKS


def _tree_rss_mb(pid: int) -> float:
    return sum(_rollup_kb(member).get("Rss", 0) for member in _tree(pid)) / 1024


def measure_steady_state(product_dir: Path, feeds: int, polls: int) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="daemon-steady-"))
    env = dict(os.environ)
    env.pop("NEWS_MONITOR_CONFIG", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPATH"] = os.pathsep.join([str(product_dir), *filter(None, [env.get("PYTHONPATH")])])
    with FarmProcess(feeds, 30) as farm:
        config = {
            "database": "sqlite:///state/monitor.db",
            "defaults": {"interval": f"{INTERVAL_SECONDS}s", "jitter": "0s"},
            "feeds": [{"name": f"feed-{i}", "url": farm.url(i)} for i in range(feeds)],
            "channels": {},
            "rules": [],
        }
        (folder / "monitor.yaml").write_text(json.dumps(config), encoding="utf-8")
        log_path = folder / "daemon.log"
        with open(log_path, "wb") as log:
            daemon = subprocess.Popen(
                [sys.executable, "-m", "monitor", "run", "--config", "monitor.yaml"],
                cwd=folder,
                env=env,
                stderr=log,
            )
            try:
                while farm.stats().get("200", 0) < feeds:
                    if daemon.poll() is not None:
                        raise RuntimeError(f"daemon exited {daemon.returncode}")
                    time.sleep(0.2)
                farm.reset_stats()
                started = time.perf_counter()
                at_1000: tuple[int, float, float] | None = None
                while True:
                    time.sleep(0.2)
                    done = farm.stats().get("304", 0)
                    if at_1000 is None and done >= 1_000:
                        at_1000 = (done, _tree_cpu_seconds(daemon.pid), _tree_rss_mb(daemon.pid))
                    if done >= polls:
                        end = (done, _tree_cpu_seconds(daemon.pid), _tree_rss_mb(daemon.pid))
                        break
                    if daemon.poll() is not None:
                        raise RuntimeError(f"daemon exited {daemon.returncode}")
                wall = time.perf_counter() - started
            finally:
                daemon.send_signal(signal.SIGTERM)
                daemon.wait(timeout=60)
    assert at_1000 is not None
    text = log_path.read_text(encoding="utf-8", errors="replace")
    measured = max(1, end[0] - at_1000[0])
    return {
        "polls": end[0],
        "wall_seconds": wall,
        "cpu_seconds_per_1000_polls": (end[1] - at_1000[1]) / measured * 1_000,
        "rss_mb_at_1000": at_1000[2],
        "rss_mb_at_10000": end[2],  # at the last poll (10,000 at the full size)
        "scheduler_warnings": text.count(WARNING),
    }
