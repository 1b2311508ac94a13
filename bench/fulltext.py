"""Full text (`fulltext:`): what fetching and extracting article pages costs, and how well
the article's text is found.

    .venv/bin/python bench/fulltext.py                  # 100 feeds x 30 items
    .venv/bin/python bench/fulltext.py --quick          # 20 feeds x 10 items: a minute
    .venv/bin/python bench/run.py --only fulltext       # the same, from the bench runner

1. quality: on the 24 Chinese news pages of tests/data/fulltext (the layouts of RFI's
   Chinese service, a portal, an opinion site, a mobile page), the share of the article's
   text found (main-text recall, by characters) and of the boilerplate strings left out
   (comments, related links, the rest of the furniture), as tests/ingest/test_extract.py
   checks them with floors.
2. extraction: extract_main_text, one page at a time in one process, on every page the
   burst cycle below serves (feeds x items pages built from those 24, each with its own
   text): milliseconds per page, median and p95; and what importing trafilatura costs.
3. cycles: a local server (a process of its own; one origin, as RFI is) serves F
   summary-only feeds of I items and their article pages; `run --once` (Monitor.run_once
   in a child process, measured from outside with wait4: wall, CPU of the process and its
   parser processes, peak RSS of the tree) for each configuration, on fresh state:
     off          no `fulltext:`
     on           `fulltext: true`: pages extracted in the parser processes when there are
                  some, as the daemon does with 20 feeds or more
     on-threads   `fulltext: true`, every page extracted in the poll threads
   steps: cold (the baseline: no page may be fetched), changed (10% of the feeds gain 3
   items: the changed cycle of bench/run.py), burst (every item of every feed is new:
   F x I pages at once, the worst case). Checks: pages fetched = new items (none when
   off); rule hits = the new items whose page, and not their summary, carries the rule's
   term (none when off).
Results of record: bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape

from scenarios import PYTHON, ROOT, Measurement, run_process

PAGES = ROOT / "tests" / "data" / "fulltext"
TERM = "基准全文"  # in the page of every TOPIC_EVERY-th item, in no summary
TOPIC_EVERY = 10
ROBOTS = b"User-agent: *\nDisallow: /private/\n"
CONFIGURATIONS = ("off", "on", "on-threads")
STEPS = ("cold", "changed", "burst")


def log(text: str) -> None:
    sys.stderr.write(text)
    sys.stderr.flush()


# ------------------------------------------------------------------------- the pages


def load_cases() -> list[dict]:
    return json.loads((PAGES / "cases.json").read_text(encoding="utf-8"))["pages"]


class PageMaker:
    """The article page of item N: page N % 24 of the corpus, its first paragraph marked
    with N (every page differs, as real ones do), and TERM in every TOPIC_EVERY-th."""

    def __init__(self) -> None:
        self.cases = load_cases()
        self.templates = [(PAGES / case["page"]).read_text(encoding="utf-8") for case in self.cases]

    def title(self, number: int) -> str:
        return f"{self.cases[number % len(self.cases)]['title']} {number}"

    def summary(self, number: int) -> str:
        return self.cases[number % len(self.cases)]["main"][0][:40] + "……"

    def page(self, number: int) -> bytes:
        index = number % len(self.cases)
        paragraph = html.escape(self.cases[index]["main"][1])
        mark = f"（编号{number}{'，' + TERM if number % TOPIC_EVERY == 0 else ''}）"
        return self.templates[index].replace(paragraph, paragraph + mark, 1).encode("utf-8")


# ------------------------------------------------------------------------- the server


class PageServer:
    """Feeds of summaries and their article pages; /control/... changes the feeds."""

    def __init__(self, feeds: int, items: int) -> None:
        self.maker = PageMaker()
        self.items = items
        self.lock = threading.Lock()
        self.next_number = feeds * items
        self.feeds = [list(range(f * items, (f + 1) * items)) for f in range(feeds)]
        self.hits = {"feed": 0, "page": 0, "robots": 0}

    def feed(self, index: int, base: str) -> bytes:
        now = format_datetime(datetime.now(UTC), usegmt=True)
        items = "".join(
            f"<item><title>{escape(self.maker.title(n))}</title><link>{base}/page/{n}</link>"
            f'<guid isPermaLink="false">item-{n}</guid><pubDate>{now}</pubDate>'
            f"<description>{escape(self.maker.summary(n))}</description></item>"
            for n in self.feeds[index]
        )
        return (
            '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
            f"<title>feed {index}</title><link>{base}/</link><description>bench</description>"
            f"{items}</channel></rss>"
        ).encode()

    def publish(self, fraction: float, new: int) -> int:
        """The first `fraction` of the feeds gain `new` items each (dropping as many old
        ones); return how many items are new."""
        with self.lock:
            changed = max(1, round(len(self.feeds) * fraction))
            for index in range(changed):
                fresh = list(range(self.next_number, self.next_number + new))
                self.next_number += new
                self.feeds[index] = (fresh + self.feeds[index])[: self.items]
            return changed * min(new, self.items)


def serve(feeds: int, items: int) -> None:
    state = PageServer(feeds, items)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            path = parts.path.split("/")
            base = f"http://{self.headers['Host']}"
            if parts.path == "/robots.txt":
                state.hits["robots"] += 1
                return self.answer(200, ROBOTS, "text/plain")
            if len(path) == 3 and path[1] == "feed":
                state.hits["feed"] += 1
                return self.answer(200, state.feed(int(path[2]), base), "application/rss+xml")
            if len(path) == 3 and path[1] == "page":
                state.hits["page"] += 1
                body = state.maker.page(int(path[2]))
                return self.answer(200, body, "text/html; charset=utf-8")
            if parts.path == "/control/publish":
                query = parse_qs(parts.query)
                new = state.publish(float(query["fraction"][0]), int(query["new"][0]))
                return self.answer(200, json.dumps({"new": new}).encode(), "application/json")
            if parts.path == "/control/hits":
                hits = json.dumps(state.hits).encode()
                state.hits = dict.fromkeys(state.hits, 0)
                return self.answer(200, hits, "application/json")
            self.answer(404, b"not found", "text/plain")

        def answer(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    server.serve_forever()


class ServerProcess:
    """serve() in a process of its own, so its CPU and memory are not the product's."""

    def __init__(self, feeds: int, items: int) -> None:
        self.feeds, self.items = feeds, items

    def __enter__(self) -> ServerProcess:
        self.process = subprocess.Popen(
            [PYTHON, __file__, "--serve", "--feeds", str(self.feeds), "--items", str(self.items)],
            stdout=subprocess.PIPE,
        )
        assert self.process.stdout is not None
        self.port = int(self.process.stdout.readline())
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.kill()
        self.process.wait()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def control(self, path: str) -> dict:
        with urllib.request.urlopen(self.url(path), timeout=30) as answer:
            return json.loads(answer.read())

    def publish(self, fraction: float, new: int) -> int:
        return int(self.control(f"/control/publish?fraction={fraction}&new={new}")["new"])

    def hits(self) -> dict[str, int]:
        return self.control("/control/hits")


