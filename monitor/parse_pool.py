"""Feed parsing on every core: worker processes running parse_feed, fed over pipes.

Parsing (feedparser, then HTML to text) is most of a poll's CPU time and holds the GIL, so
poll threads alone use one core however many there are. A ParsePool hands a body to an idle
worker process and parses in the calling thread when every worker is busy, so the caller's
core keeps parsing too and no body waits in a queue.

Workers are plain `python -m monitor.parse_pool` children speaking length-prefixed pickles
on stdin/stdout, not multiprocessing: multiprocessing re-imports the parent's main script in
each worker (for the `news-monitor` console script, the whole command line and its
dependencies), where this worker imports feedparser and nothing else. A worker exits when
its stdin closes, so it never outlives the daemon, even one killed with SIGKILL.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import signal
import struct
import subprocess
import sys
import threading
from dataclasses import dataclass
from typing import BinaryIO

from monitor.errors import ParseError
from monitor.parse import ParsedFeed, parse_feed

logger = logging.getLogger(__name__)

# More workers than this gains nothing for a feed reader: fetch and store take the rest.
MAXIMUM_WORKERS = 4
# How a worker is started: this module as a script, under the same interpreter.
WORKER_COMMAND = (sys.executable, "-m", "monitor.parse_pool")
_LENGTH = struct.Struct("!Q")


@dataclass(frozen=True)
class ParseRequest:
    """parse_feed's arguments, as sent to a worker."""

    body: bytes
    content_type: str = ""
    content_location: str = ""
    feed_url: str = ""

    def parse(self) -> ParsedFeed:
        return parse_feed(
            self.body,
            content_type=self.content_type,
            content_location=self.content_location,
            feed_url=self.feed_url,
        )


def default_worker_count() -> int:
    """One worker per usable core beyond the caller's own (the caller parses too)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(0, min(MAXIMUM_WORKERS, cores - 1))


class ParsePool:
    """Parses feed bodies in up to `workers` worker processes plus the calling thread.

    Safe to use from many threads. Workers start on first use; one that dies (killed, out
    of memory) fails the feed it was parsing with a ParseError and is started again for the
    next one.
    """

    def __init__(self, workers: int) -> None:
        self._lock = threading.Lock()
        self._idle = [_Worker(number) for number in range(workers)]
        self._all = list(self._idle)
        self._closed = False

    @property
    def workers(self) -> int:
        return len(self._all)

    def worker_pids(self) -> list[int]:
        """The process ids of the workers running now (for status and tests)."""
        return [worker.pid for worker in self._all if worker.pid is not None]

    def parse(self, request: ParseRequest) -> ParsedFeed:
        """Given a body and its headers, return parse_feed's result. Raise ParseError as
        parse_feed does, or if the worker parsing it ended."""
        worker = self._take()
        if worker is None:
            return request.parse()
        try:
            return worker.parse(request)
        finally:
            self._give_back(worker)

    def close(self) -> None:
        """Stop every worker; later parses run in the calling thread. A worker parsing now
        finishes that parse first (it stops when given back)."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.stop()

    def _take(self) -> _Worker | None:
        with self._lock:
            return self._idle.pop() if self._idle and not self._closed else None

    def _give_back(self, worker: _Worker) -> None:
        with self._lock:
            if self._closed:
                worker.stop()
            else:
                self._idle.append(worker)


class _Worker:
    """One worker process; used by one thread at a time (the pool sees to that)."""

    def __init__(self, number: int) -> None:
        self.number = number
        self._process: subprocess.Popen[bytes] | None = None

    def parse(self, request: ParseRequest) -> ParsedFeed:
        process = self._running()
        try:
            _write_frame(process.stdin, pickle.dumps(request, pickle.HIGHEST_PROTOCOL))
            outcome, value = pickle.loads(_read_frame(process.stdout))
        except (OSError, EOFError, pickle.UnpicklingError) as error:
            status = self._reap()
            raise ParseError(f"the parser process ended while parsing ({status})") from error
        if outcome == "ok":
            return value
        if outcome == "parse-error":
            raise ParseError(value)
        # A bug in parse_feed, reported by the worker: fail this feed, as in-process would.
        raise RuntimeError(f"parser process: {value}")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        try:
            process.stdin.close()  # the worker's signal to exit
            process.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            process.kill()
            process.wait()
        finally:
            process.stdout.close()

    def _running(self) -> subprocess.Popen[bytes]:
        if self._process is not None and self._process.poll() is None:
            return self._process
        if self._process is not None:
            self._reap()
        self._process = subprocess.Popen(
            WORKER_COMMAND,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            close_fds=True,
        )
        logger.debug("parse worker=%d started pid=%d", self.number, self._process.pid)
        return self._process

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def _reap(self) -> str:
        process, self._process = self._process, None
        if process is None:
            return "not running"
        process.kill()
        code = process.wait()
        for stream in (process.stdin, process.stdout):
            with contextlib.suppress(OSError):
                stream.close()
        logger.warning("parse worker=%d ended exit=%s", self.number, code)
        return f"exit {code}"


def _write_frame(stream: BinaryIO, payload: bytes) -> None:
    stream.write(_LENGTH.pack(len(payload)))
    stream.write(payload)
    stream.flush()


def _read_frame(stream: BinaryIO) -> bytes:
    header = _read_exactly(stream, _LENGTH.size)
    return _read_exactly(stream, _LENGTH.unpack(header)[0])


def _read_exactly(stream: BinaryIO, size: int) -> bytes:
    data = stream.read(size)
    if data is None or len(data) != size:
        raise EOFError("stream ended")
    return data


def serve(requests: BinaryIO, answers: BinaryIO) -> None:
    """The worker's loop: parse each request until the requests stream ends."""
    while True:
        try:
            request: ParseRequest = pickle.loads(_read_frame(requests))
        except EOFError:
            return
        try:
            answer: tuple[str, object] = ("ok", request.parse())
        except ParseError as error:
            answer = ("parse-error", str(error))
        # A bug in parse_feed must not end the worker: the caller logs it with the feed.
        except Exception as error:  # noqa: BLE001
            answer = ("crash", f"{type(error).__name__}: {error}"[:500])
        _write_frame(answers, pickle.dumps(answer, pickle.HIGHEST_PROTOCOL))


def main() -> None:
    # The daemon decides when workers stop (by closing their stdin): a Ctrl-C or a SIGTERM
    # sent to the whole process group must not kill one mid-parse while the daemon drains.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    # Anything a library prints goes to stderr, never into the answer stream.
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    serve(sys.stdin.buffer, answers)


if __name__ == "__main__":
    main()
