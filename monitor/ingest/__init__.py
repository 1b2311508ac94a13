"""Ingest: fetch a feed (HTTP or file, with deadlines, size caps and conditional GETs), parse
it (in a pool of parser processes), tell known items from new ones, decide which stored
article each item is, and fetch the article pages of new items for their main text. See
docs/architecture.md for where this stage sits.

Other packages use what is exported here; the modules behind it may move.
"""

from monitor.ingest.discovery import DiscoveredFeed, NoFeedFound, discover_feeds
from monitor.ingest.extract import PageRequest, extract_main_text
from monitor.ingest.fetch import (
    DEFAULT_PER_ORIGIN_LIMIT,
    Fetcher,
    FetchResult,
)
from monitor.ingest.freshness import FRESHNESS_EXPIRES, FRESHNESS_MAX_AGE
from monitor.ingest.http_request import origin_of
from monitor.ingest.identity import (
    IDENTITY_VERSION,
    ItemKeys,
    Stored,
    StoredFacts,
    Target,
    UpgradePoll,
    assign,
    facts_needed,
    item_keys,
    lookup_keys,
)
from monitor.ingest.known_items import ItemSplit, known_digests, split_items
from monitor.ingest.pages import ArticlePages, PageText
from monitor.ingest.parse import ParsedFeed, parse_feed
from monitor.ingest.parse_pool import ParsePool, ParseRequest, default_worker_count

__all__ = [
    "DEFAULT_PER_ORIGIN_LIMIT",
    "FRESHNESS_EXPIRES",
    "FRESHNESS_MAX_AGE",
    "IDENTITY_VERSION",
    "ArticlePages",
    "DiscoveredFeed",
    "FetchResult",
    "Fetcher",
    "ItemKeys",
    "ItemSplit",
    "NoFeedFound",
    "PageRequest",
    "PageText",
    "ParsePool",
    "ParseRequest",
    "ParsedFeed",
    "Stored",
    "StoredFacts",
    "Target",
    "UpgradePoll",
    "assign",
    "default_worker_count",
    "discover_feeds",
    "extract_main_text",
    "facts_needed",
    "item_keys",
    "known_digests",
    "lookup_keys",
    "origin_of",
    "parse_feed",
    "split_items",
]
