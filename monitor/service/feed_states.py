"""Every feed's state in the daemon's memory, written to the store in batches.

A poll answered 304 changes a feed's state (last poll, last success, next poll) but nothing
else: writing it at once costs a transaction per poll, most of a steady state of 304s. The
daemon reads every state once at start (the store stays the truth across restarts), polls
from memory, and writes what changed in one transaction every FLUSH_INTERVAL_SECONDS and at
shutdown. A poll that stores articles, or fails, writes its state in its own transaction as
before (with the articles, in the same one): `written` keeps memory in step with it.

Values of one feed are merged: a later value of a column replaces an earlier one that was
not written yet, and a column a poll wrote itself is no longer pending. What a crash loses
is at most FLUSH_INTERVAL_SECONDS of polls that changed nothing but times: the next start
polls those feeds again anyway.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import fields, replace

from monitor.store import FeedState, FeedStateUpdate, Store

FLUSH_INTERVAL_SECONDS = 2.0

_FIELDS = frozenset(field_.name for field_ in fields(FeedState))
# A state row's columns and their values for a feed never polled (the table's defaults).
_EMPTY_STATE = {
    "etag": None,
    "last_modified": None,
    "last_poll_at": None,
    "last_success_at": None,
    "http_status": None,
    "error": None,
    "error_streak": 0,
    "last_new_count": 0,
    "last_item_count": 0,
    "next_poll_at": None,
    "baseline_done": False,
    "redirected_to": None,
    "ttl_seconds": None,
}


class FeedStates:
    """Feed states by name, with the changes not yet written to the store. Thread-safe."""

    def __init__(self, states: Mapping[str, FeedState]) -> None:
        self._lock = threading.Lock()
        self._states: dict[str, FeedState] = dict(states)
        # Per feed: its url and the column values not written yet.
        self._pending: dict[str, tuple[str, dict[str, object]]] = {}
        # The feeds whose values a flush is writing right now (see written()).
        self._flushing: frozenset[str] = frozenset()
        self._flush_lock = threading.Lock()  # one flush at a time

    @classmethod
    def load(cls, store: Store) -> FeedStates:
        return cls(store.feed_states())

    def get(self, name: str) -> FeedState | None:
        with self._lock:
            return self._states.get(name)

    def pending_count(self) -> int:
        with self._lock:
            return len(self._pending)

    def record(self, updates: Iterable[FeedStateUpdate]) -> None:
        """Apply changes to memory, to be written by the next flush."""
        with self._lock:
            for update in updates:
                self._apply(update)
                _, values = self._pending.get(update.name, (update.url, {}))
                values.update(update.values)
                self._pending[update.name] = (update.url, values)

    def written(self, update: FeedStateUpdate) -> None:
        """Apply changes a poll has written to the store itself (with its articles, or its
        failure): the columns it wrote are no longer pending."""
        with self._lock:
            self._apply(update)
            if update.name in self._flushing:
                # A flush in flight may write older values of these columns after this
                # write: write these again with the next flush.
                _, values = self._pending.get(update.name, (update.url, {}))
                values.update(update.values)
                self._pending[update.name] = (update.url, values)
                return
            pending = self._pending.get(update.name)
            if pending is not None:
                for column in update.values:
                    pending[1].pop(column, None)
                if not pending[1]:
                    del self._pending[update.name]

    def forget(self, names: Iterable[str]) -> None:
        """Drop what is pending for feeds no longer polled (removed from the config)."""
        with self._lock:
            for name in names:
                self._pending.pop(name, None)

    def flush(self, store: Store) -> int:
        """Write every pending change in one transaction; return how many feeds' states were
        written. On a store failure the changes stay pending (newer ones win) and the
        StoreError propagates."""
        with self._flush_lock:
            with self._lock:
                batch, self._pending = self._pending, {}
                self._flushing = frozenset(batch)
            try:
                store.update_feed_states(
                    [FeedStateUpdate(name, url, values) for name, (url, values) in batch.items()]
                )
            except BaseException:
                with self._lock:
                    for name, (url, values) in batch.items():
                        newer = self._pending.get(name)
                        if newer is not None:
                            values = {**values, **newer[1]}
                            url = newer[0]
                        self._pending[name] = (url, values)
                raise
            finally:
                with self._lock:
                    self._flushing = frozenset()
            return len(batch)

    def _apply(self, update: FeedStateUpdate) -> None:
        known = {key: value for key, value in update.values.items() if key in _FIELDS}
        state = self._states.get(update.name)
        if state is None:
            self._states[update.name] = FeedState(
                **{**_EMPTY_STATE, "name": update.name, "url": update.url, **known}  # type: ignore[arg-type]
            )
        else:
            self._states[update.name] = replace(state, url=update.url, **known)  # type: ignore[arg-type]
