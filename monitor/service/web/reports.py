"""What each page and API of the web view shows, read from the store and the running
configuration: plain values that the templates draw and the API turns into JSON.

Everything here reads; nothing writes. Texts that may hold a secret (a feed's error, a
delivery's last error, a feed URL) are masked here, once, for both HTML and JSON.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from monitor.config import SECRETS, Config
from monitor.service.search import SearchOutcome, result_document
from monitor.service.status import iso
from monitor.service.web.charts import Chart, small_daily_chart, stacked_daily_chart
from monitor.store import FeedState, HitDelivery, RecentHit, Store, StoryRecord

CHART_DAYS = 30
# The overview lists rules with their counts; past this many, the most active are shown.
OVERVIEW_RULES_SHOWN = 500
# /stories lists the stories of several articles first seen within this many days, newest
# first, at most STORIES_SHOWN (`news-monitor stories --since` reaches further back).
STORIES_DAYS = 7
STORIES_SHOWN = 100


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class WebSources:
    """What the web view reads: the running configuration (it changes on reload), the
    store (opened read-only) and the time."""

    config: Callable[[], Config]
    store: Store
    clock: Callable[[], datetime] = utc_now

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.config().timezone)


def chart_days(
    now: datetime, zone: ZoneInfo, count: int = CHART_DAYS
) -> tuple[list[date], datetime]:
    """Given the time and the timezone, return the last `count` local days (today last) and
    the UTC start of the first."""
    today = now.astimezone(zone).date()
    days = [today - timedelta(days=offset) for offset in range(count - 1, -1, -1)]
    start = datetime.combine(days[0], time(), tzinfo=zone).astimezone(UTC)
    return days, start


# ------------------------------------------------------------------------------ overview


@dataclass(frozen=True)
class RuleActivity:
    name: str
    matches_30_days: int
    matches_7_days: int
    last_match: datetime | None
    enabled: bool
    configured: bool  # False: hits of a rule no longer in the configuration


@dataclass(frozen=True)
class FailingFeed:
    name: str
    error: str
    error_streak: int
    http_status: int | None
    last_poll_at: datetime | None
    last_success_at: datetime | None


@dataclass(frozen=True)
class Overview:
    chart: Chart
    rules: tuple[RuleActivity, ...]
    rules_not_shown: int
    deliveries: dict[str, int]  # pending, held, sent, failed
    failing_feeds: tuple[FailingFeed, ...]


def read_overview(sources: WebSources) -> Overview:
    config, store, now = sources.config(), sources.store, sources.clock()
    days, start = chart_days(now, sources.zone)
    by_rule: dict[str, dict[date, int]] = {}
    for count in store.daily_hit_counts(start, now + timedelta(seconds=1), sources.zone):
        by_rule.setdefault(count.name, {})[count.day] = count.count
    chart = stacked_daily_chart(
        days, by_rule, description=f"Matches per rule per day, last {CHART_DAYS} days"
    )
    last_hits = store.last_hit_times()
    week = set(days[-7:])
    configured = {rule.name: rule for rule in config.rules}
    names = list(configured) + sorted(name for name in by_rule if name not in configured)
    rules = [
        RuleActivity(
            name=name,
            matches_30_days=sum(by_rule.get(name, {}).values()),
            matches_7_days=sum(n for day, n in by_rule.get(name, {}).items() if day in week),
            last_match=last_hits.get(name),
            enabled=configured[name].enabled if name in configured else False,
            configured=name in configured,
        )
        for name in names
    ]
    rules.sort(key=lambda rule: (-rule.matches_30_days, rule.name))
    shown = rules[:OVERVIEW_RULES_SHOWN]
    states = {status.state.name: status.state for status in store.feed_statuses()}
    failing = [
        _failing_feed(feed.name, state)
        for feed in config.feeds
        if feed.enabled and (state := states.get(feed.name)) is not None and state.error
    ]
    return Overview(
        chart=chart,
        rules=tuple(shown),
        rules_not_shown=len(rules) - len(shown),
        deliveries=store.delivery_counts(now),
        failing_feeds=tuple(failing),
    )


def _failing_feed(name: str, state: FeedState) -> FailingFeed:
    return FailingFeed(
        name=name,
        error=SECRETS.apply(state.error or ""),
        error_streak=state.error_streak,
        http_status=state.http_status,
        last_poll_at=state.last_poll_at,
        last_success_at=state.last_success_at,
    )


# ------------------------------------------------------------------------------- matches


def read_matches(
    sources: WebSources, *, rule: str | None, before: int | None, limit: int
) -> list[RecentHit]:
    """The latest matches (newest first), the rule's only when one is named."""
    return sources.store.recent_hits(limit=limit, rule_name=rule, before_id=before)


