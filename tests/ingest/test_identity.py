"""Article identity: guids, links with fragments, and stores written before fragments counted.

The rule (monitor.ingest.identity): the same feed and the same non-empty guid, or the same canonical
link from any feed, unless one feed gave the two items different guids. A link's fragment
is part of it (`page#post-2`), a tracking fragment (`#xtor=...`) is not.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import feedparser
import pytest
from feeds import Item, rss
from sqlalchemy import insert, select, update
from test_parse_equivalence import ref_article_from_entry
from texts import distinct_text

from monitor.ingest.identity import (
    ItemKeys,
    New,
    Stored,
    StoredFacts,
    UpgradePoll,
    assign,
    facts_needed,
    item_keys,
    lookup_keys,
)
from monitor.ingest.known_items import known_digests, split_items
from monitor.ingest.parse import canonical_link
from monitor.ingest.parse_pool import ParseRequest
from monitor.model import Article
from monitor.service.configuration import load_config
from monitor.service.daemon import Monitor
from monitor.service.pipeline import _parse_context
from monitor.store import Store
from monitor.store.tables import ArticleKeyRow, ArticleRow, FeedArticleRow

KOREA_JAPAN = {"name": "korea-japan", "any": ["韩日"], "notify": ["hook"]}
LIVE_PAGE = "https://www.rfi.fr/cn/live/20261201-korea-japan"
COMMENTS_PAGE = "https://blog.example.org/2026/korea-japan"
RSS_CONTENT_TYPE = "application/rss+xml; charset=utf-8"  # what tests/feed_server.py sends


def _post(number: int, *, guid: bool, published: datetime, title: str | None = None) -> Item:
    page = LIVE_PAGE if guid else COMMENTS_PAGE
    anchor = "post" if guid else "comment"
    lead = f"韩日外长会谈，第{number}条更新。" if guid else "一位读者就韩日会谈写道："
    return Item(
        title or (f"韩日会谈直播 第{number}条" if guid else f"读者留言：韩日会谈 第{number}则"),
        link=f"{page}#{anchor}-{number}",
        guid=f"live-{number}" if guid else None,
        # Each post its own story (grouping would give a post and a comment one alert): the
        # title, the lead and the rest of the text differ.
        description=f"<p>{lead}{distinct_text(f'{anchor}-{number}')}</p>",
        published=published,
    )


@pytest.fixture
def make_monitor(write_config, hook):
    created: list[Monitor] = []

    def make(*, feeds, rules=(KOREA_JAPAN,), **top_level) -> Monitor:
        path = write_config(
            feeds=feeds,
            channels={"hook": hook.json_url("/alerts")},
            rules=list(rules),
            **top_level,
        )
        monitor = Monitor(load_config(path))
        created.append(monitor)
        return monitor

    yield make
    for monitor in created:
        monitor.close()


# --- through the pipeline ------------------------------------------------------------------


def test_run_once_live_blog_posts_with_their_own_guids_are_articles_that_alert(
    server, hook, make_monitor
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    first = _post(1, guid=True, published=now - timedelta(minutes=5))
    server.add_feed("/live", rss([first]))
    monitor = make_monitor(feeds={"live": server.url("/live")})
    monitor.run_once()  # the baseline
    second = _post(2, guid=True, published=now)
    server.add_feed("/live", rss([second, first]))

    (poll,) = monitor.run_once().polls

    assert (poll.items, poll.new_items, poll.new_articles, poll.matches) == (2, 1, 1, 1)
    (request,) = hook.requests
    assert request.json["title"] == f"[korea-japan] {second.title}"
    assert f"{LIVE_PAGE}#post-2" in request.json["message"]
    titles = sorted(article.title for article, _ in monitor.store.stored_articles())
    assert titles == sorted([first.title, second.title])  # the first post kept its text


def test_run_once_posts_without_guids_are_one_article_only_with_the_same_link(
    server, hook, make_monitor
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    first = _post(1, guid=False, published=now - timedelta(minutes=5))
    server.add_feed("/comments", rss([first]))
    monitor = make_monitor(feeds={"comments": server.url("/comments")})
    monitor.run_once()  # the baseline
    second = _post(2, guid=False, published=now)
    server.add_feed("/comments", rss([second, first]))
    (poll,) = monitor.run_once().polls
    assert (poll.new_items, poll.new_articles) == (1, 1)
    # The same link again, fragment included, with its text edited: the same article.
    edited = replace(second, description="<p>韩日外长会谈，第2条更新（修订）。</p>")
    server.add_feed("/comments", rss([edited, first]))

    (poll,) = monitor.run_once().polls

    assert (poll.new_items, poll.new_articles) == (0, 0)
    assert len(hook.requests) == 1
    assert monitor.store.article_count() == 2


def test_run_once_tracking_parameters_and_fragments_are_no_part_of_the_link(
    server, hook, make_monitor
) -> None:
    server.add_feed("/cn", rss([]))
    server.add_feed("/asia", rss([]))
    monitor = make_monitor(feeds={"cn": server.url("/cn"), "asia": server.url("/asia")})
    monitor.run_once()
    link = "https://www.rfi.fr/cn/20261201-korea-japan"
    tracked = f"{link}?utm_source=rss&utm_medium=feed#xtor=RSS-1"
    server.add_feed("/cn", rss([Item("韩日外长会谈", link=tracked, guid="cn-1")]))
    server.add_feed("/asia", rss([Item("韩日外长会谈", link=f"{link}?at_medium=x", guid="a-1")]))

    monitor.run_once()

    (request,) = hook.requests  # one article, one alert
    assert monitor.store.article_count() == 1
    message = request.json["message"]
    assert link in message  # the link as stored: without what only tracks the reader
    assert not any(part in message for part in ("utm_", "xtor", "at_medium"))


# --- a store written before fragments counted ---------------------------------------------
#
# The code before this identity, frozen: its identity keys and its upsert, as it wrote them
# (store.py at the time). Never "fix" it: it is what users' databases hold.


def _old_key(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode("utf-8")).hexdigest()


def _old_identity_keys(feed_name: str, article: Article) -> list[str]:
    keys = []
    if article.guid:
        keys.append(_old_key("guid", feed_name, article.guid))
    if article.canonical_link:
        keys.append(_old_key("link", article.canonical_link))
    if not keys:
        keys.append(_old_key("hash", feed_name, article.fallback_key))
    return keys


def _old_upsert(
    store: Store, feed_name: str, articles: Sequence[Article], *, baseline: bool, now: datetime
) -> None:
    """StoreTransaction.upsert_articles as it was, less the rule matching it fed."""
    with store.engine.begin() as connection:
        keys_per_item = [_old_identity_keys(feed_name, article) for article in articles]
        wanted = [key for keys in keys_per_item for key in keys]
        known = dict(
            connection.execute(
                select(ArticleKeyRow.key, ArticleKeyRow.article_id).where(
                    ArticleKeyRow.key.in_(wanted)
                )
            ).all()
        )
        new_articles: list[Article] = []
        new_index_by_key: dict[str, int] = {}
        targets: list[tuple[int | None, int | None]] = []
        for article, keys in zip(articles, keys_per_item, strict=True):
            known_id = next((known[key] for key in keys if key in known), None)
            if known_id is not None:
                targets.append((known_id, None))
                continue
            index = next((new_index_by_key[key] for key in keys if key in new_index_by_key), None)
            if index is None:
                index = len(new_articles)
                new_articles.append(article)
            for key in keys:
                new_index_by_key.setdefault(key, index)
            targets.append((None, index))
        new_ids = [
            connection.execute(
                insert(ArticleRow.__table__)
                .values(
                    first_feed=feed_name,
                    first_seen_at=now,
                    updated_at=now,
                    baseline=baseline,
                    **_old_columns(article),
                )
                .returning(ArticleRow.__table__.c.id)
            ).scalar_one()
            for article in new_articles
        ]
        article_ids = [
            known_id if known_id is not None else new_ids[index]  # type: ignore[index]
            for known_id, index in targets
        ]
        for key, article_id in {
            key: article_id
            for keys, article_id in zip(keys_per_item, article_ids, strict=True)
            for key in keys
            if key not in known
        }.items():
            connection.execute(
                insert(ArticleKeyRow.__table__).values(key=key, article_id=article_id)
            )
        hashes = dict(connection.execute(select(ArticleRow.id, ArticleRow.content_hash)).all())
        for (known_id, _), article in zip(targets, articles, strict=True):
            if known_id is not None and hashes[known_id] != article.content_hash:
                connection.execute(
                    update(ArticleRow.__table__)
                    .where(ArticleRow.__table__.c.id == known_id)
                    .values(updated_at=now, **_old_columns(article))
                )
                hashes[known_id] = article.content_hash
        linked = set(
            connection.execute(
                select(FeedArticleRow.article_id).where(FeedArticleRow.feed_name == feed_name)
            ).scalars()
        )
        for article_id in dict.fromkeys(article_ids):
            if article_id not in linked:
                connection.execute(
                    insert(FeedArticleRow.__table__).values(
                        feed_name=feed_name, article_id=article_id, first_seen_at=now
                    )
                )


def _old_columns(article: Article) -> dict[str, object]:
    return {
        "title": article.title,
        "link": article.link,
        "canonical_link": article.canonical_link,
        "summary": article.summary,
        "content": article.content,
        "author": article.author,
        "categories_json": "[]",
        "published_at": article.published,
        "content_hash": article.content_hash,
    }


def _old_poll(store: Store, feed_name: str, url: str, body: bytes, *, now: datetime) -> None:
    """One poll of the old code, as the pipeline made it: a baseline first; only the items
    the last body did not hold are parsed (known_items); then the feed state it left."""
    state = store.feed_state(feed_name)
    baseline = state is None or not state.baseline_done
    request = ParseRequest(body, content_type=RSS_CONTENT_TYPE, feed_url=url)
    split = split_items(body, context=_parse_context(request))
    known = known_digests(state.item_digests if state else None)
    parsed_body = split.without(known)[0] if split and known else body
    document = feedparser.parse(
        io.BytesIO(parsed_body),
        response_headers={"content-location": url, "content-type": RSS_CONTENT_TYPE},
        sanitize_html=False,
        resolve_relative_uris=False,
    )
    # parse_feed as it was (tests/test_parse_equivalence.py keeps it).
    articles = [ref_article_from_entry(entry, url) for entry in document.entries]
    _old_upsert(store, feed_name, articles, baseline=baseline, now=now)
    with store.transaction() as transaction:
        transaction.update_feed_state(
            feed_name,
            url,
            last_poll_at=now,
            last_success_at=now,
            http_status=200,
            baseline_done=True,
            last_item_count=len(articles),
            body_hash=hashlib.sha256(body).hexdigest(),
            item_digests=split.digest_blob() if split else None,
        )


def _titles_by_link(store: Store) -> dict[str, str]:
    return {article.link or "": article.title for article, _ in store.stored_articles()}


def test_run_once_after_the_upgrade_alerts_new_posts_only(
    store: Store, server, hook, make_monitor
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    live = [_post(n, guid=True, published=now - timedelta(minutes=9 - n)) for n in (1, 2)]
    comments = [_post(n, guid=False, published=now - timedelta(minutes=9 - n)) for n in (1, 2)]
    live_url, comments_url = server.url("/live"), server.url("/comments")
    # The old code's polls: the live blog's first one (its posts merged into one article),
    # the comment feed's first one and then the second comment (merged: it overwrote the
    # first one's text and link).
    _old_poll(store, "live", live_url, rss(live[::-1]), now=now - timedelta(minutes=3))
    _old_poll(store, "comments", comments_url, rss(comments[:1]), now=now - timedelta(minutes=3))
    _old_poll(store, "comments", comments_url, rss(comments[::-1]), now=now - timedelta(minutes=2))
    assert store.article_count() == 2
    old_titles = _titles_by_link(store)
    # The tables as that version made them: without what identity records now, nor the
    # record of schema steps.
    with store.engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE schema_migration")
        connection.exec_driver_sql("ALTER TABLE feed_state DROP COLUMN identity_version")
        connection.exec_driver_sql("ALTER TABLE feed_article DROP COLUMN guid_given")
    # The same feeds again, each with one post never seen.
    live_3 = _post(3, guid=True, published=now)
    comment_3 = _post(3, guid=False, published=now)
    server.add_feed("/live", rss([live_3, *live[::-1]]))
    server.add_feed("/comments", rss([comment_3, *comments[::-1]]))
    monitor = make_monitor(
        feeds={"live": live_url, "comments": comments_url}, database=store.database_url
    )

    polls = {poll.feed_name: poll for poll in monitor.run_once().polls}

    for poll in polls.values():
        assert (poll.items, poll.new_items, poll.new_articles, poll.matches) == (3, 1, 1, 1)
    assert sorted(request.json["title"] for request in hook.requests) == sorted(
        f"[korea-japan] {post.title}" for post in (live_3, comment_3)
    )
    # The old articles keep their text; the posts merged into them are articles of their own.
    titles = _titles_by_link(monitor.store)
    assert {link: titles[link] for link in old_titles} == old_titles
    assert titles[f"{LIVE_PAGE}#post-2"] == live[1].title
    assert titles[f"{COMMENTS_PAGE}#comment-1"] == comments[0].title

    # Later: every old post edited, and the same new ones. Nothing is new, nothing alerts,
    # and each edit lands on its own post.
    def edited(post: Item) -> Item:
        return replace(post, title=f"{post.title}（更新）")

    server.add_feed("/live", rss([live_3, *map(edited, live[::-1])]))
    server.add_feed("/comments", rss([comment_3, *map(edited, comments[::-1])]))
    polls = {poll.feed_name: poll for poll in monitor.run_once().polls}

    for poll in polls.values():
        assert (poll.new_items, poll.new_articles, poll.matches) == (0, 0, 0)
    assert len(hook.requests) == 2
    titles = _titles_by_link(monitor.store)
    for post in (*live, *comments):
        assert titles[post.link or ""] == edited(post).title
    assert monitor.store.article_count() == 6


def test_run_once_after_the_upgrade_plain_text_titles_neither_make_articles_new_nor_alert(
    store: Store, server, hook, make_monitor
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    # Read as HTML before: "History of the tag", which no rule for <blink> could match.
    with_guid = Item("History of the <blink> tag", guid="blink-1", published=now)
    without_guid_or_link = Item("The <marquee> 韩日 tag", published=now - timedelta(minutes=1))
    items = [with_guid, without_guid_or_link]
    url = server.url("/markup")
    _old_poll(store, "markup", url, rss([]), now=now - timedelta(minutes=3))
    _old_poll(store, "markup", url, rss(items), now=now - timedelta(minutes=2))
    server.add_feed("/markup", rss(items, title="Markup (rebuilt)"))
    rules = [{"name": "markup", "any": ["blink", "marquee"], "notify": ["hook"]}]
    monitor = make_monitor(feeds={"markup": url}, database=store.database_url, rules=rules)

    (poll,) = monitor.run_once().polls

    assert (poll.items, poll.new_items, poll.new_articles, poll.matches) == (2, 0, 0, 0)
    assert hook.requests == []
    # The stored text is the feed's now, for what comes later.
    stored = sorted(article.title for article, _ in monitor.store.stored_articles())
    assert stored == sorted(item.title for item in items)


# --- the rule on its own -------------------------------------------------------------------


def _article(guid: str | None, link: str | None, title: str = "标题") -> Article:
    return Article(
        guid=guid,
        link=link,
        canonical_link=canonical_link(link) if link else None,
        title=title,
        summary="",
        content="",
        fallback_key=title,
    )


def _assign(
    articles: Sequence[Article],
    known: dict[str, int] | None = None,
    *,
    carried: dict[int, bool | None] | None = None,
    links: dict[int, str | None] | None = None,
    upgrade: UpgradePoll | None = None,
):
    items = [item_keys("feed", article) for article in articles]
    known = {key: value for key, value in (known or {}).items() if key in lookup_keys(items)}
    return assign(
        items, StoredFacts(known, carried=carried or {}, links=links or {}), upgrade=upgrade
    )


def _keys(article: Article) -> ItemKeys:
    return item_keys("feed", article)


def test_assign_different_guids_with_one_link_in_one_document_are_two_articles() -> None:
    assignment = _assign([_article("a", "https://e.org/p"), _article("b", "https://e.org/p")])

    assert assignment.targets == (New(0), New(1))
    assert assignment.guided == {New(0), New(1)}


def test_assign_no_guids_are_one_article_only_with_the_same_fragment() -> None:
    posts = [_article(None, f"https://e.org/p#{anchor}") for anchor in ("c1", "c2", "c1")]

    assert _assign(posts).targets == (New(0), New(1), New(0))


def test_assign_same_link_from_another_feed_is_the_stored_article_unless_guided_here() -> None:
    article = _article("g2", "https://e.org/p")
    link_key = _keys(article).link

    elsewhere = _assign([article], {link_key: 7}, carried={})
    here_without_guid = _assign([article], {link_key: 7}, carried={7: False})
    here_with_guid = _assign([article], {link_key: 7}, carried={7: True})

    assert elsewhere.targets == (Stored(7),) and elsewhere.newly_guided == set()
    assert here_without_guid.targets == (Stored(7),) and here_without_guid.newly_guided == {7}
    assert here_with_guid.targets == (New(0),)


def test_facts_needed_for_items_known_by_guid_or_new_is_nothing() -> None:
    known_item, new_item = _article("g1", "https://e.org/a#x"), _article("g2", "https://e.org/b")
    items = [_keys(known_item), _keys(new_item)]

    assert facts_needed(items, {items[0].guid: 1}, upgrade=None) == (set(), set())


def test_assign_link_without_fragment_stored_before_is_the_article_whose_link_it_is() -> None:
    post = _article(None, "https://e.org/p#c2")
    legacy = _keys(post).legacy_link
    assert legacy is not None

    same = _assign([post], {legacy: 3}, carried={3: None}, links={3: "https://e.org/p#c2"})
    other = _assign([post], {legacy: 3}, carried={3: None}, links={3: "https://e.org/p#c1"})

    assert same.targets == (Stored(3),)
    assert other.targets == (New(0),) and other.seen_before == set()


def test_assign_at_the_upgrade_takes_apart_what_the_old_identity_merged() -> None:
    kept, merged = _article("g1", "https://e.org/p#p1"), _article("g2", "https://e.org/p#p2")
    unguided = _article(None, "https://e.org/c#c2")
    new_post = _article(None, "https://e.org/c#c3")
    legacy = _keys(unguided).legacy_link
    known = {_keys(kept).guid: 1, _keys(merged).guid: 1, legacy: 2}
    facts = {"carried": {2: None}, "links": {1: "https://e.org/p#p1", 2: "https://e.org/c#c1"}}

    upgrade = _assign(
        [kept, merged, unguided, new_post],
        known,
        **facts,
        upgrade=UpgradePoll(unchanged_items=frozenset({0, 1, 2})),
    )
    unknown_document = _assign([new_post], known, **facts, upgrade=UpgradePoll())

    assert upgrade.targets == (Stored(1), New(0), New(1), New(2))
    assert upgrade.seen_before == {0, 1}  # not the post the last document did not hold
    assert upgrade.moved_keys == {_keys(merged).guid: New(0)}
    assert upgrade.newly_guided == {1}  # recorded at last
    assert unknown_document.seen_before == {0}  # as the old identity took it
