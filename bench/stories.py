"""Benchmark: storing one new article and finding its story, with 30,000 stored articles
inside the stories window. Target: median and p95 under 5 ms on this machine.

    .venv/bin/python bench/stories.py                        # 30,000 articles, SQLite file
    .venv/bin/python bench/stories.py --articles 2000 --samples 100      # a quick look
    .venv/bin/python bench/stories.py --database postgresql+psycopg://postgres@127.0.0.1/db
    make bench                                               # bench/run.py runs it at its end

The store is filled with the farm's text (bench/farm.py: RFI-style Chinese, 200 names, topic
sentences, about 800 characters an article) as the daemon stores a first poll of many feeds:
polls of 30 new articles each (Transaction.upsert_articles with StoryGrouping, baseline),
first seen over the last 48 hours, then grouped into stories a hundred at a time as the
daemon does in the background (Store.group_pending), so every one is inside the 72-hour
window and a candidate by its band keys.

Then each sample is one poll that stores one new article, in its own transaction, as
refresh_feed does: half are another version of a stored article (another feed, another
headline, one clause dropped: a reprint), half are new text. Shown, in ms: the whole
transaction with grouping (what a new article costs now), the same with grouping off (what
it cost before stories), and the fingerprint alone (monitor.stories, the measure's own
share of the difference). Checked: every reprint joined its original's story, no new text
joined one. As in the daemon, SQLite's write-ahead log is checkpointed every second on a
thread of its own, not by the commits measured.

The fill itself is the cold case: its ms per article stored, then grouped, and stored
without grouping into a second store (SQLite) of the same polls, are shown too.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from farm import ENTITY_COUNT, SENTENCES, TOPIC_SHARE, corpus  # bench/ is on sys.path
from run import HOST_SPEED_STEPS, host_speed_seconds
from sqlmodel import SQLModel

from monitor.model import Article
from monitor.service.backlog import CHECKPOINT_INTERVAL_SECONDS
from monitor.store import ArticleChange, Store, StoryGrouping
from monitor.stories import fingerprint

TARGET_MILLISECONDS = 5.0
ITEMS_PER_POLL = 30
FILL_HOURS = 48


def farm_article(
    feed: int, item: int, published: datetime, *, site: str = "cn", own_lead: bool = False
) -> Article:
    """The text of the farm's item (bench/farm.py item_xml) as the store is given it.

    The farm's leads are 3 clauses of its shared 4,000, and a quarter of its clauses end a
    sentence: one item in four has a title and first sentence that are one shared clause,
    the same as about 7 of 30,000 stored items, and rightly joins their story (the measure's
    lead sketch is for a short item of a long article). News does not reuse a lead like
    that: `own_lead` gives the item clauses of its own there (the body stays the farm's)."""
    generator = random.Random(feed * 100_003 + item)
    clauses = corpus().clauses
    lead_clauses = (
        [_own_clause(generator) for _ in range(3)] if own_lead else generator.choices(clauses, k=3)
    )
    entity = corpus().entities[generator.randrange(ENTITY_COUNT)]
    paragraphs = [generator.choices(clauses, k=10) for _ in range(4)]
    paragraphs[generator.randrange(4)].insert(generator.randrange(10), entity + "表示，")
    if generator.random() < TOPIC_SHARE:
        paragraphs[generator.randrange(4)].insert(
            generator.randrange(10), generator.choice(SENTENCES)
        )
    lead = "".join(lead_clauses)
    summary = " ".join([lead, *("".join(paragraph) for paragraph in paragraphs)])
    return _article(f"{site}-{feed}-{item}", lead[:18].rstrip("，。"), summary, published)


def _own_clause(generator: random.Random) -> str:
    """A clause made for one item (as bench/farm.py makes its shared ones)."""
    common, frequent = corpus().common, corpus().frequent
    characters = [
        generator.choice(frequent) if generator.random() < 0.65 else generator.choice(common)
        for _ in range(generator.randint(8, 24))
    ]
    return "".join(characters) + generator.choice("，，，。")


def reprint(original: Article, key: str) -> Article:
    """Another outlet's version: a new headline, the second clause dropped."""
    clauses = original.summary.split("，")
    summary = "，".join(clauses[:1] + clauses[2:])
    return _article(key, "快讯：" + original.title[2:], summary, original.published)


def _article(key: str, title: str, summary: str, published: datetime | None) -> Article:
    link = f"https://www.rfi.fr/bench/{key}"
    return Article(
        guid=key,
        link=link,
        canonical_link=link,
        title=title,
        summary=summary,
        content="",
        published=published,
        content_hash=hashlib.sha256(f"{title}\n{summary}".encode()).hexdigest(),
    )


def _milliseconds(samples: list[float]) -> tuple[float, float]:
    """Median and 95th percentile, in ms."""
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1000, p95 * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=30_000, help="stored (30,000)")
    parser.add_argument("--samples", type=int, default=400, help="single-article polls (400)")
    parser.add_argument("--database", help="a database URL (default: a new SQLite file)")
    arguments = parser.parse_args(argv)
    grouping = StoryGrouping()
    now = datetime.now(UTC).replace(microsecond=0)
    folder = tempfile.mkdtemp(prefix="news-monitor-stories-")
    database = arguments.database or f"sqlite:///{folder}/monitor.db"
    store = Store(database)
    if not database.startswith("sqlite"):
        SQLModel.metadata.drop_all(store.engine)
    store.create_schema()
    reference = Store(f"sqlite:///{folder}/reference.db")
    reference.create_schema()
    try:
        return _run(store, reference, arguments.articles, arguments.samples, grouping, now)
    finally:
        if not database.startswith("sqlite"):
            SQLModel.metadata.drop_all(store.engine)
        store.close()
        reference.close()


