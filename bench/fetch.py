"""CPU cost of one unchanged poll: a conditional GET answered 304, through the Fetcher.

    .venv/bin/python bench/fetch.py                   # 2,000 fetches, 5 rounds
    .venv/bin/python bench/fetch.py --fetches 5000 --rounds 9

In the daemon's steady state almost every poll is this path (the feed did not change), so
its client-side cost is what a fetch change must not make worse. The server is a separate
process, so the CPU time measured here (process time: every thread of this process, the
deadline watchdog included) is the client's alone. One connection is kept alive, as the
daemon's pool does. Rounds are reported separately and summarised by their median and
minimum: the minimum is the least disturbed by other work on the machine.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from typing import Protocol

from monitor.ingest import Fetcher

ETAG = '"bench-v1"'

# A minimal keep-alive HTTP/1.1 server answering every GET with 304 and the same ETag.
_SERVER = r"""
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        self.send_response(304)
        self.send_header("ETag", sys.argv[1])
        self.send_header("Cache-Control", "max-age=60")
        self.end_headers()

    def log_message(self, *args):
        pass

server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
print(server.server_address[1], flush=True)
server.serve_forever()
"""


class _Fetches(Protocol):
    def fetch(self, url: str, *, etag: str | None = None) -> object: ...


def measure(fetcher: _Fetches, url: str, fetches: int) -> tuple[float, float]:
    """Given a fetcher and a URL answering 304, return (CPU, wall) microseconds per fetch."""
    cpu_started, wall_started = time.process_time(), time.perf_counter()
    for _ in range(fetches):
        fetcher.fetch(url, etag=ETAG)
    cpu = time.process_time() - cpu_started
    wall = time.perf_counter() - wall_started
    return cpu / fetches * 1e6, wall / fetches * 1e6


def start_server() -> tuple[subprocess.Popen[str], str]:
    """Start the 304 server; return the process and the feed URL it answers."""
    server = subprocess.Popen(
        [sys.executable, "-c", _SERVER, ETAG], stdout=subprocess.PIPE, text=True
    )
    assert server.stdout is not None
    port = int(server.stdout.readline())
    return server, f"http://127.0.0.1:{port}/feed.xml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fetches", type=int, default=2000, help="fetches per round")
    parser.add_argument("--rounds", type=int, default=5)
    arguments = parser.parse_args()

    server, url = start_server()
    fetcher = Fetcher()
    try:
        result = fetcher.fetch(url, etag=ETAG)
        assert result.not_modified, result
        measure(fetcher, url, 200)  # warm-up: connection, caches
        cpu_rounds = []
        for number in range(1, arguments.rounds + 1):
            cpu, wall = measure(fetcher, url, arguments.fetches)
            cpu_rounds.append(cpu)
            print(f"round {number}: {cpu:7.1f} µs CPU, {wall:7.1f} µs wall per 304 fetch")
        print(
            f"{arguments.fetches} fetches x {arguments.rounds} rounds: CPU per fetch "
            f"median {statistics.median(cpu_rounds):.1f} µs, min {min(cpu_rounds):.1f} µs"
        )
    finally:
        fetcher.close()
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
