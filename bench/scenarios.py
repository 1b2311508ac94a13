"""The scenarios of `make bench`: each one a whole process (news-monitor or a reference),
measured from outside, with the checks that make its figures mean something.

This module runs in the measuring process, which must stay small: wait4 reports a child's
peak RSS as at least its parent's at the fork, so nothing here imports monitor, feedparser
or OpenCC (the farm makes its text in its own process, see farm.corpus()).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from farm import BURST_WORD, FarmProcess

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PYTHON = sys.executable
CHILD_TIMEOUT_SECONDS = 30 * 60
_PAIRS = re.compile(r"(\w+)=(-?\d+(?:\.\d+)?|true|false)")
_CYCLE = re.compile(r"\bcycle (feeds=.*)$", re.M)
_CHECKED = re.compile(r"\(([\d,]+) articles checked\)")


@dataclass
class Measurement:
    scenario: str  # key: cold, unchanged, changed, delivery, rules-10, ...
    who: str  # ours, naive, reader
    wall: float = 0.0
    cpu: float = 0.0
    rss_mb: float = 0.0  # the larger of wait4's peak and the sampled tree's peak RSS sum
    # wait4's ru_maxrss alone: the kernel's peak of the largest single process of the tree.
    process_rss_mb: float = 0.0
    tree_pss_mb: float = 0.0  # the sampled tree's peak PSS sum (shared pages split)
    processes: int = 1  # the most processes the tree had at once
    # CPU seconds of the tree's other processes (parser processes), each as last sampled
    # before it ended: how the work split between cores, which wait4's sum hides.
    children_cpu: float = 0.0
    items: int = 0  # what items/s counts (see the table's notes)
    counters: dict[str, float] = field(default_factory=dict)
    checks: list[str] = field(default_factory=list)  # problems; empty when all passed
    notes: list[str] = field(default_factory=list)
    error: str | None = None  # the process failed: its exit and last lines
    load: float = 0.0  # 1-minute load average when it started
    repeat: int = 0  # which run of the sequence (--repeat)

    @property
    def ok(self) -> bool:
        return self.error is None and not self.checks

    @property
    def rate(self) -> float:
        return self.items / self.wall if self.items and self.wall else 0.0

    def expect(self, condition: bool, problem: str) -> None:
        if not condition:
            self.checks.append(problem)


@dataclass(frozen=True)
class Settings:
    feeds: int
    items: int
    changed_fraction: float
    new_items: int
    alerts: int
    articles: int
    rule_counts: tuple[int, ...]
    reader: bool
    repeat: int  # runs of the farm sequence (1-3) and rounds of rule counts (4): medians
    product: Path | None  # a source tree to put first on PYTHONPATH (else the installed one)
    keep: bool
    daemon_feeds: int = 1_000  # scenario 6: unchanged feeds the daemon polls every 10 s
    daemon_polls: int = 10_000  # scenario 6: polls measured after the baseline
    latency_feeds: int = 100  # scenario 7: feeds the daemon polls every 10 s
    probes: int = 50  # scenario 7: items published at random moments
    probe_span: float = 240.0  # scenario 7: seconds over which they are published


def environment(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("NEWS_MONITOR_CONFIG", None)
    # An installed package has its bytecode compiled (pip, the container image); without
    # this, a shell that sets it makes every run compile the whole product again.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if settings.product is not None:
        env["PYTHONPATH"] = os.pathsep.join(
            [str(settings.product), *filter(None, [env.get("PYTHONPATH")])]
        )
    return env


def run_process(
    measurement: Measurement,
    command: Sequence[str],
    *,
    cwd: Path,
    env: dict[str, str],
    stdout_path: Path | None = None,
) -> str:
    """Run command to its end and fill measurement's wall, CPU and peak RSS (wait4); return
    its stderr. A non-zero exit is recorded in measurement.error."""
    stderr_path = cwd / f".{measurement.scenario}-{measurement.who}-{measurement.repeat}.stderr"
    measurement.load = os.getloadavg()[0]
    with (
        open(stdout_path or os.devnull, "wb") as stdout,
        open(stderr_path, "wb") as stderr,
    ):
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=stdout, stderr=stderr)
        timer = threading.Timer(CHILD_TIMEOUT_SECONDS, process.kill)
        timer.start()
        sampler = TreeMemorySampler(process.pid)
        sampler.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            timer.cancel()
            sampler.stop()
        measurement.wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    # wait4 counts the CPU of the child's own children once it has reaped them (a news-monitor
    # parser process is reaped when the cycle ends), but its ru_maxrss is the largest single
    # process, so the tree's memory comes from the sampler.
    measurement.cpu = usage.ru_utime + usage.ru_stime
    measurement.process_rss_mb = usage.ru_maxrss / 1024
    measurement.rss_mb = max(measurement.process_rss_mb, sampler.peak_rss_kb / 1024)
    measurement.tree_pss_mb = sampler.peak_pss_kb / 1024
    measurement.processes = sampler.most_processes
    measurement.children_cpu = sampler.children_cpu_seconds()
    errors = stderr_path.read_text(encoding="utf-8", errors="replace")
    if process.returncode != 0:
        tail = " | ".join(errors.strip().splitlines()[-3:])
        measurement.error = f"exit {process.returncode}: {tail[-300:]}"
    return errors


class TreeMemorySampler(threading.Thread):
    """Samples a process and its descendants every SAMPLE_SECONDS: the peak of the sum of
    their RSS (each process counted whole, shared pages included: an upper bound) and of
    their PSS (shared pages split between sharers: what the tree really holds), and the CPU
    time of each descendant, last seen (at most SAMPLE_SECONDS of it can be missed)."""

    SAMPLE_SECONDS = 0.05

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_rss_kb = 0
        self.peak_pss_kb = 0
        self.most_processes = 1
        self._children_cpu: dict[int, float] = {}
        self._stopping = threading.Event()

    def run(self) -> None:
        while not self._stopping.wait(self.SAMPLE_SECONDS):
            rss = pss = 0
            pids = _tree(self.pid)
            for pid in pids:
                usage = _rollup_kb(pid)
                rss += usage.get("Rss", 0)
                pss += usage.get("Pss", 0)
            self.peak_rss_kb = max(self.peak_rss_kb, rss)
            self.peak_pss_kb = max(self.peak_pss_kb, pss)
            self.most_processes = max(self.most_processes, len(pids))
            for pid in pids[1:]:
                seconds = _cpu_seconds(pid)
                if seconds is not None:
                    self._children_cpu[pid] = seconds

    def stop(self) -> None:
        self._stopping.set()
        self.join()

    def children_cpu_seconds(self) -> float:
        return sum(self._children_cpu.values())


def _tree(pid: int) -> list[int]:
    pids, pending = [], [pid]
    while pending:
        current = pending.pop()
        pids.append(current)
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children", encoding="ascii") as file:
                    pending.extend(int(child) for child in file.read().split())
        except OSError:  # gone meanwhile
            continue
    return pids


_CLOCK_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU of a running process, from /proc/<pid>/stat (None once gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as file:
            # Fields after the command name, which may hold spaces: state is the first,
            # utime and stime (fields 14 and 15 of proc(5)) the 12th and 13th.
            fields = file.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS_PER_SECOND


def _rollup_kb(pid: int) -> dict[str, int]:
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as file:
            lines = file.read().splitlines()[1:]
    except OSError:
        return {}
    values = {}
    for line in lines:
        name, _, rest = line.partition(":")
        fields = rest.split()
        if fields and fields[0].isdigit():
            values[name] = int(fields[0])
    return values


def counters(line: str) -> dict[str, float]:
    return {
        key: (value == "true") if value in ("true", "false") else float(value)
        for key, value in _PAIRS.findall(line)
    }


def cycle_counters(errors: str) -> dict[str, float]:
    """The key=value counts of news-monitor's `cycle ...` log line (empty if none)."""
    found = _CYCLE.findall(errors)
    return counters(found[-1]) if found else {}