# ------------------------------------------------------------------------- the children


def cycle(config: Path, workers: str, summary: Path) -> None:
    """`run --once --dry-run` as the daemon's code does it (rule hits are stored, nothing is
    sent), with all parsing and extraction in the poll threads when `workers` is 0; write
    what the polls fetched to `summary`."""
    from monitor.ingest import ParsePool
    from monitor.service.configuration import load_config
    from monitor.service.daemon import Monitor

    monitor = Monitor(load_config(config), dry_run=True)
    try:
        if workers == "0":
            monitor.parser.close()
            monitor.parser = ParsePool(0)
        report = monitor.run_once()
        summary.write_text(
            json.dumps(
                {
                    "polls": len(report.polls),
                    "failed_polls": sum(not poll.ok for poll in report.polls),
                    "pages": sum(poll.pages for poll in report.polls),
                    "pages_failed": sum(poll.pages_failed for poll in report.polls),
                    "parse_workers": monitor.parser.workers,
                }
            )
        )
    finally:
        monitor.close()


def extraction_figures(pages: int) -> None:
    """Print JSON: quality on the corpus, and ms per page over `pages` served pages."""
    from monitor.ingest import extract_main_text

    squashed = "".join
    cases = load_cases()
    by_layout: dict[str, list[float]] = {}
    kinds: dict[str, list[int]] = {}
    main_total = main_found = 0
    for case in cases:
        body = (PAGES / case["page"]).read_bytes()
        text = squashed(extract_main_text(body, content_type="text/html; charset=utf-8").split())
        found = total = 0
        for paragraph in (squashed(p.split()) for p in case["main"]):
            total += len(paragraph)
            found += len(paragraph) if paragraph in text else 0
        main_total += total
        main_found += found
        by_layout.setdefault(case["layout"], []).append(found / total)
        for kind, strings in case["boilerplate"].items():
            counts = kinds.setdefault(kind, [0, 0])
            counts[0] += sum(squashed(s.split()) not in text for s in strings)
            counts[1] += len(strings)
    maker = PageMaker()
    timings, cpu_timings = [], []
    for number in range(pages):
        body = maker.page(number)
        started, started_cpu = time.perf_counter(), time.thread_time()
        extract_main_text(body, content_type="text/html; charset=utf-8")
        cpu_timings.append(time.thread_time() - started_cpu)
        timings.append(time.perf_counter() - started)
    # CPU time as well as wall: on a shared host the wall of one call includes waiting for
    # a core, the CPU time only what extraction itself costs.
    timings.sort()
    cpu_timings.sort()
    sizes = [len(maker.page(n)) for n in range(len(cases))]
    import trafilatura

    elements = [
        sum(1 for _ in trafilatura.load_html(maker.page(n)).iter()) for n in range(len(cases))
    ]
    print(
        json.dumps(
            {
                "pages": len(cases),
                "recall": main_found / main_total,
                "recall_by_layout": {k: statistics.mean(v) for k, v in sorted(by_layout.items())},
                "left_out": sum(c[0] for c in kinds.values()) / sum(c[1] for c in kinds.values()),
                "left_out_by_kind": {k: c[0] / c[1] for k, c in sorted(kinds.items())},
                "timed_pages": len(timings),
                "median_ms": statistics.median(timings) * 1000,
                "p95_ms": timings[int(len(timings) * 0.95) - 1] * 1000,
                "max_ms": timings[-1] * 1000,
                "median_cpu_ms": statistics.median(cpu_timings) * 1000,
                "p95_cpu_ms": cpu_timings[int(len(cpu_timings) * 0.95) - 1] * 1000,
                "elements": statistics.mean(elements),
                "page_kb": statistics.mean(sizes) / 1024,
            }
        )
    )


