from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from feeds import fixture

from monitor.ingest.parse import parse_feed
from monitor.model import StoreError
from monitor.store.database import Store
from monitor.store.deliveries import HitToRecord
from monitor.store.engine import SQLITE_AUTOCHECKPOINT_PAGES
from monitor.store.tables import DeliveryRow

NOW = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)


def _cn_articles():
    return parse_feed(fixture("rfi-cn-rss.xml")).articles


def test_upsert_articles_with_known_items_returns_only_new(store: Store) -> None:
    articles = _cn_articles()
    with store.transaction() as transaction:
        first, new_to_feed = transaction.upsert_articles("cn", articles, baseline=False, now=NOW)
    with store.transaction() as transaction:
        second, again_new = transaction.upsert_articles("cn", articles, baseline=False, now=NOW)

    assert [change.is_new for change in first] == [True, True] and new_to_feed == 2
    assert second == [] and again_new == 0
    assert store.article_count() == 2


def test_upsert_articles_with_same_link_in_two_feeds_stores_once(store: Store) -> None:
    articles = _cn_articles()
    # The same article reached through a section feed: another guid, the same link.
    in_asia = [replace(article, guid=f"asia-{article.guid}") for article in articles]
    with store.transaction() as transaction:
        transaction.upsert_articles("cn", articles, baseline=False, now=NOW)
        changes, new_to_feed = transaction.upsert_articles(
            "cn-asia", in_asia, baseline=False, now=NOW
        )

    assert changes == [] and new_to_feed == 2
    assert store.article_count() == 2


def test_upsert_articles_with_duplicate_link_and_no_guid_in_one_document_stores_once(
    store: Store,
) -> None:
    first, second = _cn_articles()
    # Two items of one document with the same link and no guid (the feed repeats an article).
    first = replace(first, guid=None)
    repeated = replace(second, guid=None, canonical_link=first.canonical_link)
    with store.transaction() as transaction:
        changes, new_to_feed = transaction.upsert_articles(
            "cn", [first, repeated], baseline=False, now=NOW
        )

    assert [change.article.title for change in changes] == [first.title]
    assert new_to_feed == 1 and store.article_count() == 1


def test_upsert_articles_with_different_guids_and_same_link_stores_two(store: Store) -> None:
    first, second = _cn_articles()
    # Two posts of one page: one feed gave them different guids, whatever their links.
    same_page = replace(second, canonical_link=first.canonical_link)
    with store.transaction() as transaction:
        changes, new_to_feed = transaction.upsert_articles(
            "cn", [first, same_page], baseline=False, now=NOW
        )
    later = replace(second, guid="third-post", canonical_link=first.canonical_link)
    with store.transaction() as transaction:
        later_changes, _ = transaction.upsert_articles("cn", [later], baseline=False, now=NOW)
    with store.transaction() as transaction:
        # Another feed with the same link: the article the link was first stored for.
        elsewhere = replace(first, guid="asia-1")
        elsewhere_changes, _ = transaction.upsert_articles(
            "cn-asia", [elsewhere], baseline=False, now=NOW
        )

    assert [change.article.guid for change in changes] == [first.guid, second.guid]
    assert new_to_feed == 2
    assert [change.article.guid for change in later_changes] == ["third-post"]
    assert elsewhere_changes == [] and store.article_count() == 3


def test_upsert_articles_when_a_feed_starts_giving_guids_keeps_its_articles(
    store: Store,
) -> None:
    (article, _) = _cn_articles()
    without_guid = replace(article, guid=None)
    with store.transaction() as transaction:
        transaction.upsert_articles("cn", [without_guid], baseline=False, now=NOW)
    with store.transaction() as transaction:
        now_with_guid, new_to_feed = transaction.upsert_articles(
            "cn", [article], baseline=False, now=NOW
        )
    with store.transaction() as transaction:
        # From now on another guid of this feed with the same link is another article.
        other, _ = transaction.upsert_articles(
            "cn", [replace(article, guid="another-post")], baseline=False, now=NOW
        )

    assert now_with_guid == [] and new_to_feed == 0
    assert [change.article.guid for change in other] == ["another-post"]
    assert store.article_count() == 2


