"""Feed states in the daemon's memory: an unchanged poll writes nothing until the flush."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from feeds import Item, rss
from sqlalchemy import event

from monitor.service import load_config
from monitor.service.daemon import Monitor
from monitor.service.feed_states import FeedStates
from monitor.store import FeedStateUpdate

T0 = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


@pytest.fixture
def monitor(server, write_config) -> Iterator[Monitor]:
    server.add_feed("/cn", rss([Item("法国新闻", link="https://e.org/1", guid="1")]), etag='"v1"')
    made = Monitor(load_config(write_config(feeds={"cn": server.url("/cn")})))
    yield made
    made.close()


def _writes(monitor: Monitor) -> list[str]:
    """Every INSERT, UPDATE and DELETE the store sends from now on."""
    statements: list[str] = []

    def record(_connection, _cursor, statement: str, *_args) -> None:
        if statement.lstrip().split(None, 1)[0].upper() in ("INSERT", "UPDATE", "DELETE"):
            statements.append(statement)

    event.listen(monitor.store.engine, "before_cursor_execute", record)
    return statements


def test_an_unchanged_poll_writes_nothing_until_the_flush(monitor: Monitor, server) -> None:
    feed = monitor.runtime.config.feed("cn")
    assert feed is not None
    states = FeedStates.load(monitor.store)
    first = monitor.poll(feed, feed_states=states)  # 200: stored with its articles at once
    assert first.ok and not first.not_modified
    stored = monitor.store.feed_state("cn")
    assert stored is not None and stored.etag == '"v1"'
    assert states.get("cn") == stored
    writes = _writes(monitor)

    second = monitor.poll(feed, feed_states=states)

    assert second.not_modified
    assert server.requests[-1][1].get("If-None-Match") == '"v1"'
    assert writes == []
    assert monitor.store.feed_state("cn") == stored  # the store has not seen it yet
    in_memory = states.get("cn")
    assert in_memory is not None and in_memory.last_poll_at != stored.last_poll_at
    assert states.pending_count() == 1

    assert states.flush(monitor.store) == 1

    assert len(writes) >= 1
    assert monitor.store.feed_state("cn") == in_memory
    assert states.pending_count() == 0
    assert states.flush(monitor.store) == 0  # nothing left to write


def test_a_write_of_its_own_leaves_only_older_columns_pending(monitor: Monitor) -> None:
    states = FeedStates.load(monitor.store)
    url = monitor.runtime.config.feeds[0].url
    states.record(
        [FeedStateUpdate("cn", url, {"last_poll_at": T0, "last_success_at": T0, "etag": '"a"'})]
    )
    later = T0 + timedelta(minutes=1)
    # A failed poll writes its own columns (not last_success_at) at once.
    monitor.store.update_feed_states(
        [FeedStateUpdate("cn", url, {"last_poll_at": later, "error": "boom"})]
    )
    states.written(FeedStateUpdate("cn", url, {"last_poll_at": later, "error": "boom"}))

    states.flush(monitor.store)

    stored = monitor.store.feed_state("cn")
    assert stored is not None
    assert stored.last_poll_at == later  # not overwritten by the older pending value
    assert stored.error == "boom"
    assert stored.last_success_at == T0 and stored.etag == '"a"'  # still written
    assert states.get("cn") == stored


def test_a_failed_flush_keeps_the_changes_and_newer_ones_win(monitor: Monitor) -> None:
    from monitor.model import StoreError

    states = FeedStates({})
    url = monitor.runtime.config.feeds[0].url
    states.record([FeedStateUpdate("cn", url, {"last_poll_at": T0, "etag": '"a"'})])

    class Unavailable:
        def update_feed_states(self, updates) -> None:
            states.record([FeedStateUpdate("cn", url, {"etag": '"b"'})])  # while it fails
            raise StoreError("database is locked")

    with pytest.raises(StoreError):
        states.flush(Unavailable())  # type: ignore[arg-type]
    assert states.flush(monitor.store) == 1

    stored = monitor.store.feed_state("cn")
    assert stored is not None and (stored.last_poll_at, stored.etag) == (T0, '"b"')