def import_cost() -> dict[str, float]:
    """Seconds and RSS MB that `import trafilatura` adds to a fresh interpreter."""
    code = (
        "import time, json\n"
        "def rss():\n"
        "    return int(open('/proc/self/statm').read().split()[1]) * 4096 / 2**20\n"
        "before = rss(); started = time.perf_counter()\n"
        "import trafilatura\n"
        "print(json.dumps({'seconds': time.perf_counter() - started, 'mb': rss() - before}))\n"
    )
    figures = [json.loads(subprocess.check_output([PYTHON, "-c", code])) for _ in range(3)]
    return {key: statistics.median(f[key] for f in figures) for key in ("seconds", "mb")}


# ------------------------------------------------------------------------- the runs


@dataclass
class Step:
    configuration: str
    step: str
    measurement: Measurement
    new_items: int
    summary: dict
    hits: dict[str, int]
    rule_hits: int
    expected_rule_hits: int


def write_config(folder: Path, server: ServerProcess, feeds: int, fulltext: bool) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lines = [
        "database: sqlite:///state/monitor.db",
        "defaults: {interval: 10m}",
        f"rules: [{{name: bench, any: [{TERM}]}}]",
        "feeds:",
    ]
    for index in range(feeds):
        lines.append(f"  - name: feed-{index}")
        lines.append(f"    url: {server.url(f'/feed/{index}')}")
        if fulltext:
            lines.append("    fulltext: true")
    path = folder / "monitor.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def rule_hits(folder: Path) -> int:
    import sqlite3

    with sqlite3.connect(folder / "state" / "monitor.db") as connection:
        return int(connection.execute("SELECT COUNT(*) FROM rule_hit").fetchone()[0])


def run_configuration(
    configuration: str, feeds: int, items: int, workspace: Path, env: dict[str, str]
) -> list[Step]:
    steps = []
    folder = workspace / configuration
    with ServerProcess(feeds, items) as server:
        config = write_config(folder, server, feeds, fulltext=configuration != "off")
        workers = "0" if configuration == "on-threads" else "auto"
        new_numbers: list[int] = []
        for step in STEPS:
            if step == "changed":
                new_items = server.publish(0.1, 3)
            elif step == "burst":
                new_items = server.publish(1.0, items)
            else:
                new_items = 0
            # The numbers of this step's new items: the server numbers them in order.
            first = feeds * items + len(new_numbers)
            new_numbers += range(first, first + new_items)
            expected = sum(n % TOPIC_EVERY == 0 for n in range(first, first + new_items))
            server.hits()  # reset
            measurement = Measurement(scenario=step, who=configuration)
            output = folder / f".{step}.json"
            output.unlink(missing_ok=True)
            run_process(
                measurement,
                [
                    PYTHON,
                    __file__,
                    "--cycle",
                    str(config),
                    "--workers",
                    workers,
                    "--summary",
                    str(output),
                ],
                cwd=folder,
                env=env,
            )
            summary = json.loads(output.read_text() or "{}") if measurement.error is None else {}
            hits = server.hits()
            before = steps[-1].rule_hits if steps else 0
            total = rule_hits(folder)
            result = Step(
                configuration, step, measurement, new_items, summary, hits, total, expected
            )
            check(result, before)
            steps.append(result)
            log(
                f"  {configuration:10} {step:8} wall {measurement.wall:6.2f} s  cpu "
                f"{measurement.cpu:6.2f} s  rss {measurement.rss_mb:5.0f} MB  pages "
                f"{hits['page']:5}  failed {summary.get('pages_failed', '-')}  "
                f"{'; '.join(measurement.checks) or 'ok'}\n"
            )
    return steps


