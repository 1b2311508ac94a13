"""The store (layer 4): the database of feed state, articles and their stories, rule hits,
deliveries and running instances. Other stages use what is exported here; see
monitor.store.database."""

from monitor.store.activity import DailyCount, HitDelivery, RecentHit, StoredArticle
from monitor.store.articles import ArticleChange
from monitor.store.claims import CLAIM_LEASE, claim_is_live, new_claimant, process_start
from monitor.store.copy import CopyError, CopyReport, copy_store
from monitor.store.database import Store, StoreTransaction
from monitor.store.deliveries import DeliveryArticle, DueDelivery, HitToRecord, StoryMention
from monitor.store.engine import sqlite_file, url_secrets
from monitor.store.feeds import FeedState, FeedStateUpdate, FeedStatus
from monitor.store.instances import (
    HEARTBEAT_FRESH_SECONDS,
    HEARTBEAT_INTERVAL_SECONDS,
    AlreadyRunningError,
    InstanceIdentity,
    InstanceRecord,
    heartbeat_fresh_seconds,
    heartbeat_interval_seconds,
    instance_name,
)
from monitor.store.leases import ClaimedPoll, PollCompletion, PollRound
from monitor.store.migrations import SchemaTooNewError
from monitor.store.retention import PruneReport
from monitor.store.rules import RuleState
from monitor.store.search import INDEX_BATCH_ARTICLES
from monitor.store.stories import (
    GROUP_BATCH_ARTICLES,
    ArticleStory,
    StoryArticle,
    StoryGrouping,
    StoryRecord,
)
from monitor.store.tables import ALERT, BATCH, DIGEST, FAILED, HELD, PENDING, SENT

__all__ = [
    "ALERT",
    "BATCH",
    "CLAIM_LEASE",
    "DIGEST",
    "FAILED",
    "GROUP_BATCH_ARTICLES",
    "HEARTBEAT_FRESH_SECONDS",
    "HEARTBEAT_INTERVAL_SECONDS",
    "HELD",
    "INDEX_BATCH_ARTICLES",
    "PENDING",
    "SENT",
    "AlreadyRunningError",
    "ArticleChange",
    "ArticleStory",
    "ClaimedPoll",
    "CopyError",
    "CopyReport",
    "DailyCount",
    "DeliveryArticle",
    "DueDelivery",
    "FeedState",
    "FeedStateUpdate",
    "FeedStatus",
    "HitDelivery",
    "HitToRecord",
    "InstanceIdentity",
    "InstanceRecord",
    "PollCompletion",
    "PollRound",
    "PruneReport",
    "RecentHit",
    "RuleState",
    "SchemaTooNewError",
    "Store",
    "StoreTransaction",
    "StoredArticle",
    "StoryArticle",
    "StoryGrouping",
    "StoryMention",
    "StoryRecord",
    "claim_is_live",
    "copy_store",
    "heartbeat_fresh_seconds",
    "heartbeat_interval_seconds",
    "instance_name",
    "new_claimant",
    "process_start",
    "sqlite_file",
    "url_secrets",
]
