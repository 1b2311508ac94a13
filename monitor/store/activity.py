"""What has happened, for people looking back (the web view): rule hits and new articles
per day, recent hits with the state of their deliveries, recent articles newest first.

Only reads. Days are the configured timezone's: a count per local day is worked out in the
database, one query per stretch of time in which the zone's UTC offset stays the same (a
daylight-saving change splits a 30-day window in two).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import func, literal_column
from sqlalchemy.sql import ColumnElement
from sqlmodel import Session, col, select

from monitor.model import Article
from monitor.store.articles import _article_from_row
from monitor.store.engine import StoreBase, aware
from monitor.store.tables import (
    ArticleRow,
    DeliveryItemRow,
    DeliveryRow,
    FeedArticleRow,
    RuleHitRow,
)

# Offsets change on whole minutes; a window is walked in steps of this, then to the minute.
_OFFSET_STEP = timedelta(minutes=15)


@dataclass(frozen=True)
class DailyCount:
    """How many of something `name` had (a rule's hits, a feed's new articles) on a day."""

    name: str
    day: date  # in the timezone asked for
    count: int


@dataclass(frozen=True)
class HitDelivery:
    """One channel's delivery of a rule hit: alone (an alert) or in a batch."""

    channel: str
    status: str  # HELD, PENDING, SENT or FAILED
    kind: str  # ALERT, DIGEST or BATCH
    attempts: int
    release_at: datetime | None  # a held batch: when it goes out
    next_attempt_at: datetime | None
    sent_at: datetime | None
    last_error: str | None  # may hold a secret: mask before showing
    # Its story had already alerted the channel (per_story): this hit sent nothing, and
    # story_alert_link is the link of the article whose alert did.
    suppressed: bool = False
    story_alert_link: str | None = None


@dataclass(frozen=True)
class RecentHit:
    """A rule hit (a match that alerts), with its article and its deliveries."""

    hit_id: int
    rule_name: str
    feed_name: str
    matched_at: datetime
    terms: tuple[str, ...]
    excerpt: str
    article_id: int
    title: str
    link: str | None
    published: datetime | None
    deliveries: tuple[HitDelivery, ...]  # by channel name


@dataclass(frozen=True)
class StoredArticle:
    """A stored article with its id, when it was first seen and the feeds that carried it."""

    article_id: int
    article: Article
    feeds: tuple[str, ...]  # sorted
    first_seen_at: datetime
    story_id: int | None = None  # its story (monitor.store.stories), if it has one


