"""Search: the rule query language over stored articles, newest first (`news-monitor
search`, the web view's /search and /api/search).

A query is a rule's query (section "Watch rules" of the README): its matches are exactly
what a rule with that query would match, with every folding rules have, because the rule
engine decides every result. The search index (monitor.store.search) only narrows what the
engine reads: the articles indexed under the query's tokens, newest first, then, while the
index is still being built, the articles it does not hold yet, read in full. A query the
index cannot narrow (one-character terms, a /regex/ alone) reads every article.

The search stops at `limit` results or at its time limit, whichever comes first, and says
which. It only reads, and runs on the caller's thread: the web server's or the command's,
never the daemon's poll or send threads.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

from monitor.config import DEFAULT_SEARCH_TIMEOUT_SECONDS, Config, RuleConfig
from monitor.matching import (
    IndexQuery,
    RuleSet,
    index_query,
    parse_query,
    positive_term_problems,
    query_problem,
)
from monitor.model import ConfigError
from monitor.service.backtest import PLAIN_MARKS, TermInContext, contexts_of
from monitor.store import Store, StoredArticle

SEARCH_RULE = "search"
# The period `news-monitor search` looks at when not told: a month of news.
DEFAULT_SEARCH_SINCE_SECONDS = 30 * 86400.0
# Candidates read from the index at a time: a page of results and then some, as a few
# candidates of a longer term are not matches (their bigrams are apart in the text). Each
# is read whole (about 5 KB), so more at once cost more than they save.
CANDIDATE_PAGE_ARTICLES = 32
# Articles matched together between two looks at the clock. A /regex/ may take up to
# monitor.matching's REGEX_TIME_LIMIT_SECONDS per article, so a batch may run past the time
# limit by this many times that; from about 16 on, larger batches were no faster (see
# SCAN_BATCH_ARTICLES there).
SEARCH_BATCH_ARTICLES = 16
# Contexts shown per result: enough to see why it matched, short enough for a phone.
EXCERPT_CONTEXTS = 2


def _excerpt(contexts: tuple[TermInContext, ...]) -> tuple[TermInContext, ...]:
    """The contexts to show: those in the text first (the title is shown anyway), then the
    title's when the text has none."""
    in_text = tuple(context for context in contexts if context.field != "title")
    return (in_text or contexts)[:EXCERPT_CONTEXTS]


class SearchQueryError(ValueError):
    """A query that is not valid in the rule query language; the message says why (with a
    caret under the column, as `check` shows it)."""


@dataclass(frozen=True)
class SearchResult:
    article_id: int
    title: str
    link: str | None
    published: datetime | None
    first_seen_at: datetime
    feeds: tuple[str, ...]
    contexts: tuple[TermInContext, ...]  # where the terms were found, first occurrences
    story_id: int | None = None  # its story, if it has one

    @property
    def excerpt(self) -> str:
        """The contexts as one line, each matched text marked 【like this】."""
        open_mark, close_mark = PLAIN_MARKS
        return " ".join(
            f"{context.before}{open_mark}{context.matched}{close_mark}{context.after}"
            for context in self.contexts
        )


@dataclass(frozen=True)
class SearchOutcome:
    results: tuple[SearchResult, ...]
    complete: bool  # False: the time limit stopped the search before it read every article
    articles_checked: int


def check_query(query: str) -> None:
    """Raise SearchQueryError if the query is not one a rule could use: a syntax error, or a
    query that only excludes (it would match nearly every article)."""
    problem = query_problem(query)
    if problem is None:
        found = positive_term_problems(None, None, None, query)
        problem = found[0].message if found else None
    if problem is not None:
        raise SearchQueryError(problem)


def search_articles(
    store: Store,
    query: str,
    *,
    since: datetime | None,
    feed: str | None = None,
    limit: int = 20,
    time_limit_seconds: float = 5.0,
    clock: Callable[[], float] = time.monotonic,
) -> SearchOutcome:
    """Given a query, return the newest stored articles it matches (at most `limit`; only
    those first seen since `since`, and carried by `feed` when one is named), stopping
    at the time limit. Raise SearchQueryError for an invalid query."""
    check_query(query)
    try:
        matcher = RuleSet.compile((RuleConfig(name=SEARCH_RULE, query=query),), feed_limits=False)
    except ConfigError as error:  # what check_query let through, the compiler refuses
        raise SearchQueryError(str(error.problems[0].message)) from None
    search = _Search(matcher, limit, deadline=clock() + time_limit_seconds, clock=clock)
    wanted = index_query(parse_query(query))
    if wanted is None or not store.search_index_ready():
        # Nothing the index could narrow (or an index of other tokens, being rebuilt).
        complete = search.check(store.recent_articles(since, feed=feed))
        return search.outcome(complete=complete)
    # The newest matches among the indexed articles, and among those stored since the
    # indexer last ran (or before the index): each read newest first, then merged.
    complete = search.check(_indexed(store, wanted, since=since, feed=feed)) and search.check(
        _pending(store, since=since, feed=feed)
    )
    return search.outcome(complete=complete)


def _indexed(
    store: Store, wanted: IndexQuery, *, since: datetime | None, feed: str | None
) -> Iterator[StoredArticle]:
    """The articles the index gives for a query, newest first."""
    return _in_pages(
        store,
        lambda below_id: store.search_candidates(
            wanted, since=since, feed=feed, below_id=below_id, limit=CANDIDATE_PAGE_ARTICLES
        ),
    )


