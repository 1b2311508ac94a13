"""Deliveries, the outbox: each rule hit queued to each of its channels, as an alert of
its own or in a held batch (a digest window, quiet hours, the excess of max_per_hour);
claims on them while they are sent (monitor.store.claims); their outcomes and retries.

Once per story: a hit of a rule that alerts once per story (HitToRecord.story_id), on a
channel where an earlier article of the story already has a delivery of the rule, joins
that delivery: listed under the story's article ("also") while the delivery waits (held,
or pending and not yet claimed by a sender), or recorded as suppressed once it has been
claimed or sent. A sender reads a delivery's articles again after claiming it
(Store.delivery_articles), and a claimed delivery takes no more: what the message lists
is what was recorded. A delivery that failed for good carried no alert: the later article
gets one of its own.

What goes out when is decided in monitor.delivery.schedule and handed here as a Timing.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import bindparam, func, insert, text
from sqlalchemy.sql import ColumnElement
from sqlalchemy.sql.dml import Update
from sqlmodel import Session, col, select, update

from monitor.model import Timing
from monitor.store.engine import StoreBase, TransactionBase, aware
from monitor.store.tables import (
    ALERT,
    BATCH,
    DIGEST,
    FAILED,
    HELD,
    PENDING,
    SENT,
    ArticleRow,
    DeliveryItemRow,
    DeliveryRow,
    RuleHitRow,
    table_of,
)

# Any fixed 64-bit number: the PostgreSQL advisory lock of releasing held batches.
RELEASE_LOCK_KEY = 0x6E6D5F72656C6561  # "nm_relea"


@dataclass(frozen=True)
class HitToRecord:
    rule_name: str
    terms: tuple[str, ...]
    excerpt: str
    channels: tuple[str, ...]
    timing: Timing = field(default_factory=Timing)  # when its deliveries go out
    # The article's story, when the rule alerts each channel once per story (the story
    # has articles before this one); None: once per article.
    story_id: int | None = None


@dataclass(frozen=True)
class StoryMention:
    """A later article of a story, listed under the story's first in a message."""

    feed_name: str
    title: str
    link: str | None


@dataclass(frozen=True)
class DeliveryArticle:
    """One article of a delivery, as the message shows it."""

    article_id: int
    feed_name: str
    terms: tuple[str, ...]
    excerpt: str
    title: str
    link: str | None
    published: datetime | None
    matched_at: datetime
    # Later articles of its story the rule matched while this delivery waited.
    also: tuple[StoryMention, ...] = ()


@dataclass(frozen=True)
class DueDelivery:
    delivery_id: int
    rule_name: str
    channel: str
    kind: str  # ALERT, DIGEST or BATCH
    attempts: int
    sent_services: frozenset[int]  # service indexes that already succeeded
    claimed_by: str | None
    claimed_at: datetime | None
    articles: tuple[DeliveryArticle, ...]  # oldest first
    next_attempt_at: datetime | None = None  # when it became due (its release, or a retry)

    @property
    def as_digest(self) -> bool:
        """A digest whatever its size, or a batch of several: one message listing them."""
        return self.kind == DIGEST or len(self.articles) > 1


