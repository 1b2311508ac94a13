"""The command line: arguments, and which command runs with which configuration.

Commands and exit codes only (0 ok, 1 runtime failure, 2 bad config or usage): the work is
monitor.service's.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from monitor import __version__
from monitor.cli.common import EXIT_FAILURE, EXIT_USAGE, print_problems
from monitor.cli.db import db_copy
from monitor.cli.deliveries import deliveries_retry
from monitor.cli.feeds import feeds_discover, feeds_export
from monitor.cli.notify import notify_test
from monitor.cli.rules import rules_test
from monitor.cli.run import check, run
from monitor.cli.search import search
from monitor.cli.status import health, status
from monitor.cli.stories import stories
from monitor.config import SECRETS, ConfigNotFoundError, find_config_file
from monitor.model import ConfigError, StoreError
from monitor.service import (
    DEFAULT_SEARCH_SINCE_SECONDS,
    DEFAULT_STORIES_SINCE_SECONDS,
    catch_daemon_signals,
    configure_logging,
    instance_name,
    load_config,
)
from monitor.store import AlreadyRunningError

logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        type=Path,
        default=argparse.SUPPRESS,
        help="main config file (default: $NEWS_MONITOR_CONFIG, ./config/monitor.yaml, "
        "/etc/news-monitor/monitor.yaml)",
    )
    parser = argparse.ArgumentParser(
        prog="news-monitor",
        description="Watch news feeds, match watch rules, alert through Apprise.",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"news-monitor {__version__}")
    parser.add_argument("--log-format", choices=("text", "json"), default="text")
    parser.add_argument("--verbose", "-v", action="store_true", help="log debug details")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = commands.add_parser(
        "run", parents=[common], help="poll feeds on schedule, match rules, send alerts"
    )
    run.add_argument("--once", action="store_true", help="one full cycle, then exit")
    run.add_argument(
        "--dry-run", action="store_true", help="send nothing and mark nothing delivered"
    )
    run.add_argument(
        "--instance",
        metavar="NAME",
        help="the daemon's name among the instances on its database (default: "
        "$NEWS_MONITOR_INSTANCE, else HOST:PID)",
    )

    commands.add_parser("check", parents=[common], help="validate config and rules")

    db = commands.add_parser("db", parents=[common], help="the database")
    db_commands = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    db_copy_parser = db_commands.add_parser(
        "copy",
        parents=[common],
        help="copy the store into another, empty database (SQLite to PostgreSQL)",
        description="Copy the configuration's store (articles, identity keys, rule hits, "
        "deliveries, feed state) into another, empty database, such as PostgreSQL for "
        "several instances, so that nothing alerts again there. Stop the daemon first. "
        "The URL is never logged nor shown.",
    )
    db_copy_parser.add_argument(
        "--to",
        metavar="URL",
        required=True,
        help="the target database, e.g. postgresql+psycopg://USER:PASSWORD@HOST/DB",
    )

    status = commands.add_parser(
        "status",
        parents=[common],
        help="whether a daemon runs, feeds, deliveries, config problems",
        description="Read the database and show whether a daemon runs, each feed's polls and "
        "the deliveries. Of the configuration, only what locates the database is needed (no "
        "other secret is read): problems elsewhere, such as a broken rules file, are listed. "
        "Exit 0 when the database could be read.",
    )
    status.add_argument("--json", action="store_true", help="print JSON")

    health = commands.add_parser(
        "health",
        parents=[common],
        help="exit 0 while a daemon's heartbeat is fresh and the database answers, else 1",
        description="For health checks (Docker's HEALTHCHECK): exit 0 while a daemon's "
        "heartbeat in the database is fresh, 1 otherwise (no daemon, database unreadable, "
        "configuration that does not locate the database), with the reason on one line. "
        "Never exit 2, which Docker reserves.",
    )
    health.add_argument(
        "--instance",
        metavar="NAME",
        help="check this instance only (default: $NEWS_MONITOR_INSTANCE, else any daemon)",
    )

    notify = commands.add_parser("notify", parents=[common], help="notification channels")
    notify_commands = notify.add_subparsers(dest="notify_command", metavar="ACTION", required=True)
    notify_test = notify_commands.add_parser(
        "test", parents=[common], help="send a test alert through one channel"
    )
    notify_test.add_argument("channel", help="channel name from the config")

    deliveries = commands.add_parser("deliveries", parents=[common], help="the outbox")
    deliveries_commands = deliveries.add_subparsers(
        dest="deliveries_command", metavar="ACTION", required=True
    )
    retry = deliveries_commands.add_parser(
        "retry",
        parents=[common],
        help="put failed deliveries back to pending",
        description="Put deliveries that failed for good (every attempt used) back to "
        "pending, their attempts reset: the running daemon, or the next `run --once`, sends "
        "them again. Services of a channel that already received a message are skipped.",
    )
    retry.add_argument("--rule", metavar="NAME", help="only this rule's deliveries")

    feeds = commands.add_parser("feeds", parents=[common], help="bring feeds in, take them out")
    feeds_commands = feeds.add_subparsers(dest="feeds_command", metavar="ACTION", required=True)
    feeds_commands.add_parser(
        "export",
        parents=[common],
        help="print every configured feed as OPML 2.0",
        description="Print every configured feed (those of monitor.yaml and of its feeds_from: "
        "files) as an OPML 2.0 subscription list for a feed reader: groups as nested folders, "
        "URLs as written in the config (a ${...} is never resolved). Read back with "
        "feeds_from:, it gives the same feeds in the same groups.",
    )
    discover_command = feeds_commands.add_parser(
        "discover",
        parents=[common],
        help="print the feeds a web page declares, as feed entries to paste",
        description='Fetch a page and print the feeds it declares (<link rel="alternate"> '
        "of RSS, Atom and JSON Feed), one monitor.yaml feed entry per line, ready to paste "
        "under feeds:. A URL that is itself a feed prints itself. Exit 1, with one line "
        "saying why, when the page cannot be fetched or declares no feed. No configuration "
        "is read.",
    )
    discover_command.add_argument("url", help="a web page (or feed) URL")

    rules = commands.add_parser("rules", parents=[common], help="watch rules")
    rules_commands = rules.add_subparsers(dest="rules_command", metavar="ACTION", required=True)
    rules_test = rules_commands.add_parser(
        "test",
        parents=[common],
        help="backtest: which articles each rule matches, and why (nothing is sent)",
        description="Run the watch rules over stored articles (default), a feed file or a "
        "feed URL, send nothing, and show each hit: rule, article, and every matched term "
        "in its context.",
        epilog="Stored articles: a rule limited by `feeds:` sees the articles any of those "
        "feeds carried. --file and --url: `feeds:` limits are ignored (the source is no "
        "configured feed), so every rule sees every item. Disabled rules are skipped unless "
        "named with --rule. Exit 0 whatever the hits; 1 if the store or URL cannot be "
        "read; 2 for an unknown rule, a bad duration or a file that is no feed.",
    )
    rules_test.add_argument(
        "--rule", metavar="NAME", help="only this rule (tested even if disabled)"
    )
    rules_test.add_argument(
        "--since",
        metavar="DURATION",
        type=_duration,
        help="only stored articles first seen within this period, e.g. 7d or 12h (default: all)",
    )
    source = rules_test.add_mutually_exclusive_group()
    source.add_argument(
        "--file", type=Path, metavar="FEED.xml", help="test the items of a feed file instead"
    )
    source.add_argument("--url", metavar="URL", help="fetch a feed and test its items instead")
    rules_test.add_argument(
        "--json", action="store_true", help="one JSON object per hit on stdout, summary on stderr"
    )

    stories = commands.add_parser(
        "stories",
        parents=[common],
        help="stories of several articles: the same news in several feeds or scripts",
        description="List the stories first seen within a period, newest first: id, first "
        "seen, title, and each article's feed, published time, title and link. A story "
        "groups the articles that report the same news (the /cn article and its /tw "
        "version, a reprint), and a rule alerts once per story.",
        epilog="Nothing is listed while grouping is off (stories: false).",
    )
    stories.add_argument(
        "--since",
        metavar="DURATION",
        type=_duration,
        default=DEFAULT_STORIES_SINCE_SECONDS,
        help="stories first seen within this period, e.g. 12h or 7d (default: 1d)",
    )
    stories.add_argument(
        "--all", action="store_true", help="every story, also those of a single article"
    )
    stories.add_argument("--json", action="store_true", help="one JSON object per story")

    search_command = commands.add_parser(
        "search",
        parents=[common],
        help="stored articles a rule with this query would match, newest first",
        description="Search the stored articles with the rule query language (the README's "
        '"Watch rules"), with every folding rules have: Traditional and Simplified, '
        "Taiwan and Mainland vocabulary, full width, case. Results are exactly what "
        "`rules test` would match for a rule with the query, newest first, each with an "
        "excerpt marking the matched text 【like this】.",
        epilog="Exit 0 (also with no result), 2 for a bad query.",
    )
    search_command.add_argument("query", metavar="QUERY", help="e.g. 韩日 or '关税 AND 美国'")
    search_command.add_argument(
        "--since",
        metavar="DURATION",
        type=_duration,
        default=DEFAULT_SEARCH_SINCE_SECONDS,
        help="articles first seen within this period, e.g. 7d (default: 30d)",
    )
    search_command.add_argument("--feed", metavar="NAME", help="only articles this feed carried")
    search_command.add_argument(
        "--limit", type=_positive, default=20, help="at most this many results (default: 20)"
    )
    search_command.add_argument("--json", action="store_true", help="one JSON object per result")
    return parser


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, not {text!r}")
    return value


def _duration(text: str) -> float:
    from monitor.config import parse_duration

    try:
        return parse_duration(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command and return its exit code."""
    parser = build_parser()
    try:
        arguments = parser.parse_args(argv)
    except SystemExit as exit_:
        # Docker reserves a HEALTHCHECK's exit code 2: health fails with 1, even misused.
        if exit_.code == EXIT_USAGE and "health" in (sys.argv[1:] if argv is None else argv):
            return EXIT_FAILURE
        raise
    daemon_signals = None
    if arguments.command == "run" and not arguments.once:
        # Before the slow imports and the config: a SIGTERM sent while the daemon starts
        # must stop it. As PID 1 in a container, a signal without a handler is ignored.
        daemon_signals = catch_daemon_signals()
    configure_logging(arguments.log_format, logging.DEBUG if arguments.verbose else logging.INFO)
    if arguments.command == "health":
        return health(getattr(arguments, "config", None), arguments.instance)
    if arguments.command == "feeds" and arguments.feeds_command == "discover":
        return feeds_discover(arguments.url)  # for someone who has no configuration yet
    try:
        config_path = getattr(arguments, "config", None) or find_config_file()
        name = instance_name(arguments.instance) if arguments.command == "run" else None
    except (ConfigNotFoundError, ValueError) as error:
        print(str(error), file=sys.stderr)
        return EXIT_USAGE
    if arguments.command == "status":
        try:
            return status(config_path, as_json=arguments.json)
        except StoreError as error:
            logger.error("store status=unavailable error=%r", str(error))
            return EXIT_FAILURE
    if arguments.command == "feeds":
        return feeds_export(config_path)  # reads no secret: URLs stay as written
    try:
        config = load_config(config_path)
    except ConfigError as error:
        print_problems(error)
        return EXIT_USAGE
    SECRETS.update(config.secrets)
    try:
        if arguments.command == "check":
            return check(config)
        if arguments.command == "run":
            return run(
                config,
                once=arguments.once,
                dry_run=arguments.dry_run,
                signals=daemon_signals,
                instance=name,
            )
        if arguments.command == "notify":
            return notify_test(config, arguments.channel)
        if arguments.command == "db":
            return db_copy(config, arguments.to)
        if arguments.command == "deliveries":
            return deliveries_retry(config, rule_name=arguments.rule)
        if arguments.command == "rules":
            return rules_test(config, arguments)
        if arguments.command == "stories":
            return stories(config, arguments)
        if arguments.command == "search":
            return search(config, arguments)
    except AlreadyRunningError as error:
        print(f"news-monitor run: {error}", file=sys.stderr)
        return EXIT_FAILURE
    except StoreError as error:
        logger.error("store status=unavailable error=%r", str(error))
        return EXIT_FAILURE
    parser.error(f"unknown command {arguments.command}")  # exits with EXIT_USAGE
