"""Loading the configuration with every check of every stage.

monitor.config validates the files but cannot import the stages above it; what only they
can check (an Apprise URL, a body template, a digest's cron expression, a rule's terms,
query and fields) is handed to it here as StageChecks. Everything that loads the
configuration goes through this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC
from pathlib import Path

from monitor import config
from monitor.config import Config, DatabaseSettings, ListedFeed, StageChecks
from monitor.delivery import check_apprise_url, check_template, crontab_trigger
from monitor.matching import field_name, positive_term_problems, query_problem, term_problem

__all__ = ["STAGE_CHECKS", "load_config", "load_database_settings", "load_feed_list"]


def _cron_problem(expression: str) -> str | None:
    """Read the expression as delivery does: crontab's day-of-week numbering (0 and 7 are
    Sunday), which APScheduler's own from_crontab does not follow."""
    try:
        crontab_trigger(expression, UTC)
    except ValueError as error:
        return str(error)
    return None


STAGE_CHECKS = StageChecks(
    check_channel_url=check_apprise_url,
    check_template=check_template,
    check_cron=_cron_problem,
    check_term=term_problem,
    check_query=query_problem,
    field_name=field_name,
    rule_problems=positive_term_problems,
)


def load_config(path: str | Path, environ: Mapping[str, str] | None = None) -> Config:
    """Given the main configuration file, return the validated Config (monitor.config's
    load_config with every stage's checks). Raise ConfigError listing every problem."""
    return config.load_config(path, environ, checks=STAGE_CHECKS)


def load_database_settings(
    path: str | Path, environ: Mapping[str, str] | None = None, *, check_everything: bool = True
) -> DatabaseSettings:
    """Given the main configuration file, return where the database is and what the main
    file lists (monitor.config's load_database_settings with every stage's checks)."""
    return config.load_database_settings(
        path, environ, checks=STAGE_CHECKS, check_everything=check_everything
    )


def load_feed_list(
    path: str | Path, environ: Mapping[str, str] | None = None
) -> tuple[ListedFeed, ...]:
    """Given the main configuration file, return every feed it configures as written, no
    ${...} resolved (monitor.config's load_feed_list with every stage's checks). Raise
    ConfigError listing every problem."""
    return config.load_feed_list(path, environ, checks=STAGE_CHECKS)
