"""Configuration: YAML -> validated, frozen config objects; every error with its file, line
and key path.

What the rest of the program uses of it is exported here. load_config() and
load_database_settings() take the checks only later stages can make (StageChecks);
monitor.service.configuration supplies them.
"""

from monitor.config.checks import RuleProblemFound, StageChecks
from monitor.config.loader import load_config, load_database_settings, load_feed_list
from monitor.config.locations import ConfigNotFoundError, default_config_path, find_config_file
from monitor.config.opml import OutlineEntry, opml_text
from monitor.config.schema import (
    DEFAULT_MAX_AGE_SECONDS,
    DEFAULT_MAX_BYTES,
    DEFAULT_SEARCH_TIMEOUT_SECONDS,
    DEFAULT_STORY_WINDOW_SECONDS,
    DEFAULT_TIMEOUT_SECONDS,
    FULLTEXT_ALWAYS,
    FULLTEXT_IF_MISSING,
    FULLTEXT_OFF,
    parse_duration,
    parse_quiet_hours,
    parse_size,
)
from monitor.config.secrets import (
    SECRETS,
    MaskingFilter,
    SecretMask,
    secret_parts_of_url,
    url_safe_to_show,
)
from monitor.config.settings import (
    ChannelConfig,
    ClusterConfig,
    Config,
    DatabaseSettings,
    DeliveryConfig,
    FeedConfig,
    HttpConfig,
    ListedFeed,
    RuleConfig,
    StoriesConfig,
)

__all__ = [
    "DEFAULT_MAX_AGE_SECONDS",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_SEARCH_TIMEOUT_SECONDS",
    "DEFAULT_STORY_WINDOW_SECONDS",
    "DEFAULT_TIMEOUT_SECONDS",
    "FULLTEXT_ALWAYS",
    "FULLTEXT_IF_MISSING",
    "FULLTEXT_OFF",
    "SECRETS",
    "ChannelConfig",
    "ClusterConfig",
    "Config",
    "ConfigNotFoundError",
    "DatabaseSettings",
    "DeliveryConfig",
    "FeedConfig",
    "HttpConfig",
    "ListedFeed",
    "MaskingFilter",
    "OutlineEntry",
    "RuleConfig",
    "RuleProblemFound",
    "SecretMask",
    "StageChecks",
    "StoriesConfig",
    "default_config_path",
    "find_config_file",
    "load_config",
    "load_database_settings",
    "load_feed_list",
    "opml_text",
    "parse_duration",
    "parse_quiet_hours",
    "parse_size",
    "secret_parts_of_url",
    "url_safe_to_show",
]
