"""Tests for retention (Store.prune_articles and the column migration it needs): a real
SQLite file, and the local PostgreSQL server as in test_store.py."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import inspect

from monitor.model import Article, Timing
from monitor.store.database import Store
from monitor.store.deliveries import HitToRecord
from monitor.store.retention import PruneReport

NOW = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
CUTOFF = NOW - timedelta(days=90)
OLD = NOW - timedelta(days=100)
RECENT = NOW - timedelta(days=1)


def article(number: int) -> Article:
    link = f"https://www.rfi.fr/cn/article-{number}"
    return Article(
        guid=f"guid-{number}",
        link=link,
        canonical_link=link,
        title=f"韩日 标题 {number}",
        summary=f"摘要 {number}",
        content=f"正文 {number}",
        author="RFI",
        categories=("亚洲",),
        published=None,
        content_hash=f"hash-{number}",
    )


def add(store: Store, feed: str, items: list[Article], when: datetime) -> list[int]:
    """Store items of a feed as seen at `when`; return the ids of the new articles."""
    with store.transaction() as transaction:
        changes, _ = transaction.upsert_articles(feed, items, baseline=False, now=when)
    return [change.article_id for change in changes if change.is_new]


def hit(
    store: Store,
    article_id: int,
    rule: str,
    channels: tuple[str, ...],
    when: datetime,
    timing: Timing | None = None,
) -> None:
    """Record a hit of the rule on the article at `when`, queued to the channels."""
    recorded = HitToRecord(rule, ("韩日",), "…韩日…", channels, timing or Timing())
    with store.transaction() as transaction:
        transaction.record_hits(article_id, "cn", [recorded], when)


def article_columns(store: Store) -> set[str]:
    return {column["name"] for column in inspect(store.engine).get_columns("article")}


def stored(store: Store) -> dict[str, Article]:
    return {item.title: item for item, _ in store.stored_articles()}


def deliveries(store: Store) -> dict[tuple[str, str], int]:
    """(rule, channel) -> delivery id of every pending delivery."""
    return {
        (due.rule_name, due.channel): due.delivery_id
        for due in store.due_deliveries(NOW, ignore_backoff=True)
    }


def test_prune_articles_with_old_article_empties_its_bodies_and_keeps_the_rest(
    store: Store,
) -> None:
    add(store, "cn", [article(1)], OLD)
    add(store, "cn", [article(2)], RECENT)

    report = store.prune_articles(CUTOFF)

    assert report == PruneReport(articles_pruned=1)
    old, recent = stored(store)["韩日 标题 1"], stored(store)["韩日 标题 2"]
    assert (old.summary, old.content) == ("", "")
    # Title, link and the rest stay: `status`, `rules test` and alerts can still name it.
    assert (old.title, old.link, old.author, old.categories) == (
        "韩日 标题 1", "https://www.rfi.fr/cn/article-1", "RFI", ("亚洲",),
    )  # fmt: skip
    assert recent == replace(article(2), guid=None)
    assert store.article_count() == 2


def test_prune_articles_with_old_article_fed_again_is_not_new(store: Store) -> None:
    add(store, "cn", [article(1)], OLD)
    store.prune_articles(CUTOFF)

    with store.transaction() as transaction:
        same, new_to_cn = transaction.upsert_articles("cn", [article(1)], baseline=False, now=NOW)
        # Another feed, another guid, the same link: the same article.
        elsewhere, new_to_asia = transaction.upsert_articles(
            "cn-asia", [replace(article(1), guid="asia-1")], baseline=False, now=NOW
        )
        # Even an edit of a pruned article is not a change: its hits may be gone.
        edited, _ = transaction.upsert_articles(
            "cn", [replace(article(1), content="新正文", content_hash="edited")],
            baseline=False, now=NOW,
        )  # fmt: skip

    assert (same, new_to_cn) == ([], 0)
    assert (elsewhere, new_to_asia) == ([], 1)
    assert edited == []
    assert store.article_count() == 1
    assert stored(store)["韩日 标题 1"].content == ""


def test_prune_articles_keeps_pending_and_held_deliveries_with_their_hits(store: Store) -> None:
    pending_id, held_id, sent_id = add(store, "cn", [article(1), article(2), article(3)], OLD)
    hit(store, pending_id, "pending-rule", ("me",), OLD)
    hit(store, held_id, "held-rule", ("me",), OLD, Timing(hold_until=NOW + timedelta(hours=1)))
    hit(store, sent_id, "sent-rule", ("me",), OLD)
    store.mark_sent(deliveries(store)[("sent-rule", "me")], OLD)

    report = store.prune_articles(CUTOFF)

    assert report == PruneReport(
        articles_pruned=3, deliveries_removed=1, delivery_items_removed=1, hits_removed=1
    )
    assert store.delivery_counts() == {"pending": 1, "held": 1, "sent": 0, "failed": 0}
    # A pending alert about a pruned article still shows its title, link and excerpt.
    (due,) = store.due_deliveries(NOW)
    (shown,) = due.articles
    assert (due.rule_name, shown.title, shown.excerpt) == ("pending-rule", "韩日 标题 1", "…韩日…")
    # The rules that hit stay recorded: an edit cannot make them notify again.
    with store.transaction() as transaction:
        assert transaction.known_rule_hits(pending_id) == {"pending-rule"}
        assert transaction.known_rule_hits(held_id) == {"held-rule"}
        assert transaction.known_rule_hits(sent_id) == set()


def test_prune_articles_with_hit_pending_on_one_channel_keeps_the_hit_until_it_finishes(
    store: Store,
) -> None:
    (article_id,) = add(store, "cn", [article(1)], OLD)
    hit(store, article_id, "rule", ("me", "team"), OLD)
    store.mark_sent(deliveries(store)[("rule", "me")], OLD)

    first = store.prune_articles(CUTOFF)
    store.mark_attempt_failed(deliveries(store)[("rule", "team")], "refused", None)
    second = store.prune_articles(CUTOFF)

    # The sent delivery goes; the hit stays while its other delivery is pending.
    assert first == PruneReport(articles_pruned=1, deliveries_removed=1, delivery_items_removed=1)
    # Failed for good: finished too, so the delivery and then the hit go.
    assert second == PruneReport(deliveries_removed=1, delivery_items_removed=1, hits_removed=1)
    assert store.delivery_counts() == {"pending": 0, "held": 0, "sent": 0, "failed": 0}


def test_prune_articles_keeps_recent_deliveries_and_those_carrying_recent_articles(
    store: Store,
) -> None:
    (old_id,) = add(store, "cn", [article(1)], OLD)
    (recent_id,) = add(store, "cn", [article(2)], RECENT)
    hit(store, recent_id, "recent", ("me",), RECENT)
    # A digest opened before the cutoff that also took an article first seen after it.
    digest = Timing(hold_until=CUTOFF + timedelta(hours=1), digest=True)
    hit(store, old_id, "digest", ("me",), CUTOFF - timedelta(hours=1), digest)
    hit(store, recent_id, "digest", ("me",), CUTOFF + timedelta(minutes=30), digest)
    store.release_held(NOW)
    for delivery_id in deliveries(store).values():
        store.mark_sent(delivery_id, NOW)

    report = store.prune_articles(CUTOFF)

    assert report == PruneReport(articles_pruned=1)
    assert store.delivery_counts()["sent"] == 2


def test_prune_articles_run_twice_changes_nothing_the_second_time(store: Store) -> None:
    ids = add(store, "cn", [article(number) for number in range(5)], OLD)
    for article_id in ids:
        hit(store, article_id, f"rule-{article_id}", ("me",), OLD)
    for delivery_id in deliveries(store).values():
        store.mark_sent(delivery_id, OLD)

    # Batches smaller than the work: every batch is its own transaction.
    first = store.prune_articles(CUTOFF, batch_size=2)
    second = store.prune_articles(CUTOFF, batch_size=2)

    assert first == PruneReport(
        articles_pruned=5, deliveries_removed=5, delivery_items_removed=5, hits_removed=5
    )
    assert second == PruneReport()
    assert store.article_count() == 5


def test_prune_articles_with_zero_batch_size_raises_value_error(store: Store) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        store.prune_articles(CUTOFF, batch_size=0)


def test_create_schema_with_article_table_of_earlier_version_adds_the_column(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    add(store, "cn", [article(1)], OLD)
    # The article table as the version before retention made it (nor did it record steps).
    with store.engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE schema_migration")
        connection.exec_driver_sql("DROP INDEX ix_article_unpruned_first_seen")
        connection.exec_driver_sql("ALTER TABLE article DROP COLUMN pruned_at")
    assert "pruned_at" not in article_columns(store)

    with caplog.at_level(logging.WARNING, logger="monitor.store.migrations"):
        store.create_schema()
        store.create_schema()  # up to date now: nothing more to do

    assert "pruned_at" in article_columns(store)
    assert "ix_article_unpruned_first_seen" in {
        index["name"] for index in inspect(store.engine).get_indexes("article")
    }
    assert [record.getMessage() for record in caplog.records] == [
        "store migrated=column table=article column=pruned_at"
    ]
    # The existing row is kept, unpruned, and can be pruned now.
    assert store.prune_articles(CUTOFF) == PruneReport(articles_pruned=1)
    assert add(store, "cn", [article(1)], NOW) == []