class ActivityQueries(StoreBase):
    """Store's reads of what happened over time."""

    def daily_hit_counts(self, start: datetime, end: datetime, zone: tzinfo) -> list[DailyCount]:
        """Given a window and a timezone, return each rule's hits per local day in it (only
        days with hits)."""
        return self._daily_counts(RuleHitRow.rule_name, RuleHitRow.matched_at, start, end, zone)

    def daily_new_article_counts(
        self, start: datetime, end: datetime, zone: tzinfo
    ) -> list[DailyCount]:
        """Given a window and a timezone, return each feed's new articles per local day in
        it: the articles the feed carried for the first time (only days with some)."""
        return self._daily_counts(
            FeedArticleRow.feed_name, FeedArticleRow.first_seen_at, start, end, zone
        )

    def last_hit_times(self) -> dict[str, datetime]:
        """Return each rule's latest hit time, by rule name (rules that never hit: absent)."""
        statement = select(RuleHitRow.rule_name, func.max(RuleHitRow.matched_at)).group_by(
            RuleHitRow.rule_name
        )
        with self._reading() as session:
            return {name: aware(moment) for name, moment in session.exec(statement).all()}

    def recent_hits(
        self, *, limit: int = 50, rule_name: str | None = None, before_id: int | None = None
    ) -> list[RecentHit]:
        """Return the latest rule hits, newest first: the rule's only when one is named, and
        only those older than `before_id` (the last of a previous page) when given."""
        statement = (
            select(RuleHitRow, ArticleRow.title, ArticleRow.link, ArticleRow.published_at)
            .join(ArticleRow, col(ArticleRow.id) == col(RuleHitRow.article_id))
            .order_by(col(RuleHitRow.id).desc())
            .limit(limit)
        )
        if rule_name is not None:
            statement = statement.where(col(RuleHitRow.rule_name) == rule_name)
        if before_id is not None:
            statement = statement.where(col(RuleHitRow.id) < before_id)
        with self._reading() as session:
            rows = session.exec(statement).all()
            deliveries = self._hit_deliveries(session, [hit.id or 0 for hit, *_ in rows])
        return [
            RecentHit(
                hit_id=hit.id or 0,
                rule_name=hit.rule_name,
                feed_name=hit.feed_name,
                matched_at=aware(hit.matched_at),
                terms=tuple(json.loads(hit.terms_json or "[]")),
                excerpt=hit.excerpt,
                article_id=hit.article_id,
                title=title,
                link=link,
                published=aware(published) if published else None,
                deliveries=tuple(deliveries.get(hit.id or 0, ())),
            )
            for hit, title, link, published in rows
        ]

    @staticmethod
    def _hit_deliveries(session: Any, hit_ids: Sequence[int]) -> dict[int, list[HitDelivery]]:
        if not hit_ids:
            return {}
        statement = (
            select(
                DeliveryItemRow.hit_id,
                DeliveryItemRow.suppressed_at,
                DeliveryItemRow.story_lead_hit_id,
                DeliveryRow,
            )
            .join(DeliveryRow, col(DeliveryRow.id) == col(DeliveryItemRow.delivery_id))
            .where(col(DeliveryItemRow.hit_id).in_(hit_ids))
            .order_by(col(DeliveryItemRow.channel))
        )
        rows = session.exec(statement).all()
        lead_hits = {lead for _, suppressed, lead, _ in rows if suppressed and lead is not None}
        lead_links = (
            dict(
                session.exec(
                    select(RuleHitRow.id, ArticleRow.link)
                    .join(ArticleRow, col(ArticleRow.id) == col(RuleHitRow.article_id))
                    .where(col(RuleHitRow.id).in_(lead_hits))
                ).all()
            )
            if lead_hits
            else {}
        )
        found: dict[int, list[HitDelivery]] = {}
        for hit_id, suppressed_at, lead_hit_id, delivery in rows:
            found.setdefault(hit_id, []).append(
                HitDelivery(
                    channel=delivery.channel,
                    status=delivery.status,
                    kind=delivery.kind,
                    attempts=delivery.attempts,
                    release_at=_aware_or_none(delivery.release_at),
                    next_attempt_at=_aware_or_none(delivery.next_attempt_at),
                    sent_at=_aware_or_none(delivery.sent_at),
                    last_error=delivery.last_error,
                    suppressed=suppressed_at is not None,
                    story_alert_link=lead_links.get(lead_hit_id) if suppressed_at else None,
                )
            )
        return found

    def recent_articles(
        self,
        since: datetime | None = None,
        *,
        feed: str | None = None,
        batch_size: int = 200,
    ) -> Iterator[StoredArticle]:
        """Given a time (or None for all), yield the articles first seen at or after it,
        newest first, with their feeds; articles whose text retention pruned are left out,
        and with `feed` those the feed did not carry.

        Read `batch_size` rows at a time, each batch in a short transaction of its own, so
        a caller that stops early (a search with enough results) reads no more."""
        below_id: int | None = None
        while True:
            statement = (
                select(ArticleRow)
                .where(col(ArticleRow.pruned_at).is_(None))
                .order_by(col(ArticleRow.id).desc())
                .limit(batch_size)
            )
            if since is not None:
                statement = statement.where(col(ArticleRow.first_seen_at) >= since)
            if below_id is not None:
                statement = statement.where(col(ArticleRow.id) < below_id)
            if feed is not None:
                statement = statement.where(
                    select(FeedArticleRow.article_id)
                    .where(col(FeedArticleRow.article_id) == col(ArticleRow.id))
                    .where(col(FeedArticleRow.feed_name) == feed)
                    .exists()
                )
            with self._reading() as session:
                rows = session.exec(statement).all()
                found = _with_feeds(session, rows)
            yield from found
            if len(rows) < batch_size:
                return
            below_id = rows[-1].id

    def articles_by_id(self, article_ids: Sequence[int]) -> list[StoredArticle]:
        """Given article ids, return those articles, in the same order (unknown ids and
        articles whose text retention pruned left out)."""
        if not article_ids:
            return []
        with self._reading() as session:
            rows = session.exec(
                select(ArticleRow)
                .where(col(ArticleRow.id).in_(article_ids))
                .where(col(ArticleRow.pruned_at).is_(None))
            ).all()
            found = {stored.article_id: stored for stored in _with_feeds(session, rows)}
        return [found[article_id] for article_id in article_ids if article_id in found]

    def _daily_counts(
        self,
        name_column: Any,
        time_column: Any,
        start: datetime,
        end: datetime,
        zone: tzinfo,
    ) -> list[DailyCount]:
        counts: dict[tuple[str, date], int] = {}
        with self._reading() as session:
            dialect = session.get_bind().dialect.name
            for segment_start, segment_end, offset_seconds in offset_segments(start, end, zone):
                day = _local_date(dialect, time_column, offset_seconds)
                statement = (
                    select(name_column, day, func.count())
                    .where(time_column >= segment_start)
                    .where(time_column < segment_end)
                    .group_by(name_column, day)
                )
                for name, day_value, count in session.exec(statement).all():
                    key = (name, date.fromisoformat(str(day_value)[:10]))
                    counts[key] = counts.get(key, 0) + count
        return [DailyCount(name, day, count) for (name, day), count in sorted(counts.items())]


