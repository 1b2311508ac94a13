"""`run` (the daemon, or one cycle with --once) and `check`."""

from __future__ import annotations

import logging
import sys
import threading

from monitor.cli.common import EXIT_FAILURE, EXIT_OK, EXIT_USAGE
from monitor.config import SECRETS, Config
from monitor.service import Monitor, check_configuration

logger = logging.getLogger(__name__)


def check(config: Config) -> int:
    try:
        check_configuration(config)
    except ValueError as error:
        print(f"{config.path}: {SECRETS.apply(str(error))}", file=sys.stderr)
        return EXIT_USAGE
    print(
        f"{config.path}: ok ({len(config.feeds)} feeds, {len(config.channels)} channels, "
        f"{len(config.rules)} rules)"
    )
    return EXIT_OK


def run(
    config: Config,
    *,
    once: bool,
    dry_run: bool,
    signals: tuple[threading.Event, threading.Event] | None = None,
    instance: str | None = None,
) -> int:
    stop, reload = signals or (None, None)
    monitor = Monitor(
        config,
        dry_run=dry_run,
        stop_requested=stop,
        reload_requested=reload,
        instance_name=instance,
    )
    try:
        if once:
            report = monitor.run_once()
            if report.every_feed_failed:
                # Nothing could be polled: a cron job or a timer unit must hear of it.
                logger.error(
                    "cycle status=failed failed_feeds=%d note='every enabled feed failed'",
                    len(report.polls),
                )
                return EXIT_FAILURE
        else:
            monitor.run_forever()
    finally:
        monitor.close()
    return EXIT_OK
