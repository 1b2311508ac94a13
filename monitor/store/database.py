"""The store as the other stages see it: Store, one per process, and StoreTransaction, the
writes that must run together. Each is assembled from the parts of one domain:

- monitor.store.engine: the engine (SQLite WAL and BEGIN IMMEDIATE, or PostgreSQL) and
  its transactions; monitor.store.tables: the tables;
- monitor.store.migrations: bringing a database of any earlier version up to date;
- monitor.store.feeds, .articles, .stories, .search, .rules, .deliveries, .retention,
  .instances, .leases: the queries and writes of each; monitor.store.activity: reads of
  what happened over time; monitor.store.copy: a whole store into another.

They are the only modules of news-monitor that import SQLAlchemy or SQLModel.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from monitor.store.activity import ActivityQueries
from monitor.store.articles import ArticleQueries, ArticleTransaction
from monitor.store.deliveries import DeliveryQueries, DeliveryTransaction
from monitor.store.feeds import FeedQueries, FeedTransaction
from monitor.store.instances import InstanceRecords
from monitor.store.leases import LeaseQueries
from monitor.store.migrations import SchemaMigrations
from monitor.store.retention import RetentionQueries
from monitor.store.rules import RuleQueries, RuleTransaction
from monitor.store.search import SearchQueries
from monitor.store.stories import StoryQueries


class StoreTransaction(ArticleTransaction, RuleTransaction, DeliveryTransaction, FeedTransaction):
    """Methods that must run together in one write transaction (see Store.transaction)."""


class Store(
    SchemaMigrations,
    FeedQueries,
    ArticleQueries,
    StoryQueries,
    SearchQueries,
    RuleQueries,
    DeliveryQueries,
    RetentionQueries,
    InstanceRecords,
    LeaseQueries,
    ActivityQueries,
):
    """The database: one per process, safe to use from several threads.

    `read_only`: see monitor.store.engine.make_engine; such a store only answers queries."""

    @property
    def shared(self) -> bool:
        """Whether several daemons may share this database (PostgreSQL): they then share
        the work through leases (monitor.store.leases). A SQLite database serves one."""
        return self.engine.dialect.name != "sqlite"

    @contextmanager
    def transaction(self) -> Iterator[StoreTransaction]:
        """One write transaction: everything in it is stored, or nothing is.

        Raise StoreError if the database fails; the transaction is rolled back."""
        with self._writing() as session:
            yield StoreTransaction(session)