class DeliveryQueries(StoreBase):
    """Store's queries on deliveries."""

    def release_held(self, now: datetime) -> int:
        """Make every held batch whose time has come pending (it takes no more articles
        from then on). Return how many were released.

        On PostgreSQL one instance releases at a time (a transaction-scoped advisory lock,
        tried, not waited for): another instance that finds it taken releases nothing, as
        the one releasing takes every batch due."""
        with self._writing() as session:
            if session.get_bind().dialect.name == "postgresql":
                acquired = session.connection().execute(
                    text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": RELEASE_LOCK_KEY}
                )
                if not acquired.scalar():
                    return 0
            result = session.exec(
                update(DeliveryRow)
                .where(col(DeliveryRow.status) == HELD)
                .where(col(DeliveryRow.release_at) <= now)
                .values(status=PENDING)
            )
            return result.rowcount

    def due_deliveries(
        self,
        now: datetime,
        *,
        ignore_backoff: bool = False,
        include_due_held: bool = False,
        channel: str | None = None,
        after_id: int = 0,
        limit: int = 200,
    ) -> list[DueDelivery]:
        """Return pending deliveries whose time has come (every pending one with
        ignore_backoff), with their articles, by id, from after_id on; only the channel's
        when one is named. With include_due_held, held batches whose release time has come
        too (a dry run reads them without releasing them)."""
        statement = (
            select(DeliveryRow)
            .where(_due(now, ignore_backoff=ignore_backoff, include_due_held=include_due_held))
            .where(col(DeliveryRow.id) > after_id)
            .order_by(col(DeliveryRow.id))
            .limit(limit)
        )
        if channel is not None:
            statement = statement.where(col(DeliveryRow.channel) == channel)
        with self._reading() as session:
            rows = session.exec(statement).all()
            articles = self._delivery_articles(session, [row.id or 0 for row in rows])
        return [
            DueDelivery(
                delivery_id=row.id or 0,
                rule_name=row.rule_name,
                channel=row.channel,
                kind=row.kind,
                attempts=row.attempts,
                sent_services=frozenset(json.loads(row.sent_services or "[]")),
                claimed_by=row.claimed_by,
                claimed_at=row.claimed_at,
                articles=tuple(articles.get(row.id or 0, ())),
                next_attempt_at=aware(row.next_attempt_at),
            )
            for row in rows
        ]

    def due_channels(
        self, now: datetime, *, ignore_backoff: bool = False, include_due_held: bool = False
    ) -> set[str]:
        """Return the channels that have deliveries due_deliveries would return."""
        due = _due(now, ignore_backoff=ignore_backoff, include_due_held=include_due_held)
        with self._reading() as session:
            return set(session.exec(select(DeliveryRow.channel).where(due).distinct()).all())

    def delivery_articles(self, delivery_ids: Sequence[int]) -> dict[int, list[DeliveryArticle]]:
        """Given delivery ids, return each one's articles as due_deliveries() does: what a
        sender sends once it has claimed them."""
        with self._reading() as session:
            return self._delivery_articles(session, list(delivery_ids))

    @staticmethod
    def _delivery_articles(
        session: Session, delivery_ids: list[int]
    ) -> dict[int, list[DeliveryArticle]]:
        """Given delivery ids, return each one's articles, oldest first (by published time,
        else by when the rule matched), each with the later articles of its story listed
        under it (`also`)."""
        if not delivery_ids:
            return {}
        rows = session.exec(
            select(
                DeliveryItemRow.delivery_id,
                DeliveryItemRow.story_lead_hit_id,
                RuleHitRow,
                ArticleRow,
            )
            .join(RuleHitRow, col(RuleHitRow.id) == DeliveryItemRow.hit_id)
            .join(ArticleRow, col(ArticleRow.id) == RuleHitRow.article_id)
            .where(col(DeliveryItemRow.delivery_id).in_(delivery_ids))
            .where(col(DeliveryItemRow.suppressed_at).is_(None))
            .order_by(col(RuleHitRow.id))
        ).all()
        leads: dict[tuple[int, int], DeliveryArticle] = {}
        mentions: dict[tuple[int, int], list[StoryMention]] = {}
        for delivery_id, lead_hit_id, hit, article in rows:
            if lead_hit_id is not None and (delivery_id, lead_hit_id) in leads:
                mentions.setdefault((delivery_id, lead_hit_id), []).append(
                    StoryMention(hit.feed_name, article.title, article.link)
                )
                continue
            leads[(delivery_id, hit.id or 0)] = DeliveryArticle(
                article_id=article.id or 0,
                feed_name=hit.feed_name,
                terms=tuple(json.loads(hit.terms_json)),
                excerpt=hit.excerpt,
                title=article.title,
                link=article.link,
                published=article.published_at,
                matched_at=hit.matched_at,
            )
        articles: dict[int, list[DeliveryArticle]] = {}
        for (delivery_id, hit_id), lead in leads.items():
            also = tuple(mentions.get((delivery_id, hit_id), ()))
            articles.setdefault(delivery_id, []).append(replace(lead, also=also) if also else lead)
        for group in articles.values():
            group.sort(key=lambda item: item.published or item.matched_at)
        return articles

    def claim_deliveries(
        self, claims: Sequence[tuple[int, str | None]], claimant: str, now: datetime
    ) -> set[int]:
        """claim_delivery for several deliveries in one transaction: each (delivery_id,
        previous) is taken if it is still pending and its claim is still `previous`. With
        previous == claimant this renews our own claim (claimed_at = now). Return the ids
        this caller has."""
        if not claims:
            return set()
        table = table_of(DeliveryRow)
        by_previous: dict[str | None, list[int]] = {}
        for delivery_id, previous in claims:
            by_previous.setdefault(previous, []).append(delivery_id)
        claimed: set[int] = set()
        with self._writing() as session:
            for previous, ids in by_previous.items():
                claim = table.c.claimed_by
                result = session.execute(
                    table.update()
                    .where(table.c.id.in_(ids))
                    .where(table.c.status == PENDING)
                    .where(claim.is_(None) if previous is None else claim == previous)
                    .values(claimed_by=claimant, claimed_at=now)
                    .returning(table.c.id)
                )
                claimed.update(result.scalars())
        return claimed

    def release_claims(
        self,
        delivery_ids: Sequence[int],
        claimant: str,
        *,
        sent_services: Iterable[int] | None = None,
    ) -> None:
        """Give up this claimant's claims on several deliveries, in one transaction, and
        record the services they already reached (a send cut short), if given."""
        if not delivery_ids:
            return
        values: dict[str, object] = {"claimed_by": None, "claimed_at": None}
        if sent_services is not None:
            values["sent_services"] = _indexes_json(sent_services)
        with self._writing() as session:
            session.exec(
                update(DeliveryRow)
                .where(col(DeliveryRow.id).in_(list(delivery_ids)))
                .where(col(DeliveryRow.claimed_by) == claimant)
                .values(**values)
            )

    def release_void_claims(self, is_live: Callable[[str, datetime | None], bool]) -> int:
        """Clear every claim whose process is gone (is_live(claimed_by, claimed_at) is
        False). Return how many were cleared."""
        with self._writing() as session:
            claims = session.exec(
                select(DeliveryRow.id, DeliveryRow.claimed_by, DeliveryRow.claimed_at).where(
                    col(DeliveryRow.claimed_by).is_not(None)
                )
            ).all()
            void = [
                delivery_id
                for delivery_id, claimed_by, claimed_at in claims
                if not is_live(claimed_by or "", claimed_at)
            ]
            if void:
                session.exec(
                    update(DeliveryRow)
                    .where(col(DeliveryRow.id).in_(void))
                    .values(claimed_by=None, claimed_at=None)
                )
            return len(void)

    def mark_sent(
        self, delivery_id: int | Sequence[int], now: datetime, *, sent_services: Iterable[int] = ()
    ) -> None:
        """Record a successful try of a delivery, or of the deliveries one message carried
        (in one transaction: they share the outcome)."""
        self._record_attempt(
            delivery_id,
            status=SENT,
            sent_at=now,
            last_error=None,
            sent_services=_indexes_json(sent_services),
        )

    def mark_attempt_failed(
        self,
        delivery_id: int | Sequence[int],
        error: str,
        next_attempt_at: datetime | None,
        *,
        sent_services: Iterable[int] | None = None,
    ) -> None:
        """Record a failed try of a delivery, or of the deliveries of one message; with no
        next attempt time they are failed for good. sent_services: the service indexes
        that have succeeded so far (kept as they are when None)."""
        values: dict[str, object] = {"last_error": error}
        if next_attempt_at is None:
            values["status"] = FAILED
        else:
            values["next_attempt_at"] = next_attempt_at
        if sent_services is not None:
            values["sent_services"] = _indexes_json(sent_services)
        self._record_attempt(delivery_id, **values)

    def _record_attempt(self, delivery_id: int | Sequence[int], **values: object) -> None:
        """Count one more attempt of the deliveries, release their claims and set these
        columns, in one transaction.

        One Core statement for every outcome (the SET clause takes the columns given), built
        once: an ORM update built per call cost more than the send itself, every alert."""
        ids = [delivery_id] if isinstance(delivery_id, int) else list(delivery_id)
        with self._connection() as connection:
            connection.execute(
                _attempt_statement(),
                [{"delivery_id": one, **values} for one in ids],
            )

    def retry_failed(self, now: datetime, *, rule_name: str | None = None) -> int:
        """Put failed deliveries (of one rule, or all) back to pending, due now, with their
        attempts reset; services that already succeeded stay skipped. Return how many."""
        statement = update(DeliveryRow).where(col(DeliveryRow.status) == FAILED)
        if rule_name is not None:
            statement = statement.where(col(DeliveryRow.rule_name) == rule_name)
        with self._writing() as session:
            result = session.exec(statement.values(status=PENDING, attempts=0, next_attempt_at=now))
            return result.rowcount

    def delivery_counts(self, now: datetime | None = None) -> dict[str, int]:
        """Return how many deliveries are pending, held, sent and failed: one per (rule,
        article or batch, channel). A batch whose release time (at `now`) has come counts
        as pending: it no longer waits."""
        with self._reading() as session:
            rows = session.exec(
                select(DeliveryRow.status, func.count()).group_by(DeliveryRow.status)
            ).all()
            released = 0
            if now is not None:
                released = session.exec(
                    select(func.count())
                    .select_from(DeliveryRow)
                    .where(col(DeliveryRow.status) == HELD)
                    .where(col(DeliveryRow.release_at) <= now)
                ).one()
        counts = {PENDING: 0, HELD: 0, SENT: 0, FAILED: 0}
        counts.update(dict(rows))
        counts[HELD] -= released
        counts[PENDING] += released
        return counts

    def next_delivery_time(self, after: datetime) -> datetime | None:
        """Return the earliest time after `after` that a delivery waits for: a held batch's
        release or a pending delivery's next attempt; None when none waits."""
        with self._reading() as session:
            attempt = session.exec(
                select(func.min(DeliveryRow.next_attempt_at))
                .where(col(DeliveryRow.status) == PENDING)
                .where(col(DeliveryRow.next_attempt_at) > after)
            ).one()
        times = [
            aware(moment)
            for moment in (attempt, self.next_release_time(after))
            if moment is not None
        ]
        return min(times) if times else None

    def next_release_time(self, after: datetime) -> datetime | None:
        """Return the earliest release time after `after` of a held batch, or None."""
        with self._reading() as session:
            release = session.exec(
                select(func.min(DeliveryRow.release_at))
                .where(col(DeliveryRow.status) == HELD)
                .where(col(DeliveryRow.release_at) > after)
            ).one()
        return aware(release) if release is not None else None

    def last_delivery_errors(self, limit: int = 5) -> list[tuple[str, str, str]]:
        """Return (rule, channel, last error) of the most recent failed or retrying deliveries."""
        statement = (
            select(DeliveryRow.rule_name, DeliveryRow.channel, DeliveryRow.last_error)
            .where(col(DeliveryRow.last_error).is_not(None))
            .where(col(DeliveryRow.status) != SENT)
            .order_by(col(DeliveryRow.id).desc())
            .limit(limit)
        )
        with self._reading() as session:
            rows = session.exec(statement).all()
        return [(rule, channel, error or "") for rule, channel, error in rows]


