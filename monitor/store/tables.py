"""The tables (SQLModel classes) and the values of their status columns. The instance table
is monitor.store.instances'; every other module of the store reads and writes these.

A table or column added here reaches existing databases through a step of
monitor.store.migrations: add one there too.
"""

from __future__ import annotations

import functools
from datetime import datetime

from sqlalchemy import BigInteger, Index, Table, UniqueConstraint, inspect, text
from sqlmodel import Field, SQLModel

HELD, PENDING, SENT, FAILED = "held", "pending", "sent", "failed"
ALERT, DIGEST, BATCH = "alert", "digest", "batch"


class FeedStateRow(SQLModel, table=True):
    __tablename__ = "feed_state"

    name: str = Field(primary_key=True, max_length=200)
    url: str
    etag: str | None = None
    last_modified: str | None = None
    last_poll_at: datetime | None = None
    last_success_at: datetime | None = None
    http_status: int | None = None
    error: str | None = None
    error_streak: int = 0
    last_new_count: int = 0
    last_item_count: int = 0
    next_poll_at: datetime | None = None
    baseline_done: bool = False
    redirected_to: str | None = None
    ttl_seconds: float | None = None
    # Digest of the last document stored: the same bytes again need no parsing, for
    # servers that send neither ETag nor Last-Modified.
    body_hash: str | None = Field(default=None, max_length=64)
    # Digests of the items of that document (known_items): a changed document's items
    # with one of these need no parsing.
    item_digests: bytes | None = None
    # The identity (monitor.ingest.identity.IDENTITY_VERSION) this feed's items were last stored
    # under; NULL: the first, from before link fragments counted.
    identity_version: int | None = None
    # Full text (`fulltext:`): the last poll that fetched article pages, how many it fetched,
    # how many gave no text, and why (JSON: [{"link": ..., "error": ...}], the first few).
    fulltext_at: datetime | None = None
    fulltext_pages: int | None = None
    fulltext_failed: int | None = None
    fulltext_errors: str | None = None


class ArticleRow(SQLModel, table=True):
    __tablename__ = "article"
    __table_args__ = (
        # What retention has yet to prune, oldest first: pruned rows leave the index, so a
        # daily prune reads only what it changes.
        Index(
            "ix_article_unpruned_first_seen",
            "first_seen_at",
            sqlite_where=text("pruned_at IS NULL"),  # and on PostgreSQL: partial_indexes_on
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    first_feed: str = Field(max_length=200)
    title: str = ""
    link: str | None = None
    canonical_link: str | None = None
    summary: str = ""
    content: str = ""
    author: str = ""
    categories_json: str = "[]"
    published_at: datetime | None = None
    first_seen_at: datetime
    updated_at: datetime
    content_hash: str = Field(default="", max_length=64)
    # Recorded by a feed's first (baseline) poll: such an article never alerts.
    baseline: bool = False
    # When retention emptied its summary and content (Store.prune_articles). Its keys stay,
    # so it is never new again; edits to it are ignored, so it never alerts again either.
    pruned_at: datetime | None = None
    # The story it reports (monitor.store.stories), chosen when it was stored and never
    # changed; NULL: stored while grouping was off, or before stories existed.
    story_id: int | None = Field(default=None, index=True)
    # Its story fingerprint's signature (monitor.stories), as stored when it was grouped.
    story_signature: bytes | None = None


class StoryRow(SQLModel, table=True):
    """A story: articles, from any feeds, that report the same news. Stories never merge."""

    __tablename__ = "story"

    id: int | None = Field(default=None, primary_key=True)
    # When its first article was first seen: later ones join only within stories.window.
    first_seen_at: datetime = Field(index=True)
    title: str = ""  # its first article's, as first stored
    first_article_id: int = Field(foreign_key="article.id")


class StoryBandRow(SQLModel, table=True):
    """The band keys of each grouped article's fingerprint (monitor.stories): an article
    sharing one with a new article is a candidate for its story. The primary key is the
    lookup's index: by band key, then the story's first-seen time, so the window is a range
    in it; on SQLite a table without rowid, the index itself. Rows of stories past the
    window are useless and pruned (Store.forget_story_bands). Derived data: no foreign
    key, so that writing the many rows costs no lookups."""

    __tablename__ = "story_band"
    __table_args__ = ({"sqlite_with_rowid": False},)

    band_key: int = Field(
        primary_key=True, sa_type=BigInteger, sa_column_kwargs={"autoincrement": False}
    )
    # Unix time, whole seconds, of its story's first article: compact in every index row.
    story_first_seen_seconds: int = Field(
        primary_key=True, sa_type=BigInteger, sa_column_kwargs={"autoincrement": False}
    )
    article_id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})


