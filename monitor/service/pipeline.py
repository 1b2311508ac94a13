"""refresh_feed(): the one place where fetch, parse, store and match meet.

A feed's failure is recorded in its state and returned, never raised, so one broken feed
never touches another. Only systemic failures (the database) propagate.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, tzinfo

from monitor.config import FULLTEXT_OFF, FeedConfig, RuleConfig, StoriesConfig
from monitor.delivery import DeliveryPolicy, graphemes
from monitor.ingest import (
    IDENTITY_VERSION,
    ArticlePages,
    Fetcher,
    FetchResult,
    ItemSplit,
    ParsedFeed,
    ParsePool,
    ParseRequest,
    UpgradePoll,
    known_digests,
    split_items,
)
from monitor.matching import RuleSet
from monitor.model import Article, FetchError, ParseError, RuleFailure, RuleMatch
from monitor.service.fulltext import add_full_text
from monitor.store import (
    ArticleChange,
    FeedState,
    FeedStateUpdate,
    HitToRecord,
    Store,
    StoreTransaction,
    StoryGrouping,
)
from monitor.stories import DEFAULT_SIMILARITY

logger = logging.getLogger(__name__)

EXCERPT_CHARACTERS_BEFORE = 40
EXCERPT_CHARACTERS_AFTER = 120
BODY_FIELDS = ("summary", "content")


@dataclass(frozen=True)
class Rules:
    """The compiled matcher with the rule options delivery needs, swapped as one piece."""

    matcher: RuleSet
    by_name: Mapping[str, RuleConfig]
    policies: Mapping[str, DeliveryPolicy]  # when each rule's alerts go out

    @classmethod
    def compile(cls, rules: tuple[RuleConfig, ...], timezone: tzinfo = UTC) -> Rules:
        """Given the configured rules and timezone, return them compiled. Raise ValueError
        if one cannot be (the configuration loader has checked them already)."""
        return cls(
            RuleSet.compile(rules),
            {rule.name: rule for rule in rules},
            {
                rule.name: DeliveryPolicy.parse(
                    timezone,
                    digest=rule.digest,
                    quiet_hours=rule.quiet_hours,
                    max_per_hour=rule.max_per_hour,
                )
                for rule in rules
            },
        )


def story_grouping(stories: StoriesConfig) -> StoryGrouping | None:
    """Given the configuration's `stories:`, return how new articles are grouped into
    stories, or None when grouping is off."""
    if not stories.enabled:
        return None
    threshold = DEFAULT_SIMILARITY if stories.similarity is None else stories.similarity
    return StoryGrouping(window_seconds=stories.window_seconds, similarity=threshold)


@dataclass(frozen=True)
class PollResult:
    feed_name: str
    ok: bool
    http_status: int | None
    not_modified: bool = False
    items: int = 0  # items in the document
    new_items: int = 0  # items this feed had not carried before
    new_articles: int = 0  # articles new to the store
    matches: int = 0
    deliveries: int = 0
    baseline: bool = False
    error: str | None = None
    error_streak: int = 0  # consecutive failed polls, this one included
    retry_after_seconds: float | None = None
    ttl_seconds: float | None = None
    # How long the server says its answer stays fresh, and which header says so
    # (Cache-Control max-age, Expires: fetch.FRESHNESS_MAX_AGE, FRESHNESS_EXPIRES).
    max_age_seconds: float | None = None
    max_age_source: str | None = None
    permanent_redirect_to: str | None = None
    elapsed_seconds: float = 0.0
    pages: int = 0  # article pages fetched for full text
    pages_failed: int = 0  # of which gave no text
    # Set by the daemon when it schedules the feed's next poll: when, and why later than
    # the feed's interval (None: the interval decided).
    next_poll_seconds: float | None = None
    next_poll_reason: str | None = None


def refresh_feed(
    feed: FeedConfig,
    *,
    state: FeedState | None,
    store: Store,
    fetcher: Fetcher,
    parser: ParsePool,
    rules: Rules,
    stories: StoryGrouping | None,
    now: datetime,
    unchanged_states: list[FeedStateUpdate] | None = None,
    written_states: Callable[[FeedStateUpdate], None] | None = None,
    pages: ArticlePages | None = None,
) -> PollResult:
    """Poll one feed: fetch, parse, store new and edited articles (grouping the new ones
    into stories, unless `stories` is None), match rules, and queue deliveries in the same
    transaction as the articles. Return what happened.

    `state` is the feed's stored state (None for a feed never polled). When the feed has
    not changed, its new state is appended to `unchanged_states` if given (the caller writes
    a whole cycle's in one transaction), else written at once. Otherwise the new state is
    written with the articles (or the failure), and then handed to `written_states` if
    given (the daemon keeps every state in memory).

    For a feed with `fulltext:`, the article pages of new items are fetched (with `pages`,
    which keeps robots.txt between polls; a new one if None) before the transaction, and
    their text stored as the articles' content (monitor.service.fulltext)."""
    started = time.monotonic()
    # Validators belong to the URL that issued them; a changed URL starts afresh.
    same_url = state is not None and state.url == feed.url
    try:
        fetched = fetcher.fetch(
            feed.url,
            etag=state.etag if same_url and state else None,
            last_modified=state.last_modified if same_url and state else None,
            timeout_seconds=feed.timeout_seconds,
            max_bytes=feed.max_bytes,
        )
    except FetchError as error:
        return _record_failure(
            store,
            feed,
            state,
            now,
            started,
            str(error),
            error.status,
            error.retry_after_seconds,
            written_states,
        )

    body = fetched.body or b""
    body_hash = None if fetched.not_modified else _body_hash(body)
    # The same bytes as last time are the same articles: no parse, no store work.
    unchanged = fetched.not_modified or (
        same_url and state is not None and state.baseline_done and state.body_hash == body_hash
    )
    if unchanged:
        update = FeedStateUpdate(
            feed.name,
            feed.url,
            {
                "last_poll_at": now,
                "last_success_at": now,
                "http_status": fetched.status,
                "error": None,
                "error_streak": 0,
                "last_new_count": 0,
                # A 200 with the same body may carry new validators: keep them.
                **(
                    {}
                    if fetched.not_modified
                    else {**_validators(fetched), "redirected_to": fetched.permanent_redirect_to}
                ),
            },
        )
        if unchanged_states is not None:
            unchanged_states.append(update)
        else:
            store.update_feed_states([update])
        return PollResult(
            feed.name,
            ok=True,
            http_status=fetched.status,
            not_modified=True,
            items=state.last_item_count if state else 0,
            ttl_seconds=state.ttl_seconds if state else None,
            max_age_seconds=fetched.max_age_seconds,
            max_age_source=fetched.max_age_source,
            permanent_redirect_to=fetched.permanent_redirect_to,
            elapsed_seconds=time.monotonic() - started,
        )

    request = ParseRequest(
        body,
        content_type=fetched.content_type,
        content_location=fetched.content_location,
        feed_url=fetched.url,
    )
    split = split_items(body, context=_parse_context(request))
    known = (
        known_digests(state.item_digests)
        if split and same_url and state is not None and state.baseline_done
        else frozenset()
    )
    upgrading = state is not None and state.identity_version != IDENTITY_VERSION
    try:
        if upgrading:
            # Items stored under an earlier identity get their keys on the feed's first poll
            # since (see monitor.ingest.identity): it parses every item, known or not.
            parsed = parser.parse(request)
            item_count = len(parsed.articles)
            upgrade = _upgrade_poll(parsed, split, known)
        else:
            parsed, item_count = _parse_new_items(parser, request, split, known, feed.name)
            upgrade = None
    except ParseError as error:
        return _record_failure(
            store, feed, state, now, started, str(error), fetched.status, None, written_states
        )
    if parsed.bozo_reason:
        logger.debug("parse feed=%s bozo=%r", feed.name, parsed.bozo_reason)

    baseline = not feed.notify_existing and not (state and state.baseline_done)
    # Outside the transaction: fetching pages takes up to the feed's timeout.
    fulltext = None
    if not baseline and feed.fulltext != FULLTEXT_OFF:
        fulltext = add_full_text(
            feed,
            parsed.articles,
            store=store,
            pages=pages or ArticlePages(fetcher),
            parser=parser,
            upgrade=upgrade,
        )
        if fulltext is not None:
            parsed = replace(parsed, articles=fulltext.articles)
    oldest_notified = now - timedelta(seconds=feed.max_age_seconds)
    # Matched before the transaction, whose storing is serialised with every other
    # instance's on a shared database (monitor.store.articles): the items parsed are the
    # new ones, and edits (unless a baseline or an identity upgrade parsed them all).
    matched = (
        {
            article: _rule_matches(article, feed.name, rules)
            for article in parsed.articles
            if not _too_old(article, oldest_notified)
        }
        if not baseline and upgrade is None
        else {}
    )
    new_state: dict[str, object] = {}
    with store.transaction() as transaction:
        changes, new_items = transaction.upsert_articles(
            feed.name,
            parsed.articles,
            baseline=baseline,
            now=now,
            upgrade=upgrade,
            stories=stories,
        )
        matches = deliveries = 0
        for change in changes:
            if change.baseline or _too_old(change.article, oldest_notified):
                continue
            found = matched.get(change.article) or _rule_matches(change.article, feed.name, rules)
            hits = _hits(change, found, feed.name, rules, transaction, now)
            matches += len(hits)
            deliveries += transaction.record_hits(change.article_id, feed.name, hits, now)
        new_state.update(
            **_validators(fetched),
            last_poll_at=now,
            last_success_at=now,
            http_status=fetched.status,
            error=None,
            error_streak=0,
            last_new_count=new_items,
            last_item_count=item_count,
            baseline_done=True,
            redirected_to=fetched.permanent_redirect_to,
            ttl_seconds=parsed.ttl_seconds,
            body_hash=body_hash,
            item_digests=split.digest_blob() if split else None,
            identity_version=IDENTITY_VERSION,
            **(fulltext.state_values(now) if fulltext is not None else {}),
        )
        transaction.update_feed_state(feed.name, feed.url, **new_state)
    if written_states is not None:
        written_states(FeedStateUpdate(feed.name, feed.url, new_state))
    return PollResult(
        feed.name,
        ok=True,
        http_status=fetched.status,
        items=item_count,
        new_items=new_items,
        new_articles=sum(change.is_new for change in changes),
        matches=matches,
        deliveries=deliveries,
        baseline=baseline,
        ttl_seconds=parsed.ttl_seconds,
        max_age_seconds=fetched.max_age_seconds,
        max_age_source=fetched.max_age_source,
        permanent_redirect_to=fetched.permanent_redirect_to,
        elapsed_seconds=time.monotonic() - started,
        pages=fulltext.pages if fulltext is not None else 0,
        pages_failed=len(fulltext.failures) if fulltext is not None else 0,
    )


def _parse_context(request: ParseRequest) -> str:
    """What a parse is given besides the body (see known_items)."""
    return f"{request.content_type}\n{request.content_location}\n{request.feed_url}"


def _parse_new_items(
    parser: ParsePool,
    request: ParseRequest,
    split: ItemSplit | None,
    known: frozenset[bytes],
    feed_name: str,
) -> tuple[ParsedFeed, int]:
    """Parse the body without the items it carried last time (see known_items), or whole;
    return the parse and how many items the body holds. Raise ParseError."""
    if split is not None and known:
        cut, kept = split.without(known)
        if kept < len(split.items):
            with contextlib.suppress(ParseError):  # the whole body decides
                parsed = parser.parse(replace(request, body=cut))
                if len(parsed.articles) == kept:
                    return parsed, len(split.items)
            logger.warning(
                "parse feed=%s note='the body without its known items parsed differently: "
                "parsed whole'",
                feed_name,
            )
    parsed = parser.parse(request)
    return parsed, len(parsed.articles)


def _upgrade_poll(
    parsed: ParsedFeed, split: ItemSplit | None, known: frozenset[bytes]
) -> UpgradePoll:
    """What a feed's first poll since an identity upgrade knows of its last document: which
    items it held byte for byte (when the document splits into as many items as it parses
    to, item i is article i)."""
    if split is None or not known or len(split.items) != len(parsed.articles):
        return UpgradePoll(unchanged_items=None)
    return UpgradePoll(
        unchanged_items=frozenset(
            index for index, digest in enumerate(split.digests) if digest in known
        )
    )


def _body_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def _validators(fetched: FetchResult) -> dict[str, object]:
    return {"etag": fetched.etag, "last_modified": fetched.last_modified}


def _too_old(article: Article, oldest_notified: datetime) -> bool:
    return article.published is not None and article.published < oldest_notified


@dataclass(frozen=True)
class _RuleMatches:
    """The rules that match an article, each with its excerpt, and the rules that could
    not be evaluated on it."""

    matched: list[tuple[RuleMatch, str]]
    failures: list[RuleFailure]


def _rule_matches(article: Article, feed_name: str, rules: Rules) -> _RuleMatches:
    matched, failures = rules.matcher.match_with_failures(article, feed_name)
    return _RuleMatches(
        [(match, excerpt(article, match, rules.matcher)) for match in matched], failures
    )


def _hits(
    change: ArticleChange,
    found: _RuleMatches,
    feed_name: str,
    rules: Rules,
    transaction: StoreTransaction,
    now: datetime,
) -> list[HitToRecord]:
    """The rule hits to record of a change, given its rule matches."""
    matched, failures = found.matched, found.failures
    for failure in failures:
        # The rule is skipped for this article only; status shows it as failing.
        logger.warning(
            "rule rule=%s status=failing feed=%s article=%r error=%r",
            failure.rule_name,
            feed_name,
            change.article.title[:80],
            failure.message,
        )
        transaction.record_rule_failure(failure.rule_name, failure.message, now)
    if not matched:
        return []
    # An edited article re-runs every rule, but a rule notifies at most once per article.
    already = transaction.known_rule_hits(change.article_id) if not change.is_new else set()
    # Once per story: only a story with articles before this one can have alerted already.
    story_id = None if change.story_started else change.story_id
    return [
        HitToRecord(
            rule_name=match.rule_name,
            terms=match.matched_terms,
            excerpt=text,
            channels=rules.by_name[match.rule_name].notify,
            timing=rules.policies[match.rule_name].timing(now),
            story_id=story_id if rules.by_name[match.rule_name].per_story else None,
        )
        for match, text in matched
        if match.rule_name not in already
    ]


def excerpt(article: Article, match: RuleMatch, matcher: RuleSet) -> str:
    """Given an article and a rule that matched it, return a short plain-text excerpt of the
    body around the rule's first hit there, or the start of the summary when the body has
    none (the alert already shows the title, so a hit there is not repeated)."""
    body_hits = [
        hit for hit in matcher.explain(article, match.rule_name) if hit.field in BODY_FIELDS
    ]
    field, offset = (body_hits[0].field, body_hits[0].start) if body_hits else ("summary", 0)
    text = article.field_text(field) or article.content
    # Counted in grapheme clusters, so the cut never splits a character or an emoji.
    before = graphemes(text[:offset])
    after = graphemes(text[offset:])
    kept_before = before[-EXCERPT_CHARACTERS_BEFORE:] if offset else []
    kept_after = after[:EXCERPT_CHARACTERS_AFTER]
    prefix = "…" if len(kept_before) < len(before) else ""
    suffix = "…" if len(kept_after) < len(after) else ""
    return f"{prefix}{''.join(kept_before + kept_after).strip()}{suffix}"


def _record_failure(
    store: Store,
    feed: FeedConfig,
    state: FeedState | None,
    now: datetime,
    started: float,
    error: str,
    http_status: int | None,
    retry_after_seconds: float | None,
    written_states: Callable[[FeedStateUpdate], None] | None = None,
) -> PollResult:
    error_streak = (state.error_streak if state else 0) + 1
    new_state: dict[str, object] = {
        "last_poll_at": now,
        "http_status": http_status,
        "error": error,
        "error_streak": error_streak,
        "last_new_count": 0,
    }
    with store.transaction() as transaction:
        transaction.update_feed_state(feed.name, feed.url, **new_state)
    if written_states is not None:
        written_states(FeedStateUpdate(feed.name, feed.url, new_state))
    return PollResult(
        feed.name,
        ok=False,
        http_status=http_status,
        error=error,
        error_streak=error_streak,
        retry_after_seconds=retry_after_seconds,
        elapsed_seconds=time.monotonic() - started,
    )
