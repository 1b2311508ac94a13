"""Profile news-monitor's cold and unchanged `run --once` on the feed farm.

    .venv/bin/python bench/profile.py                 # 1,000 feeds x 30 items
    .venv/bin/python bench/profile.py --feeds 200 --out /tmp/profiles

Needs py-spy (pip install py-spy; not a project dependency). py-spy samples every thread
(the polls run in a pool) from outside, at --rate Hz, leaving idle threads out (--gil:
only the thread that holds the GIL); the
summary groups the samples by function (self and inclusive) and by package. Also writes
`python -X importtime` for the unchanged cycle, where start-up weighs most. Timings under
a profiler are inflated: use bench/run.py for figures, this for where the time goes.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from farm import FarmProcess
from scenarios import PYTHON, write_config

PY_SPY = shutil.which("py-spy") or str(Path(PYTHON).with_name("py-spy"))
_FRAME = re.compile(r"^(?P<function>.*?) \((?P<file>.*?)(?::(?P<line>\d+))?\)$")


def package_of(path: str) -> str:
    """A short name for where a frame's code lives: monitor.ingest.fetch, feedparser, sqlalchemy,
    threading (py-spy gives paths relative to their sys.path entry)."""
    if path.startswith("<frozen importlib"):
        return "importlib (imports)"
    if path.startswith("monitor/") or "/monitor/" in path:
        return "monitor." + Path(path).stem
    return path.split("/", 1)[0].removesuffix(".py") if "/" in path else Path(path).stem


def summarise(raw: Path, top: int) -> str:
    """Summarise py-spy's raw (collapsed) stacks: by package (self), functions (self,
    inclusive), and the share of each of the pipeline's stages (inclusive)."""
    self_function: Counter[str] = Counter()
    inclusive_function: Counter[str] = Counter()
    inclusive_package: Counter[str] = Counter()
    self_package: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        total += count
        names, packages = [], set()
        for frame in stack.split(";"):
            match = _FRAME.match(frame)
            package = package_of(match["file"]) if match else "?"
            names.append(f"{match['function']} ({package})" if match else frame)
            packages.add(package)
        for name in set(names):
            inclusive_function[name] += count
        for package in packages:
            inclusive_package[package] += count
        self_function[names[-1]] += count
        leaf = _FRAME.match(stack.split(";")[-1])
        self_package[package_of(leaf["file"]) if leaf else "?"] += count
    if not total:
        return "(no samples)\n"

    def block(title: str, counter: Counter[str], limit: int) -> list[str]:
        lines = [f"{title} (% of {total:,} samples)"]
        lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in counter.most_common(limit)]
        return [*lines, ""]

    ours = Counter({k: v for k, v in inclusive_function.items() if "(monitor." in k})
    return "\n".join(
        block("self time by package", self_package, top)
        + block("inclusive time by package", inclusive_package, top)
        + block("inclusive time of news-monitor's functions", ours, top)
        + block("self time by function", self_function, top)
    )


def profile(command: list[str], cwd: Path, out: Path, rate: int, gil: bool) -> str:
    raw = out.with_suffix(".raw.txt")
    subprocess.run(
        [PY_SPY, "record", "--format", "raw", "--rate", str(rate), "--output", str(raw),
         "--nonblocking", *(["--gil"] if gil else []), "--", *command],
        cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    return str(raw)


def import_times(command: list[str], cwd: Path, top: int) -> str:
    """The slowest imports (cumulative microseconds) of command under -X importtime."""
    result = subprocess.run(
        [command[0], "-X", "importtime", *command[1:]], cwd=cwd, capture_output=True, text=True
    )
    rows = []
    for line in result.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            parts = line.removeprefix("import time:").split("|")
            if parts[1].strip().isdigit():
                # one space before a top-level import's name; nested ones are indented
                rows.append((int(parts[1]), parts[2].rstrip()[1:]))
    rows.sort(reverse=True)
    total = sum(us for us, name in rows if not name.startswith(" "))
    rows = [(us, name.strip()) for us, name in rows]
    lines = [f"top-level imports: {total / 1e6:.2f} s cumulative; slowest (cumulative):"]
    lines += [f"  {us / 1e6:6.3f} s  {name}" for us, name in rows[:top]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=1_000)
    parser.add_argument("--items", type=int, default=30)
    parser.add_argument("--rate", type=int, default=250, help="samples per second")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument(
        "--gil",
        action="store_true",
        help="sample only the thread holding the GIL: where the one core that Python code "
        "can use goes (a run --once uses about one core: CPU time ~ wall time)",
    )
    parser.add_argument("--out", type=Path, default=None, help="folder for the profiles")
    arguments = parser.parse_args(argv)
    if not Path(PY_SPY).exists():
        print("py-spy is not installed (pip install py-spy)", file=sys.stderr)
        return 2
    out = arguments.out or Path(tempfile.mkdtemp(prefix="news-monitor-profile-"))
    out.mkdir(parents=True, exist_ok=True)
    workspace = Path(tempfile.mkdtemp(prefix="news-monitor-profile-work-"))
    try:
        with FarmProcess(arguments.feeds, arguments.items) as farm:
            rules = [{**rule, "notify": ["hook"]} for rule in farm.rules()]
            config = write_config(
                workspace,
                {
                    "database": "sqlite:///state/monitor.db",
                    "timezone": "Asia/Shanghai",
                    "feeds": [
                        {"name": f"feed-{index}", "url": farm.url(index)}
                        for index in range(arguments.feeds)
                    ],
                    "channels": {"hook": farm.hook_url("profile")},
                },
                rules=rules,
            )
            command = [PYTHON, "-m", "monitor", "run", "--once", "--config", str(config)]
            for step in ("cold", "unchanged"):
                raw = profile(command, workspace, out / step, arguments.rate, arguments.gil)
                summary = summarise(Path(raw), arguments.top)
                (out / f"{step}.summary.txt").write_text(summary)
                who = "the thread holding the GIL" if arguments.gil else "every busy thread"
                print(f"===== {step} ({arguments.feeds} feeds): py-spy, {who} =====")
                print(summary)
            imports = import_times(command, workspace, arguments.top)
            (out / "unchanged.importtime.txt").write_text(imports)
            print("===== unchanged: python -X importtime =====")
            print(imports)
    finally:
        shutil.rmtree(workspace, ignore_errors=True)
    print(f"profiles in {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