def test_upsert_articles_with_edited_item_under_same_guid_is_a_change(store: Store) -> None:
    (article, _) = _cn_articles()
    edited = replace(
        article, link="https://www.rfi.fr/cn/moved", canonical_link="https://www.rfi.fr/cn/moved",
        title="新标题", content_hash="different",
    )  # fmt: skip
    with store.transaction() as transaction:
        transaction.upsert_articles("cn", [article], baseline=True, now=NOW)
        changes, _ = transaction.upsert_articles("cn", [edited], baseline=False, now=NOW)

    (change,) = changes
    assert not change.is_new and change.baseline  # a baseline article stays silent
    assert store.article_count() == 1


def test_articles_to_store_names_the_items_upsert_would_take_as_changes(store: Store) -> None:
    first, second = _cn_articles()
    assert store.articles_to_store("cn", [first, second]) == {0, 1}
    with store.transaction() as transaction:
        transaction.upsert_articles("cn", [first], baseline=False, now=NOW)
    edited = replace(first, title="新标题", content_hash="edited")
    in_asia = replace(first, guid="asia-1")  # the same article, known by its link

    asked = store.articles_to_store("cn", [first, second, edited])
    elsewhere = store.articles_to_store("cn-asia", [in_asia])

    assert asked == {1, 2} and elsewhere == frozenset()
    with store.transaction() as transaction:
        changes, _ = transaction.upsert_articles(
            "cn", [first, second, edited], baseline=False, now=NOW
        )
    assert [change.article.title for change in changes] == [second.title, "新标题"]
    assert store.article_count() == 2  # asking stored nothing


def test_articles_to_store_leaves_pruned_articles_alone(store: Store) -> None:
    (article, _) = _cn_articles()
    with store.transaction() as transaction:
        transaction.upsert_articles("cn", [article], baseline=False, now=NOW)
    store.prune_articles(datetime(2027, 1, 1, tzinfo=UTC))

    assert store.articles_to_store("cn", [replace(article, content_hash="edited")]) == frozenset()


def test_record_hits_with_same_rule_twice_creates_deliveries_once(store: Store) -> None:
    hit = HitToRecord("korea-japan", ("韩日",), "…韩日…", ("console", "mail"))
    with store.transaction() as transaction:
        (change, _), _ = transaction.upsert_articles("cn", _cn_articles(), baseline=False, now=NOW)
        created = transaction.record_hits(change.article_id, "cn", [hit], NOW)
        again = transaction.record_hits(change.article_id, "cn", [hit], NOW)

    assert (created, again) == (2, 0)
    due = store.due_deliveries(NOW)
    assert [(d.rule_name, d.channel, d.articles[0].terms) for d in due] == [
        ("korea-japan", "console", ("韩日",)),
        ("korea-japan", "mail", ("韩日",)),
    ]
    assert store.delivery_counts() == {"pending": 2, "held": 0, "sent": 0, "failed": 0}


def test_mark_attempt_failed_with_later_retry_is_not_due_until_then(store: Store) -> None:
    with store.transaction() as transaction:
        (change, _), _ = transaction.upsert_articles("cn", _cn_articles(), baseline=False, now=NOW)
        transaction.record_hits(change.article_id, "cn", [HitToRecord("r", (), "", ("c",))], NOW)
    (due,) = store.due_deliveries(NOW)
    later = NOW.replace(hour=9)

    store.mark_attempt_failed(due.delivery_id, "connection refused", later)

    assert store.due_deliveries(NOW) == []
    assert [d.attempts for d in store.due_deliveries(later)] == [1]
    assert [d.delivery_id for d in store.due_deliveries(NOW, ignore_backoff=True)] == [
        due.delivery_id
    ]
    store.mark_attempt_failed(due.delivery_id, "connection refused", None)
    assert store.delivery_counts()["failed"] == 1
    assert store.last_delivery_errors() == [("r", "c", "connection refused")]


