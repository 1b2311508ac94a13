"""The daemon's steady state: `news-monitor run` polling a farm of feeds that answer 304.

    .venv/bin/python bench/daemon.py                       # 1,000 feeds, 10,000 polls
    .venv/bin/python bench/daemon.py --product /tmp/base   # another tree's monitor/ (PYTHONPATH)
    .venv/bin/python bench/daemon.py --rules 1000          # with bench/rules.py's rules loaded

Starts the local farm (bench/farm.py, in a process of its own), runs the real daemon on it
with every feed's interval at 10 s, waits for the baseline (every feed fetched once), and
from then on reads /proc for the daemon and its child processes (the parser processes):

- CPU seconds per 1,000 polls, over at least `polls` polls answered 304 after the baseline
  and its background work (the polls are counted by the farm, not by the daemon);
- how long the daemon took to group the baseline's articles into stories and index them
  for search (monitor.service.backlog, once after a first poll), and its CPU meanwhile;
  the steady state is measured from then on;
- RSS (daemon, and daemon plus children) at the steady state's start, and at the end;
- the warnings APScheduler logged ("skipped: maximum number of running instances reached"
  and any other), and the daemon's own warnings and errors.

`measure_steady_state(product_dir, feeds, polls)` returns the figures as a dict (bench/run.py
calls it); the __main__ prints them as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from farm import FarmProcess

INTERVAL_SECONDS = 10
ITEMS_PER_FEED = 30
SKIPPED_WARNING = "maximum number of running instances"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


def measure_steady_state(
    product_dir: Path | None,
    feeds: int = 1000,
    polls: int = 10_000,
    *,
    timeout: float = 1800,
    rules: int = 0,
) -> dict:
    """Run the daemon of `product_dir` (a tree holding monitor/; None: the installed one)
    on `feeds` farm feeds until `polls` polls answered 304 after the baseline; return the
    figures (see the module's docstring). With `rules`, the daemon loads that many of
    bench/rules.py's rules (what compiling them leaves in memory shows in its RSS) and
    matches the first feed's items; their channel goes nowhere (a closed local port)."""
    with (
        tempfile.TemporaryDirectory(prefix="bench-daemon-") as folder,
        FarmProcess(feeds, ITEMS_PER_FEED) as farm,
    ):
        work = Path(folder)
        config = work / "monitor.yaml"
        config.write_text(
            json.dumps(
                {
                    "database": "sqlite:///state/monitor.db",
                    "timezone": "UTC",
                    "defaults": {"interval": f"{INTERVAL_SECONDS}s", "jitter": "0s"},
                    # With rules, the first feed's items are matched on its first poll
                    # (notify_existing): a rule set finishes compiling when it first
                    # matches, and what that leaves in memory is part of the steady state.
                    "feeds": [
                        {"name": f"f{i}", "url": farm.url(i)}
                        | ({"notify_existing": True} if rules and i == 0 else {})
                        for i in range(feeds)
                    ],
                    "channels": {"hook": "json://127.0.0.1:9/"} if rules else {},
                    "rules": _rules(rules),
                }
            ),
            encoding="utf-8",
        )
        env = dict(os.environ)
        for variable in ("NEWS_MONITOR_CONFIG", "NEWS_MONITOR_INSTANCE", "STATE_DIRECTORY"):
            env.pop(variable, None)
        if product_dir is not None:
            env["PYTHONPATH"] = os.pathsep.join(
                [str(product_dir), *filter(None, [env.get("PYTHONPATH")])]
            )
        log_path = work / "daemon.log"
        deadline = time.monotonic() + timeout
        with log_path.open("wb") as log:
            daemon = subprocess.Popen(
                [sys.executable, "-m", "monitor", "run", "--config", str(config)],
                cwd=work,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )

            def background_work_left() -> int:
                """Articles of the baseline the daemon has yet to group or index."""
                status = subprocess.run(
                    [sys.executable, "-m", "monitor", "status", "--json", "--config", str(config)],
                    cwd=work,
                    env=env,
                    capture_output=True,
                    text=True,
                    check=True,
                )
                document = json.loads(status.stdout)
                return (
                    document["stories"]["articles_to_group"]
                    + document["search_index"]["articles_to_index"]
                )

            try:
                result = _measure(daemon, farm, feeds, polls, deadline, background_work_left)
            finally:
                daemon.send_signal(signal.SIGTERM)
                try:
                    result_code = daemon.wait(timeout=120)
                except subprocess.TimeoutExpired:
                    daemon.kill()
                    result_code = daemon.wait()
        text = log_path.read_text(encoding="utf-8", errors="replace")
        lines = text.splitlines()
        result.update(
            {
                "exit_code": result_code,
                "apscheduler_skipped_warnings": text.count(SKIPPED_WARNING),
                "apscheduler_warnings": sum(
                    "apscheduler" in line and ("WARNING" in line or "ERROR" in line)
                    for line in lines
                ),
                "daemon_warnings_or_errors": sum(
                    ("WARNING" in line or "ERROR" in line) and "apscheduler" not in line
                    for line in lines
                ),
                "tracebacks": text.count("Traceback"),
            }
        )
        return result


def _rules(count: int) -> list[dict]:
    if not count:
        return []
    from rules import HAS_QUERY, rules_yaml  # imported here: it imports the monitor package

    return [{**rule, "notify": ["hook"]} for rule in rules_yaml(count, with_queries=HAS_QUERY)]


def _measure(
    daemon: subprocess.Popen,
    farm: FarmProcess,
    feeds: int,
    polls: int,
    deadline: float,
    background_work_left: Callable[[], int],
) -> dict:
    started = time.monotonic()

    def answered() -> tuple[int, int]:
        stats = farm.stats()
        return stats.get("200", 0), stats.get("304", 0)

    def wait(predicate, what: str) -> None:
        while not predicate():
            if daemon.poll() is not None:
                raise RuntimeError(f"the daemon exited ({daemon.returncode}) before {what}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out waiting for {what}")
            time.sleep(0.2)

    wait(lambda: answered()[0] >= feeds, "the baseline (every feed fetched once)")
    baseline_seconds = time.monotonic() - started
    # The baseline's articles are then grouped into stories and indexed for search in the
    # background (monitor.service.backlog), once: measured apart, the steady state after.
    cpu_at_baseline = _cpu_seconds(daemon.pid)
    wait(lambda: _at_most_every(5.0) and background_work_left() == 0, "the background work")
    background_seconds = time.monotonic() - started - baseline_seconds
    background_cpu_seconds = _cpu_seconds(daemon.pid) - cpu_at_baseline
    rss_at_1000 = _memory(daemon.pid)  # the steady state's start
    cpu_before = _cpu_seconds(daemon.pid)
    _, not_modified_before = answered()
    measured_from = time.monotonic()
    wait(lambda: answered()[1] - not_modified_before >= polls, f"{polls} polls answered 304")
    cpu_after = _cpu_seconds(daemon.pid)
    elapsed = time.monotonic() - measured_from
    full, not_modified = answered()
    measured_polls = not_modified - not_modified_before
    rss_at_end = _memory(daemon.pid)
    return {
        "load_average_1min": round(os.getloadavg()[0], 2),
        "feeds": feeds,
        "interval_seconds": INTERVAL_SECONDS,
        "baseline_seconds": round(baseline_seconds, 1),
        "background_work_seconds": round(background_seconds, 1),
        "background_work_cpu_seconds": round(background_cpu_seconds, 1),
        "polls_measured": measured_polls,
        "polls_answered_200": full,
        "seconds_measured": round(elapsed, 1),
        "polls_per_second": round(measured_polls / elapsed, 1),
        "cpu_seconds": round(cpu_after - cpu_before, 2),
        "cpu_seconds_per_1000_polls": round((cpu_after - cpu_before) / measured_polls * 1000, 3),
        "rss_mb_at_1000_polls": rss_at_1000,
        "rss_mb_at_end": rss_at_end,
        "polls_at_end": full + not_modified,
    }


_last_call = [0.0]


def _at_most_every(seconds: float) -> bool:
    """True at most once every `seconds` (a `status` process costs about a second of CPU)."""
    if time.monotonic() - _last_call[0] < seconds:
        return False
    _last_call[0] = time.monotonic()
    return True


def _children(pid: int) -> list[int]:
    """Every live descendant of pid."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(entry.name))
    found, queue = [], [pid]
    while queue:
        for child in parents.get(queue.pop(), []):
            found.append(child)
            queue.append(child)
    return found


def _stat_fields(pid: int) -> list[str]:
    # Fields after the command name: state is [0], utime [11], stime [12], cutime [13],
    # cstime [14] (proc(5), fields 3, 14-17).
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _cpu_seconds(pid: int) -> float:
    """CPU time of the process, its live descendants and the children it has reaped."""
    fields = _stat_fields(pid)
    ticks = sum(int(value) for value in fields[11:15])
    for child in _children(pid):
        try:
            ticks += sum(int(value) for value in _stat_fields(child)[11:13])
        except (OSError, IndexError):
            continue  # ended meanwhile: its parent's cutime has it once reaped
    return ticks / CLOCK_TICKS


def _rss_mb(pid: int) -> float:
    resident_pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    return resident_pages * PAGE_BYTES / 1e6


def _memory(pid: int) -> dict[str, float]:
    children = 0.0
    for child in _children(pid):
        try:
            children += _rss_mb(child)
        except OSError:
            continue
    daemon = _rss_mb(pid)
    return {"daemon": round(daemon, 1), "with_children": round(daemon + children, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--product", type=Path, help="measure the monitor package of this source tree"
    )
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--polls", type=int, default=10_000)
    parser.add_argument("--rules", type=int, default=0, help="rules loaded (bench/rules.py's)")
    arguments = parser.parse_args(argv)
    product = arguments.product.resolve() if arguments.product else None
    result = measure_steady_state(product, arguments.feeds, arguments.polls, rules=arguments.rules)
    print(
        json.dumps(
            {"product": str(product or "installed"), "rules": arguments.rules, **result}, indent=1
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