class DeliveryTransaction(TransactionBase):
    """StoreTransaction's writes of rule hits and the deliveries that carry them."""

    def record_hits(
        self, article_id: int, feed_name: str, hits: Sequence[HitToRecord], now: datetime
    ) -> int:
        """Record rule hits and put each on its way to each of its channels: a delivery of
        its own, or a held batch (hit.timing). A rule that already hit this article is
        ignored. Return the number of (hit, channel) pairs queued."""
        queued = 0
        for hit in hits:
            inserted = (
                self.session.exec(
                    self._insert(RuleHitRow)
                    .values(
                        rule_name=hit.rule_name,
                        article_id=article_id,
                        feed_name=feed_name,
                        terms_json=json.dumps(list(hit.terms), ensure_ascii=False),
                        excerpt=hit.excerpt,
                        matched_at=now,
                    )
                    .on_conflict_do_nothing(index_elements=["rule_name", "article_id"])
                    .returning(RuleHitRow.id)
                )
                .scalars()
                .all()
            )
            if not inserted:
                continue
            for channel in dict.fromkeys(hit.channels):
                lead = (
                    self._story_lead(hit.rule_name, channel, hit.story_id, article_id)
                    if hit.story_id is not None
                    else None
                )
                item: dict[str, object]
                if lead is None or lead.status == FAILED:
                    delivery_id = self._delivery_for(hit.rule_name, channel, hit.timing, now)
                    item = {"delivery_id": delivery_id}
                elif lead.status == HELD or (lead.status == PENDING and lead.claimed_by is None):
                    item = {"delivery_id": lead.delivery_id, "story_lead_hit_id": lead.hit_id}
                else:  # gone out, or going: the story has alerted this channel
                    item = {
                        "delivery_id": lead.delivery_id,
                        "story_lead_hit_id": lead.hit_id,
                        "suppressed_at": now,
                    }
                self.session.exec(
                    insert(DeliveryItemRow).values(hit_id=inserted[0], channel=channel, **item)
                )
                queued += "suppressed_at" not in item
        return queued

    def _story_lead(
        self, rule_name: str, channel: str, story_id: int, article_id: int
    ) -> _StoryLead | None:
        """The latest delivery of the rule to the channel that carries an article of the
        story as an article of its own (not listed under another): (hit_id, delivery_id,
        status, claimed_by), or None. Locked (PostgreSQL) until the transaction ends, so a
        sender's claim waits for the item this transaction adds to it."""
        found = self.session.exec(
            select(
                DeliveryItemRow.hit_id,
                DeliveryItemRow.delivery_id,
                DeliveryRow.status,
                DeliveryRow.claimed_by,
            )
            .join(RuleHitRow, col(RuleHitRow.id) == DeliveryItemRow.hit_id)
            .join(ArticleRow, col(ArticleRow.id) == RuleHitRow.article_id)
            .join(DeliveryRow, col(DeliveryRow.id) == DeliveryItemRow.delivery_id)
            .where(col(ArticleRow.story_id) == story_id)
            .where(col(ArticleRow.id) != article_id)
            .where(col(RuleHitRow.rule_name) == rule_name)
            .where(col(DeliveryItemRow.channel) == channel)
            .where(col(DeliveryItemRow.story_lead_hit_id).is_(None))
            .order_by(col(DeliveryItemRow.hit_id).desc())
            .limit(1)
            .with_for_update(of=DeliveryRow)
        ).first()
        return _StoryLead(*found) if found is not None else None

    def _delivery_for(self, rule_name: str, channel: str, timing: Timing, now: datetime) -> int:
        """Return the delivery that will carry a new hit of the rule to the channel."""
        if timing.hold_until is not None:
            kind = DIGEST if timing.digest else BATCH
            return self._open_batch(rule_name, channel, kind, timing.hold_until, now)
        limit = timing.rate_limit
        if limit is not None:
            immediate = self.session.exec(
                select(func.count())
                .select_from(DeliveryRow)
                .where(col(DeliveryRow.rule_name) == rule_name)
                .where(col(DeliveryRow.channel) == channel)
                .where(col(DeliveryRow.kind) == ALERT)
                .where(col(DeliveryRow.created_at) >= limit.window_start)
                .where(col(DeliveryRow.created_at) < limit.window_end)
            ).one()
            if immediate >= limit.limit:
                return self._open_batch(rule_name, channel, BATCH, limit.release_at, now)
        return self._new_delivery(rule_name, channel, ALERT, None, now)

    def _open_batch(
        self, rule_name: str, channel: str, kind: str, release_at: datetime, now: datetime
    ) -> int:
        """Return the held batch of the rule for the channel released at that time, created
        if need be. The row is locked (PostgreSQL), so a release cannot slip in between."""
        existing = self.session.exec(
            select(DeliveryRow.id)
            .where(col(DeliveryRow.rule_name) == rule_name)
            .where(col(DeliveryRow.channel) == channel)
            .where(col(DeliveryRow.status) == HELD)
            .where(col(DeliveryRow.release_at) == release_at)
            .with_for_update()
        ).first()
        if existing is not None:
            return existing
        return self._new_delivery(rule_name, channel, kind, release_at, now)

    def _new_delivery(
        self, rule_name: str, channel: str, kind: str, release_at: datetime | None, now: datetime
    ) -> int:
        return self.session.exec(
            insert(DeliveryRow)
            .values(
                rule_name=rule_name,
                channel=channel,
                kind=kind,
                status=PENDING if release_at is None else HELD,
                release_at=release_at,
                attempts=0,
                next_attempt_at=release_at or now,
                sent_services="[]",
                created_at=now,
            )
            .returning(col(DeliveryRow.id))
        ).scalar_one()


class _StoryLead(NamedTuple):
    hit_id: int  # the hit of the story's article the delivery carries
    delivery_id: int
    status: str
    claimed_by: str | None


@functools.cache
def _attempt_statement() -> Update:
    """UPDATE delivery SET attempts = attempts + 1, no claim, <the columns given> WHERE id = ?"""
    table = table_of(DeliveryRow)
    return (
        table.update()
        .where(table.c.id == bindparam("delivery_id"))
        .values(attempts=table.c.attempts + 1, claimed_by=None, claimed_at=None)
    )


def _due(now: datetime, *, ignore_backoff: bool, include_due_held: bool) -> ColumnElement[bool]:
    """The condition of a delivery due at `now` (see Store.due_deliveries)."""
    due = col(DeliveryRow.status) == PENDING
    if not ignore_backoff:
        due = due & (col(DeliveryRow.next_attempt_at) <= now)
    if include_due_held:
        due = due | ((col(DeliveryRow.status) == HELD) & (col(DeliveryRow.release_at) <= now))
    return due


def _indexes_json(indexes: Iterable[int]) -> str:
    return json.dumps(sorted(set(indexes)))
