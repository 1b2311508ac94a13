"""Stories: grouping each new article with the stored articles that report the same news,
when it is stored, and reading stories back (`news-monitor stories`).

How an article finds its story. Its fingerprint (monitor.stories) has band keys; every
grouped article's are rows of `story_band`, keyed by band key and its story's first-seen
time. The candidates of a new article are the articles that share a band key with it and
whose story's first article was first seen within the window: a range of that index, not
a scan of the window. The few that share the most keys are compared with it; it joins the
story of the most similar one if that one is alike enough (StoryGrouping.similarity),
else it starts a story of its own. The new articles of one poll are grouped together: one
lookup for all of them, and each also sees the ones before it in the poll.

A story never changes: articles are never moved to another story (an edit keeps its
article's story, only its fingerprint is refreshed), and stories never merge.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import bindparam, delete, func, insert
from sqlalchemy import select as core_select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import aliased
from sqlalchemy.sql.dml import Insert
from sqlmodel import Session, col, select

from monitor.config import DEFAULT_STORY_WINDOW_SECONDS
from monitor.model import Article
from monitor.store.engine import StoreBase, TransactionBase, aware, serialise_identity
from monitor.store.tables import (
    ArticleRow,
    DeliveryItemRow,
    RuleHitRow,
    StoryBandRow,
    StoryPendingRow,
    StoryRow,
    table_of,
)
from monitor.stories import DEFAULT_SIMILARITY, StoryFingerprint, fingerprint, similarity

# The candidates of a new article compared with it: those sharing the most band keys. An
# article of the same story shares many; a handful of boilerplate sentences (a byline, a
# "share" line) must not make a crowd of unrelated articles into candidates.
CANDIDATES_PER_ARTICLE = 24
# Band keys (or articles) looked up in one statement: well within every database's limit
# of parameters.
KEYS_PER_LOOKUP = 2000
# Articles of story_pending grouped in one transaction: enough that their band rows share
# the index pages they land on, few enough that storing waits little (about a tenth of a
# second of the lock that storing takes too).
GROUP_BATCH_ARTICLES = 100


@dataclass(frozen=True)
class StoryGrouping:
    """How new articles are grouped (the configuration's `stories:`): an article joins a
    story whose first article was first seen at most `window_seconds` before it, if it is
    at least `similarity` alike (0 to 1) to one of the story's articles."""

    window_seconds: float = DEFAULT_STORY_WINDOW_SECONDS
    similarity: float = DEFAULT_SIMILARITY


@dataclass(frozen=True)
class StoryPlace:
    """Where a new article of a poll goes: a stored story (story_id), the story started by
    an earlier new article of the same poll (with_new: its index), or a story of its own
    (neither)."""

    fingerprint: StoryFingerprint
    story_id: int | None = None
    with_new: int | None = None
    story_first_seen_seconds: int | None = None  # a stored story's


@dataclass(frozen=True)
class StoryOfNew:
    """A new article's story, known before the article is inserted: its id (taken for a
    story the article starts), whether the article starts it, its first-seen time (Unix
    seconds), and the article's fingerprint."""

    story_id: int
    started: bool
    first_seen_seconds: int
    fingerprint: StoryFingerprint


@dataclass(frozen=True)
class ArticleStory:
    """A stored article's story, and the rules whose match of it sent nothing because its
    story had already alerted: {rule name: the link of the article whose alert did}."""

    article_id: int
    story_id: int | None
    suppressed_by: dict[str, str]


@dataclass(frozen=True)
class StoryArticle:
    """One article of a story as `news-monitor stories` shows it."""

    feed_name: str  # the feed that first carried it
    title: str
    link: str | None
    published: datetime | None
    first_seen: datetime


@dataclass(frozen=True)
class StoryRecord:
    story_id: int
    first_seen: datetime
    title: str
    articles: tuple[StoryArticle, ...]  # in the order they were first seen


class StoryTransaction(TransactionBase):
    """StoreTransaction's grouping of articles into stories (see the module docstring)."""

    def _place_new_articles(
        self, fingerprints: Sequence[StoryFingerprint], now: datetime, grouping: StoryGrouping
    ) -> list[StoryPlace]:
        """Given the fingerprints of a poll's new articles, in order, return where each
        goes."""
        window_start = _seconds(now - timedelta(seconds=grouping.window_seconds))
        stored, first_seen_of = self._stored_bands(
            {key for each in fingerprints for key in each.band_keys}, window_start
        )
        shortlists = [_shortlist(each.band_keys, stored) for each in fingerprints]
        known = self._grouped_articles(
            {article for each in shortlists for article in each}, first_seen_of
        )
        batch_bands: dict[int, list[int]] = {}
        places: list[StoryPlace] = []
        for index, mine in enumerate(fingerprints):
            # (similarity, a stored story first, the older story first) of each candidate.
            best: tuple[float, int, int] | None = None
            best_place = StoryPlace(mine)
            for article_id in shortlists[index]:
                story_id, first_seen_seconds, theirs = known[article_id]
                ranking = (similarity(mine, theirs), 1, -story_id)
                if best is None or ranking > best:
                    best = ranking
                    best_place = StoryPlace(mine, story_id, None, first_seen_seconds)
            earlier = {other for key in mine.band_keys for other in batch_bands.get(key, ())}
            for other in sorted(earlier):
                ranking = (similarity(mine, fingerprints[other]), 0, -other)
                if best is None or ranking > best:
                    best = ranking
                    place = places[other]
                    best_place = (
                        StoryPlace(mine, with_new=other)
                        if place.story_id is None and place.with_new is None
                        else StoryPlace(
                            mine, place.story_id, place.with_new, place.story_first_seen_seconds
                        )
                    )
            places.append(
                best_place if best and best[0] >= grouping.similarity else StoryPlace(mine)
            )
            for key in set(mine.band_keys):
                batch_bands.setdefault(key, []).append(index)
        return places

    def _stored_bands(
        self, keys: set[int], window_start: int
    ) -> tuple[dict[int, list[int]], dict[int, int]]:
        """Given band keys, return {key: the articles that have it} among the articles of
        stories first seen since window_start (Unix seconds), and {article: its story's
        first-seen time}."""
        found: dict[int, list[int]] = {}
        first_seen_of: dict[int, int] = {}
        ordered = sorted(keys)
        connection = self.session.connection()
        if connection.dialect.name == "postgresql":
            # One array parameter: the driver parses a statement of a thousand
            # placeholders anew each time (5 ms a baseline poll), while storing waits.
            rows = connection.exec_driver_sql(
                "SELECT band_key, article_id, story_first_seen_seconds FROM story_band "
                "WHERE story_first_seen_seconds >= %s AND band_key = ANY(%s::bigint[])",
                (window_start, ordered),
            )
            for key, article_id, first_seen in rows:
                found.setdefault(key, []).append(article_id)
                first_seen_of[article_id] = first_seen
            return found, first_seen_of
        marker = _marker(connection)
        for start in range(0, len(ordered), KEYS_PER_LOOKUP):
            chunk = ordered[start : start + KEYS_PER_LOOKUP]
            # Written for the driver: SQLAlchemy renders an expanding IN of a poll's
            # hundreds of keys anew for each call, which cost more than the lookup itself.
            rows = connection.exec_driver_sql(
                "SELECT band_key, article_id, story_first_seen_seconds FROM story_band "
                f"WHERE story_first_seen_seconds >= {marker} "
                f"AND band_key IN ({', '.join([marker] * len(chunk))})",
                (window_start, *chunk),
            )
            for key, article_id, first_seen in rows:
                found.setdefault(key, []).append(article_id)
                first_seen_of[article_id] = first_seen
        return found, first_seen_of

    def _grouped_articles(
        self, article_ids: set[int], first_seen_of: dict[int, int]
    ) -> dict[int, tuple[int, int, StoryFingerprint]]:
        """Given grouped articles and their stories' first-seen times (Unix seconds, from
        their band rows), return {id: (story id, the story's first-seen time,
        fingerprint)}."""
        if not article_ids:
            return {}
        connection = self.session.connection()
        marker = _marker(connection)
        ordered = sorted(article_ids)
        found: dict[int, tuple[int, int, StoryFingerprint]] = {}
        for start in range(0, len(ordered), KEYS_PER_LOOKUP):
            chunk = ordered[start : start + KEYS_PER_LOOKUP]
            # Through the driver, as _stored_bands: a new IN list for every poll.
            rows = connection.exec_driver_sql(
                "SELECT id, story_id, story_signature FROM article "
                f"WHERE id IN ({', '.join([marker] * len(chunk))})",
                tuple(chunk),
            )
            for article_id, story_id, signature in rows:
                if story_id is not None and signature is not None:
                    found[article_id] = (
                        story_id,
                        first_seen_of[article_id],
                        StoryFingerprint.from_signature(signature),
                    )
        return found

    def _story_rows(
        self, article_ids: Iterable[int]
    ) -> Sequence[tuple[int | None, int | None, bytes | None, datetime]]:
        """Given articles, return (id, story id, signature, story first seen) of those in a
        story."""
        return self.session.exec(
            select(
                ArticleRow.id,
                ArticleRow.story_id,
                ArticleRow.story_signature,
                StoryRow.first_seen_at,
            )
            .join(StoryRow, col(StoryRow.id) == ArticleRow.story_id)
            .where(col(ArticleRow.id).in_(list(article_ids)))
        ).all()

    def _story_of_each(self, places: Sequence[StoryPlace], now: datetime) -> list[StoryOfNew]:
        """Given where a poll's new articles go, return each one's story, the new stories'
        ids taken now: the articles are inserted with their story, no UPDATE after."""
        starters = [
            index
            for index, place in enumerate(places)
            if place.story_id is None and place.with_new is None
        ]
        new_ids = dict(zip(starters, self._new_story_ids(len(starters)), strict=True))
        now_seconds = _seconds(now)
        stories: list[StoryOfNew] = []
        for index, place in enumerate(places):
            if place.story_id is not None:
                story_id = place.story_id
                first_seen = place.story_first_seen_seconds or now_seconds
            else:
                story_id = new_ids[index if place.with_new is None else place.with_new]
                first_seen = now_seconds
            stories.append(StoryOfNew(story_id, index in new_ids, first_seen, place.fingerprint))
        return stories

    def _new_story_ids(self, count: int) -> list[int]:
        """Take the ids of `count` new stories (their rows are inserted after their first
        articles, which they name)."""
        if not count:
            return []
        connection = self.session.connection()
        if connection.dialect.name == "postgresql":
            return sorted(
                connection.exec_driver_sql(
                    "SELECT nextval(pg_get_serial_sequence('story', 'id')) "
                    "FROM generate_series(1, %s)",
                    (count,),
                ).scalars()
            )
        # SQLite admits one writer at a time (serialise_identity): nobody else takes an id
        # before this transaction inserts them, and stories are never deleted.
        highest = connection.exec_driver_sql("SELECT max(id) FROM story").scalar()
        return list(range((highest or 0) + 1, (highest or 0) + 1 + count))

    def _record_stories(
        self,
        article_ids: Sequence[int],
        titles: Sequence[str],
        stories: Sequence[StoryOfNew],
        now: datetime,
    ) -> None:
        """Record the stories the new articles (just stored with these ids and titles, and
        their stories) start, and every new article's band keys."""
        started = [
            {
                "id": story.story_id,
                "first_seen_at": now,
                "title": title,
                "first_article_id": article_id,
            }
            for article_id, title, story in zip(article_ids, titles, stories, strict=True)
            if story.started
        ]
        if started:
            self._execute_many(_story_insert(), started)
        self._insert_bands(
            {
                (key, article_id): story.first_seen_seconds
                for article_id, story in zip(article_ids, stories, strict=True)
                for key in story.fingerprint.band_keys
            }
        )

    def _insert_bands(self, bands: dict[tuple[int, int], int]) -> None:
        """Given {(band key, article id): its story's first-seen Unix seconds}, insert them."""
        if not bands:
            return
        connection = self.session.connection()
        if connection.dialect.name == "postgresql":
            # Three arrays, one statement: on a shared database this runs while every
            # instance's storing waits (serialise_identity), and the driver's handling of
            # a thousand rows' parameters took longer than the database's insert.
            keys, first_seen_seconds, article_ids = zip(
                *((key, first_seen, article_id) for (key, article_id), first_seen in bands.items()),
                strict=True,
            )
            connection.exec_driver_sql(
                "INSERT INTO story_band (band_key, story_first_seen_seconds, article_id) "
                "SELECT * FROM unnest(%s::bigint[], %s::bigint[], %s::integer[])",
                (list(keys), list(first_seen_seconds), list(article_ids)),
            )
            return
        marker = _marker(connection)
        # Through the driver: a poll of 30 new articles writes about a thousand rows, and
        # SQLAlchemy's handling of each row's parameters cost twice what writing them did.
        connection.exec_driver_sql(
            "INSERT INTO story_band (band_key, story_first_seen_seconds, article_id) "
            f"VALUES ({marker}, {marker}, {marker})",
            # In the primary key's order: each row goes next to the one before in the index.
            sorted(
                (key, first_seen, article_id) for (key, article_id), first_seen in bands.items()
            ),
        )

    def _group_stored(self, rows: Sequence[_WaitingArticle], grouping: StoryGrouping) -> None:
        """Group stored articles that have no story yet (story_pending's), in the order
        given, as the new articles of one poll first seen at the last one's time."""
        now = max(aware(row.first_seen_at) for row in rows)
        stories = self._story_of_each(
            self._place_new_articles(
                [fingerprint(row.title, row.summary, row.content) for row in rows], now, grouping
            ),
            now,
        )
        article = table_of(ArticleRow)
        self.session.connection().execute(
            article.update()
            .where(article.c.id == bindparam("grouped_id"))
            .values(story_id=bindparam("story_id"), story_signature=bindparam("signature")),
            [
                {
                    "grouped_id": row.id,
                    "story_id": story.story_id,
                    "signature": story.fingerprint.signature,
                }
                for row, story in zip(rows, stories, strict=True)
            ],
        )
        self._record_stories([row.id for row in rows], [row.title for row in rows], stories, now)

    def _refresh_fingerprints(
        self, edited: Sequence[tuple[int, Article]], now: datetime, grouping: StoryGrouping
    ) -> dict[int, int]:
        """Given edited articles (id, new text), give those in a story the fingerprint of
        their new text, in the same story. Return {article id: story id} of those in one."""
        if not edited:
            return {}
        by_id = dict(edited)
        rows = self._story_rows(by_id)
        window_start = _seconds(now - timedelta(seconds=grouping.window_seconds))
        table = table_of(StoryBandRow)
        stories: dict[int, int] = {}
        bands: dict[tuple[int, int], int] = {}
        for article_id, story_id, signature, first_seen in rows:
            if article_id is None or story_id is None:
                continue
            stories[article_id] = story_id
            article = by_id[article_id]
            fresh = fingerprint(article.title, article.summary, article.content)
            if signature == fresh.signature:
                continue
            if signature is not None:
                old_keys = StoryFingerprint.from_signature(signature).band_keys
                self.session.connection().execute(
                    delete(table)
                    .where(table.c.band_key.in_(set(old_keys)))
                    .where(table.c.article_id == article_id)
                )
            self.session.connection().execute(
                table_of(ArticleRow)
                .update()
                .where(table_of(ArticleRow).c.id == article_id)
                .values(story_signature=fresh.signature)
            )
            first_seen_seconds = _seconds(aware(first_seen))
            if first_seen_seconds >= window_start:  # past the window, nothing joins it
                for key in fresh.band_keys:
                    bands[(key, article_id)] = first_seen_seconds
        self._insert_bands(bands)
        return stories


@dataclass(frozen=True)
class _WaitingArticle:
    """An article of story_pending, as group_pending reads it."""

    id: int
    title: str
    summary: str
    content: str
    first_seen_at: datetime


class StoryQueries(StoreBase):
    def group_pending(
        self, grouping: StoryGrouping, *, batch_articles: int = GROUP_BATCH_ARTICLES
    ) -> int:
        """Group a batch of the articles waiting in story_pending, the first stored first,
        in one transaction; return how many were taken (0: none waits). One taken that was
        pruned meanwhile, or has a story, is only taken off the list."""
        pending = table_of(StoryPendingRow)
        waiting = core_select(pending.c.article_id).order_by(pending.c.article_id)
        with self._writing() as session:
            # Mostly none waits: then no lock is taken, and no poll waits for this.
            if session.connection().execute(waiting.limit(1)).first() is None:
                return 0
            # As storing does: an article grouped now and one a poll stores at the same
            # moment on another instance must see each other.
            serialise_identity(session)
            article_ids = list(
                session.connection().execute(waiting.limit(batch_articles)).scalars()
            )
            if not article_ids:
                return 0  # (another instance took the last ones meanwhile)
            article = table_of(ArticleRow)
            rows = [
                _WaitingArticle(*row)
                for row in session.connection().execute(
                    core_select(
                        article.c.id,
                        article.c.title,
                        article.c.summary,
                        article.c.content,
                        article.c.first_seen_at,
                    )
                    .where(article.c.id.in_(article_ids))
                    .where(article.c.pruned_at.is_(None))
                    .where(article.c.story_id.is_(None))
                    .order_by(article.c.id)
                )
            ]
            session.connection().execute(
                pending.delete().where(pending.c.article_id.in_(article_ids))
            )
            if rows:
                StoryTransaction(session)._group_stored(rows, grouping)
            return len(article_ids)

    def articles_to_group(self) -> int:
        """How many stored articles wait to be grouped into stories."""
        with self._reading() as session:
            return session.exec(select(func.count()).select_from(StoryPendingRow)).one()

    """Store's queries on stories."""

    def stories(
        self,
        since: datetime | None = None,
        *,
        include_single: bool = False,
        batch_size: int = 200,
    ) -> Iterator[StoryRecord]:
        """Yield the stories first seen at or after `since` (all with None), newest first,
        each with its articles; only those of two articles or more unless include_single.
        Read `batch_size` stories at a time, each batch in a short transaction."""
        last: tuple[datetime, int] | None = None
        while True:
            statement = select(StoryRow).order_by(
                col(StoryRow.first_seen_at).desc(), col(StoryRow.id).desc()
            )
            if since is not None:
                statement = statement.where(col(StoryRow.first_seen_at) >= since)
            if last is not None:
                seen_at, story_id = last
                statement = statement.where(
                    (col(StoryRow.first_seen_at) < seen_at)
                    | ((col(StoryRow.first_seen_at) == seen_at) & (col(StoryRow.id) < story_id))
                )
            if not include_single:
                several = (
                    select(func.count())
                    .select_from(ArticleRow)
                    .where(col(ArticleRow.story_id) == StoryRow.id)
                    .scalar_subquery()
                ) >= 2
                statement = statement.where(several)
            with self._reading() as session:
                rows = session.exec(statement.limit(batch_size)).all()
                articles: dict[int, list[StoryArticle]] = {}
                for article in session.exec(
                    select(ArticleRow)
                    .where(col(ArticleRow.story_id).in_([row.id for row in rows]))
                    .order_by(col(ArticleRow.first_seen_at), col(ArticleRow.id))
                ).all():
                    published = article.published_at
                    articles.setdefault(article.story_id or 0, []).append(
                        StoryArticle(
                            feed_name=article.first_feed,
                            title=article.title,
                            link=article.link,
                            published=aware(published) if published else None,
                            first_seen=aware(article.first_seen_at),
                        )
                    )
            for row in rows:
                yield StoryRecord(
                    story_id=row.id or 0,
                    first_seen=aware(row.first_seen_at),
                    title=row.title,
                    articles=tuple(articles.get(row.id or 0, ())),
                )
            if len(rows) < batch_size:
                return
            last = (rows[-1].first_seen_at, rows[-1].id or 0)

    def forget_story_bands(self, older_than: datetime) -> int:
        """Delete the band keys of stories first seen before `older_than` (no new article
        can join those any more: their window is over). Return how many rows went."""
        table = table_of(StoryBandRow)
        with self._connection() as connection:
            result = connection.execute(
                delete(table).where(table.c.story_first_seen_seconds < _seconds(older_than))
            )
            return result.rowcount


# Statements run for every poll that stores articles, built once: building them again each
# time cost SQLAlchemy more than the database spent running them.


def queue_for_grouping(session: Session, article_ids: Sequence[int]) -> None:
    """Put these articles, just stored by a feed's first poll, on the list of those to
    group (Store.group_pending); call in the transaction that stores them."""
    if article_ids:
        session.connection().execute(
            table_of(StoryPendingRow).insert(),
            [{"article_id": article_id} for article_id in dict.fromkeys(article_ids)],
        )


def story_fingerprints(articles: Sequence[Article]) -> list[StoryFingerprint]:
    """Given articles, return their fingerprints, in order."""
    return [fingerprint(item.title, item.summary, item.content) for item in articles]


@functools.cache
def _story_insert() -> Insert:
    return insert(table_of(StoryRow))


def _marker(connection: Connection) -> str:
    """The driver's parameter placeholder: SQLite's qmark, psycopg's format."""
    return "?" if connection.dialect.paramstyle == "qmark" else "%s"


def suppressions(session: Session, article_ids: Sequence[int]) -> dict[int, dict[str, str]]:
    """Given articles, return {article id: {rule name: the link (else the title) of the
    article whose alert suppressed it}} for every rule whose match of the article sent
    nothing on any channel because its story had already alerted there."""
    if not article_ids:
        return {}
    lead_hit = aliased(RuleHitRow)
    lead_article = aliased(ArticleRow)
    # SQLAlchemy's select: SQLModel's types a select of at most four columns.
    rows = session.execute(
        core_select(
            col(RuleHitRow.article_id),
            col(RuleHitRow.rule_name),
            col(DeliveryItemRow.suppressed_at),
            col(lead_article.link),
            col(lead_article.title),
        )
        .join(DeliveryItemRow, col(DeliveryItemRow.hit_id) == RuleHitRow.id)
        .join(lead_hit, col(lead_hit.id) == DeliveryItemRow.story_lead_hit_id, isouter=True)
        .join(lead_article, col(lead_article.id) == lead_hit.article_id, isouter=True)
        .where(col(RuleHitRow.article_id).in_(article_ids))
        .order_by(col(DeliveryItemRow.channel))
    ).all()
    by_match: dict[tuple[int, str], list[str | None]] = {}
    for article_id, rule_name, suppressed_at, link, title in rows:
        shown = (link or title or "") if suppressed_at is not None else None
        by_match.setdefault((article_id, rule_name), []).append(shown)
    found: dict[int, dict[str, str]] = {}
    for (article_id, rule_name), leads in by_match.items():
        if all(lead is not None for lead in leads):
            found.setdefault(article_id, {})[rule_name] = leads[0] or ""
    return found


def _shortlist(keys: Sequence[int], stored: dict[int, list[int]]) -> list[int]:
    """The stored articles sharing the most of these band keys, at most
    CANDIDATES_PER_ARTICLE of them, by how many they share, then the newest first."""
    shared = Counter(article for key in set(keys) for article in stored.get(key, ()))
    ranked = sorted(shared.items(), key=lambda item: (-item[1], -item[0]))
    return [article for article, _ in ranked[:CANDIDATES_PER_ARTICLE]]


def _seconds(moment: datetime) -> int:
    """Unix time in whole seconds of an aware time (a naive one is UTC)."""
    return int(moment.replace(tzinfo=moment.tzinfo or UTC).timestamp())
