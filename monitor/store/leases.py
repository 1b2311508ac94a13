"""Shared work on PostgreSQL: the feed leases every instance polls from, and the singleton
jobs only one instance runs.

Feed leases (the `feed_lease` table): one row per feed, with the time its next poll may
start (`due_at`) and the instance polling it now, if any. An instance's dispatcher runs
rounds (Store.poll_round), each one short transaction that

1. completes the polls it finished since the last round: the next poll's time, the claim
   released, and the feed state of polls that changed nothing (a poll that stored articles
   wrote its state with them);
2. claims as many due feeds as it has idle poll threads, with `FOR UPDATE SKIP LOCKED`, so
   that instances claiming at the same moment never wait for each other nor take the same
   feed; each claimed feed's `due_at` moves one interval ahead at once, so that whatever
   becomes of the poll (the instance killed in the middle of it), nobody polls the feed
   again sooner;
3. reads the claimed feeds' states (the instance that polled a feed last may be another
   one) and how long until the next feed falls due.

No transaction stays open during a fetch. A claim holds for the lease (cluster.lease) and
is renewed while its poll runs; a claim of an instance that died lapses then, and the
feed goes to whoever is free once it is due. A round that finds its claim taken (its
instance was cut off from the database for longer than the lease) writes nothing of that
poll.

Times in these statements are the database's (now()), never an instance's clock.

Singleton jobs (`singleton_job`): a periodic job that must run once for all instances
(retention) is started by whoever first finds it due (start_singleton_job).

PostgreSQL only: a daemon on SQLite is alone on its database and keeps its schedule in
memory (monitor.service.poll_schedule).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import bindparam, text
from sqlalchemy.engine import Connection

from monitor.store.engine import StoreBase, aware
from monitor.store.feeds import FeedState, FeedStateUpdate, write_feed_state
from monitor.store.tables import FeedStateRow, table_of

# The configured feeds, given as an array: a set the database hashes once per statement
# (`= ANY(array)` compared each row with every name: a millisecond per hundred rows).
_NAMES = "(SELECT unnest(CAST(:names AS varchar[])))"
# What "not again" (a feed that answered 410 Gone) means in a shared schedule: a year, or
# until a reload changes the feed.
NOT_AGAIN = timedelta(days=365)


@dataclass(frozen=True)
class PollCompletion:
    """A poll this instance finished: when the feed may be polled next (None: not again),
    and its new state if the poll wrote none itself (a feed that had not changed)."""

    name: str
    next_poll_in_seconds: float | None
    state: FeedStateUpdate | None = None


@dataclass(frozen=True)
class ClaimedPoll:
    """A feed this instance now polls: its stored state, and when it was due."""

    name: str
    state: FeedState | None
    due_at: datetime


@dataclass(frozen=True)
class PollRound:
    """What a round did (see Store.poll_round)."""

    claimed: list[ClaimedPoll] = field(default_factory=list)
    # Seconds until the next feed falls due that nobody polls now; None: no feed.
    next_due_in_seconds: float | None = None
    # Completions whose claim was gone: nothing of them was written.
    lost: list[str] = field(default_factory=list)


class LeaseQueries(StoreBase):
    """Store's queries on feed leases and singleton jobs (PostgreSQL)."""

    def ensure_feed_leases(self, feeds: Sequence[tuple[str, float]]) -> None:
        """Given the enabled feeds (name, interval in seconds) of a configuration, give each
        one a lease row, due when its stored state says (else now), and take in changed
        intervals: a feed whose interval changed is due one new interval after its last
        poll, if that is sooner. Every instance does this at start and reload, to the same
        effect."""
        if not feeds:
            return
        ordered = sorted(feeds)  # rows locked in one order by every instance: no deadlock
        with self._connection() as connection:
            connection.execute(
                text(
                    "INSERT INTO feed_lease (feed_name, interval_seconds, due_at) "
                    "SELECT CAST(:name AS varchar), CAST(:interval AS double precision), "
                    "COALESCE((SELECT next_poll_at FROM feed_state "
                    "  WHERE name = CAST(:name AS varchar)), now()) "
                    "ON CONFLICT (feed_name) DO NOTHING"
                ),
                [{"name": name, "interval": interval} for name, interval in ordered],
            )
            connection.execute(
                text(
                    "UPDATE feed_lease SET interval_seconds = CAST(:interval AS double precision), "
                    "due_at = LEAST(due_at, COALESCE(last_claimed_at, now()) + make_interval("
                    "  secs => CAST(:interval AS double precision))) "
                    "WHERE feed_name = :name "
                    "AND interval_seconds <> CAST(:interval AS double precision)"
                ),
                [{"name": name, "interval": interval} for name, interval in ordered],
            )

    def poll_round(
        self,
        claimant: str,
        *,
        feed_names: Sequence[str],
        claim: int,
        lease_seconds: float,
        completions: Sequence[PollCompletion] = (),
        unstarted: Sequence[ClaimedPoll] = (),
        renew: Sequence[str] = (),
    ) -> PollRound:
        """One round of the dispatcher of instance `claimant`, in one short transaction:
        write `completions` (polls it finished), give back `unstarted` claims (due again
        when they were), renew the claims of polls still running (`renew`), then claim up
        to `claim` due feeds among `feed_names` for `lease_seconds`. Return what was
        claimed, with the feeds' states, and when the next feed falls due."""
        lease = timedelta(seconds=lease_seconds)
        with self._connection() as connection:
            lost = _complete(connection, claimant, completions, unstarted)
            if renew:
                connection.execute(
                    text(
                        "UPDATE feed_lease SET claimed_until = now() + :lease "
                        "WHERE feed_name = ANY(:names) AND claimed_by = :claimant"
                    ),
                    {"lease": lease, "names": sorted(renew), "claimant": claimant},
                )
            claimed: list[ClaimedPoll] = []
            if claim > 0:
                due = connection.execute(
                    text(
                        "SELECT feed_name, due_at FROM feed_lease "
                        f"WHERE feed_name IN {_NAMES} AND due_at <= now() "
                        "AND (claimed_by IS NULL OR claimed_until < now()) "
                        "ORDER BY due_at LIMIT :claim FOR UPDATE SKIP LOCKED"
                    ),
                    {"names": list(feed_names), "claim": claim},
                ).all()
                if due:
                    names = [name for name, _ in due]
                    connection.execute(
                        text(
                            "UPDATE feed_lease SET claimed_by = :claimant, "
                            "claimed_until = now() + :lease, last_claimed_at = now(), "
                            "due_at = now() + make_interval(secs => interval_seconds) "
                            "WHERE feed_name = ANY(:names)"
                        ),
                        {"claimant": claimant, "lease": lease, "names": names},
                    )
                    states = _feed_states(connection, names)
                    claimed = [
                        ClaimedPoll(name, states.get(name), aware(due_at)) for name, due_at in due
                    ]
            next_due = connection.execute(
                text(
                    "SELECT EXTRACT(EPOCH FROM due_at - now()) FROM feed_lease "
                    f"WHERE feed_name IN {_NAMES} "
                    "AND (claimed_by IS NULL OR claimed_until < now()) "
                    "ORDER BY due_at LIMIT 1"
                ),
                {"names": list(feed_names)},
            ).scalar()
        return PollRound(
            claimed=claimed,
            next_due_in_seconds=float(next_due) if next_due is not None else None,
            lost=lost,
        )

    def analyze_grown_tables(self) -> list[str]:
        """Take the statistics (ANALYZE) of the tables whose rows changed by more than a
        tenth, and 50 rows, since they were last taken, as autovacuum would; return their
        names, in order.

        Autovacuum may be off, and where it is on, a new database's tables grow for a
        minute before it looks: planned without statistics, the lookups of storing (a
        poll's band keys in story_band, its identity keys in article_key) read the whole
        table (230 ms a poll at 1.4 million band rows, 7 ms with statistics), and they run
        while every instance's storing waits (serialise_identity). PostgreSQL only."""
        if self.engine.dialect.name != "postgresql":
            return []
        with self._connection() as connection:
            grown = list(
                connection.execute(
                    text(
                        "SELECT s.relname FROM pg_stat_user_tables s "
                        "JOIN pg_class c ON c.oid = s.relid "
                        "WHERE s.schemaname = current_schema() "
                        "AND s.n_mod_since_analyze > 50 + 0.1 * GREATEST(c.reltuples, 0) "
                        "ORDER BY s.relname"
                    )
                ).scalars()
            )
            quote = connection.dialect.identifier_preparer.quote
        for name in grown:  # one transaction each: a table's lock is held no longer
            with self._connection() as connection:
                connection.execute(text(f"ANALYZE {quote(name)}"))
        return grown

    def start_singleton_job(self, name: str, claimant: str, every_seconds: float) -> bool:
        """Return True if this instance is to run job `name` now: nobody has started it in
        the last `every_seconds` (by the database's clock). Recorded as started by
        `claimant` in the same statement, so two instances asking at once get one yes."""
        if self.engine.dialect.name != "postgresql":
            return True  # one daemon per SQLite database
        with self._connection() as connection:
            connection.execute(
                text("INSERT INTO singleton_job (name) VALUES (:name) ON CONFLICT DO NOTHING"),
                {"name": name},
            )
            started = connection.execute(
                text(
                    "UPDATE singleton_job SET last_started_at = now(), started_by = :claimant "
                    "WHERE name = :name AND (last_started_at IS NULL "
                    "OR last_started_at <= now() "
                    "- make_interval(secs => CAST(:every AS double precision))) "
                    "RETURNING name"
                ),
                {"name": name, "claimant": claimant, "every": every_seconds},
            ).first()
        return started is not None


