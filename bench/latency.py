"""Benchmark: how long a webhook alert waits when an e-mail channel is slow.

(The daemon's latency from an item's publication to its alert, at 10 s polls, is scenario 7
of bench/run.py: bench/alert_latency.py.)

    .venv/bin/python bench/latency.py                      # run --once and the daemon
    .venv/bin/python bench/latency.py --product DIR        # a given commit's monitor/
    .venv/bin/python bench/latency.py --alerts 12 --repeat 3 --mode once

One rule notifies two channels, e-mail first (a local aiosmtpd server) and a json://
webhook (a local HTTP server), and `--alerts` new articles match it at once. Apprise
waits 5.5 s between two e-mails to one server (the plugin's `request_rate_per_sec`), so
the e-mails take about 5.5 s each; nothing here slows them further. Measured per alert:
from the moment its delivery is due (the delivery's `created_at`: a new alert is due when
its article is stored) to its arrival at the receiver, read from the database after the
run and from the receivers' clocks (one host, one clock). p50 and p95 are nearest-rank.

Modes: `once` runs `news-monitor run --once` on a feed that already holds the articles
(notify_existing); `daemon` starts `news-monitor run`, waits for its baseline poll (1 s
interval), publishes the articles, and stops it with SIGTERM once every alert arrived.

To measure a commit while others edit the working tree:
`git archive COMMIT monitor | tar -x -C DIR`, then `--product DIR`.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import json
import math
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

PYTHON = sys.executable
RULE = "korea-japan"
DEADLINE_SECONDS = 300.0


class Arrivals:
    """Alert titles with the wall-clock time each arrived, from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self.times: dict[str, float] = {}

    def add(self, title: str) -> None:
        with self._lock:
            self.times.setdefault(title, time.time())
            self._lock.notify_all()

    def wait_for(self, count: int, timeout_seconds: float) -> bool:
        with self._lock:
            return self._lock.wait_for(lambda: len(self.times) >= count, timeout_seconds)


def start_webhook(arrivals: Arrivals) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            arrivals.add(json.loads(body)["title"])
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def start_smtp(arrivals: Arrivals) -> Any:
    from aiosmtpd.controller import Controller

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            content = envelope.original_content or envelope.content
            message = email.message_from_bytes(content, policy=email.policy.default)
            arrivals.add(str(message["Subject"]))
            return "250 OK"

    # aiosmtpd needs the port up front (it connects to it to check that it started).
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    return controller


class Feed:
    """A local RSS feed whose items the benchmark sets."""

    def __init__(self) -> None:
        self.body = rss([])
        feed = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = feed.body
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/cn"


def titles(count: int, run: str) -> list[str]:
    return [f"韩日对话 {run} 第{n}轮" for n in range(1, count + 1)]


def rss(items: list[str]) -> bytes:
    published = format_datetime(datetime.now(UTC), usegmt=True)
    entries = "".join(
        f"<item><title>{escape(title)}</title><link>https://e.org/{index}</link>"
        f'<guid isPermaLink="false">{escape(title)}</guid><pubDate>{published}</pubDate>'
        f"<description>韩日两国外长会谈。</description></item>"
        for index, title in enumerate(items)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
        f"<title>cn</title><link>https://e.org/</link><description>d</description>{entries}"
        "</channel></rss>"
    ).encode()


def write_config(folder: Path, feed: Feed, smtp_port: int, hook_port: int, once: bool) -> Path:
    config = {
        "database": "sqlite:///state/monitor.db",
        "timezone": "Asia/Shanghai",
        "defaults": {"interval": "1s", "jitter": "0s", "timeout": "5s"},
        "feeds": [{"name": "cn", "url": feed.url, "notify_existing": once}],
        "channels": {
            "mail": f"mailto://127.0.0.1:{smtp_port}?mode=insecure"
            "&from=monitor@example.org&to=desk@example.org",
            "hook": f"json://127.0.0.1:{hook_port}/alerts",
        },
        "rules": [{"name": RULE, "any": ["韩日"], "notify": ["mail", "hook"]}],
    }
    path = folder / "monitor.yaml"
    path.write_text(json.dumps(config, ensure_ascii=False), encoding="utf-8")  # JSON is YAML
    return path


