"""Stories in the store (monitor.store.stories and the once-per-story outbox): each on a
real SQLite file and on the local PostgreSQL server (the `store` fixture)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import inspect
from story_articles import (
    DIALOGUE_CN,
    DIALOGUE_REPRINT,
    DIALOGUE_TW,
    FINANCE_FOLLOW_UP,
    MINISTERS_MEETING,
    article,
)

from monitor.model import Article, Timing
from monitor.store import ArticleChange, HitToRecord, Store, StoryGrouping
from monitor.store.tables import HELD, PENDING

NOW = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
GROUPING = StoryGrouping(window_seconds=72 * 3600, similarity=0.5)


def _store(
    store: Store,
    feed: str,
    articles: list[Article],
    when: datetime,
    *,
    grouping: StoryGrouping | None = GROUPING,
    baseline: bool = False,
) -> list[ArticleChange]:
    with store.transaction() as transaction:
        changes, _ = transaction.upsert_articles(
            feed, articles, baseline=baseline, now=when, stories=grouping
        )
    return changes


def _hit(change: ArticleChange, channels: tuple[str, ...] = ("mail",), **options) -> HitToRecord:
    story = None if change.story_started else change.story_id
    return HitToRecord("korea-japan", ("韩日",), "…韩日…", channels, story_id=story, **options)


def _record(store: Store, change: ArticleChange, feed: str, when: datetime, **options) -> int:
    with store.transaction() as transaction:
        return transaction.record_hits(change.article_id, feed, [_hit(change, **options)], when)


# --------------------------------------------------------------------------- grouping


def test_the_tw_version_and_a_reprint_join_the_cn_article_story(store: Store) -> None:
    (cn,) = _store(store, "cn", [article(DIALOGUE_CN, "dialogue", NOW)], NOW)
    (tw,) = _store(store, "tw", [article(DIALOGUE_TW, "dialogue", NOW, site="tw")], NOW)
    (wire,) = _store(store, "wire", [article(DIALOGUE_REPRINT, "d", NOW, site="wire")], NOW)

    assert cn.story_started and cn.story_id is not None
    assert (tw.story_id, tw.story_started) == (cn.story_id, False)
    assert (wire.story_id, wire.story_started) == (cn.story_id, False)


def test_other_news_on_the_same_topic_starts_stories_of_its_own(store: Store) -> None:
    (dialogue,) = _store(store, "cn", [article(DIALOGUE_CN, "dialogue", NOW)], NOW)
    meeting, follow_up = _store(
        store,
        "cn",
        [article(MINISTERS_MEETING, "meeting", NOW), article(FINANCE_FOLLOW_UP, "finance", NOW)],
        NOW + timedelta(hours=20),
    )

    assert meeting.story_started and follow_up.story_started
    assert len({dialogue.story_id, meeting.story_id, follow_up.story_id}) == 3


def test_articles_of_one_poll_group_with_each_other(store: Store) -> None:
    changes = _store(
        store,
        "mixed",
        [
            article(DIALOGUE_CN, "dialogue", NOW),
            article(MINISTERS_MEETING, "meeting", NOW),
            article(DIALOGUE_TW, "dialogue", NOW, site="tw"),
        ],
        NOW,
    )

    cn, meeting, tw = changes
    assert [change.story_started for change in changes] == [True, True, False]
    assert tw.story_id == cn.story_id != meeting.story_id


def test_an_article_first_seen_after_the_window_starts_a_new_story(store: Store) -> None:
    (cn,) = _store(store, "cn", [article(DIALOGUE_CN, "dialogue", NOW)], NOW)
    late = NOW + timedelta(seconds=GROUPING.window_seconds + 1)
    (tw,) = _store(store, "tw", [article(DIALOGUE_TW, "dialogue", NOW, site="tw")], late)

    assert tw.story_started and tw.story_id != cn.story_id


def test_an_article_close_to_two_stories_joins_the_most_similar(store: Store) -> None:
    # Two stories close to each other: stored while grouping was stricter.
    strict = StoryGrouping(similarity=0.99)
    (cn,) = _store(store, "cn", [article(DIALOGUE_CN, "dialogue", NOW)], NOW, grouping=strict)
    (wire,) = _store(
        store, "wire", [article(DIALOGUE_REPRINT, "d", NOW, site="wire")], NOW, grouping=strict
    )
    assert wire.story_started and wire.story_id != cn.story_id

    later = NOW + timedelta(hours=1)
    (tw,) = _store(store, "tw", [article(DIALOGUE_TW, "dialogue", NOW, site="tw")], later)
    (copy,) = _store(store, "copy", [article(DIALOGUE_REPRINT, "d", NOW, site="copy")], later)

    assert tw.story_id == cn.story_id  # the same text as the first story's article
    assert copy.story_id == wire.story_id  # the same text as the second's


def test_grouping_off_gives_no_story(store: Store) -> None:
    (cn,) = _store(store, "cn", [article(DIALOGUE_CN, "dialogue", NOW)], NOW, grouping=None)
    (tw,) = _store(store, "tw", [article(DIALOGUE_TW, "d", NOW, site="tw")], NOW)

    assert cn.story_id is None
    assert tw.story_started  # the article stored without grouping is no candidate
    (story,) = store.stories(include_single=True)
    assert [each.feed_name for each in story.articles] == ["tw"]


def _stories_by_feeds(store: Store) -> list[list[str]]:
    return sorted(
        sorted(each.feed_name for each in story.articles)
        for story in store.stories(include_single=True)
    )


def test_a_first_poll_is_grouped_later_and_later_articles_join_its_stories(
    store: Store,
) -> None:
    first_poll = [
        article(DIALOGUE_CN, "dialogue", NOW),
        article(MINISTERS_MEETING, "meeting", NOW),
    ]
    changes = _store(store, "cn", first_poll, NOW, baseline=True)

    # A baseline never alerts: its articles wait to be grouped, with no story yet.
    assert [change.story_id for change in changes] == [None, None]
    assert store.articles_to_group() == 2 and _stories_by_feeds(store) == []
    assert store.group_pending(GROUPING, batch_articles=1) == 1
    assert store.group_pending(GROUPING) == 1
    assert store.group_pending(GROUPING) == 0 and store.articles_to_group() == 0
    assert _stories_by_feeds(store) == [["cn"], ["cn"]]

    (tw,) = _store(store, "tw", [article(DIALOGUE_TW, "dialogue", NOW, site="tw")], NOW)
    assert not tw.story_started
    assert _stories_by_feeds(store) == [["cn"], ["cn", "tw"]]


def test_a_waiting_article_joins_the_story_a_later_one_started(store: Store) -> None:
    _store(store, "cn", [article(DIALOGUE_CN, "dialogue", NOW)], NOW, baseline=True)
    (tw,) = _store(store, "tw", [article(DIALOGUE_TW, "dialogue", NOW, site="tw")], NOW)
    assert tw.story_started  # the cn article, still waiting, is no candidate yet

    store.group_pending(GROUPING)

    (story,) = store.stories(include_single=True)
    assert story.story_id == tw.story_id
    assert sorted(each.feed_name for each in story.articles) == ["cn", "tw"]


def test_first_polls_waiting_together_group_with_each_other(store: Store) -> None:
    _store(store, "cn", [article(DIALOGUE_CN, "dialogue", NOW)], NOW, baseline=True)
    _store(store, "tw", [article(DIALOGUE_TW, "dialogue", NOW, site="tw")], NOW, baseline=True)
    _store(store, "x", [article(MINISTERS_MEETING, "meeting", NOW)], NOW, baseline=True)

    assert store.group_pending(GROUPING) == 3
    assert _stories_by_feeds(store) == [["cn", "tw"], ["x"]]


def test_a_first_poll_without_grouping_waits_for_nothing(store: Store) -> None:
    _store(store, "cn", [article(DIALOGUE_CN, "dialogue", NOW)], NOW, baseline=True, grouping=None)

    assert store.articles_to_group() == 0


def test_an_edit_keeps_the_story_and_groups_by_the_new_text(store: Store) -> None:
    (cn,) = _store(store, "cn", [article(DIALOGUE_CN, "dialogue", NOW)], NOW)
    (meeting,) = _store(store, "cn", [article(MINISTERS_MEETING, "meeting", NOW)], NOW)
    # The dialogue article rewritten as the ministers' meeting: still the dialogue's story.
    rewritten = article(FINANCE_FOLLOW_UP, "dialogue", NOW)
    later = NOW + timedelta(hours=1)
    (edit,) = _store(store, "cn", [rewritten], later)
    (copy,) = _store(store, "wire", [article(FINANCE_FOLLOW_UP, "f", NOW, site="wire")], later)

    assert (edit.is_new, edit.story_id) == (False, cn.story_id)
    assert meeting.story_id != cn.story_id
    assert copy.story_id == cn.story_id  # found by the edited text's band keys


def test_forgotten_band_keys_find_no_candidate(store: Store) -> None:
    (cn,) = _store(store, "cn", [article(DIALOGUE_CN, "dialogue", NOW)], NOW)

    assert store.forget_story_bands(NOW + timedelta(seconds=1)) > 0
    (tw,) = _store(store, "tw", [article(DIALOGUE_TW, "dialogue", NOW, site="tw")], NOW)

    assert tw.story_started and tw.story_id != cn.story_id
    assert store.forget_story_bands(NOW - timedelta(days=1)) == 0


# --------------------------------------------------------------------------- listing


def test_stories_lists_those_of_several_articles_newest_first(store: Store) -> None:
    (cn,) = _store(store, "rfi-cn", [article(DIALOGUE_CN, "dialogue", NOW)], NOW)
    (meeting,) = _store(store, "rfi-cn", [article(MINISTERS_MEETING, "m", NOW)], NOW)
    later = NOW + timedelta(hours=2)
    (finance,) = _store(store, "rfi-cn", [article(FINANCE_FOLLOW_UP, "f", later)], later)
    _store(store, "rfi-tw", [article(DIALOGUE_TW, "dialogue", NOW, site="tw")], later)
    _store(store, "rfi-tw", [article(FINANCE_FOLLOW_UP, "f", later, site="tw")], later)

    several = list(store.stories(batch_size=1))
    every = list(store.stories(include_single=True, batch_size=1))
    recent = list(store.stories(NOW + timedelta(hours=1), include_single=True))

    assert [story.story_id for story in several] == [finance.story_id, cn.story_id]
    assert [story.story_id for story in every] == [
        finance.story_id,
        meeting.story_id,
        cn.story_id,
    ]
    assert [story.story_id for story in recent] == [finance.story_id]
    dialogue = several[1]
    assert dialogue.title == DIALOGUE_CN[0]
    assert dialogue.first_seen == NOW
    assert [(a.feed_name, a.title) for a in dialogue.articles] == [
        ("rfi-cn", DIALOGUE_CN[0]),
        ("rfi-tw", DIALOGUE_TW[0]),
    ]
    assert dialogue.articles[1].link == "https://www.rfi.fr/tw/news/dialogue"


# --------------------------------------------------------------------------- once per story


def test_a_later_article_is_listed_under_the_story_alert_that_still_waits(store: Store) -> None:
    (cn,) = _store(store, "cn", [article(DIALOGUE_CN, "dialogue", NOW)], NOW)
    assert _record(store, cn, "cn", NOW) == 1
    (tw,) = _store(store, "tw", [article(DIALOGUE_TW, "dialogue", NOW, site="tw")], NOW)

    assert _record(store, tw, "tw", NOW) == 1  # queued: it goes out with the story's alert

    (due,) = store.due_deliveries(NOW)
    (lead,) = due.articles
    assert lead.title == DIALOGUE_CN[0]
    assert [(also.feed_name, also.title, also.link) for also in lead.also] == [
        ("tw", DIALOGUE_TW[0], "https://www.rfi.fr/tw/news/dialogue")
    ]
    assert store.delivery_articles([due.delivery_id]) == {due.delivery_id: [lead]}
    assert store.delivery_counts() == {"pending": 1, "held": 0, "sent": 0, "failed": 0}


def test_a_later_article_joins_a_held_digest_under_its_story(store: Store) -> None:
    hold = Timing(hold_until=NOW + timedelta(hours=1), digest=True)
    (cn,) = _store(store, "cn", [article(DIALOGUE_CN, "dialogue", NOW)], NOW)
    _record(store, cn, "cn", NOW, timing=hold)
    (meeting,) = _store(store, "cn", [article(MINISTERS_MEETING, "m", NOW)], NOW)
    _record(store, meeting, "cn", NOW, timing=hold)
    (tw,) = _store(store, "tw", [article(DIALOGUE_TW, "dialogue", NOW, site="tw")], NOW)
    _record(store, tw, "tw", NOW, timing=hold)

    released = NOW + timedelta(hours=1)
    assert store.release_held(released) == 1
    (digest,) = store.due_deliveries(released)
    assert sorted((a.title, len(a.also)) for a in digest.articles) == sorted(
        [(DIALOGUE_CN[0], 1), (MINISTERS_MEETING[0], 0)]
    )


def test_a_later_article_sends_nothing_once_the_story_alert_is_claimed_or_sent(
    store: Store,
) -> None:
    (cn,) = _store(store, "cn", [article(DIALOGUE_CN, "dialogue", NOW)], NOW)
    _record(store, cn, "cn", NOW, channels=("mail", "chat"))
    mail, chat = sorted(store.due_deliveries(NOW), key=lambda due: due.channel != "mail")
    store.mark_sent(mail.delivery_id, NOW)
    assert store.claim_deliveries([(chat.delivery_id, None)], "sender", NOW)
    (tw,) = _store(store, "tw", [article(DIALOGUE_TW, "dialogue", NOW, site="tw")], NOW)

    assert _record(store, tw, "tw", NOW, channels=("mail", "chat")) == 0

    assert store.delivery_articles([chat.delivery_id])[chat.delivery_id][0].also == ()
    stories = {a.title: story for a, _, story in store.stored_articles_in_stories()}
    cn_link = "https://www.rfi.fr/cn/news/dialogue"
    assert stories[DIALOGUE_TW[0]].suppressed_by == {"korea-japan": cn_link}
    assert stories[DIALOGUE_CN[0]].suppressed_by == {}
    assert stories[DIALOGUE_TW[0]].story_id == stories[DIALOGUE_CN[0]].story_id == cn.story_id


def test_a_later_article_alerts_when_the_story_alert_failed_for_good(store: Store) -> None:
    (cn,) = _store(store, "cn", [article(DIALOGUE_CN, "dialogue", NOW)], NOW)
    _record(store, cn, "cn", NOW)
    (failed,) = store.due_deliveries(NOW)
    store.mark_attempt_failed(failed.delivery_id, "down", None)
    (tw,) = _store(store, "tw", [article(DIALOGUE_TW, "dialogue", NOW, site="tw")], NOW)

    assert _record(store, tw, "tw", NOW) == 1

    (due,) = store.due_deliveries(NOW)
    assert [a.title for a in due.articles] == [DIALOGUE_TW[0]]


def test_a_rule_alerting_per_article_ignores_the_story(store: Store) -> None:
    (cn,) = _store(store, "cn", [article(DIALOGUE_CN, "dialogue", NOW)], NOW)
    _record(store, cn, "cn", NOW)
    (tw,) = _store(store, "tw", [article(DIALOGUE_TW, "dialogue", NOW, site="tw")], NOW)
    with store.transaction() as transaction:
        per_article = HitToRecord("korea-japan", ("韩日",), "…", ("mail",), story_id=None)
        assert transaction.record_hits(tw.article_id, "tw", [per_article], NOW) == 1

    assert sorted(len(due.articles) for due in store.due_deliveries(NOW)) == [1, 1]
    assert store.delivery_counts()[PENDING] == 2 and store.delivery_counts()[HELD] == 0


# --------------------------------------------------------------------------- upgrade


def test_a_database_from_before_stories_upgrades_and_nothing_alerts_again(store: Store) -> None:
    old = [article(DIALOGUE_CN, "dialogue", NOW), article(MINISTERS_MEETING, "m", NOW)]
    for change in _store(store, "cn", old, NOW, grouping=None):
        _record(store, change, "cn", NOW)
    store.mark_sent([due.delivery_id for due in store.due_deliveries(NOW)], NOW)
    # The tables as the version before stories made them.
    with store.engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE story_band")
        connection.exec_driver_sql("DROP TABLE story")
        connection.exec_driver_sql("DROP INDEX ix_article_story_id")
        for table, column in (
            ("article", "story_id"),
            ("article", "story_signature"),
            ("delivery_item", "story_lead_hit_id"),
            ("delivery_item", "suppressed_at"),
        ):
            connection.exec_driver_sql(f"ALTER TABLE {table} DROP COLUMN {column}")
        connection.exec_driver_sql("DELETE FROM schema_migration WHERE name = 'add stories'")
    assert not store.schema_is_current()

    store.create_schema()

    assert store.schema_is_current()
    assert {"story", "story_band"} <= set(inspect(store.engine).get_table_names())
    later = NOW + timedelta(hours=1)
    assert _store(store, "cn", old, later) == []  # the same articles: nothing new
    assert {story.story_id for _, _, story in store.stored_articles_in_stories()} == {None}
    # The /tw version of an old article: its own story (the old one has none), its alert.
    (tw,) = _store(store, "tw", [article(DIALOGUE_TW, "dialogue", NOW, site="tw")], later)
    assert tw.story_started
    assert _record(store, tw, "tw", later) == 1
    assert store.delivery_counts() == {"pending": 1, "held": 0, "sent": 2, "failed": 0}