def offset_segments(
    start: datetime, end: datetime, zone: tzinfo
) -> list[tuple[datetime, datetime, int]]:
    """Given a window [start, end) and a timezone, return it cut where the zone's UTC offset
    changes: (segment start, segment end, offset in seconds) in order."""
    segments = []
    segment_start, offset = start, _offset_seconds(start, zone)
    moment = start
    while moment < end:
        step_end = min(moment + _OFFSET_STEP, end)
        if _offset_seconds(step_end, zone) != offset and step_end < end:
            # The change lies in (moment, step_end]: find its minute.
            change = moment + timedelta(minutes=1)
            while _offset_seconds(change, zone) == offset:
                change += timedelta(minutes=1)
            segments.append((segment_start, change, offset))
            segment_start, offset = change, _offset_seconds(change, zone)
            moment = change
        else:
            moment = step_end
    segments.append((segment_start, end, offset))
    return segments


def _offset_seconds(moment: datetime, zone: tzinfo) -> int:
    offset = moment.astimezone(zone).utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0


def _local_date(dialect: str, column: Any, offset_seconds: int) -> ColumnElement[Any]:
    """The calendar date of a stored UTC time shifted by the offset. The offset is written
    into the SQL itself (an int we made), so the selected and the grouped expression are
    the same text: PostgreSQL wants exactly that."""
    offset = int(offset_seconds)
    if dialect == "sqlite":  # stored as UTC text; date() takes a modifier
        return func.date(column, literal_column(f"'{offset:+d} seconds'"))
    # PostgreSQL: timestamptz -> UTC wall time, shifted, then its date.
    utc_wall_time = func.timezone(literal_column("'UTC'"), column)
    return func.date(utc_wall_time + literal_column(f"interval '{offset} seconds'"))


def _aware_or_none(moment: datetime | None) -> datetime | None:
    return aware(moment) if moment is not None else None


def _with_feeds(session: Session, rows: Sequence[ArticleRow]) -> list[StoredArticle]:
    """Given article rows, return them as StoredArticles, with the feeds that carried each."""
    feeds: dict[int, list[str]] = {}
    if rows:
        for article_id, feed_name in session.exec(
            select(FeedArticleRow.article_id, FeedArticleRow.feed_name).where(
                col(FeedArticleRow.article_id).in_([row.id for row in rows])
            )
        ).all():
            feeds.setdefault(article_id, []).append(feed_name)
    return [
        StoredArticle(
            article_id=row.id or 0,
            article=_article_from_row(row),
            feeds=tuple(sorted(feeds.get(row.id or 0, [row.first_feed]))),
            first_seen_at=aware(row.first_seen_at),
            story_id=row.story_id,
        )
        for row in rows
    ]