@contextmanager
def checkpointing(store: Store) -> Iterator[None]:
    """Checkpoint SQLite's write-ahead log on a thread of its own while the block runs, as
    the daemon does (monitor.service.backlog), so that the commits measured do not."""
    stop = threading.Event()

    def checkpoints() -> None:
        while not stop.wait(CHECKPOINT_INTERVAL_SECONDS):
            store.checkpoint()

    thread = threading.Thread(target=checkpoints, name="checkpoint", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _fill(
    store: Store, polls: int, grouping: StoryGrouping | None, now: datetime
) -> tuple[float, float, dict[str, int], list[Article]]:
    """Store polls of ITEMS_PER_POLL farm articles first seen over the last FILL_HOURS, as
    first polls (baselines) of as many feeds, then group them as the daemon does
    (Store.group_pending); return the seconds spent storing and grouping, each article's
    story by link, and the articles."""
    start = now - timedelta(hours=FILL_HOURS)
    storing_seconds = grouping_seconds = 0.0
    stored: list[Article] = []
    for poll in range(polls):
        when = start + timedelta(hours=FILL_HOURS) * poll / polls
        batch = [farm_article(poll, item, when) for item in range(ITEMS_PER_POLL)]
        with store.transaction() as transaction:
            started = time.perf_counter()
            transaction.upsert_articles(
                f"feed-{poll}", batch, baseline=True, now=when, stories=grouping
            )
            storing_seconds += time.perf_counter() - started
        stored += batch
    if grouping is None:
        return storing_seconds, 0.0, {}, stored
    started = time.perf_counter()
    while store.group_pending(grouping):
        pass
    grouping_seconds = time.perf_counter() - started
    story_of = {
        each.link or "": story.story_id
        for story in store.stories(include_single=True)
        for each in story.articles
    }
    return storing_seconds, grouping_seconds, story_of, stored


def _run(
    store: Store,
    reference: Store,
    articles: int,
    samples: int,
    grouping: StoryGrouping,
    now: datetime,
) -> int:
    speed_at_start = host_speed_seconds()
    polls = max(1, articles // ITEMS_PER_POLL)
    count = polls * ITEMS_PER_POLL
    print(f"filling: {count:,} articles in {polls:,} polls, grouped ...", flush=True)
    stored_seconds, grouped_seconds, story_of, stored = _fill(store, polls, grouping, now)
    print("filling a store without grouping (SQLite, the same polls) ...", flush=True)
    plain_seconds, _, _, _ = _fill(reference, polls, None, now)

    def store_one(
        article: Article, stories: StoryGrouping | None
    ) -> tuple[tuple[float, float], ArticleChange]:
        """Store one article in a transaction of its own: ((wall, CPU seconds), its change)."""
        started, cpu = time.perf_counter(), time.thread_time()
        with store.transaction() as transaction:
            (change,), _ = transaction.upsert_articles(
                "wire", [article], baseline=False, now=now, stories=stories
            )
        return (time.perf_counter() - started, time.thread_time() - cpu), change

    generator = random.Random(7)
    with_stories: list[tuple[float, float]] = []
    without: list[tuple[float, float]] = []
    fingerprints: list[tuple[float, float]] = []
    joined = wrongly_joined = reprints = 0
    with checkpointing(store):
        for sample in range(samples):
            is_reprint = sample % 2 == 0
            if is_reprint:
                original = generator.choice(stored)
                new = reprint(original, f"wire-{sample}")
            else:
                new = farm_article(900_000 + sample, 0, now, own_lead=True)
            started, cpu = time.perf_counter(), time.thread_time()
            fingerprint(new.title, new.summary, "")
            fingerprints.append((time.perf_counter() - started, time.thread_time() - cpu))
            seconds, change = store_one(new, grouping)
            with_stories.append(seconds)
            if is_reprint:
                reprints += 1
                joined += change.story_id == story_of[original.link or ""]
            else:
                wrongly_joined += not change.story_started
            plain = _article(f"plain-{sample}", new.title, new.summary + "。", now)
            without.append(store_one(plain, None)[0])

    dialect = store.engine.dialect.name
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"\nbench/stories.py: {store.article_count():,} stored articles ({dialect})")
    print(
        f"load average {load} on {os.cpu_count()} CPUs: wall times include waiting for a "
        "CPU; CPU times (this thread's) do not"
    )
    print(
        f"host speed: {HOST_SPEED_STEPS:,}-step Python loop {speed_at_start:.2f} s at start, "
        f"{host_speed_seconds():.2f} s at end (figures compare across runs only as these do)"
    )
    print(
        f"fill (cold: first polls of {ITEMS_PER_POLL} articles), ms per article: stored "
        f"{stored_seconds * 1000 / count:.2f} (grouping on), then grouped in the background "
        f"{grouped_seconds * 1000 / count:.2f}; stored without grouping (SQLite) "
        f"{plain_seconds * 1000 / count:.2f}"
    )
    rows = [
        ("store one new article, grouped (stories on)", with_stories),
        ("store one new article, not grouped (stories: false)", without),
        ("the fingerprint alone (monitor.stories)", fingerprints),
    ]
    print(
        f"\n| {samples:,} single-article polls | median ms | p95 ms | CPU median ms | CPU p95 ms |"
    )
    print("|---|---|---|---|---|")
    for name, values in rows:
        median, p95 = _milliseconds([wall for wall, _ in values])
        cpu_median, cpu_p95 = _milliseconds([cpu for _, cpu in values])
        print(f"| {name} | {median:.2f} | {p95:.2f} | {cpu_median:.2f} | {cpu_p95:.2f} |")
    median, p95 = _milliseconds([wall for wall, _ in with_stories])
    ok = median < TARGET_MILLISECONDS and p95 < TARGET_MILLISECONDS
    print(
        f"\ntarget: storing one article and finding its story < {TARGET_MILLISECONDS:g} ms "
        f"(median and p95): {'met' if ok else 'NOT met'} ({median:.2f} / {p95:.2f} ms)"
    )
    print(
        f"grouping: {joined} of {reprints} reprints joined their original's story; "
        f"{wrongly_joined} of {samples - reprints} new texts joined a story"
    )
    return 0 if joined == reprints and not wrongly_joined else 1


if __name__ == "__main__":
    sys.exit(main())
