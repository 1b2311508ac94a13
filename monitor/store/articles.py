"""Articles: storing a feed's items under their identity keys (monitor.ingest.identity),
noticing edits, and reading stored articles back (`rules test`, backtests).

Identity: an item is a known article if its feed gave the same guid before, or if any feed
gave the same canonical link (unless its feed gave the two items different guids);
otherwise it is new. Each such key is a row of `article_key`, whose primary key makes the
database itself enforce the rule.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import bindparam, func, insert
from sqlmodel import col, select, update

from monitor.ingest import (
    Stored,
    StoredFacts,
    Target,
    UpgradePoll,
    assign,
    facts_needed,
    item_keys,
    lookup_keys,
)
from monitor.model import Article
from monitor.store.engine import StoreBase, serialise_identity
from monitor.store.search import queue_for_index, remove_from_index
from monitor.store.stories import (
    ArticleStory,
    StoryGrouping,
    StoryOfNew,
    StoryTransaction,
    queue_for_grouping,
    story_fingerprints,
    suppressions,
)
from monitor.store.tables import ArticleKeyRow, ArticleRow, FeedArticleRow, table_of


@dataclass(frozen=True)
class ArticleChange:
    """An article that rules must look at: new to the store, or known and edited."""

    article_id: int
    article: Article
    is_new: bool
    baseline: bool  # recorded by a baseline: never alerts
    story_id: int | None = None  # its story; None when grouping is off, or it has none
    story_started: bool = False  # it is its story's first article (just stored)


class ArticleQueries(StoreBase):
    """Store's queries on stored articles."""

    def article_count(self) -> int:
        with self._reading() as session:
            return session.exec(select(func.count()).select_from(ArticleRow)).one()

    def stored_articles(
        self, since: datetime | None = None, *, batch_size: int = 500
    ) -> Iterator[tuple[Article, tuple[str, ...]]]:
        """Given a time (or None for all), yield every stored article first seen at or after
        it, oldest first, with the names of the feeds that carried it (sorted).

        Rows are read `batch_size` at a time, each batch in its own short transaction, so
        the whole store never sits in memory and a running daemon is never locked out for
        long (a SQLite read here takes the write lock: see monitor.store.engine). Articles stored
        while this runs are included when they match. The Article has no guid (only the
        keys derived from it are stored) and no fallback key.
        """
        for batch in self._stored_batches(since, batch_size, with_stories=False):
            for article, feeds, _ in batch:
                yield article, feeds

    def stored_articles_in_stories(
        self, since: datetime | None = None, *, batch_size: int = 500
    ) -> Iterator[tuple[Article, tuple[str, ...], ArticleStory]]:
        """stored_articles(), each article with its story and the rules whose match of it
        sent nothing because its story had already alerted (ArticleStory)."""
        for batch in self._stored_batches(since, batch_size, with_stories=True):
            yield from batch

    def _stored_batches(
        self, since: datetime | None, batch_size: int, *, with_stories: bool
    ) -> Iterator[list[tuple[Article, tuple[str, ...], ArticleStory]]]:
        last_id = 0
        while True:
            statement = (
                select(ArticleRow)
                .where(col(ArticleRow.id) > last_id)
                .order_by(col(ArticleRow.id))
                .limit(batch_size)
            )
            if since is not None:
                statement = statement.where(col(ArticleRow.first_seen_at) >= since)
            with self._reading() as session:
                rows = session.exec(statement).all()
                if not rows:
                    return
                feeds: dict[int, list[str]] = {}
                for article_id, feed_name in session.exec(
                    select(FeedArticleRow.article_id, FeedArticleRow.feed_name).where(
                        col(FeedArticleRow.article_id).in_([row.id for row in rows])
                    )
                ).all():
                    feeds.setdefault(article_id, []).append(feed_name)
                suppressed = (
                    suppressions(session, [row.id or 0 for row in rows if row.story_id])
                    if with_stories
                    else {}
                )
                batch = [
                    (
                        _article_from_row(row),
                        tuple(sorted(feeds.get(row.id or 0, [row.first_feed]))),
                        ArticleStory(
                            row.id or 0,
                            row.story_id if with_stories else None,
                            suppressed.get(row.id or 0, {}),
                        ),
                    )
                    for row in rows
                ]
            yield batch
            last_id = rows[-1].id or last_id
            if len(rows) < batch_size:
                return

    def articles_to_store(
        self,
        feed_name: str,
        articles: Sequence[Article],
        *,
        upgrade: UpgradePoll | None = None,
    ) -> frozenset[int]:
        """Given a feed's items, return the indexes of those upsert_articles would take as
        changes now (new articles, and known ones whose text was edited), without storing
        anything. A writer between this and upsert_articles may change the answer; what is
        stored is decided by upsert_articles alone."""
        if not articles:
            return frozenset()
        with self._reading() as session:
            return ArticleTransaction(session).changes_among(feed_name, articles, upgrade)


