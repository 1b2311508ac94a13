"""Benchmarks of what users pay: the daemon's steady cost, alert latency, and whole
`run --once` cycles against lemon24/reader, each measured in the same run as its reference.

    make bench                      # the issue's sizes (installs reader and sgmllib3k into
                                    # the virtualenv first: the targets need it)
    make bench BENCH_ARGS=--quick   # every scenario at small sizes: a few minutes
    .venv/bin/python bench/run.py --only daemon,latency --quick
    .venv/bin/python bench/run.py --only farm --feeds 300 --markdown /tmp/table.md

Scenarios. 0-5 are whole processes measured from outside with wait4 (wall, CPU = user +
system, peak RSS) while a thread samples the process tree from /proc every 50 ms (summed
RSS and PSS, the parser processes' CPU); 6 and 7 run the real daemon, `news-monitor run`.
  0 start-up   `run --once` with no feeds: imports, config, schema (shown, no target)
  1 cold       first `run --once` over N feeds x M items, 20 rules, a json:// webhook
  2 unchanged  the same again; the farm answers 304 to a conditional GET
  3 changed    10% of the feeds gained 3 new items; the alerts must be exactly those the
               naive reference finds, none twice
               Target for 1-3: our wall / reader's wall on the same step, <= 0.5x cold,
               <= 0.7x unchanged and changed.
  4 rules-R    `rules test --json` with R = 10 / 1,000 / 10,000 rules over stored articles;
               target: 10,000 rules <= 3x the wall of 10
  5 delivery   `run --once` delivering A queued alerts to a json:// receiver (queued by a
               `--dry-run` cycle first: the delivery-queue row); none lost, none twice;
               target: 1,000 alerts < 10 s
  6 daemon     steady state (bench/daemon.py): the daemon polling F unchanged feeds (304)
               every 10 s for P polls, once the baseline's background work (stories,
               search index) is done: CPU seconds per 1,000 polls (daemon + its parser
               processes, from /proc), the tree's RSS at the start and at the end, and
               APScheduler's "maximum number of running instances reached" warnings in its
               log; targets <= 0.6 CPU s per 1,000 polls, growth <= 5 MB, 0 warnings
  7 latency    alert latency (bench/alert_latency.py): items published at random moments
               into 100 feeds polled every 10 s (jitter 2 s); from the moment the farm
               serves an item to its alert arriving at the farm's webhook, p50 and p95;
               target p95 <= interval + jitter + 2 s
  fulltext     full text (bench/fulltext.py, its own tables after the others): extraction
               quality on the pages of tests/data/fulltext, ms per page, and `run --once`
               cycles of 100 summary-only feeds x 30 items without and with `fulltext:`
  stories      grouping (bench/stories.py, its own table): storing one new article and
               finding its story among 30,000 stored ones; target < 5 ms median and p95
After the table, bench/rules.py (RuleSet.match in one process, not --quick) prints a table
of its own.
References (bench/reference.py): lemon24/reader for 1-3 (pip install reader sgmllib3k;
`make bench` installs it, not a project dependency), and `naive` (feedparser.parse(url), a
seen-guid table, an `in` loop) for 0-5: its alerts on step 3 are the expected set, and the
`x naive` columns keep the figures comparable with older records. Steps 1-3 run interleaved
(naive, ours, reader on the same step one after another), so load from elsewhere hits them
alike; `--repeat N` runs that sequence N times on fresh state, and the rule counts of
scenario 4 N rounds, and the table shows medians.
The farm (bench/farm.py) serves RFI-style Chinese feeds with ETag, Last-Modified, gzip, in
a process of its own; it counts answers (200, 304), TCP connections and alerts received
(with their arrival times), and publishes probe items at known moments (scenario 7).
Profiles: bench/profile.py (py-spy). Results of record: bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from importlib.util import find_spec
from pathlib import Path

from alert_latency import (
    LATENCY_INTERVAL_SECONDS,
    LATENCY_JITTER_SECONDS,
    alert_latency_scenario,
    target_seconds,
)
from farm import FarmProcess  # bench/ is on sys.path when this file runs as a script
from scenarios import (
    ROOT,
    Measurement,
    Settings,
    delivery_scenario,
    farm_scenarios,
    rules_scenarios,
    startup_scenario,
    warm_up,
)

ORDER = ("cold", "unchanged", "changed")
WHO = ("naive", "reader", "ours")
TARGET_RULES_SLOWDOWN = 3.0
TARGET_DELIVERY_SECONDS_PER_1000 = 10.0
# Our `run --once` wall / reader's on the same step of the same run.
TARGET_READER_RATIOS = {"cold": 0.5, "unchanged": 0.7, "changed": 0.7}
TARGET_DAEMON_CPU_PER_1000_POLLS = 0.6
TARGET_DAEMON_GROWTH_MB = 5.0
LABELS = {
    "startup": "0 start-up (no feeds)",
    "cold": "1 cold",
    "unchanged": "2 unchanged (304)",
    "changed": "3 changed",
    "delivery-queue": "5 delivery: queue (dry run)",
    "delivery": "5 delivery",
    "daemon": "6 daemon steady state",
    "latency": "7 alert latency",
}


def log(text: str) -> None:
    sys.stderr.write(text)
    sys.stderr.flush()


def label(scenario: str, settings: Settings) -> str:
    if scenario.startswith("rules-"):
        return f"4 rules: {int(scenario[6:]):,} rules"
    return LABELS.get(scenario, scenario)


def daemon_scenario(settings: Settings, log: Callable[[str], None]) -> list[Measurement]:
    """Scenario 6: bench/daemon.py's measure_steady_state(product_dir, feeds, polls), one
    run of the real daemon, its figures kept as the measurement's counters."""
    feeds, polls = settings.daemon_feeds, settings.daemon_polls
    measurement = Measurement("daemon", "ours", items=polls)
    measurement.load = os.getloadavg()[0]
    log(f"  daemon     ours    {feeds:,} feeds, {polls:,} polls ...")
    try:
        from daemon import measure_steady_state  # imported here: it starts its own farm

        result = measure_steady_state(settings.product or ROOT, feeds, polls)
    except Exception as error:  # noqa: BLE001 - one failed scenario must not stop the others
        measurement.error = f"{type(error).__name__}: {error}"
        log(f"    FAILED {measurement.error}\n")
        return [measurement]
    measurement.counters = figures = _steady_state_figures(result)
    measurement.items = int(figures.get("polls", polls))
    measurement.wall = figures.get("wall_seconds", 0.0)
    cpu = figures.get("cpu_seconds_per_1000_polls", 0.0)
    measurement.cpu = figures.get("cpu_seconds", cpu * measurement.items / 1000)
    memory = [
        figures[k] for k in ("rss_mb_at_1000", "rss_mb_at_10000", "rss_mb_at_end") if k in figures
    ]
    measurement.rss_mb = measurement.process_rss_mb = max(memory, default=0.0)
    first = figures.get("rss_mb_at_1000", float("nan"))
    last = figures.get("rss_mb_at_10000", figures.get("rss_mb_at_end", float("nan")))
    measurement.notes.append(
        f"{measurement.items:,} polls of {feeds:,} unchanged feeds; "
        f"{cpu:.3f} CPU s per 1,000 polls; tree RSS {first:.1f} MB at the start, "
        f"{last:.1f} MB at the end; the baseline's background work (stories, search index) "
        f"before: {figures.get('background_work_seconds', float('nan')):.0f} s, "
        f"{figures.get('background_work_cpu_seconds', float('nan')):.1f} CPU s; "
        f"{figures.get('scheduler_warnings', float('nan')):.0f} scheduler warnings"
    )
    log(f"    {measurement.notes[-1]}\n")
    return [measurement]


