"""`rules test`: the backtest's hits on stdout, its summary and failures."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable
from contextlib import ExitStack
from zoneinfo import ZoneInfo

from monitor.cli.common import EXIT_FAILURE, EXIT_OK, EXIT_USAGE
from monitor.config import SECRETS, Config
from monitor.model import FetchError, ParseError
from monitor.service import (
    Backtest,
    UnknownRuleError,
    file_articles,
    format_failures,
    format_hit,
    format_summary,
    hit_json,
    select_rules,
    stored_articles,
    url_articles,
)


def rules_test(config: Config, arguments: argparse.Namespace) -> int:
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
        articles: Iterable
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
            articles = cleanup.enter_context(stored_articles(config, since_seconds=arguments.since))
        if not _print_hits(backtest, articles, config, as_json=arguments.json):
            return EXIT_OK  # the reader has gone
    for line in format_failures(backtest):
        print(line, file=sys.stderr)
    summary = format_summary(backtest)
    if arguments.json:
        print(summary, file=sys.stderr)
    else:
        print(("\n" if any(backtest.hits_by_rule.values()) else "") + summary)
    return EXIT_OK


def _print_hits(backtest: Backtest, articles: Iterable, config: Config, *, as_json: bool) -> bool:
    """Print each hit; return False if the reader of stdout went away."""
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
            if as_json:
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
        return False
    return True