def test_mark_sent_counts_the_attempt_and_keeps_the_services_sent(store: Store) -> None:
    with store.transaction() as transaction:
        (change, _), _ = transaction.upsert_articles("cn", _cn_articles(), baseline=False, now=NOW)
        transaction.record_hits(change.article_id, "cn", [HitToRecord("r", (), "", ("c",))], NOW)
    (due,) = store.due_deliveries(NOW)
    store.mark_attempt_failed(due.delivery_id, "refused", NOW, sent_services=[0])

    store.mark_sent(due.delivery_id, NOW, sent_services=[0, 1])

    assert store.delivery_counts() == {"pending": 0, "held": 0, "sent": 1, "failed": 0}
    assert store.last_delivery_errors() == []
    store.retry_failed(NOW)  # a sent delivery is not failed: nothing comes back
    assert store.due_deliveries(NOW, ignore_backoff=True) == []
    with store.transaction() as transaction:
        row = transaction.session.get(DeliveryRow, due.delivery_id)
        assert (row.attempts, row.sent_services, row.sent_at) == (2, "[0, 1]", NOW)
        assert (row.claimed_by, row.claimed_at, row.last_error) == (None, None, None)


def test_due_deliveries_of_one_channel_and_one_outcome_for_several(store: Store) -> None:
    hits = [
        HitToRecord("korea-japan", ("韩日",), "", ("mail", "hook")),
        HitToRecord("forced-labour", ("强征劳工",), "", ("mail",)),
    ]
    with store.transaction() as transaction:
        (change, _), _ = transaction.upsert_articles("cn", _cn_articles(), baseline=False, now=NOW)
        transaction.record_hits(change.article_id, "cn", hits, NOW)

    assert store.due_channels(NOW) == {"mail", "hook"}
    mail = store.due_deliveries(NOW, channel="mail")
    assert [(due.rule_name, due.next_attempt_at) for due in mail] == [
        ("korea-japan", NOW),
        ("forced-labour", NOW),
    ]
    assert {due.articles[0].article_id for due in mail} == {change.article_id}
    later = NOW.replace(hour=9)
    ids = [due.delivery_id for due in mail]

    store.mark_attempt_failed(ids, "refused", later, sent_services=[1])

    assert store.due_channels(NOW) == {"hook"}
    assert store.due_channels(NOW, ignore_backoff=True) == {"mail", "hook"}
    again = store.due_deliveries(later, channel="mail")
    assert [(d.attempts, d.sent_services, d.next_attempt_at) for d in again] == [
        (1, frozenset({1}), later),
        (1, frozenset({1}), later),
    ]
    store.mark_sent(ids, later, sent_services=[0, 1])
    assert store.due_deliveries(later, channel="mail", ignore_backoff=True) == []
    assert store.delivery_counts() == {"pending": 1, "held": 0, "sent": 2, "failed": 0}


def test_transaction_from_many_threads_stores_each_article_once(store: Store) -> None:
    articles = _cn_articles()
    errors: list[BaseException] = []

    def poll(feed_name: str) -> None:
        try:
            with store.transaction() as transaction:
                transaction.upsert_articles(feed_name, articles, baseline=False, now=NOW)
        except BaseException as error:  # noqa: BLE001 - collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=poll, args=(f"feed-{n}",)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert store.article_count() == 2


def test_store_with_unusable_path_raises_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")

    with pytest.raises(StoreError):
        store = Store(f"sqlite:///{blocker}/monitor.db")
        store.create_schema()


