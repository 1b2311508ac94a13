"""Rule state: the articles each rule could not be evaluated on, and which rules already hit
an article (a rule notifies at most once per article, ever)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import col, select

from monitor.store.engine import StoreBase, TransactionBase
from monitor.store.tables import RuleHitRow, RuleStateRow


@dataclass(frozen=True)
class RuleState:
    rule_name: str
    failures: int
    last_error: str | None
    last_error_at: datetime | None


class RuleQueries(StoreBase):
    """Store's queries on rule state."""

    def rule_states(self) -> list[RuleState]:
        """Return the rules that have failed at least once, most recent failure first."""
        with self._reading() as session:
            rows = session.exec(
                select(RuleStateRow).order_by(col(RuleStateRow.last_error_at).desc())
            ).all()
            return [
                RuleState(row.rule_name, row.failures, row.last_error, row.last_error_at)
                for row in rows
            ]


class RuleTransaction(TransactionBase):
    """StoreTransaction's writes of rule state."""

    def record_rule_failure(self, rule_name: str, message: str, now: datetime) -> None:
        """Count one article a rule could not be evaluated on, keeping the last error."""
        row = self.session.get(RuleStateRow, rule_name) or RuleStateRow(rule_name=rule_name)
        row.failures += 1
        row.last_error = message
        row.last_error_at = now
        self.session.add(row)
        self.session.flush()

    def known_rule_hits(self, article_id: int) -> set[str]:
        return set(
            self.session.exec(
                select(RuleHitRow.rule_name).where(RuleHitRow.article_id == article_id)
            ).all()
        )
