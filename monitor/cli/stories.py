"""`stories`: the stories of several articles (every story with --all), newest first."""

from __future__ import annotations

import argparse
import os
import sys
from zoneinfo import ZoneInfo

from monitor.cli.common import EXIT_OK
from monitor.config import Config
from monitor.service import format_story, stored_stories, story_json


def stories(config: Config, arguments: argparse.Namespace) -> int:
    if not config.stories.enabled:
        print("stories: grouping is off (stories: false): no story to list", file=sys.stderr)
        return EXIT_OK
    timezone = ZoneInfo(config.timezone)
    shown = 0
    try:
        with stored_stories(
            config, since_seconds=arguments.since, include_single=arguments.all
        ) as found:
            for story in found:
                if arguments.json:
                    print(story_json(story))
                else:
                    print(("\n" if shown else "") + format_story(story, timezone))
                shown += 1
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader (head, less) has gone: stop quietly, as other command-line tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    if not shown:
        kind = "story" if arguments.all else "story of several articles"
        print(f"stories: no {kind} first seen in that period", file=sys.stderr)
    return EXIT_OK
