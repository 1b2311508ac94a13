"""Retention: emptying the bodies of old articles and deleting the delivery history that
only concerned them, in short batches. An article's row and identity keys stay, so it is
never new again and never alerts again."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, exists
from sqlmodel import Session, col, select, update

from monitor.store.engine import StoreBase, serialise_identity
from monitor.store.search import remove_from_index
from monitor.store.tables import (
    FAILED,
    SENT,
    ArticleRow,
    DeliveryItemRow,
    DeliveryRow,
    RuleHitRow,
)


@dataclass(frozen=True)
class PruneReport:
    """What one Store.prune_articles() run changed."""

    articles_pruned: int = 0  # articles whose summary and content were emptied
    deliveries_removed: int = 0  # sent or failed deliveries that carried only pruned articles
    delivery_items_removed: int = 0  # the (hit, channel) rows of those deliveries
    hits_removed: int = 0  # rule hits of pruned articles that no delivery carries any more


class RetentionQueries(StoreBase):
    """Store's pruning of old articles."""

    def prune_articles(self, older_than: datetime, *, batch_size: int = 1000) -> PruneReport:
        """Given a time, empty the summary and content of every article first seen before
        it, and delete the delivery history that only concerned such articles. Return
        what was changed; a second run with the same time changes nothing.

        Kept: each article's row (title, link, published time, content hash; so `status`,
        `rules test` and pending alerts can still name it), its identity keys and its feed
        links, so it is never new again; every pending or held delivery with its hits.
        Deleted: sent and failed deliveries created before the time that carried only
        pruned articles (with their items), then the rule hits of pruned articles that no
        delivery carries any more.

        Works in batches of `batch_size` rows, each its own short transaction, so pollers
        and senders wait at most one batch; nothing is vacuumed (SQLite reuses the pages
        freed). Raise StoreError if the database fails (batches done so far stay done).
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size}")
        now = datetime.now(UTC)
        articles = 0
        while True:
            with self._writing() as session:
                pruned = self._prune_article_batch(session, older_than, now, batch_size)
            articles += pruned
            if pruned < batch_size:
                break
        deliveries = items = 0
        after = 0
        while True:
            with self._writing() as session:
                removed_ids, removed_items = self._remove_delivery_batch(
                    session, older_than, after, batch_size
                )
            deliveries += len(removed_ids)
            items += removed_items
            if len(removed_ids) < batch_size:
                break
            after = removed_ids[-1]
        hits = 0
        after = 0
        while True:
            with self._writing() as session:
                removed_ids = self._remove_hit_batch(session, after, batch_size)
            hits += len(removed_ids)
            if len(removed_ids) < batch_size:
                break
            after = removed_ids[-1]
        return PruneReport(
            articles_pruned=articles,
            deliveries_removed=deliveries,
            delivery_items_removed=items,
            hits_removed=hits,
        )

    @staticmethod
    def _prune_article_batch(
        session: Session, older_than: datetime, now: datetime, batch_size: int
    ) -> int:
        """Empty the bodies of up to batch_size unpruned articles first seen before
        older_than, oldest first; return how many."""
        # The lock upsert_articles holds (PostgreSQL): a poll that is deciding whether an
        # article was edited finishes before it is pruned.
        serialise_identity(session)
        batch = list(
            session.exec(
                select(ArticleRow.id)
                .where(col(ArticleRow.pruned_at).is_(None))
                .where(col(ArticleRow.first_seen_at) < older_than)
                .order_by(col(ArticleRow.first_seen_at))
                .limit(batch_size)
            ).all()
        )
        if not batch:
            return 0
        # Pruned articles are not searchable; their text is still stored at this point.
        remove_from_index(session, [article_id for article_id in batch if article_id is not None])
        result = session.exec(
            update(ArticleRow)
            .where(col(ArticleRow.id).in_(batch))
            .values(summary="", content="", pruned_at=now)
        )
        return result.rowcount

    @staticmethod
    def _remove_delivery_batch(
        session: Session, older_than: datetime, after_id: int, batch_size: int
    ) -> tuple[list[int], int]:
        """Delete up to batch_size finished deliveries (sent or failed) created before
        older_than whose every article is pruned, with their items, from after_id on.
        Return their ids (ascending) and how many items went with them."""
        carries_unpruned = exists(
            select(DeliveryItemRow.hit_id)
            .join(RuleHitRow, col(RuleHitRow.id) == DeliveryItemRow.hit_id)
            .join(ArticleRow, col(ArticleRow.id) == RuleHitRow.article_id)
            .where(col(DeliveryItemRow.delivery_id) == DeliveryRow.id)
            .where(col(ArticleRow.pruned_at).is_(None))
        )
        ids = [
            row_id
            for row_id in session.exec(
                select(DeliveryRow.id)
                .where(col(DeliveryRow.id) > after_id)
                .where(col(DeliveryRow.status).in_((SENT, FAILED)))
                .where(col(DeliveryRow.created_at) < older_than)
                .where(~carries_unpruned)
                .order_by(col(DeliveryRow.id))
                .limit(batch_size)
                # PostgreSQL: a failed delivery put back to pending meanwhile is skipped.
                .with_for_update()
            ).all()
            if row_id is not None  # a primary key, never NULL
        ]
        if not ids:
            return [], 0
        items = session.exec(
            delete(DeliveryItemRow).where(col(DeliveryItemRow.delivery_id).in_(ids))
        ).rowcount
        session.exec(delete(DeliveryRow).where(col(DeliveryRow.id).in_(ids)))
        return ids, items

    @staticmethod
    def _remove_hit_batch(session: Session, after_id: int, batch_size: int) -> list[int]:
        """Delete up to batch_size rule hits of pruned articles that no delivery carries,
        from after_id on; return their ids (ascending). A pruned article is never matched
        again, so its hits are no longer needed to keep a rule from notifying twice."""
        carried = exists(
            select(DeliveryItemRow.hit_id).where(col(DeliveryItemRow.hit_id) == RuleHitRow.id)
        )
        ids = [
            row_id
            for row_id in session.exec(
                select(RuleHitRow.id)
                .join(ArticleRow, col(ArticleRow.id) == RuleHitRow.article_id)
                .where(col(RuleHitRow.id) > after_id)
                .where(col(ArticleRow.pruned_at).is_not(None))
                .where(~carried)
                .order_by(col(RuleHitRow.id))
                .limit(batch_size)
            ).all()
            if row_id is not None  # a primary key, never NULL
        ]
        if ids:
            session.exec(delete(RuleHitRow).where(col(RuleHitRow.id).in_(ids)))
        return ids