def delivery_document(delivery: HitDelivery) -> dict[str, object]:
    return {
        "channel": delivery.channel,
        "status": delivery.status,
        "kind": delivery.kind,
        "attempts": delivery.attempts,
        "release_at": iso(delivery.release_at),
        "next_attempt_at": iso(delivery.next_attempt_at),
        "sent_at": iso(delivery.sent_at),
        "last_error": SECRETS.apply(delivery.last_error) if delivery.last_error else None,
        # Sent nothing: its story's alert (that article's link) had gone to the channel.
        "suppressed_by": delivery.story_alert_link if delivery.suppressed else None,
    }


def match_document(hit: RecentHit) -> dict[str, object]:
    return {
        "id": hit.hit_id,
        "matched_at": iso(hit.matched_at),
        "rule": hit.rule_name,
        "feed": hit.feed_name,
        "title": hit.title,
        "link": hit.link,
        "published": iso(hit.published),
        "terms": list(hit.terms),
        "excerpt": hit.excerpt,
        "deliveries": [delivery_document(delivery) for delivery in hit.deliveries],
    }


# --------------------------------------------------------------------------------- feeds


@dataclass(frozen=True)
class FeedReport:
    name: str
    url: str  # safe to show
    enabled: bool
    state: FeedState | None  # None: never polled
    error: str | None  # masked
    articles: int
    new_per_day: tuple[tuple[date, int], ...]
    chart: Chart


def read_feeds(sources: WebSources) -> list[FeedReport]:
    """Every configured feed, in the configuration's order, with its state and its new
    articles per day over the chart's days."""
    config, store, now = sources.config(), sources.store, sources.clock()
    days, start = chart_days(now, sources.zone)
    statuses = {status.state.name: status for status in store.feed_statuses()}
    new: dict[str, dict[date, int]] = {}
    for count in store.daily_new_article_counts(start, now + timedelta(seconds=1), sources.zone):
        new.setdefault(count.name, {})[count.day] = count.count
    reports = []
    for feed in config.feeds:
        status = statuses.get(feed.name)
        state = status.state if status else None
        per_day = new.get(feed.name, {})
        reports.append(
            FeedReport(
                name=feed.name,
                # A ${...} in the URL is masked in every form it takes there.
                url=SECRETS.apply(feed.url),
                enabled=feed.enabled,
                state=state,
                error=SECRETS.apply(state.error) if state and state.error else None,
                articles=status.articles if status else 0,
                new_per_day=tuple((day, per_day.get(day, 0)) for day in days),
                chart=small_daily_chart(
                    days,
                    per_day,
                    description=f"New articles of {feed.name} per day, last {CHART_DAYS} days",
                    unit="new",
                ),
            )
        )
    return reports


def feed_document(report: FeedReport) -> dict[str, object]:
    state = report.state
    return {
        "name": report.name,
        "url": report.url,
        "enabled": report.enabled,
        "last_attempt": iso(state.last_poll_at) if state else None,
        "last_success": iso(state.last_success_at) if state else None,
        "http_status": state.http_status if state else None,
        "error": report.error,
        "error_streak": state.error_streak if state else 0,
        "next_poll": iso(state.next_poll_at) if state else None,
        "articles": report.articles,
        "new_articles_per_day": [
            {"date": day.isoformat(), "count": count} for day, count in report.new_per_day
        ],
    }


# ------------------------------------------------------------------------ stories, search


def read_stories(sources: WebSources) -> list[StoryRecord]:
    """The stories of several articles first seen within the last STORIES_DAYS, newest
    first, at most STORIES_SHOWN; none while grouping is off (`stories: false`)."""
    if not sources.config().stories.enabled:
        return []
    since = sources.clock() - timedelta(days=STORIES_DAYS)
    return list(itertools.islice(sources.store.stories(since), STORIES_SHOWN))


def story_document(story: StoryRecord) -> dict[str, object]:
    return {
        "id": story.story_id,
        "first_seen": iso(story.first_seen),
        "title": story.title,
        "articles": [
            {
                "feed": article.feed_name,
                "title": article.title,
                "link": article.link,
                "published": iso(article.published),
                "first_seen": iso(article.first_seen),
            }
            for article in story.articles
        ],
    }


def search_document(query: str, outcome: SearchOutcome) -> dict[str, object]:
    return {
        "query": query,
        "complete": outcome.complete,
        "results": [result_document(result) for result in outcome.results],
    }
