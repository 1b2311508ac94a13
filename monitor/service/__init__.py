"""The service (layer 6): the daemon and the per-feed pipeline, status and health, and the
one-off work the command line asks for.

Names are loaded on first use: `news-monitor health` (Docker's HEALTHCHECK) needs the status
module alone, not the daemon's fetcher, parser and sender.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from monitor.service.backtest import (
        Backtest,
        UnknownRuleError,
        file_articles,
        format_failures,
        format_hit,
        format_summary,
        hit_json,
        select_rules,
        url_articles,
    )
    from monitor.service.configuration import load_config, load_database_settings, load_feed_list
    from monitor.service.daemon import CycleReport, Monitor, Runtime
    from monitor.service.feed_lists import discover, export_feeds
    from monitor.service.instances import instance_name
    from monitor.service.log import configure_logging
    from monitor.service.operations import (
        check_configuration,
        copy_database,
        retry_failed_deliveries,
        send_test_alert,
        stored_articles,
    )
    from monitor.service.search import (
        DEFAULT_SEARCH_SINCE_SECONDS,
        SearchQueryError,
        format_result,
        result_document,
        search_archive,
    )
    from monitor.service.signals import catch_daemon_signals
    from monitor.service.status import check_health, format_status, read_status
    from monitor.service.stories import (
        DEFAULT_STORIES_SINCE_SECONDS,
        format_story,
        stored_stories,
        story_json,
    )

_MODULE_OF = {
    "Backtest": "backtest",
    "UnknownRuleError": "backtest",
    "file_articles": "backtest",
    "format_failures": "backtest",
    "format_hit": "backtest",
    "format_summary": "backtest",
    "hit_json": "backtest",
    "select_rules": "backtest",
    "url_articles": "backtest",
    "CycleReport": "daemon",
    "Monitor": "daemon",
    "Runtime": "daemon",
    "discover": "feed_lists",
    "export_feeds": "feed_lists",
    "instance_name": "instances",
    "configure_logging": "log",
    "check_configuration": "operations",
    "copy_database": "operations",
    "load_config": "configuration",
    "load_database_settings": "configuration",
    "load_feed_list": "configuration",
    "retry_failed_deliveries": "operations",
    "send_test_alert": "operations",
    "stored_articles": "operations",
    "DEFAULT_SEARCH_SINCE_SECONDS": "search",
    "SearchQueryError": "search",
    "format_result": "search",
    "result_document": "search",
    "search_archive": "search",
    "catch_daemon_signals": "signals",
    "check_health": "status",
    "format_status": "status",
    "read_status": "status",
    "DEFAULT_STORIES_SINCE_SECONDS": "stories",
    "format_story": "stories",
    "story_json": "stories",
    "stored_stories": "stories",
}

__all__ = [
    "DEFAULT_SEARCH_SINCE_SECONDS",
    "DEFAULT_STORIES_SINCE_SECONDS",
    "Backtest",
    "CycleReport",
    "Monitor",
    "Runtime",
    "SearchQueryError",
    "UnknownRuleError",
    "catch_daemon_signals",
    "check_configuration",
    "check_health",
    "configure_logging",
    "copy_database",
    "discover",
    "export_feeds",
    "file_articles",
    "format_failures",
    "format_hit",
    "format_result",
    "format_status",
    "format_story",
    "format_summary",
    "hit_json",
    "instance_name",
    "load_config",
    "load_database_settings",
    "load_feed_list",
    "read_status",
    "result_document",
    "retry_failed_deliveries",
    "search_archive",
    "select_rules",
    "send_test_alert",
    "stored_articles",
    "stored_stories",
    "story_json",
    "url_articles",
]


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
