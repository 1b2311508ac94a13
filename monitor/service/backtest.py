"""`rules test`: run watch rules over stored articles, a feed file or a feed URL, send
nothing, and explain every hit with each matched term in its context.

    backtest = Backtest(select_rules(config.rules, "korea-japan"), use_feeds=True)
    for hit in backtest.run(store.stored_articles(since)):
        print(format_hit(hit, colour=False, timezone=ZoneInfo("Asia/Shanghai")))
    print(format_summary(backtest))

Which articles a rule sees. Stored articles: a rule limited by `feeds:` sees the articles
that any of its feeds carried (the store knows every feed that carried an article). A feed
file or URL is no configured feed, so there `feeds:` limits are ignored (use_feeds=False)
and every selected rule sees every item. Disabled rules are left out, unless one is
selected by name: asking for it is asking to try it.

Hits come from RuleSet.explaining_matches(), SCAN_BATCH_ARTICLES articles at a time (what
RuleSet.match_with_failures() finds, including the rules whose regexes ran out of time);
their contexts from the explainer it returns, whose offsets point into the original text of
the field, so a Traditional 韓日 found by the Simplified term 韩日 is shown as written.
"""

from __future__ import annotations

import functools
import itertools
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any

from monitor.config import DEFAULT_MAX_BYTES, DEFAULT_TIMEOUT_SECONDS, RuleConfig
from monitor.matching import (
    SCAN_BATCH_ARTICLES,
    ArticleExplainer,
    RuleSet,
    TermHit,
    parse_query,
)
from monitor.model import ARTICLE_FIELDS, Article, RuleFailure
from monitor.store import ArticleStory

# monitor.ingest.fetch and monitor.ingest.parse (requests, feedparser: 7 MB) are imported by
# the functions that read a feed file or URL; testing stored articles needs neither.

# Characters of context shown on each side of a matched term.
CONTEXT_CHARACTERS = 30
# How the match is marked in its context: brackets for pipes and files, bold red on a TTY.
PLAIN_MARKS = ("【", "】")
COLOUR_MARKS = ("\x1b[1;31m", "\x1b[0m")
BOLD, RESET = "\x1b[1m", "\x1b[0m"
_WHITESPACE = re.compile(r"\s+")

# An article to test, with the names of the feeds that carried it (empty: no feed), and
# for a stored one, its story and the rules whose match of it sent nothing because its
# story had already alerted (Store.stored_articles_in_stories).
SourceArticle = tuple[Article, tuple[str, ...]] | tuple[Article, tuple[str, ...], ArticleStory]


class UnknownRuleError(LookupError):
    """A rule name that is not in the configuration."""

    def __init__(self, name: str, known: Sequence[str]) -> None:
        self.name = name
        self.known = tuple(known)
        listed = ", ".join(self.known) or "none"
        super().__init__(f"unknown rule {name!r} (known: {listed})")


@dataclass(frozen=True)
class TermInContext:
    """One matched term in one field, with the text around its first occurrence."""

    field: str
    term: str  # as the rule wrote it
    before: str  # up to CONTEXT_CHARACTERS of original text, "…" first if cut
    matched: str  # the original text that matched (韓日 for the term 韩日)
    after: str
    more: int = 0  # further occurrences of the term in this field, not shown


@dataclass(frozen=True)
class Hit:
    """A rule that matched an article, and why."""

    rule_name: str
    article: Article
    feeds: tuple[str, ...]
    # field -> the terms found in it, in ARTICLE_FIELDS order
    fields: dict[str, tuple[str, ...]]
    # Every occurrence of the rule's terms (RuleSet.explain()): what `contexts` shows.
    term_hits: tuple[TermHit, ...] = ()
    story: int | None = None  # the stored article's story
    # The link of the article whose alert made the rule's match of this one send nothing
    # (the rule alerts once per story): None when it sent, or it is no stored match.
    suppressed_by: str | None = None

    @functools.cached_property
    def contexts(self) -> tuple[TermInContext, ...]:
        """Each (field, term) once, in its context: contexts_of(article, term_hits).

        Worked out when first asked for: `rules test --json` never shows them, and at
        10,000 rules there are hundreds of thousands of hits.
        """
        return contexts_of(self.article, self.term_hits)


