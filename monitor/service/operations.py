"""One-off work the command line asks for besides running the daemon: checking a
configuration, retrying failed deliveries, a test alert, the stored articles to backtest."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from monitor.config import SECRETS, Config
from monitor.delivery import Alert, Notifier, SendResult, render_alert
from monitor.service.backtest import SourceArticle
from monitor.service.daemon import Runtime
from monitor.store import CopyReport, Store, copy_store, url_secrets

# The batch of stored articles in hand is the last part of a backtest's memory peak: 250
# rows at a time rather than the store's 500 hold 3 MB less, and the extra queries cost
# about 0.1 s per 30,000 articles.
BACKTEST_BATCH_ROWS = 250


def check_configuration(config: Config) -> None:
    """Build everything the daemon would from this configuration (rules compiled, channel
    URLs checked). Raise ValueError for what the loader could not see."""
    Runtime.build(config)


def copy_database(config: Config, target_url: str) -> CopyReport:
    """Copy the configuration's store into the empty database at `target_url` (see
    monitor.store.copy). Raise StoreError (CopyError) if it cannot be made."""
    # The target's URL may hold a password: it never reaches a log or an error.
    SECRETS.add(url_secrets(target_url))
    source, target = Store(config.database_url), Store(target_url)
    try:
        source.create_schema()
        return copy_store(source, target)
    finally:
        source.close()
        target.close()


def retry_failed_deliveries(config: Config, *, rule_name: str | None) -> int:
    """Put deliveries that failed for good back to pending; return how many."""
    store = Store(config.database_url)
    try:
        store.create_schema()
        return store.retry_failed(datetime.now(UTC), rule_name=rule_name)
    finally:
        store.close()


def send_test_alert(config: Config, channel_name: str) -> SendResult:
    """Send a test alert through one configured channel, rendered with its own template
    (no rule template here), and return what each of its services answered."""
    channel = config.channel(channel_name)
    if channel is None:
        raise LookupError(channel_name)
    alert = Alert(
        rule_name="test",
        title="news-monitor test alert",
        link="https://example.org/news-monitor-test",
        feed_name="test",
        published=datetime.now(UTC),
        matched_terms=("test",),
        excerpt=f"If you can read this, channel {channel_name} works.",
    )
    message = render_alert(alert, ZoneInfo(config.timezone), template=channel.template)
    return Notifier(config.channels).send(channel_name, message)


@contextmanager
def stored_articles(
    config: Config, *, since_seconds: float | None
) -> Iterator[Iterable[SourceArticle]]:
    """The stored articles (first seen within `since_seconds`, or all), read in batches
    while the caller iterates, with their stories unless grouping is off (`stories:
    false`: no article has a story then); the store closes when the block ends."""
    store = Store(config.database_url)
    try:
        store.create_schema()
        since = None
        if since_seconds is not None:
            since = datetime.now(UTC) - timedelta(seconds=since_seconds)
        if config.stories.enabled:
            yield store.stored_articles_in_stories(since, batch_size=BACKTEST_BATCH_ROWS)
        else:
            yield store.stored_articles(since, batch_size=BACKTEST_BATCH_ROWS)
    finally:
        store.close()