class ArticleTransaction(StoryTransaction):
    """StoreTransaction's writes of articles."""

    def changes_among(
        self, feed_name: str, articles: Sequence[Article], upgrade: UpgradePoll | None
    ) -> frozenset[int]:
        """The indexes of the items upsert_articles would return as changes (see
        Store.articles_to_store); reads only."""
        items = [item_keys(feed_name, article) for article in articles]
        known = self._known_keys(lookup_keys(items))
        if not known:
            return frozenset(range(len(articles)))
        carried_ids, link_ids = facts_needed(items, known, upgrade=upgrade)
        facts = StoredFacts(
            known,
            carried=self._carried(feed_name, carried_ids),
            links=self._stored_links(link_ids),
        )
        assignment = assign(items, facts, upgrade=upgrade)
        stored_ids = {
            target.article_id for target in assignment.targets if isinstance(target, Stored)
        }
        hashes = (
            dict(
                self.session.exec(
                    select(ArticleRow.id, ArticleRow.content_hash)
                    .where(col(ArticleRow.id).in_(stored_ids))
                    .where(col(ArticleRow.pruned_at).is_(None))
                ).all()
            )
            if stored_ids
            else {}
        )
        changes = set()
        for index, target in enumerate(assignment.targets):
            if isinstance(target, Stored):
                stored_hash = hashes.get(target.article_id)
                quietly = upgrade is not None and upgrade.held_before(index)
                if stored_hash not in (None, articles[index].content_hash) and not quietly:
                    changes.add(index)
            # A new article taken apart from an old merge is stored as seen before: no change.
            elif target.index not in assignment.seen_before:
                changes.add(index)
        return frozenset(changes)

    def upsert_articles(
        self,
        feed_name: str,
        articles: Sequence[Article],
        *,
        baseline: bool,
        now: datetime,
        upgrade: UpgradePoll | None = None,
        stories: StoryGrouping | None = None,
    ) -> tuple[list[ArticleChange], int]:
        """Store a feed's items. Return (the changes rules must see, how many items were new
        to this feed). A change is a new article, or a known one whose text was edited.

        `stories`: group the new articles into stories as they are stored (see
        monitor.store.stories), baseline ones included; each change then names its story.
        None: no grouping.

        `upgrade`: the feed's items were last stored under an earlier identity (its feed
        state's identity_version is older than identity.IDENTITY_VERSION): see
        monitor.ingest.identity. The text of a known article an item the feed's last document held
        byte for byte gives anew is updated then, but not returned as a change: the same
        bytes read by a newer parser (plain-text fields kept as written) are no edit, and
        rules must not alert on an article stored before because of it.

        A few statements per feed, whatever its length: one lookup of every identity key,
        one multi-row insert of the new articles, one of their keys, one of the feed links;
        items known by their guid, or new by every key, need nothing more.
        """
        # What needs no stored fact is worked out before the lock that serialises storing
        # across instances (serialise_identity): the items' keys, and the fingerprints of
        # the parsed items, which are the new ones (all of them when the feed's identity
        # is being upgraded: those are fingerprinted once known to be new).
        items = [item_keys(feed_name, article) for article in articles]
        # A feed's first poll (a baseline) never alerts, so its articles need no story yet:
        # they wait in story_pending and are grouped in the background, many at a time
        # (Store.group_pending), and a first poll of a thousand feeds pays for storing only.
        group_now = stories is not None and not baseline
        fingerprints = story_fingerprints(articles) if group_now and upgrade is None else None
        serialise_identity(self.session)
        known = self._known_keys(lookup_keys(items))
        carried_ids, link_ids = facts_needed(items, known, upgrade=upgrade)
        facts = StoredFacts(
            known,
            carried=self._carried(feed_name, carried_ids),
            links=self._stored_links(link_ids),
        )
        assignment = assign(items, facts, upgrade=upgrade)

        new_articles = [articles[index] for index in assignment.new_items]
        seen_before = assignment.seen_before
        new_stories = (
            self._story_of_each(
                self._place_new_articles(
                    [fingerprints[index] for index in assignment.new_items]
                    if fingerprints is not None
                    else story_fingerprints(new_articles),
                    now,
                    stories,
                ),
                now,
            )
            if stories is not None and group_now and new_articles
            else None
        )
        new_ids = self._insert_articles(
            feed_name,
            new_articles,
            baselines=[baseline or index in seen_before for index in range(len(new_articles))],
            now=now,
            stories=new_stories,
        )
        queue_for_index(self.session, new_ids)
        if new_stories is not None:
            self._record_stories(
                new_ids, [article.title for article in new_articles], new_stories, now
            )
        elif stories is not None:
            queue_for_grouping(self.session, new_ids)

        def article_id(target: Target) -> int:
            if isinstance(target, Stored):
                return target.article_id
            return new_ids[target.index]

        self._insert_keys({key: article_id(target) for key, target in assignment.keys.items()})
        self._move_keys({key: article_id(target) for key, target in assignment.moved_keys.items()})
        changes = [
            ArticleChange(
                article_id_,
                article,
                is_new=True,
                baseline=baseline,
                story_id=story_id,
                story_started=started,
            )
            for index, (article_id_, article, (story_id, started)) in enumerate(
                zip(
                    new_ids,
                    new_articles,
                    [(None, False)] * len(new_ids)
                    if new_stories is None
                    else [(story.story_id, story.started) for story in new_stories],
                    strict=True,
                )
            )
            if index not in seen_before
        ]
        changes += self._update_edited(
            [
                (target.article_id, article, upgrade is not None and upgrade.held_before(index))
                for index, (target, article) in enumerate(
                    zip(assignment.targets, articles, strict=True)
                )
                if isinstance(target, Stored)
            ],
            now,
            stories,
        )
        linked = self._link_feed_articles(
            feed_name,
            {
                article_id(target): target in assignment.guided
                for target in dict.fromkeys(assignment.targets)
            },
            now,
        )
        self._record_guids_given(feed_name, assignment.newly_guided)
        taken_apart = {new_ids[index] for index in seen_before}
        return changes, sum(article_id_ not in taken_apart for article_id_ in linked)

    def _known_keys(self, keys: set[str]) -> dict[str, int]:
        if not keys:
            return {}
        rows = self.session.exec(
            select(ArticleKeyRow.key, ArticleKeyRow.article_id).where(
                col(ArticleKeyRow.key).in_(keys)
            )
        ).all()
        return dict(rows)

    def _carried(self, feed_name: str, article_ids: set[int]) -> dict[int, bool | None]:
        """Of these articles, those the feed carried, and whether it gave each a guid."""
        if not article_ids:
            return {}
        rows = self.session.exec(
            select(FeedArticleRow.article_id, FeedArticleRow.guid_given)
            .where(col(FeedArticleRow.feed_name) == feed_name)
            .where(col(FeedArticleRow.article_id).in_(article_ids))
        ).all()
        return dict(rows)

    def _stored_links(self, article_ids: set[int]) -> dict[int, str | None]:
        if not article_ids:
            return {}
        rows = self.session.exec(
            select(ArticleRow.id, ArticleRow.link).where(col(ArticleRow.id).in_(article_ids))
        ).all()
        return {article_id: link for article_id, link in rows if article_id is not None}

    def _record_guids_given(self, feed_name: str, article_ids: frozenset[int]) -> None:
        """Record that the feed gave these articles (which it carries) a guid."""
        if not article_ids:
            return
        table = table_of(FeedArticleRow)
        self.session.connection().execute(
            table.update()
            .where(table.c.feed_name == feed_name)
            .where(table.c.article_id.in_(article_ids))
            .values(guid_given=True)
        )

    def _insert_articles(
        self,
        feed_name: str,
        articles: list[Article],
        *,
        baselines: list[bool],
        now: datetime,
        stories: Sequence[StoryOfNew] | None = None,
    ) -> list[int]:
        """Insert articles (each recorded by a baseline or not, each with its story if
        grouped); return their ids in the same order."""
        if not articles:
            return []
        rows = [
            {
                "first_feed": feed_name,
                "first_seen_at": now,
                "updated_at": now,
                "baseline": baseline,
                **_article_columns(article),
            }
            for article, baseline in zip(articles, baselines, strict=True)
        ]
        if stories is not None:
            for row, story in zip(rows, stories, strict=True):
                row["story_id"] = story.story_id
                row["story_signature"] = story.fingerprint.signature
        table = table_of(ArticleRow)
        result = self._execute_many(
            insert(table).returning(table.c.id, sort_by_parameter_order=True), rows
        )
        return list(result.scalars())

    def _insert_keys(self, article_id_by_key: dict[str, int]) -> None:
        if not article_id_by_key:
            return
        self._execute_many(
            self._insert(table_of(ArticleKeyRow)).on_conflict_do_nothing(index_elements=["key"]),
            [{"key": key, "article_id": id_} for key, id_ in article_id_by_key.items()],
        )

    def _move_keys(self, article_id_by_key: dict[str, int]) -> None:
        """Point stored keys at another article (see identity: taking apart old merges)."""
        if not article_id_by_key:
            return
        table = table_of(ArticleKeyRow)
        self._execute_many(
            table.update()
            .where(table.c.key == bindparam("moved_key"))
            .values(article_id=bindparam("to_article")),
            [{"moved_key": key, "to_article": id_} for key, id_ in article_id_by_key.items()],
        )

    def _update_edited(
        self,
        items: list[tuple[int, Article, bool]],
        now: datetime,
        stories: StoryGrouping | None = None,
    ) -> list[ArticleChange]:
        """Update known articles whose text changed; return them as changes, but those
        given with True (updated quietly: see upsert_articles). With `stories`, an edited
        article keeps its story, with the fingerprint of its new text."""
        if not items:
            return []
        stored = {
            article_id: (content_hash, baseline)
            for article_id, content_hash, baseline in self.session.exec(
                select(ArticleRow.id, ArticleRow.content_hash, ArticleRow.baseline)
                .where(col(ArticleRow.id).in_({article_id for article_id, _, _ in items}))
                # A pruned article is past retention: its rule hits may be gone, so
                # matching an edit of it again could notify a rule a second time.
                .where(col(ArticleRow.pruned_at).is_(None))
            ).all()
        }
        edited = [
            article_id
            for article_id, article, _ in items
            if stored.get(article_id, (article.content_hash,))[0] != article.content_hash
        ]
        remove_from_index(self.session, edited)  # (while the text it was given is stored)
        changes = []
        updated: list[tuple[int, Article]] = []
        for article_id, article, quietly in items:
            content_hash, was_baseline = stored.get(article_id, (article.content_hash, False))
            if content_hash == article.content_hash:
                continue
            self.session.exec(
                update(ArticleRow)
                .where(col(ArticleRow.id) == article_id)
                .values(updated_at=now, **_article_columns(article))
            )
            stored[article_id] = (article.content_hash, was_baseline)
            updated.append((article_id, article))
            if not quietly:
                changes.append(
                    ArticleChange(article_id, article, is_new=False, baseline=was_baseline)
                )
        queue_for_index(self.session, [article_id for article_id, _ in updated])
        if stories is None or not updated:
            return changes
        story_of = self._refresh_fingerprints(updated, now, stories)
        return [replace(change, story_id=story_of.get(change.article_id)) for change in changes]

    def _link_feed_articles(
        self, feed_name: str, guid_given: dict[int, bool], now: datetime
    ) -> list[int]:
        """Insert-or-ignore (feed, article) rows, given {article id: whether the feed gave it
        a guid}; return the ids of the articles new to the feed."""
        if not guid_given:
            return []
        rows = [
            {
                "feed_name": feed_name,
                "article_id": article_id,
                "first_seen_at": now,
                "guid_given": given,
            }
            for article_id, given in guid_given.items()
        ]
        table = table_of(FeedArticleRow)
        inserted = self._execute_many(
            self._insert(table)
            .on_conflict_do_nothing(index_elements=["feed_name", "article_id"])
            .returning(table.c.article_id),
            rows,
        )
        return list(inserted.scalars())


def _article_columns(article: Article) -> dict[str, object]:
    return {
        "title": article.title,
        "link": article.link,
        "canonical_link": article.canonical_link,
        "summary": article.summary,
        "content": article.content,
        "author": article.author,
        "categories_json": json.dumps(list(article.categories), ensure_ascii=False),
        "published_at": article.published,
        "content_hash": article.content_hash,
    }


def _article_from_row(row: ArticleRow) -> Article:
    """Given a stored article row, return the Article it was stored from (less its guid)."""
    return Article(
        guid=None,
        link=row.link,
        canonical_link=row.canonical_link,
        title=row.title,
        summary=row.summary,
        content=row.content,
        author=row.author,
        categories=tuple(json.loads(row.categories_json or "[]")),
        published=row.published_at,
        content_hash=row.content_hash,
    )