class ArticleKeyRow(SQLModel, table=True):
    __tablename__ = "article_key"

    # See monitor.ingest.identity.item_keys: a sha256, one namespace for every kind of key.
    key: str = Field(primary_key=True, max_length=64)
    article_id: int = Field(foreign_key="article.id", index=True)


class FeedArticleRow(SQLModel, table=True):
    __tablename__ = "feed_article"

    feed_name: str = Field(primary_key=True, max_length=200)
    article_id: int = Field(primary_key=True, foreign_key="article.id")
    first_seen_at: datetime
    # Whether this feed gave the article a guid: another guid of the same feed is then
    # another article, even with the same link. NULL: stored before this was recorded.
    guid_given: bool | None = None


class RuleHitRow(SQLModel, table=True):
    __tablename__ = "rule_hit"
    # A rule notifies at most once per article, ever.
    __table_args__ = (UniqueConstraint("rule_name", "article_id", name="uq_rule_hit"),)

    id: int | None = Field(default=None, primary_key=True)
    rule_name: str = Field(max_length=200)
    article_id: int = Field(foreign_key="article.id", index=True)
    feed_name: str = Field(max_length=200)
    terms_json: str = "[]"
    excerpt: str = ""
    matched_at: datetime


class DeliveryRow(SQLModel, table=True):
    """One message to one channel: an alert about one article, or a batch of several.

    status: held (a batch waiting for release_at: a digest window, quiet hours or the
    excess of max_per_hour), pending (due at next_attempt_at), sent, failed (attempts
    exhausted). kind: alert (one article), digest (a `digest:` window, a digest whatever
    its size), batch (quiet hours or max_per_hour: a plain alert when it holds one article).
    A held batch takes more articles until it is released; at most one is open per
    (rule, channel, release time).
    """

    __tablename__ = "delivery"
    __table_args__ = (
        Index("ix_delivery_due", "status", "next_attempt_at"),
        Index("ix_delivery_rule_channel_created", "rule_name", "channel", "created_at"),
        Index(
            "uq_delivery_open_batch",
            "rule_name",
            "channel",
            "release_at",
            unique=True,
            sqlite_where=text("status = 'held'"),  # and on PostgreSQL: partial_indexes_on
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    rule_name: str = Field(max_length=200)
    channel: str = Field(max_length=200)
    kind: str = Field(default=ALERT, max_length=16)
    status: str = Field(default=PENDING, max_length=16)
    release_at: datetime | None = None  # a batch: when it goes out
    attempts: int = 0
    next_attempt_at: datetime
    last_error: str | None = None
    # JSON list of the channel's service indexes (URL positions) that already succeeded:
    # a retry skips them.
    sent_services: str = "[]"
    # The process sending it now (see monitor.store.claims); a claim of a dead process is void.
    claimed_by: str | None = Field(default=None, max_length=200)
    claimed_at: datetime | None = None
    created_at: datetime
    sent_at: datetime | None = None


class DeliveryItemRow(SQLModel, table=True):
    """An article (rule hit) carried by a delivery: once per (hit, channel), ever.

    A rule alerts a channel once per story (`per_story`): a later article of a story is
    listed under the story's first in that delivery (story_lead_hit_id: the first's hit),
    while it waits; once it has gone out, the later one sends nothing, and is recorded as
    suppressed (suppressed_at) in the delivery that carried the story's alert."""

    __tablename__ = "delivery_item"

    hit_id: int = Field(primary_key=True, foreign_key="rule_hit.id")
    channel: str = Field(primary_key=True, max_length=200)
    delivery_id: int = Field(foreign_key="delivery.id", index=True)
    story_lead_hit_id: int | None = None
    suppressed_at: datetime | None = None


class RuleStateRow(SQLModel, table=True):
    __tablename__ = "rule_state"

    rule_name: str = Field(primary_key=True, max_length=200)
    failures: int = 0  # articles the rule could not be evaluated on, ever
    last_error: str | None = None
    last_error_at: datetime | None = None


class FeedLeaseRow(SQLModel, table=True):
    """When a feed may be polled next, and which instance polls it now: the schedule that
    instances sharing a PostgreSQL database share (monitor.store.leases). A daemon on SQLite,
    alone on its database, keeps its schedule in memory and never reads this table."""

    __tablename__ = "feed_lease"
    __table_args__ = (Index("ix_feed_lease_due", "due_at"),)

    feed_name: str = Field(primary_key=True, max_length=200)
    # Its poll may start from then on (the database's clock). Set one interval ahead when a
    # poll is claimed, whatever becomes of that poll: no feed is polled more often.
    due_at: datetime
    interval_seconds: float
    # The instance polling it (monitor.store.instances.InstanceIdentity.claim_prefix), until
    # when that claim holds unless renewed; NULL when nobody polls it.
    claimed_by: str | None = Field(default=None, max_length=200)
    claimed_until: datetime | None = None
    last_claimed_at: datetime | None = None


class SingletonJobRow(SQLModel, table=True):
    """A periodic job that one instance of all those sharing the database runs (retention):
    when it last started, and by whom."""

    __tablename__ = "singleton_job"

    name: str = Field(primary_key=True, max_length=64)
    last_started_at: datetime | None = None
    started_by: str | None = Field(default=None, max_length=200)


class SchemaMigrationRow(SQLModel, table=True):
    """A step of monitor.store.migrations that this database has been through."""

    __tablename__ = "schema_migration"

    number: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    name: str = Field(max_length=200)
    applied_at: datetime
    # The news-monitor that applied it, and the number of steps an instance must know to run
    # against a schema that has been through it (NULL: any instance; the step is additive).
    version: str | None = Field(default=None, max_length=64)
    required_steps: int | None = None


def partial_indexes_on(dialect_name: str) -> None:
    """Give each partial index the condition it has on SQLite on `dialect_name` as well.

    The tables declare it for SQLite only: a `postgresql_where` in a table definition makes
    SQLAlchemy import its PostgreSQL dialect to check the option, 20 ms of every start,
    for a database most installs never use.
    """
    for table in SQLModel.metadata.tables.values():
        for index in table.indexes:
            where = index.dialect_options["sqlite"]["where"]
            if where is not None:
                index.dialect_options[dialect_name]["where"] = where


@functools.cache
def table_of(model: type[SQLModel]) -> Table:
    """Given a table model, return its Core table (SQLModel's `__table__`, which its types
    do not declare), for statements that need no ORM."""
    table = inspect(model).local_table
    assert isinstance(table, Table)
    return table


class SearchIndexStateRow(SQLModel, table=True):
    """What made the tokens in the search index (monitor.store.search): one row."""

    __tablename__ = "search_index_state"

    id: int = Field(default=1, primary_key=True)
    tokens_version: str = Field(max_length=200)  # monitor.matching.tokens_version()


class SearchPendingRow(SQLModel, table=True):
    """A stored article the search index does not hold yet: stored or edited since the
    indexer last ran, or stored before the index (monitor.store.search)."""

    __tablename__ = "search_pending"

    article_id: int = Field(
        primary_key=True, sa_type=BigInteger, sa_column_kwargs={"autoincrement": False}
    )


class StoryPendingRow(SQLModel, table=True):
    """A stored article not grouped into a story yet: stored by a feed's first poll (a
    baseline, which never alerts), grouped later by Store.group_pending (monitor.store.stories)."""

    __tablename__ = "story_pending"

    article_id: int = Field(
        primary_key=True, sa_type=BigInteger, sa_column_kwargs={"autoincrement": False}
    )