def _steady_state_figures(result: dict) -> dict[str, float]:
    """bench/daemon.py's figures under the names the table and targets use: the tree's
    (daemon and parser processes) memory, the polls measured, the scheduler's warnings."""
    figures = {
        key: float(value)
        for key, value in result.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }
    if "polls_measured" in result:
        figures["polls"] = float(result["polls_measured"])
    if "seconds_measured" in result:
        figures["wall_seconds"] = float(result["seconds_measured"])
    for ours, theirs in (
        ("rss_mb_at_1000", "rss_mb_at_1000_polls"),
        ("rss_mb_at_end", "rss_mb_at_end"),
    ):
        value = result.get(theirs)
        if isinstance(value, dict):
            figures[ours] = float(value["with_children"])
    if "apscheduler_skipped_warnings" in result:
        figures["scheduler_warnings"] = float(result["apscheduler_skipped_warnings"])
    return figures


def reference_for(m: Measurement, by_key: dict[tuple[str, str], Measurement]) -> Measurement | None:
    if m.scenario.startswith("rules-"):
        return next(
            (r for (s, w), r in by_key.items() if w == "naive" and s.startswith("rules-")), None
        )
    return by_key.get((m.scenario, "naive"))


def _ratio(value: float, reference: float | None) -> str:
    if not reference or reference <= 0:
        return "-"
    ratio = value / reference
    return f"{ratio:.3f}" if ratio < 0.1 else f"{ratio:.2f}"