def summary_counters(errors: str) -> dict[str, float]:
    """The key=value counts of a reference's summary line (its last line on stderr)."""
    lines = errors.strip().splitlines()
    return counters(lines[-1]) if lines else {}


def write_config(
    folder: Path, config: dict, rules: list[dict] | None = None, name: str = "monitor.yaml"
) -> Path:
    """Write the config as `name` (and rules.yaml); JSON is YAML, and keeps this process
    small."""
    folder.mkdir(parents=True, exist_ok=True)
    if rules is not None:
        (folder / "rules.yaml").write_text(json.dumps(rules, ensure_ascii=False, indent=1))
        config = {**config, "rules_files": ["rules.yaml"]}
    path = folder / name
    path.write_text(json.dumps(config, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


def news_monitor(*arguments: str) -> list[str]:
    return [PYTHON, "-m", "monitor", *arguments]


def warm_up(workspace: Path, settings: Settings) -> None:
    """Compile and cache bytecode, and fill the page cache, before anything is timed."""
    config = write_config(workspace / "warm-up", {"feeds": [], "channels": {}}, rules=[])
    env = environment(settings)
    for command in (
        news_monitor("check", "--config", str(config)),
        news_monitor("run", "--once", "--config", str(config)),
        [PYTHON, "-c", "import feedparser, sqlite3, requests, apprise, opencc"],
        [PYTHON, "-c", "import reader"],
    ):
        subprocess.run(command, cwd=config.parent, env=env, capture_output=True, check=False)


# ------------------------------------------------------------------------- start-up


def startup_scenario(workspace: Path, settings: Settings, log: callable) -> list[Measurement]:
    """`run --once` with no feeds and no rules (imports, config, schema, an empty cycle): the
    floor under every other row; and the naive reference with no URLs."""
    folder = workspace / "startup"
    config = write_config(
        folder,
        {
            "database": "sqlite:///state/monitor.db",
            "feeds": [],
            "channels": {"hook": "json://127.0.0.1:9/hook"},
        },
        rules=[],
    )
    (folder / "empty.json").write_text("[]")
    commands = {
        "naive": [
            PYTHON,
            str(BENCH / "reference.py"),
            "naive",
            "--state",
            str(folder / "naive"),
            "--urls",
            str(folder / "empty.json"),
            "--rules",
            str(folder / "empty.json"),
        ],
        "ours": news_monitor("run", "--once", "--config", str(config)),
    }
    measurements = []
    for repeat in range(settings.repeat):
        for who, command in commands.items():
            log(f"  start-up   {who:<7}")
            measurement = Measurement("startup", who, repeat=repeat)
            run_process(measurement, command, cwd=folder, env=environment(settings))
            measurements.append(measurement)
            log(f"    {_brief(measurement)}\n")
    return measurements


# ----------------------------------------------------------------- scenarios 1, 2, 3


STEPS = ("cold", "unchanged", "changed")


def farm_scenarios(
    farm: FarmProcess, workspace: Path, settings: Settings, log: callable
) -> list[Measurement]:
    """Cold, unchanged and changed cycles for the naive reference, news-monitor and reader
    (when installed), interleaved: each step runs every implementation one after another
    on the same farm documents, so a burst of load from elsewhere hits them alike. With
    settings.repeat > 1 the whole sequence runs again on fresh state."""
    feeds, items = settings.feeds, settings.items
    urls = [farm.url(index) for index in range(feeds)]
    rules = farm.rules()
    folder = workspace / "farm"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "urls.json").write_text(json.dumps(urls))
    (folder / "rules.json").write_text(json.dumps(rules, ensure_ascii=False))
    env = environment(settings)
    who_runs = ["naive", "ours"] + (["reader"] if settings.reader else [])
    measurements: list[Measurement] = []
    for repeat in range(settings.repeat):
        hooks = {who: f"{who}-{repeat}" for who in who_runs}
        commands = _farm_commands(farm, folder / f"run-{repeat}", urls, rules, hooks)
        farm.reset_feeds()
        changed_feeds = 0
        expected_alerts: set[str] | None = None
        for step in STEPS:
            if step == "changed":
                changed_feeds = farm.publish(settings.changed_fraction, settings.new_items)
            for who in who_runs:  # the naive reference first: its alerts are the expected
                farm.reset_stats()
                keys_before = len(farm.hook(hooks[who])["keys"])
                measurement = Measurement(step, who, items=feeds * items, repeat=repeat)
                log(f"  {step:<10} {who:<7}")
                errors = run_process(measurement, commands[who], cwd=folder, env=env)
                stats = farm.stats()
                keys = farm.hook(hooks[who])["keys"][keys_before:]
                measurement.counters = (
                    cycle_counters(errors) if who == "ours" else summary_counters(errors)
                )
                measurement.counters |= {f"http_{key}": value for key, value in stats.items()}
                measurement.counters["alerts_received"] = len(keys)
                _check_farm_step(
                    measurement,
                    step,
                    stats,
                    keys,
                    feeds,
                    items,
                    changed_feeds,
                    settings.new_items,
                    expected_alerts,
                )
                if who == "naive" and step == "changed":
                    expected_alerts = set(keys)
                measurements.append(measurement)
                log(f"    {_brief(measurement)}\n")
    return measurements


def _farm_commands(
    farm: FarmProcess, folder: Path, urls: list[str], rules: list[dict], hooks: dict[str, str]
) -> dict[str, list[str]]:
    """The command of each implementation, with its own state under folder."""
    ours_config = write_config(
        folder / "ours",
        {
            "database": "sqlite:///state/monitor.db",
            "timezone": "Asia/Shanghai",
            "feeds": [{"name": f"feed-{index}", "url": url} for index, url in enumerate(urls)],
            "channels": {"hook": farm.hook_url(hooks["ours"])},
        },
        rules=[{**rule, "notify": ["hook"]} for rule in rules],
    )
    shared = folder.parent
    return {
        "naive": [
            PYTHON,
            str(BENCH / "reference.py"),
            "naive",
            "--state",
            str(folder / "naive"),
            "--urls",
            str(shared / "urls.json"),
            "--rules",
            str(shared / "rules.json"),
            "--hook",
            farm.hook_url(hooks["naive"], scheme="http"),
        ],
        "ours": news_monitor("run", "--once", "--config", str(ours_config)),
        "reader": [
            PYTHON,
            str(BENCH / "reference.py"),
            "reader",
            "--state",
            str(folder / "reader"),
            "--urls",
            str(shared / "urls.json"),
        ],
    }


def _check_farm_step(
    m: Measurement,
    step: str,
    stats: dict[str, int],
    keys: list[str],
    feeds: int,
    items: int,
    changed_feeds: int,
    new_items: int,
    expected_alerts: set[str] | None,
) -> None:
    if m.error:
        return
    got_200, got_304 = stats.get("200", 0), stats.get("304", 0)
    new = m.counters.get("new_articles" if m.who == "ours" else "new", -1)
    failed = m.counters.get("failed_feeds" if m.who == "ours" else "errors", 0)
    m.expect(failed == 0, f"{failed:.0f} feeds failed")
    duplicates = sum(count - 1 for count in Counter(keys).values() if count > 1)
    m.expect(duplicates == 0, f"{duplicates} alerts received twice")
    m.notes.append(f"{stats.get('connections', 0)} TCP connections")
    if step == "cold":
        m.expect(got_200 == feeds, f"{got_200} answers 200, not {feeds}")
        m.expect(new == feeds * items, f"{new:.0f} new articles, not {feeds * items}")
        m.expect(not keys, f"{len(keys)} alerts on the first (baseline) cycle")
        m.notes.append(
            f"{got_200} x 200, {stats.get('gzip', 0)} gzip, "
            f"{stats.get('bytes', 0) / 1e6:.1f} MB sent"
        )
    elif step == "unchanged":
        if m.who == "naive":
            m.expect(got_200 == feeds, f"{got_200} answers 200, not {feeds}")
            m.notes.append(f"{got_200} x 200 (no conditional GET)")
        else:
            m.expect(got_304 == feeds, f"{got_304} answers 304, not {feeds}")
            m.notes.append(f"{got_304} x 304")
        m.expect(new == 0, f"{new:.0f} new articles, not 0")
        m.expect(not keys, f"{len(keys)} alerts on an unchanged cycle")
    else:
        m.expect(
            new == changed_feeds * new_items,
            f"{new:.0f} new articles, not {changed_feeds * new_items}",
        )
        if m.who != "naive":
            m.expect(got_200 == changed_feeds, f"{got_200} answers 200, not {changed_feeds}")
            m.expect(
                got_304 == feeds - changed_feeds,
                f"{got_304} answers 304, not {feeds - changed_feeds}",
            )
        m.notes.append(f"{got_200} x 200, {got_304} x 304, {new:.0f} new items")
        if m.who == "reader":
            m.notes.append("no rules, no alerts")
            return
        m.notes.append(f"{len(set(keys))} alerts")
        if m.who == "ours" and expected_alerts is not None:
            lost = expected_alerts - set(keys)
            extra = set(keys) - expected_alerts
            m.expect(not lost, f"{len(lost)} alerts lost (e.g. {sorted(lost)[:2]})")
            m.expect(not extra, f"{len(extra)} unexpected alerts (e.g. {sorted(extra)[:2]})")
            if not lost and not extra:
                m.notes.append("same set as naive")
        sent = m.counters.get("sent", -1)
        m.expect(sent == len(keys), f"sent={sent:.0f} but {len(keys)} received")


# ------------------------------------------------------------------------ scenario 5


def delivery_scenario(
    farm: FarmProcess, workspace: Path, settings: Settings, log: callable
) -> list[Measurement]:
    """`alerts` alerts queued by a dry run (one feed of `alerts` new items, one rule), then
    one `run --once` that delivers them to a json:// receiver; and the naive sender."""
    count = settings.alerts
    folder = workspace / "delivery"
    env = environment(settings)
    config = write_config(
        folder,
        {
            "database": "sqlite:///state/monitor.db",
            "timezone": "Asia/Shanghai",
            "feeds": [
                {
                    "name": "burst",
                    "url": farm.burst_url(count),
                    "notify_existing": True,
                    "max_bytes": "50MB",
                }
            ],
            "channels": {"hook": farm.hook_url("delivery-ours")},
        },
        rules=[{"name": "burst", "any": [BURST_WORD], "notify": ["hook"]}],
    )
    farm.warm_burst(count)
    measurements = []
    log("  queue      ours   ")
    prepare = Measurement("delivery-queue", "ours", items=count)
    errors = run_process(
        prepare,
        news_monitor("run", "--once", "--dry-run", "--config", str(config)),
        cwd=folder,
        env=env,
    )
    prepare.counters = cycle_counters(errors)
    prepare.expect(
        prepare.counters.get("matches") == count,
        f"{prepare.counters.get('matches')} matches, not {count}",
    )
    prepare.expect(not farm.hook("delivery-ours")["keys"], "the dry run sent alerts")
    prepare.notes.append(f"dry run: {count} items parsed, stored, matched, queued")
    measurements.append(prepare)
    log(f"    {_brief(prepare)}\n")

    for who in ("naive", "ours"):
        log(f"  delivery   {who:<7}")
        measurement = Measurement("delivery", who, items=count)
        if who == "ours":
            command = news_monitor("run", "--once", "--config", str(config))
        else:
            command = [
                PYTHON,
                str(BENCH / "reference.py"),
                "deliver",
                "--count",
                str(count),
                "--hook",
                farm.hook_url("delivery-naive", scheme="http"),
            ]
        errors = run_process(measurement, command, cwd=folder, env=env)
        hook = farm.hook(f"delivery-{who}")
        keys = hook["keys"]
        measurement.counters = cycle_counters(errors) if who == "ours" else {}
        duplicates = sum(n - 1 for n in Counter(keys).values() if n > 1)
        if not measurement.error:
            pending = int(measurement.counters.get("pending", -1))
            measurement.expect(
                len(set(keys)) == count,
                f"{count - len(set(keys))} alerts not received (the cycle says pending={pending})",
            )
            measurement.expect(duplicates == 0, f"{duplicates} alerts received twice")
        span = (hook["last"] - hook["first"]) if keys else 0.0
        measurement.counters |= {"received": len(keys), "duplicates": duplicates, "span": span}
        measurement.notes.append(
            f"{len(set(keys))}/{count} received, {duplicates} twice, first to last {span:.1f} s"
        )
        measurements.append(measurement)
        log(f"    {_brief(measurement)}\n")
    return measurements


# ------------------------------------------------------------------------ scenario 4


def rules_scenarios(workspace: Path, settings: Settings, log: callable) -> list[Measurement]:
    """`rules test --json` over `articles` stored articles with 10 / 1,000 / 10,000 rules
    (bench/rules.py makes both); and the naive `in` loop with the 10 list-form rules."""
    folder = workspace / "rules"
    (folder / "state").mkdir(parents=True, exist_ok=True)
    env = environment(settings)
    started = time.perf_counter()
    subprocess.run(
        [
            PYTHON,
            str(BENCH / "rules.py"),
            "--fill-store",
            f"sqlite:///{folder}/state/monitor.db",
            "--articles",
            str(settings.articles),
            "--naive-database",
            str(folder / "naive.db"),
        ],
        check=True,
        env=env,
        cwd=folder,
    )
    log(
        f"  (store of {settings.articles:,} articles filled in "
        f"{time.perf_counter() - started:.1f} s)\n"
    )
    configs = {}
    for count in settings.rule_counts:
        subprocess.run(
            [PYTHON, str(BENCH / "rules.py"), "--write-rules", str(folder), "--rules", str(count)],
            check=True,
            env=env,
            cwd=folder,
        )
        configs[count] = write_config(
            folder,
            {
                "database": "sqlite:///state/monitor.db",
                "feeds": [{"name": f"feed-{i}", "url": "file:///dev/null"} for i in range(3)],
                "rules_files": [f"rules-{count}.yaml"],
            },
            name=f"monitor-{count}.yaml",
        )
    measurements = []
    # With --repeat, every rule count runs once per round, rounds one after another: the
    # target is a ratio between counts, and a host whose speed drifts over minutes (seen:
    # 2.77-3.53x for the same code within 45 minutes) then slows each count alike.
    for repeat in range(settings.repeat):
        for count in settings.rule_counts:
            measurements.append(
                _rules_run(folder, configs[count], count, repeat, env, settings, log)
            )
            if count == settings.rule_counts[0]:
                measurements.append(_naive_rules_run(folder, count, repeat, env, settings, log))
    return measurements


def _rules_run(
    folder: Path,
    config: Path,
    count: int,
    repeat: int,
    env: dict[str, str],
    settings: Settings,
    log: callable,
) -> Measurement:
    """One `rules test --json` with `count` rules over the stored articles."""
    log(f"  rules-{count:<5} ours   ")
    measurement = Measurement(f"rules-{count}", "ours", items=settings.articles, repeat=repeat)
    stdout = folder / "hits.jsonl"
    errors = run_process(
        measurement,
        news_monitor("rules", "test", "--json", "--config", str(config)),
        cwd=folder,
        env=env,
        stdout_path=stdout,
    )
    with stdout.open("rb") as lines:
        hits = sum(1 for _ in lines)
    measurement.counters = {"hits": hits}
    checked = _CHECKED.findall(errors)
    measurement.notes.append(f"{hits:,} hits; {checked[-1] if checked else '?'} articles checked")
    log(f"    {_brief(measurement)}\n")
    return measurement


def _naive_rules_run(
    folder: Path, count: int, repeat: int, env: dict[str, str], settings: Settings, log: callable
) -> Measurement:
    """The naive `in` loop with the same `count` (list-form) rules."""
    log(f"  rules-{count:<5} naive  ")
    naive = Measurement(f"rules-{count}", "naive", items=settings.articles, repeat=repeat)
    errors = run_process(
        naive,
        [
            PYTHON,
            str(BENCH / "reference.py"),
            "rules",
            "--database",
            str(folder / "naive.db"),
            "--rules",
            str(folder / f"rules-{count}.json"),
        ],
        cwd=folder,
        env=env,
    )
    naive.counters = summary_counters(errors)
    naive.notes.append(f"{naive.counters.get('hits', 0):,.0f} hits (list-form rules only)")
    log(f"    {_brief(naive)}\n")
    return naive


def _brief(m: Measurement) -> str:
    if m.error:
        return f"FAILED {m.error}"
    text = f"{m.wall:.2f} s wall, {m.cpu:.2f} s CPU, {m.rss_mb:.0f} MB"
    return text + (f"; CHECK: {'; '.join(m.checks)}" if m.checks else "")
