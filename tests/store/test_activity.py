"""The store's reads of what happened (monitor.store.activity), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from monitor.model import Article, Timing
from monitor.store import HELD, PENDING, DailyCount
from monitor.store.activity import offset_segments
from monitor.store.database import Store
from monitor.store.deliveries import HitToRecord

SHANGHAI = ZoneInfo("Asia/Shanghai")
PARIS = ZoneInfo("Europe/Paris")


def _article(number: int, title: str) -> Article:
    link = f"https://www.rfi.fr/cn/{number}"
    return Article(
        guid=str(number), link=link, canonical_link=link, title=title, summary="", content=""
    )


def _store_with_hits(
    store: Store,
    feed: str,
    articles: list[Article],
    now: datetime,
    rules: dict[str, tuple[str, ...]],
) -> list[int]:
    """Store articles seen by `feed` at `now`, each hit by every rule (rule -> channels)."""
    with store.transaction() as transaction:
        changes, _ = transaction.upsert_articles(feed, articles, baseline=False, now=now)
        for change in changes:
            hits = [
                HitToRecord(rule, ("韩日",), "…韩日…", channels) for rule, channels in rules.items()
            ]
            transaction.record_hits(change.article_id, feed, hits, now)
    return [change.article_id for change in changes]


def test_daily_hit_counts_uses_the_days_of_the_timezone(store: Store) -> None:
    late_evening = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)  # 23:00 in Shanghai
    after_midnight = datetime(2026, 11, 25, 17, 0, tzinfo=UTC)  # 01:00 on the 26th there
    _store_with_hits(store, "cn", [_article(1, "韩日一")], late_evening, {"kj": ("me",)})
    _store_with_hits(store, "cn", [_article(2, "韩日二")], after_midnight, {"kj": ("me",)})
    _store_with_hits(store, "cn", [_article(3, "韩日三")], after_midnight, {"kj": ("me",), "x": ()})

    counts = store.daily_hit_counts(
        datetime(2026, 11, 20, tzinfo=UTC), datetime(2026, 11, 27, tzinfo=UTC), SHANGHAI
    )

    assert counts == [
        DailyCount("kj", date(2026, 11, 25), 1),
        DailyCount("kj", date(2026, 11, 26), 2),
        DailyCount("x", date(2026, 11, 26), 1),
    ]


def test_daily_hit_counts_across_a_daylight_saving_change_keeps_local_days(store: Store) -> None:
    # Paris leaves summer time on 2026-10-25 at 01:00 UTC (+2 -> +1).
    summer_half_past_midnight = datetime(2026, 10, 24, 22, 30, tzinfo=UTC)  # 25th, 00:30 +2
    winter_half_past_midnight = datetime(2026, 10, 25, 23, 30, tzinfo=UTC)  # 26th, 00:30 +1
    _store_with_hits(store, "cn", [_article(1, "a")], summer_half_past_midnight, {"r": ("me",)})
    _store_with_hits(store, "cn", [_article(2, "b")], winter_half_past_midnight, {"r": ("me",)})

    counts = store.daily_hit_counts(
        datetime(2026, 10, 20, tzinfo=UTC), datetime(2026, 10, 30, tzinfo=UTC), PARIS
    )

    assert counts == [
        DailyCount("r", date(2026, 10, 25), 1),
        DailyCount("r", date(2026, 10, 26), 1),
    ]


def test_offset_segments_cut_the_window_at_the_minute_the_offset_changes() -> None:
    start = datetime(2026, 10, 20, tzinfo=UTC)
    end = datetime(2026, 10, 30, tzinfo=UTC)
    change = datetime(2026, 10, 25, 1, 0, tzinfo=UTC)

    assert offset_segments(start, end, PARIS) == [(start, change, 7200), (change, end, 3600)]
    assert offset_segments(start, end, SHANGHAI) == [(start, end, 28800)]


def test_daily_new_article_counts_counts_each_feed_that_carried_an_article(store: Store) -> None:
    now = datetime(2026, 11, 26, 4, 0, tzinfo=UTC)
    articles = [_article(1, "一"), _article(2, "二")]
    _store_with_hits(store, "cn", articles, now, {})
    _store_with_hits(store, "cn-asia", articles[:1], now + timedelta(days=1), {})

    counts = store.daily_new_article_counts(
        datetime(2026, 11, 20, tzinfo=UTC), datetime(2026, 11, 30, tzinfo=UTC), SHANGHAI
    )

    assert counts == [
        DailyCount("cn", date(2026, 11, 26), 2),
        DailyCount("cn-asia", date(2026, 11, 27), 1),
    ]


def test_recent_hits_gives_newest_first_with_each_channels_delivery(store: Store) -> None:
    now = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
    _store_with_hits(store, "cn", [_article(1, "韩日一")], now, {"kj": ("me", "team")})
    _store_with_hits(store, "tw", [_article(2, "韩日二")], now, {"kj": ("me",), "labour": ("me",)})
    with store.transaction() as transaction:
        (change,), _ = transaction.upsert_articles(
            "cn", [_article(3, "<b>三</b>")], baseline=False, now=now
        )
        held = Timing(hold_until=now + timedelta(hours=1), digest=True)
        transaction.record_hits(
            change.article_id, "cn", [HitToRecord("digest", ("三",), "", ("me",), held)], now
        )

    hits = store.recent_hits(limit=10)

    assert [(hit.rule_name, hit.title) for hit in hits] == [
        ("digest", "<b>三</b>"),
        ("labour", "韩日二"),
        ("kj", "韩日二"),
        ("kj", "韩日一"),
    ]
    assert [(d.channel, d.status, d.kind) for d in hits[0].deliveries] == [("me", HELD, "digest")]
    assert hits[0].deliveries[0].release_at == now + timedelta(hours=1)
    assert [(d.channel, d.status) for d in hits[-1].deliveries] == [
        ("me", PENDING),
        ("team", PENDING),
    ]
    assert hits[-1].feed_name == "cn" and hits[-1].terms == ("韩日",)
    assert hits[-1].link == "https://www.rfi.fr/cn/1" and hits[-1].matched_at == now


def test_recent_hits_filters_by_rule_and_pages_with_before_id(store: Store) -> None:
    now = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
    articles = [_article(number, f"韩日{number}") for number in range(1, 6)]
    _store_with_hits(store, "cn", articles, now, {"kj": ("me",), "other": ("me",)})

    first_page = store.recent_hits(limit=2, rule_name="kj")
    second_page = store.recent_hits(limit=2, rule_name="kj", before_id=first_page[-1].hit_id)

    assert [hit.title for hit in first_page] == ["韩日5", "韩日4"]
    assert [hit.title for hit in second_page] == ["韩日3", "韩日2"]
    assert {hit.rule_name for hit in first_page + second_page} == {"kj"}


def test_last_hit_times_by_rule(store: Store) -> None:
    now = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
    _store_with_hits(store, "cn", [_article(1, "a")], now - timedelta(days=3), {"kj": ("me",)})
    _store_with_hits(store, "cn", [_article(2, "b")], now, {"kj": ("me",), "x": ("me",)})

    assert store.last_hit_times() == {"kj": now, "x": now}


def test_recent_articles_newest_first_with_feeds_and_without_pruned_text(store: Store) -> None:
    now = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
    old = _store_with_hits(store, "cn", [_article(1, "旧")], now - timedelta(days=100), {})
    _store_with_hits(store, "cn", [_article(2, "二"), _article(3, "三")], now, {})
    _store_with_hits(store, "tw", [_article(3, "三")], now, {})
    store.prune_articles(now - timedelta(days=90))

    articles = list(store.recent_articles(None, batch_size=1))
    since_today = list(store.recent_articles(now))

    assert [(a.article.title, a.feeds) for a in articles] == [
        ("三", ("cn", "tw")),
        ("二", ("cn",)),
    ]
    assert old[0] not in {a.article_id for a in articles}
    assert [a.article.title for a in since_today] == ["三", "二"]
    assert since_today[0].first_seen_at == now
