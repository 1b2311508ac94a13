"""Full text for feeds that carry only summaries (a feed's `fulltext:`).

Before a poll stores its articles, the article page of each new item is fetched and its
main text becomes the article's `content`, so matching, search and story grouping see the
whole article. Which items: with `fulltext: true` those whose feed gave no content:encoded,
with `fulltext: always` all of them; in both cases only items the store will take as new
articles or edits (never a baseline's, never one stored before), and only those with an
http(s) link. The pages are fetched outside any transaction (monitor.ingest.pages).

A page that cannot be had (an HTTP error, a timeout, robots.txt, no text found) costs the
item nothing but its page: it is stored and matched on what the feed gave, and the feed's
state records the failure for `status`.

The article's content_hash stays the hash of what the feed gave: it tells edits of the
item apart, and the page's text is no edit (a later poll of the same item must not take
the stored page text for a change and overwrite it with the feed's summary).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from monitor.config import FULLTEXT_ALWAYS, FULLTEXT_OFF, FeedConfig
from monitor.ingest import ArticlePages, ParsePool, UpgradePoll
from monitor.model import Article
from monitor.store import Store

logger = logging.getLogger(__name__)

# How many failed pages of one poll the feed's state keeps (status shows them).
ERRORS_KEPT = 5


@dataclass(frozen=True)
class FullText:
    """The articles of one poll with their pages' text, and how the pages went."""

    articles: tuple[Article, ...]
    pages: int  # article pages asked for
    failures: tuple[tuple[str, str], ...]  # (link, why no text) of each that gave none

    def state_values(self, now: datetime) -> dict[str, object]:
        """The feed state columns that record this poll's pages (for `status`)."""
        errors = [{"link": link, "error": error} for link, error in self.failures[:ERRORS_KEPT]]
        return {
            "fulltext_at": now,
            "fulltext_pages": self.pages,
            "fulltext_failed": len(self.failures),
            "fulltext_errors": json.dumps(errors, ensure_ascii=False) if errors else None,
        }


def add_full_text(
    feed: FeedConfig,
    articles: Sequence[Article],
    *,
    store: Store,
    pages: ArticlePages,
    parser: ParsePool,
    upgrade: UpgradePoll | None = None,
) -> FullText | None:
    """Given a feed and the articles a poll parsed (not a baseline's), return them with the
    main text of their article pages as content, where the feed asks for it; None when no
    page was wanted. Never raises for a page: see the module's docstring."""
    if feed.fulltext == FULLTEXT_OFF:
        return None
    wanted = [
        index
        for index, article in enumerate(articles)
        if article.link and (feed.fulltext == FULLTEXT_ALWAYS or not article.content)
    ]
    if not wanted:
        return None
    changes = store.articles_to_store(feed.name, articles, upgrade=upgrade)
    wanted = [index for index in wanted if index in changes]
    if not wanted:
        return None
    links = [articles[index].link or "" for index in wanted]
    texts = pages.texts(
        links,
        parser=parser,
        timeout_seconds=feed.timeout_seconds,
        max_bytes=feed.max_bytes,
    )
    completed = list(articles)
    failures: list[tuple[str, str]] = []
    for index, link in zip(wanted, links, strict=True):
        page = texts[link]
        if page.text:
            completed[index] = replace(articles[index], content=page.text)
        else:
            failures.append((link, page.error or "no text"))
    for link, error in dict(failures).items():
        logger.info("fulltext feed=%s link=%s error=%r", feed.name, link, error)
    return FullText(tuple(completed), pages=len(set(links)), failures=tuple(dict(failures).items()))