def aggregate(measurements: list[Measurement]) -> list[Measurement]:
    """One measurement per (scenario, who): with repeats, the median wall, CPU and peak RSS,
    the notes of the run with the median wall, the range of walls, and every failed check."""
    groups: dict[tuple[str, str], list[Measurement]] = {}
    for m in measurements:
        groups.setdefault((m.scenario, m.who), []).append(m)
    result = []
    for runs in groups.values():
        if len(runs) == 1:
            result.append(runs[0])
            continue
        good = [m for m in runs if not m.error] or runs
        middle = sorted(good, key=lambda m: m.wall)[(len(good) - 1) // 2]
        walls = [m.wall for m in good]
        result.append(
            dataclasses.replace(
                middle,
                wall=statistics.median(walls),
                cpu=statistics.median(m.cpu for m in good),
                rss_mb=statistics.median(m.rss_mb for m in good),
                process_rss_mb=statistics.median(m.process_rss_mb for m in good),
                tree_pss_mb=statistics.median(m.tree_pss_mb for m in good),
                children_cpu=statistics.median(m.children_cpu for m in good),
                checks=[c for m in runs for c in m.checks]
                + [f"run {m.repeat}: {m.error}" for m in runs if m.error and m is not middle],
                notes=[
                    f"median of {len(good)}, wall {min(walls):.2f}-{max(walls):.2f} s",
                    *middle.notes,
                ],
            )
        )
    return result


def table_rows(measurements: list[Measurement], settings: Settings) -> list[list[str]]:
    by_key = {(m.scenario, m.who): m for m in measurements}
    scenarios = list(dict.fromkeys(m.scenario for m in measurements))
    rows = []
    for scenario in scenarios:
        for who in WHO:
            m = by_key.get((scenario, who))
            if m is None:
                continue
            ref = reference_for(m, by_key)
            if m.error:
                rows.append(
                    [
                        label(scenario, settings),
                        who,
                        "FAILED",
                        "",
                        "",
                        "",
                        "",
                        "",
                        "",
                        m.error[:120],
                    ]
                )
                continue
            check = "ok" if not m.checks else "CHECK: " + "; ".join(m.checks)
            reader = by_key.get((scenario, "reader"))
            if who == "ours" and scenario in ORDER and reader and not reader.error:
                check += f"; x reader {_ratio(m.wall, reader.wall)} (wall)"
            if m.processes > 1:
                # peak MB then sums every process's RSS, counting shared pages in each;
                # the CPU split shows whether every core did its share.
                check += (
                    f"; {m.processes} processes, PSS sum {m.tree_pss_mb:.0f} MB, "
                    f"CPU {m.cpu - m.children_cpu:.1f} s in the first, "
                    f"{m.children_cpu:.1f} s in the others"
                )
            rows.append(
                [
                    label(scenario, settings),
                    who,
                    f"{m.wall:.2f}",
                    _ratio(m.wall, ref.wall if ref and not ref.error else None),
                    f"{m.cpu:.2f}",
                    _ratio(m.cpu, ref.cpu if ref and not ref.error else None),
                    f"{m.rss_mb:.0f}",
                    _ratio(m.rss_mb, ref.rss_mb if ref and not ref.error else None),
                    f"{m.rate:,.0f}",
                    "; ".join([check, *m.notes]),
                ]
            )
    return rows


HEADER = [
    "scenario",
    "who",
    "wall s",
    "x naive",
    "cpu s",
    "x naive",
    "peak MB",
    "x naive",
    "items/s",
    "checks, notes",
]


def print_table(rows: list[list[str]]) -> None:
    widths = [max(len(row[i]) for row in [HEADER, *rows]) for i in range(len(HEADER) - 1)]
    for row in [HEADER, *rows]:
        cells = [
            cell.ljust(width) if index < 2 else cell.rjust(width)
            for index, (cell, width) in enumerate(zip(row, widths, strict=False))
        ]
        print("  ".join([*cells, row[-1]]))


def targets(raw: list[Measurement], settings: Settings) -> list[tuple[str, str, str, bool | None]]:
    """(target, measured, limit, met) for each target that was measured, on medians where
    there were repeats; met is None for a figure shown without a target (peak RSS)."""
    measurements = aggregate(raw)
    by_key = {(m.scenario, m.who): m for m in measurements}
    results: list[tuple[str, str, str, bool | None]] = []
    for scenario, limit in TARGET_READER_RATIOS.items():
        ours, reader = by_key.get((scenario, "ours")), by_key.get((scenario, "reader"))
        name = f"{label(scenario, settings)}: wall / reader's wall"
        if ours and reader and not ours.error and not reader.error:
            ratio = ours.wall / reader.wall
            results.append(
                (
                    name,
                    f"{ratio:.3f}x ({ours.wall:.2f} s / {reader.wall:.2f} s)",
                    f"<= {limit}x",
                    ratio <= limit,
                )
            )
        elif ours:
            why = "reader failed" if reader else "reader not run (pip install reader sgmllib3k)"
            results.append((name, f"not measured: {why}", f"<= {limit}x", False))
    results += _daemon_targets(by_key.get(("daemon", "ours")))
    latency = by_key.get(("latency", "ours"))
    if latency:
        limit = target_seconds()
        p50, p95 = latency.counters.get("p50"), latency.counters.get("p95")
        results.append(
            (
                f"7 latency: served to alert, p95 ({settings.latency_feeds} feeds, "
                f"{LATENCY_INTERVAL_SECONDS} s interval, {LATENCY_JITTER_SECONDS} s jitter)",
                f"p95 {p95:.2f} s, p50 {p50:.2f} s"
                if p95 is not None and p50 is not None and not latency.error
                else "not measured: " + (latency.error or "no alert arrived")[:80],
                f"<= {limit:g} s",
                p95 is not None and p95 <= limit and not latency.error,
            )
        )
    ours_all = [m for m in measurements if m.who == "ours" and not m.error]
    counts = sorted(int(m.scenario[6:]) for m in ours_all if m.scenario.startswith("rules-"))
    if len(counts) >= 2:
        low, high = by_key[(f"rules-{counts[0]}", "ours")], by_key[(f"rules-{counts[-1]}", "ours")]
        slowdown = high.wall / low.wall
        results.append(
            (
                f"4 rules: {counts[-1]:,} rules / {counts[0]:,} rules (wall)",
                f"{slowdown:.2f}x ({high.wall:.2f} s / {low.wall:.2f} s)",
                f"<= {TARGET_RULES_SLOWDOWN:g}x",
                slowdown <= TARGET_RULES_SLOWDOWN,
            )
        )
    delivery = by_key.get(("delivery", "ours"))
    if delivery and not delivery.error:
        limit = TARGET_DELIVERY_SECONDS_PER_1000 * settings.alerts / 1000
        scaled = "" if settings.alerts == 1000 else " (limit scaled from 10 s per 1,000)"
        results.append(
            (
                f"5 delivery: {settings.alerts:,} alerts, none lost, none twice{scaled}",
                f"{delivery.wall:.2f} s, {'checks ok' if delivery.ok else 'CHECK FAILED'}",
                f"< {limit:g} s",
                delivery.wall < limit and delivery.ok,
            )
        )
    # Peak RSS of the `run --once` processes: shown, no longer a target (it measured
    # start-up more than anything a user runs for long; scenario 6 has the daemon's).
    ours_every_run = [
        m for m in raw if m.who == "ours" and not m.error and m.scenario not in ("daemon",)
    ]
    if ours_every_run:
        largest = max(ours_every_run, key=lambda m: m.process_rss_mb)
        worst = max(ours_every_run, key=lambda m: m.rss_mb)
        pss = f", PSS {worst.tree_pss_mb:.0f} MB" if worst.processes > 1 else ""
        results.append(
            (
                "peak RSS: largest process (wait4); process tree summed",
                f"{largest.process_rss_mb:.0f} MB ({label(largest.scenario, settings)}); "
                f"{worst.rss_mb:.0f} MB ({label(worst.scenario, settings)}{pss})",
                "shown",
                None,
            )
        )
    failed = [m for m in raw if not m.ok]
    results.append(
        (
            "every check (exit 0, 304s, alert sets, none lost, none twice)",
            "all passed"
            if not failed
            else ", ".join(f"{label(m.scenario, settings)}/{m.who}" for m in failed),
            "all",
            not failed,
        )
    )
    return results


def _daemon_targets(daemon: Measurement | None) -> list[tuple[str, str, str, bool | None]]:
    """The three targets of scenario 6, from measure_steady_state's figures."""
    if daemon is None:
        return []
    if daemon.error:
        return [("6 daemon steady state", f"FAILED: {daemon.error[:100]}", "-", False)]
    figures = daemon.counters
    polls = int(figures.get("polls", 0))
    cpu = figures.get("cpu_seconds_per_1000_polls")
    first = figures.get("rss_mb_at_1000")
    last = figures.get("rss_mb_at_10000", figures.get("rss_mb_at_end"))
    warnings = figures.get("scheduler_warnings")
    rows: list[tuple[str, str, str, bool | None]] = []
    rows.append(
        (
            f"6 daemon: CPU s per 1,000 polls (tree, {polls:,} polls)",
            f"{cpu:.3f} s" if cpu is not None else "not measured",
            f"<= {TARGET_DAEMON_CPU_PER_1000_POLLS:g} s",
            cpu is not None and cpu <= TARGET_DAEMON_CPU_PER_1000_POLLS,
        )
    )
    if first is not None and last is not None:
        growth = last - first
        rows.append(
            (
                f"6 daemon: RSS growth over {polls:,} polls (tree)",
                f"{growth:+.1f} MB ({first:.1f} to {last:.1f} MB)",
                f"<= {TARGET_DAEMON_GROWTH_MB:g} MB",
                growth <= TARGET_DAEMON_GROWTH_MB,
            )
        )
    else:
        rows.append(("6 daemon: RSS growth", "not measured", "", False))
    rows.append(
        (
            "6 daemon: APScheduler 'maximum number of running instances' warnings",
            f"{warnings:.0f}" if warnings is not None else "not measured",
            "0",
            warnings == 0,
        )
    )
    return rows


def verdict(met: bool | None) -> str:
    return "-" if met is None else "met" if met else "NOT met"


def print_targets(results: list[tuple[str, str, str, bool | None]]) -> None:
    width = max(len(name) for name, *_ in results)
    value_width = max(len(value) for _, value, *_ in results)
    print("\ntargets")
    for name, value, limit, met in results:
        print(f"  {name:<{width}}  {value:<{value_width}}  {limit:<10}  {verdict(met)}")


# Steps of host_speed_seconds' loop: about half a second on a quiet 2-core guest.
HOST_SPEED_STEPS = 10_000_000


def host_speed_seconds() -> float:
    """Seconds an empty Python loop of HOST_SPEED_STEPS takes now, the best of three.

    The same guest has run this suite at half its usual speed for hours; seconds from two
    runs compare only if this figure does (the ratios to the naive script compare anyway).
    """
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(HOST_SPEED_STEPS):
            pass
        best = min(best, time.perf_counter() - started)
    return best


def _commit_of(product: Path) -> str:
    """`, commit X` of a product tree: its git HEAD, or the COMMIT file of an export
    (`git archive HEAD monitor | tar -x -C DIR && git rev-parse HEAD > DIR/COMMIT`)."""
    found = subprocess.run(
        ["git", "-C", str(product), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    if not found and (product / "COMMIT").is_file():
        found = (product / "COMMIT").read_text().strip()[:7]
    return f", commit {found}" if found else ""


def machine(product: Path | None) -> dict[str, str]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    dirty = (
        product is None
        and subprocess.run(
            ["git", "status", "--porcelain", "--", "monitor"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    )
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": f"{model} x {os.cpu_count()}",
        "python": platform.python_version(),
        "commit": commit
        + (" + uncommitted changes in monitor/" if dirty else "")
        + (f" (bench/; monitor/ from {product}{_commit_of(product)})" if product else ""),
    }


def markdown(
    rows: list[list[str]],
    results: list[tuple[str, str, str, bool | None]],
    settings: Settings,
    facts: dict[str, str],
) -> str:
    lines = [f"{key}: {value}  " for key, value in facts.items()]
    lines += ["", "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in rows]
    lines += ["", "| target | measured | limit | met |", "|---|---|---|---|"]
    lines += [
        f"| {name} | {value} | {limit} | {'**not met**' if met is False else verdict(met)} |"
        for name, value, limit, met in results
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="every scenario at small sizes (50 feeds, 200 alerts, 2,000 articles, 10 and "
        "1,000 rules; daemon 300 feeds x 2,000 polls; latency 8 items, 20 feeds): minutes",
    )
    parser.add_argument("--feeds", type=int, help="feeds in the farm (1,000; quick 50)")
    parser.add_argument("--items", type=int, default=30, help="items per feed (30)")
    parser.add_argument("--alerts", type=int, help="alerts delivered (1,000; quick 200)")
    parser.add_argument("--articles", type=int, help="stored articles (30,000; quick 2,000)")
    parser.add_argument("--rules", help="rule counts of scenario 4 (10,1000,10000; quick 10,1000)")
    parser.add_argument(
        "--daemon-feeds", type=int, help="scenario 6: unchanged feeds (1,000; quick 300)"
    )
    parser.add_argument(
        "--daemon-polls", type=int, help="scenario 6: polls measured (10,000; quick 2,000)"
    )
    parser.add_argument("--latency-feeds", type=int, help="scenario 7: feeds (100; quick 20)")
    parser.add_argument("--probes", type=int, help="scenario 7: items published (50; quick 8)")
    parser.add_argument(
        "--probe-span", type=float, help="scenario 7: seconds they are spread over (240; quick 25)"
    )
    parser.add_argument(
        "--only",
        default="startup,farm,rules,delivery,daemon,latency,fulltext,stories",
        help="comma-separated: startup (0), farm (1-3), rules (4), delivery (5), daemon (6), "
        "latency (7), fulltext, stories (bench/stories.py)",
    )
    parser.add_argument("--no-reader", action="store_true", help="skip lemon24/reader")
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs of scenarios 1-4; the table shows medians"
    )
    parser.add_argument(
        "--no-match-table",
        action="store_true",
        help="skip bench/rules.py's in-process RuleSet.match table (full run)",
    )
    parser.add_argument(
        "--product", type=Path, help="measure the monitor package of this source tree (PYTHONPATH)"
    )
    parser.add_argument("--markdown", type=Path, help="also write the tables here")
    parser.add_argument("--json", type=Path, help="also write every measurement here")
    parser.add_argument("--keep", action="store_true", help="keep the workspace (printed)")
    arguments, _ = parser.parse_known_args(argv)
    quick = arguments.quick
    rule_counts = arguments.rules or ("10,1000" if quick else "10,1000,10000")
    # reader vendors a feedparser that imports sgmllib (PyPI sgmllib3k)
    has_reader = find_spec("reader") is not None and find_spec("sgmllib") is not None
    settings = Settings(
        feeds=arguments.feeds or (50 if quick else 1_000),
        items=arguments.items,
        changed_fraction=0.1,
        new_items=3,
        alerts=arguments.alerts or (200 if quick else 1_000),
        articles=arguments.articles or (2_000 if quick else 30_000),
        rule_counts=tuple(int(count) for count in rule_counts.split(",")),
        reader=has_reader and not arguments.no_reader,
        repeat=max(1, arguments.repeat),
        product=arguments.product.resolve() if arguments.product else None,
        keep=arguments.keep,
        daemon_feeds=arguments.daemon_feeds or (300 if quick else 1_000),
        daemon_polls=arguments.daemon_polls or (2_000 if quick else 10_000),
        latency_feeds=arguments.latency_feeds or (20 if quick else 100),
        probes=arguments.probes or (8 if quick else 50),
        probe_span=arguments.probe_span or (25.0 if quick else 240.0),
    )
    only = set(arguments.only.split(","))
    facts = machine(settings.product)
    facts["sizes"] = (
        f"{settings.feeds:,} feeds x {settings.items} items, "
        f"{settings.alerts:,} alerts, {settings.articles:,} stored articles; daemon "
        f"{settings.daemon_feeds:,} feeds x {settings.daemon_polls:,} polls; latency "
        f"{settings.probes} items into {settings.latency_feeds} feeds over "
        f"{settings.probe_span:g} s"
    )
    if not has_reader:
        facts["reader"] = "not installed (pip install reader sgmllib3k): reference skipped"
    elif arguments.no_reader:
        facts["reader"] = "skipped (--no-reader)"
    if settings.product:
        facts["product"] = str(settings.product)
    facts["load average at start"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    speed_at_start = host_speed_seconds()
    for key, value in facts.items():
        log(f"{key}: {value}\n")
    workspace = Path(tempfile.mkdtemp(prefix="news-monitor-bench-"))
    started = time.perf_counter()
    measurements: list[Measurement] = []
    try:
        warm_up(workspace, settings)
        if "startup" in only:
            log("start-up: run --once with no feeds\n")
            measurements += startup_scenario(workspace, settings, log)
        if only & {"farm", "delivery"}:
            log(f"starting the feed farm ({settings.feeds:,} feeds) ...\n")
            with FarmProcess(settings.feeds, settings.items) as farm:
                if "farm" in only:
                    log("scenarios 1-3: cold, unchanged, changed\n")
                    measurements += farm_scenarios(farm, workspace, settings, log)
                if "delivery" in only:
                    log("scenario 5: delivery\n")
                    measurements += delivery_scenario(farm, workspace, settings, log)
        if "rules" in only:
            log("scenario 4: rules test\n")
            measurements += rules_scenarios(workspace, settings, log)
        if "daemon" in only:
            log("scenario 6: daemon steady state\n")
            measurements += daemon_scenario(settings, log)
        if "latency" in only:
            log("scenario 7: alert latency\n")
            measurements += alert_latency_scenario(workspace, settings, log)
    finally:
        if settings.keep:
            log(f"workspace kept: {workspace}\n")
        else:
            shutil.rmtree(workspace, ignore_errors=True)
    facts["load average at end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    facts["host speed"] = (
        f"{HOST_SPEED_STEPS:,}-step Python loop {speed_at_start:.2f} s at start, "
        f"{host_speed_seconds():.2f} s at end (seconds compare across runs only as these do)"
    )
    # A child's peak RSS as wait4 reports it is at least this process's at the fork.
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    facts["measuring process peak RSS"] = f"{own:.0f} MB (a floor under every peak MB below)"
    facts["bench wall"] = f"{time.perf_counter() - started:.0f} s"
    rows = table_rows(aggregate(measurements), settings)
    results = targets(measurements, settings)
    print()
    for key, value in facts.items():
        print(f"{key}: {value}")
    print()
    print_table(rows)
    print_targets(results)
    print(
        "\nx naive: this figure / the naive reference's in the same scenario and run (rules: "
        "the naive 10-rule scan); x reader (notes, 1-3): our wall / reader's.\nitems/s: feeds "
        "x items per second of the whole process (1-3), stored articles checked per second "
        "(4), alerts per second (5), polls per second (6)."
    )
    if (
        settings.feeds,
        settings.alerts,
        settings.articles,
        settings.daemon_feeds,
        settings.daemon_polls,
        settings.latency_feeds,
    ) != (1_000, 1_000, 30_000, 1_000, 10_000, 100):
        print(
            "sizes are not the issue's (1,000 feeds, 1,000 alerts, 30,000 articles, daemon "
            "1,000 feeds x 10,000 polls, latency 100 feeds): the targets above are indicative "
            "only; run `make bench` for the record."
        )
    if arguments.markdown:
        arguments.markdown.write_text(markdown(rows, results, settings, facts), encoding="utf-8")
    if arguments.json:
        arguments.json.write_text(
            json.dumps(
                {"facts": facts, "measurements": [vars(m) for m in measurements]},
                ensure_ascii=False,
                indent=1,
                default=str,
            ),
            encoding="utf-8",
        )
    if "fulltext" in only:
        print("\nbench/fulltext.py: full text", flush=True)
        subprocess.run(
            [sys.executable, str(Path(__file__).with_name("fulltext.py"))]
            + (["--quick"] if quick else []),
            check=False,
            env=_product_env(settings),
        )
    if not quick and not arguments.no_match_table and "rules" in only:
        print("\nbench/rules.py: RuleSet.match in one process (articles/s)", flush=True)
        subprocess.run(
            [sys.executable, str(Path(__file__).with_name("rules.py")), "--no-backtest"],
            check=False,
            env=_product_env(settings),
        )
    if "stories" in only:
        print("\nbench/stories.py: grouping a new article into its story", flush=True)
        subprocess.run(
            [
                sys.executable,
                str(Path(__file__).with_name("stories.py")),
                f"--articles={settings.articles}",
                f"--samples={100 if quick else 400}",
            ],
            check=False,
            env=_product_env(settings),
        )
    return 0


def _product_env(settings: Settings) -> dict[str, str]:
    from scenarios import environment

    return environment(settings)


if __name__ == "__main__":
    raise SystemExit(main())
