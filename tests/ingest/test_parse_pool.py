"""Parsing in worker processes: the same articles as in-process, errors kept per feed,
workers that come back after dying and never outlive the pool."""

from __future__ import annotations

import os
import signal
import sys
import threading
from dataclasses import replace

import pytest
from feeds import DATA, Item, fixture, rss
from processes import DEADLINE_SECONDS, wait_until

from monitor.ingest import PageRequest, extract_main_text, parse_pool
from monitor.ingest.parse import parse_feed
from monitor.ingest.parse_pool import ParsePool, ParseRequest
from monitor.model import ParseError

FEED_URL = "https://www.rfi.fr/cn/rss"


def _request(body: bytes) -> ParseRequest:
    return ParseRequest(body, content_type="application/rss+xml", feed_url=FEED_URL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie has exited; only its parent's wait is missing.
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0] != "Z"


@pytest.fixture
def pool():
    created = ParsePool(1)
    created.SMALL_BODY_BYTES = 0  # every body goes to the worker, the fixtures' small ones too
    yield created
    created.close()


def test_a_worker_returns_what_parse_feed_returns_in_process(pool) -> None:
    body = fixture("rfi-cn-rss.xml")
    parsed = pool.parse(_request(body))
    assert pool.worker_pids(), "the parse did not go to a worker"
    assert parsed == parse_feed(body, content_type="application/rss+xml", feed_url=FEED_URL)
    assert len(parsed.articles) > 0


def test_a_worker_extracts_an_article_page_as_the_calling_thread_would(pool) -> None:
    body = next((DATA / "fulltext").glob("02-*.html")).read_bytes()
    request = PageRequest(body, "text/html; charset=utf-8", "https://example.org/a")

    text = pool.extract(request)

    assert pool.worker_pids(), "the extraction did not go to a worker"
    assert text == extract_main_text(body, content_type="text/html; charset=utf-8")
    assert "强征劳工" in text
    with pytest.raises(ParseError, match="not an HTML page"):
        pool.extract(PageRequest(b"%PDF-1.7", "application/pdf"))
    assert pool.parse(_request(fixture("rfi-tw-rss.xml"))).articles  # and still parses feeds


def test_not_a_feed_is_a_parse_error_from_a_worker_too(pool) -> None:
    with pytest.raises(ParseError, match="not a feed"):
        pool.parse(_request(b"<html><body>502 Bad Gateway</body></html>"))
    # The worker is still the same and still serves.
    pid = pool.worker_pids()[0]
    assert pool.parse(_request(fixture("rfi-tw-rss.xml"))).articles
    assert pool.worker_pids() == [pid]


def test_a_killed_worker_is_started_again_for_the_next_feed(pool) -> None:
    pool.parse(_request(fixture("rfi-cn-rss.xml")))
    [first] = pool.worker_pids()
    os.kill(first, signal.SIGKILL)
    wait_until(lambda: not _alive(first), "the worker to die")
    assert pool.parse(_request(fixture("rfi-cn-rss.xml"))).articles
    [second] = pool.worker_pids()
    assert second != first


def test_a_worker_that_ends_mid_parse_fails_that_feed_only(monkeypatch) -> None:
    # A stand-in worker that exits as soon as a request arrives, as one killed by the
    # kernel's OOM killer while parsing would.
    monkeypatch.setattr(
        parse_pool, "WORKER_COMMAND", (sys.executable, "-c", "import sys; sys.stdin.read(1)")
    )
    pool = ParsePool(1)
    pool.SMALL_BODY_BYTES = 0
    try:
        with pytest.raises(ParseError, match="parser process ended"):
            pool.parse(_request(fixture("rfi-cn-rss.xml")))
        monkeypatch.undo()
        assert pool.parse(_request(fixture("rfi-cn-rss.xml"))).articles
    finally:
        pool.close()


def test_a_worker_ignores_ctrl_c_and_sigterm_sent_to_the_process_group(pool) -> None:
    pool.parse(_request(fixture("rfi-cn-rss.xml")))
    [pid] = pool.worker_pids()
    os.kill(pid, signal.SIGINT)
    os.kill(pid, signal.SIGTERM)
    assert pool.parse(_request(fixture("rfi-cn-rss.xml"))).articles
    assert pool.worker_pids() == [pid]


