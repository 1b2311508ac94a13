"""What `status` and `health` report: the database's view of feeds, deliveries and daemons.

Both read the database only, read-only (see Store), and take of the configuration only what
locates it (config.load_database_settings): no secret but the database's own is resolved,
and a broken rules file or channel does not stop them. `status` lists such problems; the
running daemon keeps its last valid configuration meanwhile. The command line prints what
these functions return and chooses the exit codes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from monitor.config import SECRETS, DatabaseSettings, ListedFeed, url_safe_to_show
from monitor.store import (
    HEARTBEAT_FRESH_SECONDS,
    FeedState,
    FeedStatus,
    InstanceRecord,
    Store,
    sqlite_file,
)


@dataclass(frozen=True)
class StatusReport:
    """What `status` shows; document() is its JSON."""

    feeds: list[dict[str, object]]
    deliveries: dict[str, int]  # pending, held, sent, failed
    failing_rules: list[dict[str, object]]
    records: list[InstanceRecord]  # every instance recorded, most recently seen first
    config_problems: list[str]
    now: datetime
    database_missing: bool = False  # a SQLite file that does not exist yet
    next_release: datetime | None = None  # of the next held batch
    recent_errors: list[tuple[str, str, str]] = field(default_factory=list)  # of deliveries
    articles_to_index: int = 0  # stored articles the search index does not hold yet
    articles_to_group: int = 0  # stored articles of first polls not grouped into stories yet

    @property
    def alive(self) -> list[InstanceRecord]:
        return [record for record in self.records if record.is_alive(self.now)]

    def document(self) -> dict[str, object]:
        alive = self.alive
        # The most recent daemon: a running one, else the last one seen.
        latest = alive[0] if alive else (self.records[0] if self.records else None)
        return {
            "feeds": self.feeds,
            "deliveries": self.deliveries,
            "failing_rules": self.failing_rules,
            "daemon": {
                "running": bool(alive),
                "name": latest.name if latest else None,
                "host": latest.host if latest else None,
                "pid": latest.pid if latest else None,
                "last_heartbeat": iso(latest.last_seen_at) if latest else None,
            },
            "instances": [
                {
                    "name": record.name,
                    "host": record.host,
                    "pid": record.pid,
                    "started": iso(record.started_at),
                    "last_seen": iso(record.last_seen_at),
                }
                for record in alive
            ],
            "config_problems": self.config_problems,
            "search_index": {"articles_to_index": self.articles_to_index},
            "stories": {"articles_to_group": self.articles_to_group},
        }


def read_status(settings: DatabaseSettings, now: datetime) -> StatusReport:
    """Given where the database is, return what `status` shows. Raise StoreError if the
    database cannot be read. A database made by an earlier version is upgraded first, as
    a daemon would do at its start; a SQLite file that does not exist is not created."""
    problems = [SECRETS.apply(str(problem)) for problem in settings.problems]
    store = Store(settings.database_url, read_only=True)
    try:
        if store.missing():
            return StatusReport(
                feeds=_feed_entries(settings, []),
                deliveries={"pending": 0, "held": 0, "sent": 0, "failed": 0},
                failing_rules=[],
                records=[],
                config_problems=problems,
                now=now,
                database_missing=True,
            )
        if not store.schema_is_current():
            _upgrade_schema(settings.database_url)
        counts = store.delivery_counts(now)
        return StatusReport(
            feeds=_feed_entries(settings, store.feed_statuses()),
            deliveries=counts,
            failing_rules=[
                {
                    "name": state.rule_name,
                    "failures": state.failures,
                    "last_error": SECRETS.apply(state.last_error or ""),
                    "last_error_at": iso(state.last_error_at),
                }
                for state in store.rule_states()
            ],
            records=store.instance_records(),
            config_problems=problems,
            now=now,
            next_release=store.next_release_time(now) if counts["held"] else None,
            recent_errors=store.last_delivery_errors(),
            articles_to_index=store.articles_to_index(),
            articles_to_group=store.articles_to_group(),
        )
    finally:
        store.close()


def format_status(report: StatusReport, settings: DatabaseSettings) -> list[str]:
    """Given a status report, return it as lines of aligned text for people."""
    lines = [daemon_line(report.records, report.now)]
    if report.database_missing:
        lines.append(f"database: none yet at {sqlite_file(settings.database_url)}")
    if report.config_problems:
        lines.append(
            "config problems (the running daemon keeps its last valid configuration; "
            "details: news-monitor check):"
        )
        lines.extend(f"  {problem}" for problem in report.config_problems)
    lines.append("")
    rows = [("FEED", "LAST POLL UTC", "HTTP", "NEW/ITEMS", "ARTICLES", "NEXT POLL UTC", "ERROR")]
    for entry in report.feeds:
        rows.append(
            (
                str(entry["name"]),
                short_time(entry["last_poll"]),
                str(entry["http_status"] or "-"),
                f"{entry['new_items']}/{entry['items']}",
                str(entry["articles"]),
                short_time(entry["next_poll"]),
                _feed_problem(entry),
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]) - 1)]
    for row in rows:
        cells = "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False))
        lines.append(f"{cells} {row[-1]}")
    lines.append("")
    counts = report.deliveries
    lines.append("deliveries: " + ", ".join(f"{name} {count}" for name, count in counts.items()))
    if report.next_release is not None:
        when = report.next_release.astimezone(ZoneInfo(settings.timezone))
        lines.append(f"  next held batch goes out at {when.strftime('%Y-%m-%d %H:%M %Z')}")
    for rule, channel, error in report.recent_errors:
        lines.append(f"  last error rule={rule} channel={channel}: {SECRETS.apply(error)}")
    if counts["failed"]:
        lines.append("  send failed ones again: news-monitor deliveries retry [--rule NAME]")
    if report.articles_to_index:
        lines.append(
            f"search index: {report.articles_to_index} articles still to index (a running "
            "daemon indexes them in the background; searches read them meanwhile)"
        )
    if report.articles_to_group:
        lines.append(
            f"stories: {report.articles_to_group} articles of first polls still to group (a "
            "running daemon groups them in the background)"
        )
    for failing in report.failing_rules:
        lines.append(
            f"rule {failing['name']} failing: {failing['failures']} article(s), last at "
            f"{short_time(failing['last_error_at'])}: {failing['last_error']}"
        )
    return lines


def daemon_line(records: list[InstanceRecord], now: datetime) -> str:
    """One line saying whether a daemon runs on the database, from its instance records."""
    alive = [record for record in records if record.is_alive(now)]
    if len(alive) == 1:
        return f"daemon: running ({_describe(alive[0], now)})"
    if alive:
        described = "; ".join(_describe(record, now) for record in alive)
        return f"daemon: {len(alive)} instances running ({described})"
    if not records:
        return "daemon: not running (none has run on this database)"
    latest = records[0]
    if latest.stopped_at is not None:
        how = f"stopped at {short_time(iso(latest.stopped_at))} UTC"
    else:
        how = f"no heartbeat since {short_time(iso(latest.last_seen_at))} UTC: killed, or hung"
    return f"daemon: not running (last: {_describe(latest, now, heartbeat=False)}, {how})"


def check_health(
    settings: DatabaseSettings, instance_name: str | None, now: datetime
) -> tuple[bool, str]:
    """Return (healthy, one line saying why): healthy while a daemon (the instance named,
    if one is) has a fresh heartbeat in the database. Raise StoreError if the database
    cannot be read."""
    store = Store(settings.database_url, read_only=True)
    try:
        if store.missing():
            return False, f"no database at {sqlite_file(settings.database_url)}"
        records = store.instance_records()
    finally:
        store.close()
    if instance_name is not None:
        records = [record for record in records if record.name == instance_name]
    daemon = f"instance named {instance_name!r}" if instance_name is not None else "daemon"
    alive = [record for record in records if record.is_alive(now)]
    if alive:
        return True, f"ok: {daemon} running ({_describe(alive[0], now)})"
    if not records:
        return False, f"no {daemon} has run on this database"
    latest = records[0]
    if latest.stopped_at is not None:
        stopped = short_time(iso(latest.stopped_at))
        return False, f"no {daemon} running: {latest.name} stopped at {stopped} UTC"
    age_seconds = round((now - latest.last_seen_at).total_seconds())
    return False, (
        f"no {daemon} running: the last heartbeat of {latest.name} (host {latest.host}, pid "
        f"{latest.pid}) is {age_seconds} s old, fresh is under {HEARTBEAT_FRESH_SECONDS:g} s"
    )


def _upgrade_schema(database_url: str) -> None:
    writer = Store(database_url)
    try:
        writer.create_schema()
    finally:
        writer.close()


def _describe(record: InstanceRecord, now: datetime, *, heartbeat: bool = True) -> str:
    text = f"{record.name} on {record.host}, pid {record.pid}"
    if heartbeat:
        age_seconds = max(0, round((now - record.last_seen_at).total_seconds()))
        text += f", last heartbeat {age_seconds} s ago"
    return text


def _feed_entries(
    settings: DatabaseSettings, statuses: list[FeedStatus]
) -> list[dict[str, object]]:
    """The feeds the main file lists; when the configuration has problems, also those only
    the database knows (a feed left out of a broken list is still shown)."""
    by_name = {status.state.name: status for status in statuses}
    entries = [_feed_entry(feed, by_name.get(feed.name)) for feed in settings.feeds]
    if settings.problems:
        listed = {feed.name for feed in settings.feeds}
        entries.extend(
            _feed_entry(None, status) for name, status in by_name.items() if name not in listed
        )
    return entries


def _feed_entry(feed: ListedFeed | None, status: FeedStatus | None) -> dict[str, object]:
    state = status.state if status else None
    written = feed.url if feed else None
    name = feed.name if feed else state.name if state else ""
    entry: dict[str, object] = {
        "name": name,
        # As written in the config (a ${...} stays as it is); for a feed only the database
        # knows, the URL it was last polled at, cut to what cannot hold a secret.
        "url": written
        if written is not None
        else url_safe_to_show(state.url if state else "", None),
        "enabled": feed.enabled if feed else None,
        "configured": feed is not None,
        "last_poll": iso(state.last_poll_at) if state else None,
        "http_status": state.http_status if state else None,
        "error": SECRETS.apply(state.error) if state and state.error else None,
        "error_streak": state.error_streak if state else 0,
        "new_items": state.last_new_count if state else 0,
        "items": state.last_item_count if state else 0,
        "articles": status.articles if status else 0,
        "next_poll": iso(state.next_poll_at) if state else None,
    }
    if state and state.redirected_to:
        entry["redirected_to"] = url_safe_to_show(state.redirected_to, written)
    entry["fulltext"] = _fulltext_entry(state)
    return entry


def _fulltext_entry(state: FeedState | None) -> dict[str, object] | None:
    """The feed's last poll that fetched article pages (`fulltext:`): when, how many, how
    many gave no text, and why (the first few). None if it never fetched one."""
    if state is None or state.fulltext_at is None:
        return None
    errors = json.loads(state.fulltext_errors) if state.fulltext_errors else []
    return {
        "last_fetch": iso(state.fulltext_at),
        "pages": state.fulltext_pages or 0,
        "failed": state.fulltext_failed or 0,
        "errors": [
            {"link": str(error["link"]), "error": SECRETS.apply(str(error["error"]))}
            for error in errors
        ],
    }


def _feed_problem(entry: dict[str, object]) -> str:
    parts = []
    if entry["error"]:
        parts.append(f"{entry['error']} (x{entry['error_streak']})")
    if entry.get("redirected_to"):
        parts.append(f"moved to {entry['redirected_to']}: update the url in the config")
    fulltext = entry.get("fulltext")
    if isinstance(fulltext, dict) and fulltext["failed"]:
        errors = fulltext["errors"]
        first = f": {errors[0]['error']} ({errors[0]['link']})" if errors else ""
        parts.append(
            f"full text failed for {fulltext['failed']} of {fulltext['pages']} pages{first}"
        )
    if entry["enabled"] is False:
        parts.append("disabled")
    if not entry["configured"]:
        parts.append("not in the config")
    return "; ".join(parts) or "-"


def iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z") if moment else None


def short_time(value: object) -> str:
    return str(value)[:19].replace("T", " ") if value else "-"
