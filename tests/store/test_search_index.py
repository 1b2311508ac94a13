"""The search index in the store (monitor.store.search), on a real SQLite file and on the
local PostgreSQL server (the `store` fixture): every article stored or edited is pending
until the indexer takes it into the index; a pruned one leaves both."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from monitor.matching import index_query, parse_query
from monitor.model import Article
from monitor.store import Store
from monitor.store.tables import SearchIndexStateRow, table_of

NOW = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)


def _article(key: str, title: str, summary: str = "") -> Article:
    return Article(
        guid=key,
        link=f"https://example.org/{key}",
        canonical_link=None,
        title=title,
        summary=summary,
        content="",
        published=NOW,
        content_hash=f"{key}:{title}:{summary}",
    )


def _store(
    store: Store, feed: str, articles: list[Article], when: datetime = NOW, *, index: bool = True
) -> list[int]:
    """Store articles as a poll does; then, with `index`, run the indexer until none waits."""
    with store.transaction() as transaction:
        changes, _ = transaction.upsert_articles(feed, articles, baseline=False, now=when)
    while index and store.index_pending():
        pass
    return [change.article_id for change in changes]


def _candidates(store: Store, query: str, **options) -> list[int]:
    wanted = index_query(parse_query(query))
    assert wanted is not None
    arguments = {"since": None, "feed": None, "below_id": None, "limit": 100, **options}
    return store.search_candidates(wanted, **arguments)


def test_stored_articles_are_found_by_their_terms_newest_first(store: Store) -> None:
    first, second = _store(
        store, "cn", [_article("a", "韩日副外长级战略对话"), _article("b", "美国关税")]
    )
    (third,) = _store(store, "tw", [_article("c", "韓日外長會談")])

    assert _candidates(store, "韩日") == [third, first]
    assert _candidates(store, "關稅") == [second]
    assert _candidates(store, "韩日 AND 会谈") == [third]
    assert _candidates(store, "劳工") == []
    assert store.articles_to_index() == 0


def test_a_stored_article_is_pending_until_indexed(store: Store) -> None:
    (article_id,) = _store(store, "cn", [_article("a", "韩日对话")], index=False)

    assert store.articles_to_index() == 1
    assert _candidates(store, "韩日") == []
    assert store.pending_article_ids(below_id=None, limit=10) == [article_id]

    assert store.index_pending() == 1
    assert _candidates(store, "韩日") == [article_id]
    assert store.pending_article_ids(below_id=None, limit=10) == []


def test_candidates_page_by_id_and_filter_by_feed_and_time(store: Store) -> None:
    old = _store(store, "cn", [_article("a", "韩日一")], NOW - timedelta(days=3))
    cn = _store(store, "cn", [_article("b", "韩日二"), _article("c", "韩日三")])
    tw = _store(store, "tw", [_article("d", "韩日四")])
    newest_first = sorted(old + cn + tw, reverse=True)

    assert _candidates(store, "韩日", limit=2) == newest_first[:2]
    assert _candidates(store, "韩日", below_id=newest_first[1]) == newest_first[2:]
    assert _candidates(store, "韩日", feed="cn") == sorted(old + cn, reverse=True)
    assert _candidates(store, "韩日", since=NOW - timedelta(days=1)) == newest_first[:3]


def test_an_edited_article_is_found_by_its_new_text_only(store: Store) -> None:
    (article_id,) = _store(store, "cn", [_article("a", "美国关税", "暂缓加征")])
    _store(store, "cn", [_article("a", "美国关税", "宣布上调")], index=False)
    # Out of the index until indexed again (searches read it in full meanwhile).
    assert _candidates(store, "关税") == []
    assert store.articles_to_index() == 1
    while store.index_pending():
        pass

    assert _candidates(store, "上调") == [article_id]
    assert _candidates(store, "加征") == []
    assert _candidates(store, "关税") == [article_id]


def test_an_article_edited_twice_before_indexing_is_indexed_once(store: Store) -> None:
    (article_id,) = _store(store, "cn", [_article("a", "美国关税", "暂缓加征")], index=False)
    _store(store, "cn", [_article("a", "美国关税", "宣布上调")], index=False)
    _store(store, "cn", [_article("a", "美国关税", "再度下调")])

    assert _candidates(store, "下调") == [article_id]
    assert _candidates(store, "上调") == []


def test_a_pruned_article_is_not_found_nor_pending(store: Store) -> None:
    (old,) = _store(store, "cn", [_article("a", "韩日旧闻")], NOW - timedelta(days=40))
    _store(store, "cn", [_article("p", "韩日旧的待索引")], NOW - timedelta(days=40), index=False)
    (new,) = _store(store, "cn", [_article("b", "韩日新闻")], index=False)

    store.prune_articles(NOW - timedelta(days=30))
    while store.index_pending():
        pass

    assert _candidates(store, "韩日") == [new]
    assert old < new
    assert store.articles_to_index() == 0


def test_a_rebuilt_index_is_filled_in_batches_newest_first(store: Store) -> None:
    ids = _store(store, "cn", [_article(f"k{number}", f"韩日第{number}号") for number in range(5)])
    store.rebuild_search_index()  # as after a copy: every article pending
    assert _candidates(store, "韩日") == []
    assert store.articles_to_index() == 5

    assert store.index_pending(batch_articles=2) == 2
    assert _candidates(store, "韩日") == sorted(ids, reverse=True)[:2]
    while store.index_pending(batch_articles=2):
        pass

    assert _candidates(store, "韩日") == sorted(ids, reverse=True)
    assert store.articles_to_index() == 0


def test_an_index_made_by_another_version_is_rebuilt(store: Store) -> None:
    ids = _store(store, "cn", [_article("a", "韩日对话"), _article("b", "关税")])
    with store.engine.begin() as connection:
        connection.execute(
            table_of(SearchIndexStateRow).update().values(tokens_version="0/older tokens")
        )
    # Its tokens would not match this version's queries: searches do not read it.
    assert not store.search_index_ready()

    while store.index_pending():
        pass

    assert store.search_index_ready()
    assert _candidates(store, "韩日") == [ids[0]]


def test_a_new_database_has_an_empty_index_and_nothing_pending(store: Store) -> None:
    assert store.search_index_ready()
    assert store.articles_to_index() == 0
    with store.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM article_search")).scalar() == 0


def test_a_database_from_before_the_index_gets_it_with_every_article_pending(
    store: Store,
) -> None:
    ids = _store(store, "cn", [_article("a", "韩日对话"), _article("b", "韩日会谈")])
    # The database as the version before the index left it: no index, no step 8.
    with store.engine.begin() as connection:
        for table in ("article_search", "search_pending", "search_index_state"):
            connection.execute(text(f"DROP TABLE {table}"))
        connection.execute(
            text("DELETE FROM schema_migration WHERE name = :name"),
            {"name": "create the search index"},
        )
    assert not store.schema_is_current()

    store.create_schema()

    assert store.search_index_ready()
    assert store.articles_to_index() == 2
    while store.index_pending():
        pass
    assert _candidates(store, "韩日") == sorted(ids, reverse=True)


def test_articles_an_older_version_stored_are_queued_and_edits_of_them_are_safe(
    store: Store,
) -> None:
    (indexed,) = _store(store, "cn", [_article("a", "韩日对话")])
    # Two articles written as a version without the index writes them: neither indexed
    # nor pending.
    orphans = _store(
        store, "cn", [_article("b", "韩日旧闻"), _article("c", "韩日会谈")], index=False
    )
    with store.engine.begin() as connection:
        connection.execute(text("DELETE FROM search_pending"))
    # An edit of one must not ask the index to remove what it never held (on SQLite that
    # would corrupt it): the edited article is simply queued.
    _store(store, "cn", [_article("b", "韩日旧闻", "补充")], index=False)
    assert store.articles_to_index() == 1

    assert store.queue_unindexed_articles() == 1  # the other one
    assert store.queue_unindexed_articles() == 0
    while store.index_pending():
        pass

    assert _candidates(store, "韩日") == sorted([indexed, *orphans], reverse=True)
    assert _candidates(store, "补充") == [orphans[0]]
