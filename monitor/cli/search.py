"""`search`: stored articles a rule with the query would match, newest first."""

from __future__ import annotations

import argparse
import json
import os
import sys
from zoneinfo import ZoneInfo

from monitor.cli.common import EXIT_OK, EXIT_USAGE
from monitor.config import Config
from monitor.service import SearchQueryError, format_result, result_document, search_archive


def search(config: Config, arguments: argparse.Namespace) -> int:
    try:
        outcome = search_archive(
            config,
            arguments.query,
            since_seconds=arguments.since,
            feed=arguments.feed,
            limit=arguments.limit,
        )
    except SearchQueryError as problem:
        print(f"search: {problem}", file=sys.stderr)
        return EXIT_USAGE
    timezone = ZoneInfo(config.timezone)
    try:
        for index, result in enumerate(outcome.results):
            if arguments.json:
                print(json.dumps(result_document(result), ensure_ascii=False))
            else:
                print(("\n" if index else "") + format_result(result, timezone))
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader (head, less) has gone: stop quietly, as other command-line tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    if not outcome.complete:
        print(
            f"search: stopped at its time limit after {outcome.articles_checked} articles; "
            "older matches may exist (narrow it with --since or --feed)",
            file=sys.stderr,
        )
    elif not outcome.results:
        print("search: no stored article matches", file=sys.stderr)
    return EXIT_OK
