"""`status` and `health`: what the database says of the daemon, the feeds and deliveries."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from monitor.cli.common import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, print_problems
from monitor.config import SECRETS, ConfigNotFoundError, find_config_file
from monitor.model import ConfigError, StoreError
from monitor.service import (
    check_health,
    format_status,
    instance_name,
    load_database_settings,
    read_status,
)


def status(config_path: Path, *, as_json: bool) -> int:
    try:
        settings = load_database_settings(config_path)
    except ConfigError as error:  # the database cannot be located
        print_problems(error)
        return EXIT_USAGE
    SECRETS.update(settings.secrets)
    report = read_status(settings, datetime.now(UTC))
    if as_json:
        print(json.dumps(report.document(), ensure_ascii=False, indent=2))
    else:
        print("\n".join(format_status(report, settings)))
    return EXIT_OK


def health(config_path: Path | None, instance: str | None) -> int:
    """Exit 0 while a daemon's heartbeat is fresh and the database answers; 1 otherwise,
    never 2 (Docker reserves it for health checks), with the reason on one line."""
    try:
        name = instance_name(instance)
    except ValueError as error:
        print(str(error), file=sys.stderr)
        return EXIT_FAILURE
    healthy = False
    try:
        settings = load_database_settings(config_path or find_config_file(), check_everything=False)
        SECRETS.update(settings.secrets)
        healthy, reason = check_health(settings, name, datetime.now(UTC))
    except ConfigNotFoundError as error:
        reason = error.one_line()
    except ConfigError as error:
        problems = [str(problem) for problem in error.problems] or ["unknown problem"]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        reason = f"the configuration does not locate the database: {problems[0]}{more}"
    except StoreError as error:
        reason = f"database unavailable: {error}"
    print(SECRETS.apply(reason), file=sys.stdout if healthy else sys.stderr)
    return EXIT_OK if healthy else EXIT_FAILURE