def _pending(store: Store, *, since: datetime | None, feed: str | None) -> Iterator[StoredArticle]:
    """The articles the index does not hold yet, newest first (read from the short list of
    pending ids: normally the last few seconds' articles)."""
    pending = _in_pages(
        store,
        lambda below_id: store.pending_article_ids(
            below_id=below_id, limit=CANDIDATE_PAGE_ARTICLES
        ),
    )
    return (
        stored
        for stored in pending
        if (since is None or stored.first_seen_at >= since)
        and (feed is None or feed in stored.feeds)
    )


def _in_pages(
    store: Store, ids_below: Callable[[int | None], list[int]]
) -> Iterator[StoredArticle]:
    """The articles whose ids `ids_below(below_id)` gives, a page of at most
    CANDIDATE_PAGE_ARTICLES ids at a time, greatest first (None: from the greatest)."""
    below_id: int | None = None
    while True:
        article_ids = ids_below(below_id)
        yield from store.articles_by_id(article_ids)
        if len(article_ids) < CANDIDATE_PAGE_ARTICLES:
            return
        below_id = article_ids[-1]


def _newest_first(result: SearchResult) -> tuple[float, float, int]:
    published = result.published or result.first_seen_at
    return (-result.first_seen_at.timestamp(), -published.timestamp(), -result.article_id)


class _Search:
    """The results of one search so far, matched by the rule engine in batches."""

    def __init__(
        self, matcher: RuleSet, limit: int, *, deadline: float, clock: Callable[[], float]
    ) -> None:
        self.matcher = matcher
        self.limit = limit
        self.deadline = deadline
        self.clock = clock
        self.results: list[SearchResult] = []
        self.checked = 0

    def outcome(self, *, complete: bool) -> SearchOutcome:
        # Newest first: by when the store first saw them, and the articles one poll stored
        # (a feed's first poll stores dozens) by their published time.
        results = sorted(self.results, key=_newest_first)[: self.limit]
        return SearchOutcome(tuple(results), complete=complete, articles_checked=self.checked)

    def check(self, articles: Iterator[StoredArticle]) -> bool:
        """Match articles, newest first, until `limit` results among them or none left
        (True), or the time limit (False)."""
        found = 0
        while found < self.limit:
            if self.clock() >= self.deadline:
                return False
            batch = list(itertools.islice(articles, SEARCH_BATCH_ARTICLES))
            if not batch:
                break
            self.checked += len(batch)
            matched = self.matcher.explaining_matches(
                [(stored.article, stored.feeds[0] if stored.feeds else "") for stored in batch]
            )
            for stored, (rule_names, _failures, explainer) in zip(batch, matched, strict=True):
                if SEARCH_RULE not in rule_names:
                    continue  # (a /regex/ that ran out of time on an article: no match there)
                contexts = contexts_of(stored.article, explainer.explain(SEARCH_RULE))
                self.results.append(
                    SearchResult(
                        article_id=stored.article_id,
                        title=stored.article.title,
                        link=stored.article.link,
                        published=stored.article.published,
                        first_seen_at=stored.first_seen_at,
                        feeds=stored.feeds,
                        contexts=_excerpt(contexts),
                        story_id=stored.story_id,
                    )
                )
                found += 1
                if found >= self.limit:
                    break
        return True


# ------------------------------------------------------------------ the command line


def search_archive(
    config: Config,
    query: str,
    *,
    since_seconds: float | None,
    feed: str | None,
    limit: int,
) -> SearchOutcome:
    """`news-monitor search`: search the configured store (see search_articles), with the
    web view's time limit (`http.search_timeout`, 5 s unless configured). Raise
    SearchQueryError for an invalid query or a feed the configuration does not name."""
    if feed is not None and feed not in {entry.name for entry in config.feeds}:
        known = ", ".join(sorted(entry.name for entry in config.feeds))
        raise SearchQueryError(f"unknown feed {feed!r} (feeds: {known})")
    since = None
    if since_seconds is not None:
        since = datetime.now(UTC) - timedelta(seconds=since_seconds)
    store = Store(config.database_url)
    try:
        store.create_schema()
        time_limit = (
            config.http.search_timeout_seconds
            if config.http is not None
            else DEFAULT_SEARCH_TIMEOUT_SECONDS
        )
        return search_articles(
            store, query, since=since, feed=feed, limit=limit, time_limit_seconds=time_limit
        )
    finally:
        store.close()


def format_result(result: SearchResult, timezone: tzinfo) -> str:
    """Given a result, return it as lines for people: published time (first seen when the
    feed gave none), feeds and title; the link; the excerpt."""
    moment = result.published or result.first_seen_at
    when = moment.astimezone(timezone).strftime("%Y-%m-%d %H:%M %Z").strip()
    lines = [f"{when}  {', '.join(result.feeds)}  {_one_line(result.title) or '(no title)'}"]
    if result.link:
        lines.append(f"  {result.link}")
    if result.excerpt:
        lines.append(f"  {_one_line(result.excerpt)}")
    return "\n".join(lines)


def result_document(result: SearchResult) -> dict[str, object]:
    """Given a result, return it as a JSON object: {"published", "feed", "feeds", "title",
    "link", "excerpt", "story"}; times in ISO 8601 UTC (published may be null), story the
    id of its story (`news-monitor stories`) or null."""
    return {
        "published": _iso(result.published) if result.published else None,
        "feed": result.feeds[0] if result.feeds else None,
        "feeds": list(result.feeds),
        "title": result.title,
        "link": result.link,
        "excerpt": result.excerpt,
        "story": result.story_id,
    }


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _one_line(text: str) -> str:
    return " ".join(text.split())
