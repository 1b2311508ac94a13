"""`feeds export` and `feeds discover`: the configured feeds as OPML, and the feeds a page
declares as feed entries to paste into monitor.yaml."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import yaml

from monitor.config import OutlineEntry, opml_text
from monitor.ingest import DiscoveredFeed, Fetcher, discover_feeds
from monitor.service.configuration import load_feed_list


def export_feeds(config_path: Path) -> str:
    """Given the main configuration file, return its feeds as an OPML 2.0 document: URLs as
    written (no ${...} resolved), groups as nested folders. Raise ConfigError if the
    configuration has problems."""
    feeds = load_feed_list(config_path)
    return opml_text(OutlineEntry(feed.name, feed.url, feed.groups) for feed in feeds)


def discover(url: str) -> list[str]:
    """Given a page or feed URL, return one feed entry per feed it declares (the URL itself
    for a feed), each a line of YAML to paste under `feeds:`. Raise FetchError if the URL
    cannot be fetched, NoFeedFound if it declares no feed."""
    fetcher = Fetcher()
    try:
        page_title, feeds = discover_feeds(url, fetcher)
    finally:
        fetcher.close()
    return feed_entry_lines(page_title, feeds)


def feed_entry_lines(page_title: str, feeds: list[DiscoveredFeed]) -> list[str]:
    """Given what discovery found, return a YAML feed entry per feed (`- {name: ..., url:
    ...}`), each on one line. A feed is named by its title, else the page's, else its host;
    names given twice are told apart by the feed's kind, then by a number."""
    names = [feed.title or page_title or urlsplit(feed.url).hostname or feed.url for feed in feeds]
    if len(set(names)) < len(names):
        names = [
            f"{name} ({feed.kind})" if names.count(name) > 1 else name
            for name, feed in zip(names, feeds, strict=True)
        ]
    unique: list[str] = []
    for name in names:
        candidate, number = name, 2
        while candidate in unique:
            candidate, number = f"{name} {number}", number + 1
        unique.append(candidate)
    return [
        "- "
        + yaml.safe_dump(
            {"name": name, "url": feed.url},
            default_flow_style=True,
            allow_unicode=True,
            sort_keys=False,
            width=1_000_000,
        ).strip()
        for name, feed in zip(unique, feeds, strict=True)
    ]