def _index_definition(store: Store, name: str) -> str:
    """The index's DDL as the database keeps it."""
    with store.engine.connect() as connection:
        if store.engine.dialect.name == "postgresql":
            query = "SELECT indexdef FROM pg_indexes WHERE indexname = %(name)s"
        else:
            query = "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = :name"
        return connection.exec_driver_sql(query, {"name": name}).scalar_one()


def test_create_schema_makes_partial_indexes_partial_on_every_database(store: Store) -> None:
    # Declared with sqlite_where only; PostgreSQL gets the same condition at create_schema.
    unpruned = _index_definition(store, "ix_article_unpruned_first_seen")
    open_batch = _index_definition(store, "uq_delivery_open_batch")

    assert "WHERE" in unpruned.upper() and "pruned_at IS NULL" in unpruned
    assert "WHERE" in open_batch.upper() and "held" in open_batch


def test_feed_states_reads_each_feed_as_feed_state_does(store: Store) -> None:
    polled = datetime(2026, 11, 26, 12, 0, 5, 250_000, tzinfo=UTC)
    with store.transaction() as transaction:
        transaction.update_feed_state(
            "cn",
            "https://www.rfi.fr/cn/rss",
            etag='"v1"',
            last_poll_at=polled,
            error_streak=2,
            item_digests=bytes(range(32)),
        )
        transaction.update_feed_state("tw", "https://www.rfi.fr/tw/rss", baseline_done=True)

    states = store.feed_states()

    assert states == {"cn": store.feed_state("cn"), "tw": store.feed_state("tw")}
    assert states["cn"].last_poll_at == polled  # an aware UTC datetime on both databases
    assert (states["cn"].etag, states["cn"].error_streak) == ('"v1"', 2)
    assert states["cn"].item_digests == bytes(range(32))
    assert states["tw"].baseline_done and states["tw"].last_poll_at is None


def test_clear_next_polls_clears_only_the_feeds_named(store: Store) -> None:
    scheduled = datetime(2026, 11, 26, 12, 5, tzinfo=UTC)
    with store.transaction() as transaction:
        transaction.update_feed_state("cn", "https://www.rfi.fr/cn/rss")
        transaction.update_feed_state("tw", "https://www.rfi.fr/tw/rss")
    store.set_next_poll("cn", scheduled)
    store.set_next_poll("tw", scheduled)
    assert store.feed_state("cn").next_poll_at == scheduled

    store.clear_next_polls(["cn"])

    assert store.feed_state("cn").next_poll_at is None
    assert store.feed_state("tw").next_poll_at == scheduled


def test_commits_leave_the_log_to_checkpoint_which_copies_it_into_the_file(
    tmp_path: Path,
) -> None:
    # The daemon checkpoints on its housekeeping thread (Store.checkpoint); a commit only
    # does once the log is SQLITE_AUTOCHECKPOINT_PAGES long.
    database = tmp_path / "monitor.db"
    store = Store(f"sqlite:///{database}")
    try:
        store.create_schema()
        with store.transaction() as transaction:
            transaction.upsert_articles("cn", _cn_articles(), baseline=False, now=NOW)
        file_before = database.stat().st_size
        assert file_before <= 4096  # the header page: every other page is in the log
        assert Path(f"{database}-wal").stat().st_size > 0
        connection = store.engine.raw_connection()
        try:
            (pages,) = connection.cursor().execute("PRAGMA wal_autocheckpoint").fetchone()
        finally:
            connection.close()
        assert pages == SQLITE_AUTOCHECKPOINT_PAGES

        store.checkpoint()

        assert database.stat().st_size > file_before
        assert store.article_count() == len(_cn_articles())
    finally:
        store.close()


def test_checkpoint_is_nothing_on_a_read_only_store(tmp_path: Path) -> None:
    database = tmp_path / "monitor.db"
    writer = Store(f"sqlite:///{database}")
    writer.create_schema()
    reader = Store(f"sqlite:///{database}", read_only=True)
    try:
        reader.checkpoint()
        assert reader.article_count() == 0
    finally:
        reader.close()
        writer.close()
