"""Feed parsing on every core: worker processes running parse_feed (and, for full text,
extract_main_text), fed over pipes.

Parsing (feedparser, then HTML to text) is most of a poll's CPU time and holds the GIL, so
poll threads alone use one core however many there are. A ParsePool hands a body to a
worker process, and parses in the calling thread when every worker has its hands full, so
the caller's core keeps parsing too and no body waits long in a queue.

Workers are plain `python -m monitor.ingest.parse_worker` children speaking length-prefixed pickles
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
import struct
import subprocess
import sys
import threading
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass
from typing import IO, cast

from monitor.ingest.extract import PageRequest
from monitor.ingest.parse import ParsedFeed, parse_feed
from monitor.model import ParseError

logger = logging.getLogger(__name__)

# More workers than this gains nothing for a feed reader: fetch and store take the rest.
MAXIMUM_WORKERS = 4
# How a worker is started: this module as a script, under the same interpreter.
WORKER_COMMAND = (sys.executable, "-m", "monitor.ingest.parse_worker")
_LENGTH = struct.Struct("!Q")
# A worker finishes what it holds before it exits; one that takes longer is killed.
STOP_TIMEOUT_SECONDS = 10.0


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
    except (AttributeError, OSError):  # not on Linux, or a sandbox that forbids the call
        cores = os.cpu_count() or 1
    return max(0, min(MAXIMUM_WORKERS, cores - 1))


class ParsePool:
    """Parses feed bodies in up to `workers` worker processes plus the calling thread.

    Safe to use from many threads. A body goes to the worker with the fewest bodies in
    hand, if it has fewer than PIPELINE_DEPTH; otherwise the calling thread parses it.
    Workers start on the first body of SMALL_BODY_BYTES or more; one that dies (killed, out
    of memory) fails the feeds it held with a ParseError and is started again for the next
    one.
    """

    # Bodies a worker holds at once, those still being sent included: the one it parses
    # and the next ones, so it never idles while a poll thread waits for the GIL to send it
    # more. On two cores, a cold cycle of 1,000 feeds took 24.9 s with two, 23.9 s with
    # three and 26.4 s with four (medians of 5, interleaved): with four, bodies wait for the
    # worker while the caller's core could parse them.
    PIPELINE_DEPTH = 3
    # A smaller body is parsed in the calling thread while no worker runs: a changed feed's
    # body holds only its new items (see known_items), an item or two of a few KB each,
    # and a cycle of such changes is not worth starting a parser process (about 25 MB, and
    # the import of feedparser again) for a few milliseconds of parsing each.
    SMALL_BODY_BYTES = 32 * 1024

    def __init__(self, workers: int) -> None:
        self._workers = [_Worker(number) for number in range(workers)]
        self._closed = False

    @property
    def workers(self) -> int:
        return len(self._workers)

    def worker_pids(self) -> list[int]:
        """The process ids of the workers running now (for status and tests)."""
        return [worker.pid for worker in self._workers if worker.pid is not None]

    def bodies_in_workers(self) -> int:
        """Bodies handed to workers and not answered yet, those still being sent included."""
        return sum(worker.in_flight for worker in self._workers)

    def parse(self, request: ParseRequest) -> ParsedFeed:
        """Given a body and its headers, return parse_feed's result. Raise ParseError as
        parse_feed does, or if the worker parsing it ended."""
        return cast(ParsedFeed, self._run(request))

    def extract(self, request: PageRequest) -> str:
        """Given an article page and its headers, return extract_main_text's result. Raise
        ParseError as it does, or if the worker extracting it ended.

        Article pages share the workers with feed bodies: both are CPU work that holds the
        GIL, and a page (usually over SMALL_BODY_BYTES) is worth a worker as a feed is."""
        return cast(str, self._run(request))

    def _run(self, request: ParseRequest | PageRequest) -> object:
        """Run `request.parse()` in a worker, or in the calling thread (see the class)."""
        worker = self._reserve_worker(len(request.body))
        if worker is None:
            return request.parse()
        try:
            answer = worker.submit(request)
            outcome_value = answer.result() if answer is not None else None
        finally:
            worker.release()
        if outcome_value is None:  # the worker was stopped meanwhile
            return request.parse()
        outcome, value = outcome_value
        if outcome == "ok":
            return value
        if outcome == "parse-error":
            raise ParseError(value)
        # A bug in parse_feed, reported by the worker: fail this feed, as in-process would.
        raise RuntimeError(f"parser process: {value}")

    def _reserve_worker(self, body_bytes: int) -> _Worker | None:
        """Return a worker that took this body's place in its pipeline, or None if the
        calling thread should parse it: every worker is full, or none runs and the body is
        small."""
        if self._closed:
            return None
        for worker in sorted(self._workers, key=_load):
            if worker.pid is None and body_bytes < self.SMALL_BODY_BYTES:
                continue
            if worker.reserve(self.PIPELINE_DEPTH):
                return worker
        return None

    def close(self) -> None:
        """Stop every worker once it has answered what it holds; later parses run in the
        calling thread."""
        self._closed = True
        for worker in self._workers:
            worker.stop()


def _load(worker: _Worker) -> int:
    return worker.in_flight


class _Worker:
    """One worker process, its answers read by a thread of its own in request order."""

    def __init__(self, number: int) -> None:
        self.number = number
        self._lock = threading.Lock()  # the process and its pending answers
        self._write_lock = threading.Lock()  # the process's stdin
        self._process: subprocess.Popen[bytes] | None = None
        self._pending: deque[Future[tuple[str, object]]] = deque()
        self._reserved = 0  # see reserve()
        self._stopped = False

    @property
    def pid(self) -> int | None:
        process = self._process
        return process.pid if process is not None else None

    @property
    def in_flight(self) -> int:
        """Bodies this worker has taken: answered or not, sent or still waiting to be."""
        return self._reserved

    def reserve(self, depth: int) -> bool:
        """Take one more body unless `depth` are taken already (or the worker is stopped).

        The count must include bodies not yet written: a body larger than the pipe's
        buffer blocks its sender until the worker reads it, and the next senders queue
        behind it for the write lock. Counting only bodies written would see room in a
        worker that already has a queue, and send bodies to wait there instead of parsing
        them in the calling thread: the worker would do all the parsing while the caller's
        core idles.
        """
        with self._lock:
            if self._stopped or self._reserved >= depth:
                return False
            self._reserved += 1
            return True

    def release(self) -> None:
        """Give back a place taken by reserve(), once its answer is in (or will never be)."""
        with self._lock:
            self._reserved -= 1

    def submit(self, request: ParseRequest | PageRequest) -> Future[tuple[str, object]] | None:
        """Send a request reserve() made room for; the future gets the worker's (outcome,
        value), or a ParseError if the worker ends first. None if the worker was stopped."""
        payload = pickle.dumps(request, pickle.HIGHEST_PROTOCOL)
        answer: Future[tuple[str, object]] = Future()
        # Requests are written in the order their answers are queued, one writer at a time.
        # The write can block until the worker reads, and the worker reads only once its
        # last answer is taken: the reader thread needs self._lock for that, so the write
        # must not hold it.
        with self._write_lock:
            with self._lock:
                if self._stopped:
                    return None
                process, pending = self._running()
                pending.append(answer)
            # A failed write means the worker is gone: its reader fails every pending
            # answer, this one included, when it sees the end of the worker's stdout.
            with contextlib.suppress(OSError):
                write_frame(process.stdin, payload)  # type: ignore[arg-type]
        return answer

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            process, self._process = self._process, None
        if process is None:
            return
        with self._write_lock, contextlib.suppress(OSError):
            process.stdin.close()  # type: ignore[union-attr]  # the worker's signal to exit
        try:
            process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def _running(self) -> tuple[subprocess.Popen[bytes], deque[Future[tuple[str, object]]]]:
        # Called with the lock held.
        if self._process is not None and self._process.poll() is None:
            return self._process, self._pending
        # A process that died leaves its pending answers to its reader thread.
        self._process = process = subprocess.Popen(
            WORKER_COMMAND, stdin=subprocess.PIPE, stdout=subprocess.PIPE, close_fds=True
        )
        pending: deque[Future[tuple[str, object]]] = deque()
        self._pending = pending
        threading.Thread(
            target=self._read_answers,
            args=(process, pending),
            name=f"parse-worker-{self.number}",
            daemon=True,
        ).start()
        logger.debug("parse worker=%d started pid=%d", self.number, process.pid)
        return process, pending

    def _read_answers(
        self, process: subprocess.Popen[bytes], pending: deque[Future[tuple[str, object]]]
    ) -> None:
        stdout = process.stdout
        assert stdout is not None
        try:
            while True:
                answer = pickle.loads(read_frame(stdout))
                with self._lock:
                    waiting = pending.popleft()
                waiting.set_result(answer)
        except (OSError, EOFError, pickle.UnpicklingError, IndexError):
            pass
        with self._lock:
            if self._process is process:
                self._process = None
            lost = list(pending)
            pending.clear()
        if process.poll() is None:
            process.kill()
        code = process.wait()
        stdout.close()
        with contextlib.suppress(OSError):
            process.stdin.close()  # type: ignore[union-attr]
        if lost:
            logger.warning("parse worker=%d ended exit=%s lost=%d", self.number, code, len(lost))
        for waiting in lost:
            waiting.set_exception(
                ParseError(f"the parser process ended while parsing (exit {code})")
            )


def write_frame(stream: IO[bytes], payload: bytes) -> None:
    stream.write(_LENGTH.pack(len(payload)))
    stream.write(payload)
    stream.flush()


def read_frame(stream: IO[bytes]) -> bytes:
    header = _read_exactly(stream, _LENGTH.size)
    return _read_exactly(stream, _LENGTH.unpack(header)[0])


def _read_exactly(stream: IO[bytes], size: int) -> bytes:
    data = stream.read(size)
    if data is None or len(data) != size:
        raise EOFError("stream ended")
    return data
