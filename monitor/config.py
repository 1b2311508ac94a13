"""YAML -> validated, frozen config objects; every error with its file, line and key path.

The dataclasses below are the contract the rest of the program reads. load_config() is the
only way to build them from files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from monitor.items import DEFAULT_MATCH_FIELDS

DEFAULT_INTERVAL_SECONDS = 600.0
DEFAULT_JITTER_SECONDS = 30.0
DEFAULT_TIMEOUT_SECONDS = 20.0
DEFAULT_MAX_BYTES = 5 * 1024 * 1024
DEFAULT_MAX_AGE_SECONDS = 2 * 86400.0
DEFAULT_RETRY_BASE_SECONDS = 30.0
DEFAULT_RETRY_CAP_SECONDS = 3600.0
DEFAULT_DELIVERY_ATTEMPTS = 10


@dataclass(frozen=True)
class FeedConfig:
    name: str
    url: str
    interval_seconds: float = DEFAULT_INTERVAL_SECONDS
    jitter_seconds: float = DEFAULT_JITTER_SECONDS
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    max_bytes: int = DEFAULT_MAX_BYTES
    max_age_seconds: float = DEFAULT_MAX_AGE_SECONDS
    notify_existing: bool = False
    enabled: bool = True


@dataclass(frozen=True)
class ChannelConfig:
    name: str
    urls: tuple[str, ...]  # Apprise URLs with ${...} already substituted: secret-bearing


@dataclass(frozen=True)
class RuleConfig:
    name: str
    any_terms: tuple[str, ...] = ()
    all_terms: tuple[str, ...] = ()
    none_terms: tuple[str, ...] = ()
    fields: tuple[str, ...] = DEFAULT_MATCH_FIELDS
    feeds: tuple[str, ...] = ()  # empty: every feed
    notify: tuple[str, ...] = ("console",)
    enabled: bool = True
    # Delivery options, validated now, applied by the delivery features.
    digest: str | None = None
    quiet_hours: str | None = None
    max_per_hour: int | None = None
    template: str | None = None
    source_file: str = ""
    source_line: int | None = None


@dataclass(frozen=True)
class DeliveryConfig:
    retry_base_seconds: float = DEFAULT_RETRY_BASE_SECONDS
    retry_cap_seconds: float = DEFAULT_RETRY_CAP_SECONDS
    attempts: int = DEFAULT_DELIVERY_ATTEMPTS  # every try counts, the first included


@dataclass(frozen=True)
class Config:
    path: Path  # the main file
    database_url: str
    state_dir: Path
    timezone: str = "UTC"
    feeds: tuple[FeedConfig, ...] = ()
    channels: tuple[ChannelConfig, ...] = ()
    rules: tuple[RuleConfig, ...] = ()
    delivery: DeliveryConfig = field(default_factory=DeliveryConfig)
    http_listen: str | None = None
    # Every value substituted from ${...}: never to be shown in logs, errors or status.
    secrets: frozenset[str] = frozenset()
    # The main file and every rules file, for reload on change.
    source_files: tuple[Path, ...] = ()

    def channel(self, name: str) -> ChannelConfig | None:
        return next((channel for channel in self.channels if channel.name == name), None)

    def feed(self, name: str) -> FeedConfig | None:
        return next((feed for feed in self.feeds if feed.name == name), None)