def test_many_threads_share_one_worker_and_all_get_their_own_feed(pool) -> None:
    # More callers than workers: the rest parse in their own thread, nobody waits or
    # receives another's answer.
    bodies = {
        number: rss([Item(f"标题 {number}", link=f"https://example.org/{number}")])
        for number in range(40)
    }
    results: dict[int, str] = {}

    def parse(number: int) -> None:
        results[number] = pool.parse(_request(bodies[number])).articles[0].title

    threads = [threading.Thread(target=parse, args=(number,)) for number in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {number: f"标题 {number}" for number in bodies}


def test_close_ends_every_worker(pool) -> None:
    pool.parse(_request(fixture("rfi-cn-rss.xml")))
    [pid] = pool.worker_pids()
    pool.close()
    wait_until(lambda: not _alive(pid), "the worker to exit")
    # After close, parsing still works, in the calling thread.
    assert pool.parse(_request(fixture("rfi-cn-rss.xml"))).articles
    assert pool.worker_pids() == []


def test_small_bodies_start_no_worker_but_go_to_one_that_runs(monkeypatch) -> None:
    small = fixture("rfi-cn-rss.xml")
    items = [Item(f"标题 {number}", link=f"https://example.org/{number}") for number in range(9)]
    large = rss([replace(item, description="新闻" * 1000) for item in items])
    assert len(small) < ParsePool.SMALL_BODY_BYTES <= len(large)
    pool = ParsePool(1)
    try:
        assert pool.parse(_request(small)).articles == _request(small).parse().articles
        assert pool.worker_pids() == []

        assert len(pool.parse(_request(large)).articles) == 9
        (pid,) = pool.worker_pids()

        def not_here(request: ParseRequest) -> None:
            raise AssertionError("parsed in the calling thread")

        monkeypatch.setattr(ParseRequest, "parse", not_here)  # this process only
        assert pool.parse(_request(small)).articles
        assert pool.worker_pids() == [pid]
    finally:
        pool.close()


def test_no_workers_parses_in_the_calling_thread() -> None:
    pool = ParsePool(0)
    assert pool.parse(_request(fixture("rfi-cn-rss.xml"))).articles
    assert pool.worker_pids() == []


def test_bodies_and_answers_larger_than_a_pipe_from_many_threads_at_once(pool) -> None:
    # Each request and each answer is several times a pipe's 64 KiB buffer, and more
    # threads than the worker holds send at once: writing a request must never wait on
    # the thread that takes the worker's answers.
    items = [
        Item(f"标题 {number}", link=f"https://example.org/{number}", description="正文" * 2000)
        for number in range(40)
    ]
    body = rss(items)
    assert len(body) > 4 * 65536
    titles: list[list[str]] = []

    def parse() -> None:
        for _ in range(5):
            titles.append([article.title for article in pool.parse(_request(body)).articles])

    threads = [threading.Thread(target=parse) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=DEADLINE_SECONDS)
    assert not any(thread.is_alive() for thread in threads), "parsing hung"
    assert titles == [[item.title for item in items]] * 40


def test_a_caller_parses_in_its_own_thread_while_the_worker_holds_all_it_may(pool) -> None:
    # Bodies larger than a pipe's buffer keep their senders writing until the worker reads
    # them. Those still being sent count against the worker's depth: the next caller must
    # parse in its own thread, not queue behind them while its core idles. The worker is
    # stopped (SIGSTOP), so only the calling thread can answer that caller.
    items = [
        Item(f"标题 {number}", link=f"https://example.org/{number}", description="正文" * 2000)
        for number in range(40)
    ]
    large = rss(items)
    assert len(large) > 65536
    pool.parse(_request(fixture("rfi-cn-rss.xml")))
    [pid] = pool.worker_pids()
    os.kill(pid, signal.SIGSTOP)
    held: list[int] = []
    senders = [
        threading.Thread(target=lambda: held.append(len(pool.parse(_request(large)).articles)))
        for _ in range(ParsePool.PIPELINE_DEPTH)
    ]
    caller_titles: list[str] = []
    caller = threading.Thread(
        target=lambda: caller_titles.extend(
            article.title for article in pool.parse(_request(fixture("rfi-tw-rss.xml"))).articles
        )
    )
    try:
        for sender in senders:
            sender.start()
        wait_until(
            lambda: pool.bodies_in_workers() == ParsePool.PIPELINE_DEPTH,
            "the worker to hold as many bodies as it may",
        )
        caller.start()
        caller.join(timeout=DEADLINE_SECONDS)
        assert not caller.is_alive(), "the caller waited for a stopped worker"
        expected = parse_feed(fixture("rfi-tw-rss.xml"), content_type="application/rss+xml")
        assert caller_titles == [article.title for article in expected.articles]
    finally:
        os.kill(pid, signal.SIGCONT)
    for sender in senders:
        sender.join(timeout=DEADLINE_SECONDS)
    assert held == [len(items)] * ParsePool.PIPELINE_DEPTH
    assert pool.bodies_in_workers() == 0
    assert pool.worker_pids() == [pid]
