"""Commands and exit codes only: 0 ok, 1 runtime failure, 2 bad config or usage."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from monitor import __version__
from monitor.config.loader import Config, find_config_file, load_config, load_database_settings
from monitor.config.locations import ConfigNotFoundError
from monitor.config.secrets import SECRETS
from monitor.model import ConfigError, StoreError
from monitor.service.log import configure_logging
from monitor.store.instances import instance_name

logger = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


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
    return parser


def _duration(text: str) -> float:
    from monitor.config.loader import parse_duration

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
        daemon_signals = _catch_daemon_signals()
    configure_logging(arguments.log_format, logging.DEBUG if arguments.verbose else logging.INFO)
    if arguments.command == "health":
        return _health(getattr(arguments, "config", None), arguments.instance)
    try:
        config_path = getattr(arguments, "config", None) or find_config_file()
        name = instance_name(arguments.instance) if arguments.command == "run" else None
    except (ConfigNotFoundError, ValueError) as error:
        print(str(error), file=sys.stderr)
        return EXIT_USAGE
    if arguments.command == "status":
        try:
            return _status(config_path, as_json=arguments.json)
        except StoreError as error:
            logger.error("store status=unavailable error=%r", str(error))
            return EXIT_FAILURE
    try:
        config = load_config(config_path)
    except ConfigError as error:
        _print_problems(error)
        return EXIT_USAGE
    SECRETS.update(config.secrets)
    try:
        if arguments.command == "check":
            return _check(config)
        if arguments.command == "run":
            return _run(
                config,
                once=arguments.once,
                dry_run=arguments.dry_run,
                signals=daemon_signals,
                instance=name,
            )
        if arguments.command == "notify":
            return _notify_test(config, arguments.channel)
        if arguments.command == "deliveries":
            return _deliveries_retry(config, rule_name=arguments.rule)
        if arguments.command == "rules":
            return _rules_test(config, arguments)
    except StoreError as error:
        logger.error("store status=unavailable error=%r", str(error))
        return EXIT_FAILURE
    parser.error(f"unknown command {arguments.command}")
    return EXIT_USAGE


def _print_problems(error: ConfigError) -> None:
    for problem in error.problems:
        print(SECRETS.apply(str(problem)), file=sys.stderr)
    print(f"{len(error.problems)} problem(s) in the configuration", file=sys.stderr)


def _check(config: Config) -> int:
    from monitor.service.daemon import Runtime

    try:
        Runtime.build(config)
    except ValueError as error:
        print(f"{config.path}: {SECRETS.apply(str(error))}", file=sys.stderr)
        return EXIT_USAGE
    print(
        f"{config.path}: ok ({len(config.feeds)} feeds, {len(config.channels)} channels, "
        f"{len(config.rules)} rules)"
    )
    return EXIT_OK


def _catch_daemon_signals() -> tuple[threading.Event, threading.Event]:
    """Install SIGTERM/SIGINT/SIGHUP handlers that only set flags; return (stop, reload)."""
    stop, reload = threading.Event(), threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGHUP, lambda *_: reload.set())
    return stop, reload


def _run(
    config: Config,
    *,
    once: bool,
    dry_run: bool,
    signals: tuple[threading.Event, threading.Event] | None = None,
    instance: str | None = None,
) -> int:
    from monitor.service.daemon import Monitor

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


def _status(config_path: Path, *, as_json: bool) -> int:
    from monitor.service.status import format_status, read_status

    try:
        settings = load_database_settings(config_path)
    except ConfigError as error:  # the database cannot be located
        _print_problems(error)
        return EXIT_USAGE
    SECRETS.update(settings.secrets)
    report = read_status(settings, datetime.now(UTC))
    if as_json:
        print(json.dumps(report.document(), ensure_ascii=False, indent=2))
    else:
        print("\n".join(format_status(report, settings)))
    return EXIT_OK


def _health(config_path: Path | None, instance: str | None) -> int:
    """Exit 0 while a daemon's heartbeat is fresh and the database answers; 1 otherwise,
    never 2 (Docker reserves it for health checks), with the reason on one line."""
    from monitor.service.status import check_health

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


def _deliveries_retry(config: Config, *, rule_name: str | None) -> int:
    from monitor.store.database import Store

    store = Store(config.database_url)
    try:
        store.create_schema()
        count = store.retry_failed(datetime.now(UTC), rule_name=rule_name)
    finally:
        store.close()
    scope = f" of rule {rule_name}" if rule_name else ""
    noun = "delivery" if count == 1 else "deliveries"
    print(f"{count} failed {noun}{scope} put back to pending")
    return EXIT_OK


def _notify_test(config: Config, channel_name: str) -> int:
    from zoneinfo import ZoneInfo

    from monitor.delivery.notify import Alert, Notifier, render_alert

    if config.channel(channel_name) is None:
        known = ", ".join(channel.name for channel in config.channels)
        print(f"unknown channel {channel_name!r} (known: {known})", file=sys.stderr)
        return EXIT_USAGE
    notifier = Notifier(config.channels)
    alert = Alert(
        rule_name="test",
        title="news-monitor test alert",
        link="https://example.org/news-monitor-test",
        feed_name="test",
        published=datetime.now(UTC),
        matched_terms=("test",),
        excerpt=f"If you can read this, channel {channel_name} works.",
    )
    # The channel's own template, as real alerts through it would use (no rule template here).
    message = render_alert(
        alert, ZoneInfo(config.timezone), template=config.channel(channel_name).template
    )
    result = notifier.send(channel_name, message)
    for service in result.services:
        outcome = "ok" if service.ok else "FAILED"
        print(f"{service.service}  {SECRETS.apply(service.url)}  {outcome}")
    if not result.ok:
        print(f"channel {channel_name}: {SECRETS.apply(result.error)}", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


def _rules_test(config: Config, arguments: argparse.Namespace) -> int:
    from contextlib import ExitStack
    from datetime import timedelta
    from zoneinfo import ZoneInfo

    from monitor.model import FetchError, ParseError
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
    from monitor.store.database import Store

    from_store = not (arguments.file or arguments.url)
    if arguments.since is not None and not from_store:
        print(
            "rules test: --since applies to stored articles, not to --file or --url",
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        backtest = Backtest(
            select_rules(config.rules, arguments.rule),
            use_feeds=from_store,
            explain_hits=not arguments.json,
        )
    except UnknownRuleError as error:
        print(str(error), file=sys.stderr)
        return EXIT_USAGE
    with ExitStack() as cleanup:
        if arguments.file:
            try:
                articles = file_articles(arguments.file)
            except (OSError, ParseError) as error:
                print(f"{arguments.file}: {error}", file=sys.stderr)
                return EXIT_USAGE
        elif arguments.url:
            try:
                articles = url_articles(arguments.url)
            except (FetchError, ParseError) as error:
                print(
                    f"{SECRETS.apply(arguments.url)}: {SECRETS.apply(str(error))}", file=sys.stderr
                )
                return EXIT_FAILURE
        else:
            store = Store(config.database_url)
            cleanup.callback(store.close)
            store.create_schema()
            since = None
            if arguments.since is not None:
                since = datetime.now(UTC) - timedelta(seconds=arguments.since)
            # 250 rows at a time rather than the store's 500: the batch in hand is the last
            # part of the peak (3 MB less), and the extra queries cost about 0.1 s per 30,000.
            articles = store.stored_articles(since, batch_size=250)
        colour = (
            sys.stdout.isatty()
            and not os.environ.get("NO_COLOR")
            and (os.environ.get("TERM") != "dumb")
        )
        timezone = ZoneInfo(config.timezone)
        # Hits are written in batches when no one watches them arrive: with PYTHONUNBUFFERED
        # (or python -u) every print() is two write() calls, and at 10,000 rules there are
        # hundreds of thousands of hits (2 s of system calls). The bytes are the same.
        batch = 1 if sys.stdout.isatty() else 1000
        pending: list[str] = []
        try:
            for index, hit in enumerate(backtest.run(articles)):
                if arguments.json:
                    pending.append(hit_json(hit))
                else:
                    text = format_hit(hit, colour=colour, timezone=timezone)
                    pending.append(("\n" if index else "") + text)
                if len(pending) >= batch:
                    print("\n".join(pending))
                    pending.clear()
            if pending:
                print("\n".join(pending))
            sys.stdout.flush()
        except BrokenPipeError:
            # The reader (head, less) has gone: stop quietly, as other command-line tools do.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return EXIT_OK
    for line in format_failures(backtest):
        print(line, file=sys.stderr)
    summary = format_summary(backtest)
    if arguments.json:
        print(summary, file=sys.stderr)
    else:
        print(("\n" if any(backtest.hits_by_rule.values()) else "") + summary)
    return EXIT_OK
