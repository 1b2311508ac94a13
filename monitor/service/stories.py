"""`news-monitor stories`: the stories in the store, each with its articles, for people or as
one JSON object per line.

    with stored_stories(config, since_seconds=86400, include_single=False) as stories:
        for story in stories:
            print(format_story(story, ZoneInfo(config.timezone)))
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, tzinfo

from monitor.config import Config
from monitor.store import Store, StoryRecord

# The period `stories` lists when not told: what a day's news grouped looks like.
DEFAULT_STORIES_SINCE_SECONDS = 86400.0


@contextmanager
def stored_stories(
    config: Config, *, since_seconds: float | None, include_single: bool
) -> Iterator[Iterable[StoryRecord]]:
    """The stories first seen within `since_seconds` (None: all), newest first, read in
    batches while the caller iterates: those of two articles or more, every one with
    include_single. None at all while grouping is off (`stories: false`). The store
    closes when the block ends."""
    if not config.stories.enabled:
        yield ()
        return
    store = Store(config.database_url)
    try:
        store.create_schema()
        since = None
        if since_seconds is not None:
            since = datetime.now(UTC) - timedelta(seconds=since_seconds)
        yield store.stories(since, include_single=include_single)
    finally:
        store.close()


def format_story(story: StoryRecord, timezone: tzinfo) -> str:
    """Given a story, return it as lines for people: its id and title, when it was first
    seen (in `timezone`), then each article's feed, published time, title and link."""
    lines = [f"[{story.story_id}] {_one_line(story.title) or '(no title)'}"]
    lines.append(f"  first seen  {_local_time(story.first_seen, timezone)}")
    width = max((len(article.feed_name) for article in story.articles), default=0)
    for article in story.articles:
        published = _local_time(article.published, timezone) if article.published else "-"
        lines.append(
            f"  {article.feed_name:<{width}}  {published}  {_one_line(article.title)}".rstrip()
        )
        if article.link:
            lines.append(f"  {'':<{width}}  {article.link}")
    return "\n".join(lines)


def story_json(story: StoryRecord) -> str:
    """Given a story, return one line of JSON: {"id", "first_seen", "title", "articles":
    [{"feed", "title", "link", "published"}]}, times in ISO 8601 UTC (published may be
    null)."""
    return json.dumps(
        {
            "id": story.story_id,
            "first_seen": _iso(story.first_seen),
            "title": story.title,
            "articles": [
                {
                    "feed": article.feed_name,
                    "title": article.title,
                    "link": article.link,
                    "published": _iso(article.published) if article.published else None,
                }
                for article in story.articles
            ],
        },
        ensure_ascii=False,
    )


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _local_time(moment: datetime, timezone: tzinfo) -> str:
    return moment.astimezone(timezone).strftime("%Y-%m-%d %H:%M %Z").strip()


def _one_line(text: str) -> str:
    return " ".join(text.split())