def _complete(
    connection: Connection,
    claimant: str,
    completions: Sequence[PollCompletion],
    unstarted: Sequence[ClaimedPoll],
) -> list[str]:
    """Write finished polls and give back unstarted claims, for the feeds whose claim is
    still this instance's; return the names of completions whose claim was not."""
    names = sorted({c.name for c in completions} | {u.name for u in unstarted})
    if not names:
        return []
    held = set(
        connection.execute(
            text(
                "SELECT feed_name FROM feed_lease WHERE feed_name = ANY(:names) "
                "AND claimed_by = :claimant ORDER BY feed_name FOR UPDATE"
            ),
            {"names": names, "claimant": claimant},
        ).scalars()
    )
    finished = sorted((c for c in completions if c.name in held), key=lambda c: c.name)
    if finished:
        connection.execute(
            text(
                "UPDATE feed_lease SET claimed_by = NULL, claimed_until = NULL, "
                "due_at = GREATEST(due_at, now() + :delay) WHERE feed_name = :name"
            ),
            [
                {
                    "name": c.name,
                    "delay": timedelta(seconds=c.next_poll_in_seconds)
                    if c.next_poll_in_seconds is not None
                    else NOT_AGAIN,
                }
                for c in finished
            ],
        )
        _write_states(connection, [c.state for c in finished if c.state is not None])
    given_back = sorted((u for u in unstarted if u.name in held), key=lambda u: u.name)
    if given_back:
        connection.execute(
            text(
                "UPDATE feed_lease SET claimed_by = NULL, claimed_until = NULL, "
                "due_at = :due WHERE feed_name = :name"
            ),
            [{"name": u.name, "due": u.due_at} for u in given_back],
        )
    return [c.name for c in completions if c.name not in held]


def _write_states(connection: Connection, updates: Sequence[FeedStateUpdate]) -> None:
    """Write the states of unchanged feeds: one executemany per set of columns."""
    table = table_of(FeedStateRow)
    statement = table.update().where(table.c.name == bindparam("state_name"))
    groups: dict[tuple[str, ...], list[FeedStateUpdate]] = {}
    for update in updates:
        groups.setdefault(tuple(sorted(update.values)), []).append(update)
    for group in groups.values():
        result = connection.execute(
            statement, [{"state_name": u.name, "url": u.url, **u.values} for u in group]
        )
        if result.rowcount != len(group):  # a feed without a state row yet
            for update in group:
                write_feed_state(connection, update.name, update.url, update.values)


def _feed_states(connection: Connection, names: list[str]) -> dict[str, FeedState]:
    table = table_of(FeedStateRow)
    rows = connection.execute(table.select().where(table.c.name.in_(names))).mappings()
    return {row["name"]: FeedState(**row) for row in rows}
