"""Work kept out of the storing transaction and done on the daemon's housekeeping thread:
SQLite's checkpoints, and, a batch at a time, the search index (monitor.store.search) and
the stories of a feed's first poll (monitor.store.stories). Each of the last two takes a
twentieth of the daemon's time (every BACKLOG_INTERVAL_SECONDS, for about BACKLOG_SECONDS:
it holds the GIL while it works, and polls must not wait for it); both together a
twentieth of a `run --once` cycle, at its end (at least a second: a cycle from cron stores
little; what remains waits for the next run).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from monitor.model import StoreError
from monitor.store import GROUP_BATCH_ARTICLES, INDEX_BATCH_ARTICLES, Store, StoryGrouping

if TYPE_CHECKING:
    from apscheduler.schedulers.base import BaseScheduler

logger = logging.getLogger(__name__)

BACKLOG_INTERVAL_SECONDS = 5.0
BACKLOG_SECONDS = 0.25
BACKLOG_ONCE_SHARE = 0.05
BACKLOG_ONCE_MIN_SECONDS = 1.0


def run_batches(
    what: str,
    batch: Callable[[], int],
    remaining: Callable[[], int],
    *,
    batch_size: int,
    time_budget_seconds: float,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Call `batch` (which does up to `batch_size` items and returns how many it did) until
    one does fewer or about `time_budget_seconds` have passed; return how many items were
    done (0 when none waited: then this cost one batch's query). When time ran out first,
    log how far `what` got, and how many items remain."""
    deadline = clock() + time_budget_seconds
    done = 0
    while clock() < deadline:
        count = batch()
        done += count
        if count < batch_size:
            return done
    if done:
        logger.info("%s status=working done=%d left=%d", what, done, remaining())
    return done


def work_after_cycle(store: Store, grouping: StoryGrouping | None, cycle_seconds: float) -> None:
    """`run --once`'s share of the background work, after a cycle that took
    `cycle_seconds`: the stories of first polls for up to half of it, then the search index
    for the rest."""
    budget_seconds = max(BACKLOG_ONCE_MIN_SECONDS, BACKLOG_ONCE_SHARE * cycle_seconds)
    deadline = time.monotonic() + budget_seconds
    if grouping is not None:
        group_first_polls(store, grouping, time_budget_seconds=budget_seconds / 2)
    build_search_index(store, time_budget_seconds=max(0.0, deadline - time.monotonic()))


# --------------------------------------------------------------- SQLite's checkpoints

# Every second: a single-article poll adds a few dozen pages to the log, so each checkpoint
# copies a few hundred at most, while polls commit without one (SQLITE_AUTOCHECKPOINT_PAGES).
CHECKPOINT_INTERVAL_SECONDS = 1.0


def checkpoint_job(store: Store) -> None:
    """The daemon's checkpoint of SQLite's write-ahead log (Store.checkpoint)."""
    try:
        store.checkpoint()
    except StoreError as error:
        logger.error("checkpoint status=store_error error=%r", str(error))


def schedule_checkpoints(scheduler: BaseScheduler, store: Store, *, executor: str) -> None:
    """Add the daemon's checkpoints to its scheduler, on SQLite (every
    CHECKPOINT_INTERVAL_SECONDS)."""
    if store.engine.dialect.name != "sqlite":
        return
    scheduler.add_job(
        checkpoint_job,
        "interval",
        args=[store],
        seconds=CHECKPOINT_INTERVAL_SECONDS,
        id="checkpoint",
        executor=executor,
    )


# --------------------------------------------------------------- building the index

# About fifty articles a second, so new articles are indexed within seconds, a first poll of
# a thousand feeds (30,000 articles) within about ten minutes, an archive of 100,000 from
# before the index within the hour.


def build_search_index(
    store: Store,
    *,
    time_budget_seconds: float = BACKLOG_SECONDS,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Index the stored articles the search index does not hold yet, a batch at a time, for
    about `time_budget_seconds`; return how many were indexed (0 when none waited: then
    this cost one query)."""
    return run_batches(
        "search_index",
        store.index_pending,
        store.articles_to_index,
        batch_size=INDEX_BATCH_ARTICLES,
        time_budget_seconds=time_budget_seconds,
        clock=clock,
    )


def search_index_job(store: Store, *, starting: bool = False) -> None:
    """The daemon's indexer (every BACKLOG_INTERVAL_SECONDS). `starting`: its first
    run, which also queues the articles an older version stored beside this one."""
    try:
        if starting and (found := store.queue_unindexed_articles()):
            logger.info("search_index status=queued articles_stored_by_another_version=%d", found)
        build_search_index(store)
    except StoreError as error:
        logger.error("search_index status=store_error error=%r", str(error))


def schedule_search_index(scheduler: BaseScheduler, store: Store, *, executor: str) -> None:
    """Add the daemon's indexer to its scheduler: a first run at once (which also queues
    what an older version stored), then every BACKLOG_INTERVAL_SECONDS."""
    scheduler.add_job(search_index_job, args=[store], kwargs={"starting": True}, executor=executor)
    scheduler.add_job(
        search_index_job,
        "interval",
        args=[store],
        seconds=BACKLOG_INTERVAL_SECONDS,
        id="search-index",
        executor=executor,
    )


# --------------------------------------------------------------- stories of first polls

# Why later: a feed's first poll never alerts, and grouping an article costs several times
# what storing it does (its fingerprint, and a few dozen band rows scattered in their
# index); grouped a hundred at a time, their band rows share pages. An article stored
# meanwhile is grouped at once and does not see those still waiting: one of them later
# joins its story instead (the same story, first seen later).


def group_first_polls(
    store: Store,
    grouping: StoryGrouping,
    *,
    time_budget_seconds: float = BACKLOG_SECONDS,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Group the articles of first polls still waiting, a batch at a time, for about
    `time_budget_seconds`; return how many were grouped (0 when none waited: then this cost
    one query)."""
    return run_batches(
        "stories",
        lambda: store.group_pending(grouping),
        store.articles_to_group,
        batch_size=GROUP_BATCH_ARTICLES,
        time_budget_seconds=time_budget_seconds,
        clock=clock,
    )


def story_grouping_job(store: Store, grouping: Callable[[], StoryGrouping | None]) -> None:
    """The daemon's grouping of first polls (every BACKLOG_INTERVAL_SECONDS), by the
    configuration's current `stories:` (none while grouping is off)."""
    current = grouping()
    if current is None:
        return
    try:
        group_first_polls(store, current)
    except StoreError as error:
        logger.error("stories status=store_error error=%r", str(error))


def schedule_story_grouping(
    scheduler: BaseScheduler,
    store: Store,
    grouping: Callable[[], StoryGrouping | None],
    *,
    executor: str,
) -> None:
    """Add the daemon's grouping of first polls to its scheduler (every
    BACKLOG_INTERVAL_SECONDS)."""
    scheduler.add_job(
        story_grouping_job,
        "interval",
        args=[store, grouping],
        seconds=BACKLOG_INTERVAL_SECONDS,
        id="story-grouping",
        executor=executor,
    )
