"""The parser worker process: `python -m monitor.ingest.parse_worker`, started by ParsePool.

It reads ParseRequests (feeds) and PageRequests (article pages) from stdin and writes answers
to stdout, both as length-prefixed pickles (see parse_pool.py, which speaks the other end),
until stdin closes. A module of its own, not parse_pool's `__main__`: the package's __init__
imports parse_pool, and running a module the package already imported would load it twice.
"""

from __future__ import annotations

import os
import pickle
import signal
import sys
from typing import BinaryIO

from monitor.ingest.extract import PageRequest
from monitor.ingest.parse_pool import ParseRequest, read_frame, write_frame
from monitor.model import ParseError


def serve(requests: BinaryIO, answers: BinaryIO) -> None:
    """The worker's loop: parse each request until the requests stream ends."""
    while True:
        try:
            request: ParseRequest | PageRequest = pickle.loads(read_frame(requests))
        except EOFError:
            return
        try:
            answer: tuple[str, object] = ("ok", request.parse())
        except ParseError as error:
            answer = ("parse-error", str(error))
        # A bug in parse_feed must not end the worker: the caller logs it with the feed.
        except Exception as error:  # noqa: BLE001
            answer = ("crash", f"{type(error).__name__}: {error}"[:500])
        write_frame(answers, pickle.dumps(answer, pickle.HIGHEST_PROTOCOL))


def main() -> None:
    # The daemon decides when workers stop (by closing their stdin): a Ctrl-C or a SIGTERM
    # sent to the whole process group must not kill one mid-parse while the daemon drains.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    # Anything a library prints goes to stderr, never into the answer stream.
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    # Every worker parses, so feedparser is imported now (monitor.ingest.parse imports it on
    # first use) rather than while the first body waits. trafilatura is not: only
    # configurations with full text use it (monitor.ingest.extract imports it on first use).
    import feedparser  # noqa: F401

    serve(sys.stdin.buffer, answers)


if __name__ == "__main__":
    main()