def check(result: Step, rule_hits_before: int) -> None:
    m = result.measurement
    if m.error:
        return
    pages, failed = result.hits["page"], result.summary.get("pages_failed", 0)
    new_hits = result.rule_hits - rule_hits_before
    if result.configuration == "off" or result.step == "cold":
        m.expect(pages == 0, f"{pages} pages fetched, none expected")
        m.expect(new_hits == 0, f"{new_hits} rule hits, none expected")
        return
    m.expect(pages == result.new_items, f"{pages} pages fetched for {result.new_items} new items")
    # A page that failed (the feed's timeout, under load) keeps its item without the term.
    m.expect(
        result.expected_rule_hits - failed <= new_hits <= result.expected_rule_hits,
        f"{new_hits} rule hits, {result.expected_rule_hits} expected",
    )


def table(steps: list[Step]) -> list[str]:
    rows = [
        "| step | configuration | new items | pages fetched | pages failed | wall s | CPU s "
        "| parser CPU s | peak RSS MB | checks |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for step in STEPS:
        for result in (s for s in steps if s.step == step):
            m = result.measurement
            rows.append(
                f"| {step} | {result.configuration} | {result.new_items:,} | "
                f"{result.hits['page']:,} | {result.summary.get('pages_failed', '-')} | "
                f"{m.wall:.2f} | {m.cpu:.2f} | {m.children_cpu:.2f} | {m.rss_mb:.0f} | "
                f"{m.error or '; '.join(m.checks) or 'ok'} |"
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, help="feeds (100; quick 20)")
    parser.add_argument("--items", type=int, help="items per feed (30; quick 10)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", default="quality,cycles", help="quality, cycles")
    parser.add_argument("--markdown", type=Path, help="also write the tables here")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--cycle", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--workers", default="auto", help=argparse.SUPPRESS)
    parser.add_argument("--summary", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--extraction", type=int, help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)
    feeds = arguments.feeds or (20 if arguments.quick else 100)
    items = arguments.items or (10 if arguments.quick else 30)
    if arguments.serve:
        serve(feeds, items)
        return 0
    if arguments.cycle:
        cycle(arguments.cycle, arguments.workers, arguments.summary)
        return 0
    if arguments.extraction is not None:
        extraction_figures(arguments.extraction)
        return 0

    env = dict(os.environ)
    env.pop("NEWS_MONITOR_CONFIG", None)
    only = set(arguments.only.split(","))
    lines = [
        f"full text: {feeds} feeds x {items} items, {os.cpu_count()} cores, "
        f"load {os.getloadavg()[0]:.2f} at start, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
    ]
    if "quality" in only:
        log(f"extraction: quality on the corpus, time on {feeds * items:,} pages ...\n")
        figures = json.loads(
            subprocess.check_output([PYTHON, __file__, "--extraction", str(feeds * items)], env=env)
        )
        cost = import_cost()
        lines += [
            "| extraction | figure |",
            "|---|---|",
            f"| main-text recall ({figures['pages']} pages) | {figures['recall']:.3f} |",
            *(
                f"| recall, {layout} layout | {value:.3f} |"
                for layout, value in figures["recall_by_layout"].items()
            ),
            f"| boilerplate strings left out | {figures['left_out']:.3f} |",
            *(
                f"| left out: {kind} | {value:.3f} |"
                for kind, value in figures["left_out_by_kind"].items()
            ),
            f"| pages timed: {figures['timed_pages']:,} of {figures['page_kb']:.0f} KB, "
            f"{figures['elements']:.0f} elements on average | |",
            f"| CPU ms per page, median | {figures['median_cpu_ms']:.1f} |",
            f"| CPU ms per page, p95 | {figures['p95_cpu_ms']:.1f} |",
            f"| wall ms per page, median / p95 / max | {figures['median_ms']:.1f} / "
            f"{figures['p95_ms']:.1f} / {figures['max_ms']:.1f} |",
            f"| import trafilatura: s, MB RSS | {cost['seconds']:.2f}, {cost['mb']:.0f} |",
            "",
        ]
    if "cycles" in only:
        workspace = Path(tempfile.mkdtemp(prefix="news-monitor-fulltext-"))
        steps: list[Step] = []
        try:
            for configuration in CONFIGURATIONS:
                log(f"cycles: {configuration}\n")
                steps += run_configuration(configuration, feeds, items, workspace, env)
        finally:
            shutil.rmtree(workspace, ignore_errors=True)
        lines += table(steps)
    text = "\n".join(lines)
    print(text)
    if arguments.markdown:
        arguments.markdown.write_text(text + "\n", encoding="utf-8")
    failed = [s for s in steps if not s.measurement.ok] if "cycles" in only else []
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