def due_times(folder: Path) -> dict[tuple[str, str], float]:
    """(channel, alert title) -> when its delivery became due (Unix time)."""
    with sqlite3.connect(folder / "state" / "monitor.db") as connection:
        rows = connection.execute(
            "SELECT d.channel, d.rule_name, a.title, d.created_at FROM delivery d "
            "JOIN delivery_item i ON i.delivery_id = d.id "
            "JOIN rule_hit h ON h.id = i.hit_id JOIN article a ON a.id = h.article_id"
        ).fetchall()
    due = {}
    for channel, rule, title, created_at in rows:
        moment = datetime.fromisoformat(created_at)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)  # stored as UTC
        due[(channel, f"[{rule}] {title}")] = moment.timestamp()
    return due


def nearest_rank(values: list[float], percent: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(percent / 100 * len(ordered)) - 1)]


def measure(mode: str, product: Path | None, alerts: int, run: str) -> dict[str, Any]:
    hook_arrivals, mail_arrivals = Arrivals(), Arrivals()
    hook = start_webhook(hook_arrivals)
    smtp = start_smtp(mail_arrivals)
    feed = Feed()
    folder = Path(tempfile.mkdtemp(prefix=f"latency-{mode}-"))
    env = dict(os.environ)
    env.pop("NEWS_MONITOR_CONFIG", None)
    if product is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(product), *filter(None, [env.get("PYTHONPATH")])])
    items = titles(alerts, run)
    expected = {f"[{RULE}] {title}" for title in items}
    try:
        config = write_config(folder, feed, smtp.port, hook.server_address[1], mode == "once")
        command = [PYTHON, "-m", "monitor", "run", "--config", str(config)]
        started = time.monotonic()
        with open(folder / "stderr.log", "wb") as log:
            if mode == "once":
                feed.body = rss(items)
                subprocess.run([*command, "--once"], cwd=folder, env=env, stderr=log, check=True)
            else:
                daemon = subprocess.Popen(command, cwd=folder, env=env, stderr=log)
                try:
                    wait_for_baseline(folder)
                    feed.body = rss(items)
                    hook_arrivals.wait_for(alerts, DEADLINE_SECONDS)
                    mail_arrivals.wait_for(alerts, DEADLINE_SECONDS)
                    daemon.send_signal(signal.SIGTERM)
                    daemon.wait(timeout=DEADLINE_SECONDS)
                finally:
                    if daemon.poll() is None:
                        daemon.kill()
        wall = time.monotonic() - started
        due = due_times(folder)
        result: dict[str, Any] = {"mode": mode, "alerts": alerts, "wall": wall}
        for channel, arrivals in (("hook", hook_arrivals), ("mail", mail_arrivals)):
            got = {title: at for title, at in arrivals.times.items() if title in expected}
            if len(got) != alerts:
                raise RuntimeError(f"{channel}: {len(got)} of {alerts} alerts arrived")
            waits = [at - due[(channel, title)] for title, at in got.items()]
            result[channel] = waits
        return result
    finally:
        hook.shutdown()
        feed.server.shutdown()
        smtp.stop()
        shutil.rmtree(folder, ignore_errors=True)


def wait_for_baseline(folder: Path) -> None:
    """Until the daemon has polled once (its baseline: the feed is empty then)."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    database = folder / "state" / "monitor.db"
    while time.monotonic() < deadline:
        if database.exists():
            try:
                with sqlite3.connect(database) as connection:
                    row = connection.execute(
                        "SELECT baseline_done FROM feed_state WHERE name = 'cn'"
                    ).fetchone()
                if row and row[0]:
                    return
            except sqlite3.Error:
                pass  # the daemon is still creating its tables
        time.sleep(0.05)
    raise RuntimeError("the daemon made no baseline poll")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--product", type=Path, help="a source tree to put first on PYTHONPATH")
    parser.add_argument("--alerts", type=int, default=8)
    parser.add_argument("--mode", choices=("once", "daemon", "both"), default="both")
    parser.add_argument("--repeat", type=int, default=1)
    arguments = parser.parse_args()
    modes = ("once", "daemon") if arguments.mode == "both" else (arguments.mode,)
    print(
        "| mode | alerts | webhook p50 s | webhook p95 s | webhook max s | "
        "e-mail p50 s | e-mail p95 s | wall s |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for repeat in range(arguments.repeat):
        for mode in modes:
            result = measure(mode, arguments.product, arguments.alerts, f"{mode}{repeat}")
            hook, mail = result["hook"], result["mail"]
            print(
                f"| {mode} | {result['alerts']} | {nearest_rank(hook, 50):.2f} | "
                f"{nearest_rank(hook, 95):.2f} | {max(hook):.2f} | "
                f"{nearest_rank(mail, 50):.2f} | {nearest_rank(mail, 95):.2f} | "
                f"{result['wall']:.1f} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