@dataclass
class Backtest:
    """The selected rules, compiled once, and what running them found so far."""

    rules: tuple[RuleConfig, ...]
    use_feeds: bool = True  # False: ignore `feeds:` limits (a file or URL is no feed)
    # False: hits carry no term_hits, hence no contexts, when their fields' terms can be
    # told without (ArticleExplainer.terms_in_order): `rules test --json` shows none.
    explain_hits: bool = True
    articles_checked: int = 0
    hits_by_rule: dict[str, int] = field(default_factory=dict)
    # rule name -> (articles it could not be evaluated on, the last error)
    failures_by_rule: dict[str, tuple[int, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Only the rules limited to some feeds: the others see every article.
        self._feeds_by_rule = {
            rule.name: frozenset(rule.feeds) for rule in self.rules if rule.feeds
        }
        # Compiled without feed limits, so one match() call serves an article carried by
        # several feeds; run() applies the limits against all of them.
        self._matcher = RuleSet.compile(self.rules, feed_limits=False)
        # Loading and compiling parse each query more than once, hence parse_query()'s
        # cache; once compiled, the rules hold trees of their own. Dropping the cached ones
        # lowers the peak of a 10,000-rule run by about 1 MB (measured).
        parse_query.cache_clear()
        self.hits_by_rule = {rule.name: 0 for rule in self.rules}

    def run(self, articles: Iterable[SourceArticle]) -> Iterator[Hit]:
        """Given articles with their feeds, yield one Hit per (matching rule, article), in
        article order then rule order, counting as it goes."""
        articles = iter(articles)
        while batch := list(itertools.islice(articles, SCAN_BATCH_ARTICLES)):
            # Matched together, which is faster (RuleSet.explaining_matches); the hits still
            # come out in article order.
            results = self._matcher.explaining_matches(
                [(source[0], source[1][0] if source[1] else "") for source in batch]
            )
            for source, (matches, failures, explainer) in zip(batch, results, strict=True):
                article, feeds = source[0], source[1]
                story = source[2] if len(source) == 3 else None
                self.articles_checked += 1
                for failure in failures:
                    self._record_failure(failure)
                # The explainer serves every hit of the article: it knows from matching
                # which terms to look for where.
                for rule_name in matches:
                    if not self._sees(rule_name, feeds):
                        continue
                    self.hits_by_rule[rule_name] += 1
                    yield self._hit(rule_name, article, feeds, explainer, story)

    def _sees(self, rule_name: str, feeds: tuple[str, ...]) -> bool:
        limits = self._feeds_by_rule.get(rule_name)
        return not (self.use_feeds and limits and limits.isdisjoint(feeds))

    def _record_failure(self, failure: RuleFailure) -> None:
        count, _ = self.failures_by_rule.get(failure.rule_name, (0, ""))
        self.failures_by_rule[failure.rule_name] = (count + 1, failure.message)

    def _hit(
        self,
        rule_name: str,
        article: Article,
        feeds: tuple[str, ...],
        explainer: ArticleExplainer,
        story: ArticleStory | None = None,
    ) -> Hit:
        story_id = story.story_id if story is not None else None
        suppressed_by = story.suppressed_by.get(rule_name) if story is not None else None
        if not self.explain_hits:
            # At 10,000 rules, finding every occurrence of every term of 185,000 hits was
            # about a sixth of a `rules test --json` that never shows them.
            in_order = explainer.terms_in_order(rule_name)
            if in_order is not None:
                return Hit(
                    rule_name,
                    article,
                    feeds,
                    in_order,
                    story=story_id,
                    suppressed_by=suppressed_by,
                )
        term_hits = explainer.explain(rule_name)
        # The terms of each field in the order their contexts are shown (contexts_of): the
        # hits come sorted by field then start, so the first time a (field, term) shows up
        # is its first occurrence, and first occurrences show up in context order.
        fields: dict[str, tuple[str, ...]] = {}
        seen: set[tuple[str, str]] = set()
        for hit in term_hits:
            key = (hit.field, hit.term)
            if key not in seen:
                seen.add(key)
                fields[hit.field] = (*fields.get(hit.field, ()), hit.term)
        if not fields:  # nothing to point at (not expected): still say which terms were found
            fields = dict(explainer.summary(rule_name).terms_by_field)
        return Hit(
            rule_name,
            article,
            feeds,
            fields,
            term_hits,
            story=story_id,
            suppressed_by=suppressed_by,
        )


def select_rules(rules: Sequence[RuleConfig], name: str | None = None) -> tuple[RuleConfig, ...]:
    """Given the configured rules and an optional rule name, return the rules to test: the
    enabled ones, or only the named one (enabled for the test even if it is not).

    Raise UnknownRuleError if no rule has that name.
    """
    if name is None:
        return tuple(rule for rule in rules if rule.enabled)
    for rule in rules:
        if rule.name == name:
            return (replace(rule, enabled=True),)
    raise UnknownRuleError(name, [rule.name for rule in rules])


def contexts_of(article: Article, hits: Iterable[TermHit]) -> tuple[TermInContext, ...]:
    """Given an article and term hits in it (offsets into the original field text), return
    each (field, term) once, at its first occurrence, in ARTICLE_FIELDS then text order."""
    hits = tuple(hits)  # read twice
    occurrences: dict[tuple[str, str], int] = {}
    for hit in hits:
        key = (hit.field, hit.term)
        occurrences[key] = occurrences.get(key, 0) + 1
    ordered = _first_occurrences(hits)
    texts: dict[str, str] = {}
    contexts = []
    for hit in ordered:
        text = texts.setdefault(hit.field, article.field_text(hit.field))
        start = max(0, hit.start - CONTEXT_CHARACTERS)
        end = min(len(text), hit.end + CONTEXT_CHARACTERS)
        contexts.append(
            TermInContext(
                field=hit.field,
                term=hit.term,
                before=("…" if start > 0 else "") + _one_line(text[start : hit.start]),
                matched=_one_line(text[hit.start : hit.end]),
                after=_one_line(text[hit.end : end]) + ("…" if end < len(text) else ""),
                more=occurrences[(hit.field, hit.term)] - 1,
            )
        )
    return tuple(contexts)


def _first_occurrences(hits: Iterable[TermHit]) -> list[TermHit]:
    """Given term hits, return the first occurrence of each (field, term), in ARTICLE_FIELDS
    then text order: the contexts shown."""
    first: dict[tuple[str, str], TermHit] = {}
    for hit in hits:
        key = (hit.field, hit.term)
        if key not in first or hit.start < first[key].start:
            first[key] = hit
    return sorted(first.values(), key=_field_then_start)


_FIELD_ORDER = {name: index for index, name in enumerate(ARTICLE_FIELDS)}


def _field_then_start(hit: TermHit) -> tuple[int, int]:
    return (_FIELD_ORDER.get(hit.field, len(_FIELD_ORDER)), hit.start)


def _one_line(text: str) -> str:
    # Categories are joined by newlines, and a context is shown on one line.
    return _WHITESPACE.sub(" ", text)


# ----------------------------------------------------------------------------- sources


def file_articles(path: Path) -> list[SourceArticle]:
    """Given a feed file, return its items, carried by no feed.

    Raise OSError if it cannot be read, ParseError if it is no feed.
    """
    from monitor.ingest import parse_feed

    parsed = parse_feed(path.read_bytes(), feed_url=path.resolve().as_uri())
    return [(article, ()) for article in parsed.articles]


def url_articles(
    url: str,
    *,
    timeout_seconds: float | None = None,
    max_bytes: int | None = None,
) -> list[SourceArticle]:
    """Given a feed URL (http, https or file), fetch it and return its items, carried by no
    feed. Unless given, the time limit and size limit are the fetcher's defaults.

    Raise FetchError if it cannot be fetched, ParseError if it is no feed.
    """
    from monitor.ingest import Fetcher, parse_feed

    timeout_seconds = DEFAULT_TIMEOUT_SECONDS if timeout_seconds is None else timeout_seconds
    max_bytes = DEFAULT_MAX_BYTES if max_bytes is None else max_bytes
    fetcher = Fetcher()
    try:
        fetched = fetcher.fetch(url, timeout_seconds=timeout_seconds, max_bytes=max_bytes)
    finally:
        fetcher.close()
    parsed = parse_feed(
        fetched.body or b"",
        content_type=fetched.content_type,
        content_location=fetched.content_location,
        feed_url=fetched.url,
    )
    return [(article, ()) for article in parsed.articles]


# ----------------------------------------------------------------------------- output


def format_hit(hit: Hit, *, colour: bool, timezone: tzinfo = UTC) -> str:
    """Given a hit, return it as lines of text for people: rule and title, link, published
    time (in `timezone`), feeds, story, whether the match sent nothing because its story had
    already alerted, then each field's terms in their context. With colour, ANSI bold and
    red replace the 【 】 marks."""
    open_mark, close_mark = COLOUR_MARKS if colour else PLAIN_MARKS
    rule = f"{BOLD}[{hit.rule_name}]{RESET}" if colour else f"[{hit.rule_name}]"
    lines = [f"{rule} {_one_line(hit.article.title) or '(no title)'}"]
    details = [
        ("link", hit.article.link or ""),
        ("published", _local_time(hit.article.published, timezone)),
        ("feeds", ", ".join(hit.feeds)),
        ("story", "" if hit.story is None else str(hit.story)),
        (
            "suppressed",
            ""
            if hit.suppressed_by is None
            else f"sent nothing: its story had alerted with {hit.suppressed_by}",
        ),
    ]
    width = max(len(name) for name in (*ARTICLE_FIELDS, "published"))
    for name, value in details:
        if value:
            lines.append(f"  {name:<{width}}  {value}")
    shown: set[str] = set()
    for context in hit.contexts:
        label = "" if context.field in shown else context.field
        shown.add(context.field)
        more = f"  (+{context.more} more)" if context.more else ""
        lines.append(
            f"  {label:<{width}}  {context.term}: {context.before}{open_mark}"
            f"{context.matched}{close_mark}{context.after}{more}"
        )
    for name, terms in hit.fields.items():
        if name not in shown:  # terms without a context (see Backtest._hit)
            lines.append(f"  {name:<{width}}  {', '.join(terms)}")
    return "\n".join(lines)


def hit_json(hit: Hit) -> str:
    """Given a hit, return one line of JSON: rule, title, link, published (ISO 8601 UTC or
    null), story (its id, or null), fields ({field: [terms]}) and, when the match sent
    nothing because its story had already alerted, suppressed_by (that alert's article's
    link)."""
    # json.dumps() of {"rule", "title", "link", "published", "story", "fields"}, assembled from
    # pieces: an article's part is the same for each of the rules it matches (at 10,000
    # rules, a handful), so the last one is kept.
    article = hit.article
    cached_article, article_part = _last_article_json
    if cached_article is not article:
        published = article.published
        article_document = {
            "title": article.title,
            "link": article.link,
            "published": published.astimezone(UTC).isoformat().replace("+00:00", "Z")
            if published
            else None,
            "story": hit.story,
        }
        article_part = _JSON.encode(article_document)[1:-1]
        _last_article_json[:] = [article, article_part]
    rule = _json_string(hit.rule_name)
    fields = _fields_json(tuple(hit.fields.items()))
    if hit.suppressed_by is not None:
        suppressed = _JSON.encode(hit.suppressed_by)
        return (
            f'{{"rule": {rule}, {article_part}, "fields": {fields}, "suppressed_by": {suppressed}}}'
        )
    return f'{{"rule": {rule}, {article_part}, "fields": {fields}}}'


# A rule's name and the terms a hit found repeat from hit to hit (a rule matches many
# articles, mostly through the same terms): each is encoded once.
@functools.lru_cache(maxsize=16_384)
def _json_string(text: str) -> str:
    return _JSON.encode(text)


@functools.lru_cache(maxsize=16_384)
def _fields_json(fields: tuple[tuple[str, tuple[str, ...]], ...]) -> str:
    return _JSON.encode({name: list(terms) for name, terms in fields})


# [article, its part of hit_json()]: the last article shown.
_last_article_json: list[Any] = [None, ""]
# json.dumps(value, ensure_ascii=False), without making an encoder per call.
_JSON = json.JSONEncoder(ensure_ascii=False)


def format_summary(backtest: Backtest) -> str:
    """Given a finished backtest, return one line: hits per rule, articles checked."""
    counts = ", ".join(
        f"{name}: {count} hit{'' if count == 1 else 's'}"
        for name, count in backtest.hits_by_rule.items()
    )
    checked = backtest.articles_checked
    return f"{counts or 'no rules'} ({checked} article{'' if checked == 1 else 's'} checked)"


def format_failures(backtest: Backtest) -> list[str]:
    """Given a finished backtest, return one line per rule that could not be evaluated on
    some article."""
    return [
        f"rule {name} could not be evaluated on {count} article(s): {message}"
        for name, (count, message) in backtest.failures_by_rule.items()
    ]


def _local_time(moment: datetime | None, timezone: tzinfo) -> str:
    if moment is None:
        return ""
    return moment.astimezone(timezone).strftime("%Y-%m-%d %H:%M %Z").strip()
