"""Benchmark: `news-monitor search` over 100,000 stored articles. Target: p95 <= 200 ms for
the two-term query, each query with --limit 20.

    .venv/bin/python bench/search.py                         # 100,000 articles, SQLite file
    .venv/bin/python bench/search.py --articles 5000 --samples 20        # a quick look
    .venv/bin/python bench/search.py --database postgresql+psycopg://postgres@127.0.0.1/db
    .venv/bin/python bench/search.py --database ... --reuse   # the queries again

The store is filled as the daemon fills it (Transaction.upsert_articles, polls of 30
articles, each its own transaction, which marks them pending) with the farm's text (bench/farm.py:
RFI-style Chinese, about 800 characters an article), into which the query terms are planted:
  two-character term   韬晦 in 1% of the articles
  two terms            韬晦 AND 磐石: 磐石 in 1%, half of them with 韬晦 too (0.5% both)
  phrase               "砥砺前行" (four characters: three bigrams) in 1%
  NOT                  韬晦 NOT 蹉跎: 蹉跎 in a third of the 韬晦 articles
  Traditional          韜晦 (the two-character term as written in Traditional)
The filler is random clauses of common characters, so the terms are found (almost) only
where they were planted. Each query runs `samples` times through monitor.service's search_articles,
the function the command and the web view call; shown: p50 and p95 wall ms, the results
(20 unless fewer exist) and the articles the rule engine read. Also shown: storing's ms
per article, and indexing's (Store.index_pending until none waits, as the daemon's
indexer does: wall and this process's CPU).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta

from farm import corpus  # bench/ is on sys.path
from sqlalchemy import text
from sqlmodel import SQLModel

from monitor.model import Article
from monitor.service.search import search_articles
from monitor.store import Store

TARGET_MILLISECONDS = 200.0
ITEMS_PER_POLL = 30
QUERIES = {
    "two-character term": "韬晦",
    "two terms": "韬晦 AND 磐石",
    "phrase": '"砥砺前行"',
    "NOT": "韬晦 NOT 蹉跎",
    "Traditional": "韜晦",
}


def _article(generator: random.Random, index: int, published: datetime) -> Article:
    clauses = corpus().clauses
    paragraphs = ["".join(generator.choices(clauses, k=10)) for _ in range(4)]

    def plant(term: str) -> None:
        where = generator.randrange(4)
        cut = generator.randrange(len(paragraphs[where]))
        paragraphs[where] = paragraphs[where][:cut] + term + paragraphs[where][cut:]

    term_here = generator.random() < 0.01
    if term_here:
        plant("韬晦")
        if generator.random() < 1 / 3:
            plant("蹉跎")
    if generator.random() < 0.01:
        plant("磐石")
        if not term_here and generator.random() < 0.5:
            plant("韬晦")
    if generator.random() < 0.01:
        plant("砥砺前行")
    lead = "".join(generator.choices(clauses, k=3))
    body = "\n\n".join(paragraphs)
    return Article(
        guid=f"bench-search-{index}",
        link=f"https://www.rfi.fr/cn/bench-search/{index}",
        canonical_link=None,
        title=lead[:18].rstrip("，。"),
        summary=lead + "\n\n" + body,
        content="",
        published=published,
        content_hash=f"{index:016x}",
    )


def fill(store: Store, articles: int, *, seed: int = 11) -> float:
    """Store `articles` in polls of ITEMS_PER_POLL over the last 30 days; return ms per
    article."""
    generator = random.Random(seed)
    start = datetime.now(UTC) - timedelta(days=30)
    step = timedelta(days=30) / max(articles, 1)
    spent = 0.0
    for first in range(0, articles, ITEMS_PER_POLL):
        count = min(ITEMS_PER_POLL, articles - first)
        batch = [_article(generator, first + n, start + step * (first + n)) for n in range(count)]
        began = time.perf_counter()
        with store.transaction() as transaction:
            transaction.upsert_articles(
                f"feed-{first // ITEMS_PER_POLL % 1000}",
                batch,
                baseline=False,
                now=start + step * first,
            )
        spent += time.perf_counter() - began
    return spent / max(articles, 1) * 1000


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, round(share * len(ordered)) - 1)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--database", help="a PostgreSQL URL (default: a SQLite file)")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="PostgreSQL: keep the articles of an earlier run of the same size (queries only)",
    )
    arguments = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as workspace:
        url = arguments.database or f"sqlite:///{workspace}/search.db"
        store = Store(url)
        reuse = arguments.reuse and store.article_count() == arguments.articles
        if not reuse:
            if arguments.database:
                _clear(store)
            store.create_schema()
            corpus()  # (made once, before anything is timed)
            fill_ms = fill(store, arguments.articles)
            print(
                f"stored {arguments.articles:,} articles in {store.engine.dialect.name}: "
                f"{fill_ms:.2f} ms per article"
            )
            began, cpu_began = time.perf_counter(), time.process_time()
            while store.index_pending():
                pass
            wall_ms = (time.perf_counter() - began) / arguments.articles * 1000
            cpu_ms = (time.process_time() - cpu_began) / arguments.articles * 1000
            print(f"indexed them: {wall_ms:.2f} ms per article ({cpu_ms:.2f} ms CPU here)")
        if store.engine.dialect.name == "postgresql":
            # The planner's statistics, as autovacuum keeps them on a running database.
            with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
                c.execute(text("ANALYZE"))
        print(f"\n{'query':<22} {'':<16} {'p50 ms':>8} {'p95 ms':>8} {'results':>8} {'read':>6}")
        failed = False
        for name, query in QUERIES.items():
            times = []
            outcome = None
            for _ in range(arguments.samples):
                began = time.perf_counter()
                outcome = search_articles(store, query, since=None, limit=20)
                times.append((time.perf_counter() - began) * 1000)
            assert outcome is not None and outcome.complete
            p50, p95 = statistics.median(times), _percentile(times, 0.95)
            print(
                f"{name:<22} {query:<16} {p50:>8.1f} {p95:>8.1f} {len(outcome.results):>8} "
                f"{outcome.articles_checked:>6}"
            )
            if name == "two terms" and p95 > TARGET_MILLISECONDS:
                failed = True
        print(
            f"\ntarget: two terms p95 <= {TARGET_MILLISECONDS:.0f} ms: "
            + ("NOT MET" if failed else "met")
        )
        print(f"load average: {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
        store.close()
    return 1 if failed else 0


def _clear(store: Store) -> None:
    SQLModel.metadata.drop_all(store.engine)
    with store.engine.begin() as connection:
        connection.execute(text("DROP TABLE IF EXISTS article_search"))


if __name__ == "__main__":
    sys.exit(main())
