"""Benchmarks: whole `news-monitor run --once` processes against local feeds.

    make bench                      # 100 feeds x 30 items, plus the bundled fixtures
                                    # (then bench/rules.py: rule matching, rules test)
    make bench BENCH_ARGS=--quick   # 20 feeds x 30 items

Each scenario is one process, measured from outside: wall time, CPU time (user + system)
and peak RSS from the kernel's accounting of that child (wait4).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml
from farm import FeedFarm  # bench/ is on sys.path when this file runs as a script

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "data" / "feeds"
SENT = re.compile(r"cycle .* sent=(\d+)")
RULE_TERMS = (
    "韩日", "强征劳工", "台湾海峡", "半导体", "新疆", "香港", "欧盟", "乌克兰", "AI", "马克龙",
)  # fmt: skip


@dataclass(frozen=True)
class Measurement:
    scenario: str
    wall_seconds: float
    cpu_seconds: float
    peak_rss_megabytes: float
    items: int
    alerts_sent: int

    def row(self) -> str:
        rate = self.items / self.wall_seconds if self.items else 0.0
        return (
            f"{self.scenario:<34} {self.wall_seconds:>8.2f} {self.cpu_seconds:>8.2f} "
            f"{self.peak_rss_megabytes:>9.1f} {rate:>9.0f} {self.alerts_sent:>7}"
        )


def run_once(config: Path, scenario: str, items: int) -> Measurement:
    """Run one `news-monitor run --once` and measure it."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "monitor", "run", "--once", "--config", str(config)],
        cwd=config.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert process.stderr is not None
    errors = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        sys.stderr.write(errors.decode(errors="replace"))
        raise SystemExit(f"{scenario}: exit {process.returncode}")
    return Measurement(
        scenario,
        wall,
        usage.ru_utime + usage.ru_stime,
        usage.ru_maxrss / 1024,  # kilobytes on Linux
        items,
        int(match.group(1)) if (match := SENT.search(errors.decode())) else 0,
    )


def rules(count: int) -> list[dict]:
    generated = [
        {"name": f"rule-{index}", "any": [RULE_TERMS[index % len(RULE_TERMS)], f"词{index}"]}
        for index in range(count)
    ]
    for rule in generated:
        rule["notify"] = ["sink"]
    return generated


def write_config(folder: Path, feeds: dict[str, str], rule_count: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "rules.yaml").write_text(
        yaml.safe_dump(rules(rule_count), allow_unicode=True), encoding="utf-8"
    )
    config = {
        "database": "sqlite:///state/monitor.db",
        "timezone": "Asia/Shanghai",
        "feeds": [{"name": name, "url": url} for name, url in feeds.items()],
        # Alerts print to stdout, which the benchmark discards.
        "channels": {"sink": "console://"},
        "rules_files": ["rules.yaml"],
    }
    path = folder / "monitor.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path


def bench_fixtures(workspace: Path) -> list[Measurement]:
    feeds = {path.stem: path.as_uri() for path in sorted(FIXTURES.glob("*.xml"))}
    config = write_config(workspace / "fixtures", feeds, rule_count=3)
    items = 3  # two items in the cn fixture, one in the tw fixture
    return [
        run_once(config, "fixtures: first cycle", items),
        run_once(config, "fixtures: unchanged cycle", items),
    ]


def bench_farm(workspace: Path, feed_count: int, item_count: int) -> list[Measurement]:
    with FeedFarm(feed_count, item_count) as farm:
        feeds = {f"feed-{index}": farm.url(index) for index in range(feed_count)}
        config = write_config(workspace / "farm", feeds, rule_count=20)
        total = feed_count * item_count
        label = f"{feed_count}x{item_count}"
        measurements = [
            run_once(config, f"{label}: first cycle", total),
            run_once(config, f"{label}: unchanged cycle (304)", total),
        ]
        farm.publish(fraction=0.1, new_items=3)
        measurements.append(run_once(config, f"{label}: 10% of feeds +3 items", total))
        return measurements


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="20 feeds instead of 100")
    parser.add_argument("--feeds", type=int, default=None)
    parser.add_argument("--items", type=int, default=30)
    arguments = parser.parse_args(argv)
    feed_count = arguments.feeds or (20 if arguments.quick else 100)
    workspace = Path(tempfile.mkdtemp(prefix="news-monitor-bench-"))
    try:
        measurements = bench_fixtures(workspace) + bench_farm(
            workspace, feed_count, arguments.items
        )
    finally:
        shutil.rmtree(workspace, ignore_errors=True)
    print(
        f"{'scenario':<34} {'wall s':>8} {'cpu s':>8} {'peak MB':>9} {'items/s':>9} {'alerts':>7}"
    )
    for measurement in measurements:
        print(measurement.row())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
