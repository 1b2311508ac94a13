"""The daemon as a real process: schedule, alerts, reload, SIGTERM/SIGINT."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from feeds import Item, rss
from processes import DEADLINE_SECONDS, wait_until
from texts import distinct_text

from monitor.config import FeedConfig
from monitor.service.poll_schedule import MAXIMUM_CONCURRENT_POLLS, poll_thread_count


class Daemon:
    def __init__(self, config: Path, log_path: Path) -> None:
        self.log_path = log_path
        self._log = log_path.open("w", encoding="utf-8")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "monitor", "run", "--config", str(config)],
            cwd=config.parent,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
        )

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8")

    def stop(self, signal_number: int = signal.SIGTERM) -> int:
        self.process.send_signal(signal_number)
        try:
            return self.process.wait(timeout=DEADLINE_SECONDS)
        finally:
            self._log.close()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._log.close()


@pytest.fixture
def start_daemon(tmp_path: Path) -> Iterator[Callable[[Path], Daemon]]:
    daemons: list[Daemon] = []

    def start(config: Path) -> Daemon:
        daemon = Daemon(config, tmp_path / f"daemon-{len(daemons)}.log")
        daemons.append(daemon)
        return daemon

    yield start
    for daemon in daemons:
        daemon.kill()


def _item(number: int, title: str) -> Item:
    # Each number its own story: grouping gives articles of one story one alert.
    return Item(
        title,
        link=f"https://e.org/{number}",
        guid=str(number),
        description=f"<p>{distinct_text(number)}</p>",
    )


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_run_polls_on_schedule_alerts_once_and_stops_on_signal(
    server, hook, write_config, start_daemon, stop_signal: int
) -> None:
    server.add_feed("/cn", rss([_item(1, "法国新闻")]))
    config = write_config(
        feeds={"cn": server.url("/cn")},
        channels={"hook": hook.json_url("/alerts")},
        rules=[{"name": "korea-japan", "any": ["韩日"], "notify": ["hook"]}],
    )
    daemon = start_daemon(config)
    wait_until(lambda: server.hits("/cn") >= 2, "two polls (the first is the baseline)")

    server.add_feed("/cn", rss([_item(2, "韩日重启战略对话"), _item(1, "法国新闻")]))
    (alert,) = hook.wait_for(1, timeout_seconds=DEADLINE_SECONDS)
    polls_after_alert = server.hits("/cn")
    wait_until(lambda: server.hits("/cn") >= polls_after_alert + 2, "two more polls")

    assert alert.json["title"] == "[korea-japan] 韩日重启战略对话"
    assert len(hook.requests) == 1  # later polls of the same article send nothing
    assert daemon.stop(stop_signal) == 0
    log = daemon.log()
    assert "poll feed=cn status=200" in log and "deliver rule=korea-japan" in log
    assert "stopped" in log and "Traceback" not in log


def test_run_follows_the_servers_max_age_and_says_so_once(
    server, write_config, start_daemon
) -> None:
    server.add_feed("/cn", rss([_item(1, "法国新闻")]), headers={"Cache-Control": "max-age=2"})
    config = write_config(feeds={"cn": {"url": server.url("/cn"), "interval": "1s"}})
    daemon = start_daemon(config)

    wait_until(lambda: server.hits("/cn") >= 3, "three polls")

    assert daemon.stop() == 0
    log = daemon.log()
    assert log.count("next_poll_reason=max_age next_poll_in_seconds=2") == 1
    assert log.count("poll feed=cn ") >= 3


def test_run_reloads_rules_on_sighup_and_keeps_them_after_a_broken_edit(
    server, hook, write_config, start_daemon, tmp_path: Path
) -> None:
    server.add_feed("/cn", rss([]))
    config = write_config(
        feeds={"cn": server.url("/cn")},
        channels={"hook": hook.json_url("/alerts")},
        rules=[{"name": "korea-japan", "any": ["韩日"], "notify": ["hook"]}],
    )
    daemon = start_daemon(config)
    wait_until(lambda: server.hits("/cn") >= 2, "two polls")
    rules_path = tmp_path / "rules.yaml"
    rules = [
        {"name": "korea-japan", "any": ["韩日"], "notify": ["hook"]},
        {"name": "labour", "any": ["强征劳工"], "notify": ["hook"]},
    ]
    rules_path.write_text(yaml.safe_dump(rules, allow_unicode=True), encoding="utf-8")
    daemon.process.send_signal(signal.SIGHUP)
    wait_until(lambda: "reload status=applied" in daemon.log(), "the reload")

    rules_path.write_text("- name: labour\n  any: [强征劳工\n", encoding="utf-8")  # broken YAML
    wait_until(lambda: "reload status=rejected" in daemon.log(), "the broken edit to be seen")
    server.add_feed("/cn", rss([_item(3, "二战强征劳工索赔")]))
    (alert,) = hook.wait_for(1, timeout_seconds=DEADLINE_SECONDS)

    assert alert.json["title"] == "[labour] 二战强征劳工索赔"
    assert "rules.yaml:2:8: YAML syntax error" in daemon.log()  # at the "[" left open
    assert daemon.stop() == 0


def _titles(requests) -> list[str]:
    return [request.json["title"] for request in requests]


def _store_counts(config: Path) -> dict[str, int]:
    from datetime import UTC, datetime

    from monitor.service.configuration import load_config
    from monitor.store import Store

    store = Store(load_config(config).database_url)
    try:
        return store.delivery_counts(datetime.now(UTC))
    finally:
        store.close()


def test_run_sends_a_digest_when_its_window_ends_not_at_the_next_tick(
    server, hook, write_config, start_daemon
) -> None:
    from datetime import UTC, datetime, timedelta

    from monitor.service.configuration import load_config
    from monitor.store import Store

    server.add_feed("/cn", rss([]))
    config = write_config(
        feeds={"cn": server.url("/cn")},
        channels={"hook": hook.json_url("/alerts")},
        # Longer than the sender's 10 s tick would allow to be this punctual by chance.
        rules=[{"name": "korea-japan", "any": ["韩日"], "notify": ["hook"], "digest": "15s"}],
    )
    daemon = start_daemon(config)
    wait_until(lambda: server.hits("/cn") >= 2, "two polls (the first is the baseline)")
    server.add_feed("/cn", rss([_item(n, f"韩日对话 {n}") for n in range(1, 4)]))
    wait_until(lambda: _store_counts(config)["held"] == 1, "the digest to be held")
    store = Store(load_config(config).database_url)
    try:
        release_at = store.next_release_time(datetime.now(UTC) - timedelta(hours=1))
    finally:
        store.close()

    (digest,) = hook.wait_for(1, timeout_seconds=DEADLINE_SECONDS)
    arrived = datetime.now(UTC)

    assert digest.json["title"] == "[korea-japan] 3 new articles"
    assert release_at is not None and arrived - release_at < timedelta(seconds=5)
    assert daemon.stop() == 0
    assert len(hook.requests) == 1
    assert _store_counts(config) == {"pending": 0, "held": 0, "sent": 1, "failed": 0}


def test_run_killed_while_sending_resends_at_most_the_alert_in_flight(
    server, hook, write_config, start_daemon
) -> None:
    count = 20
    server.add_feed("/cn", rss([_item(n, f"韩日对话 {n}") for n in range(1, count + 1)]))
    config = write_config(
        feeds={"cn": {"url": server.url("/cn"), "notify_existing": True}},
        channels={"hook": hook.json_url("/alerts")},
        rules=[{"name": "korea-japan", "any": ["韩日"], "notify": ["hook"]}],
    )
    hook.set_delay(0.3)  # a slow service: the daemon is mid-batch for seconds
    first = start_daemon(config)
    wait_until(lambda: len(hook.requests) >= 3, "the batch to be under way")

    first.process.send_signal(signal.SIGKILL)
    first.process.wait(timeout=DEADLINE_SECONDS)
    arrived_before_restart = len(hook.requests)
    hook.set_delay(0)
    second = start_daemon(config)
    wait_until(lambda: len(set(_titles(hook.requests))) == count, "every alert")

    assert first.process.returncode == -signal.SIGKILL
    assert arrived_before_restart < count  # it really died mid-batch
    assert second.stop() == 0
    titles = _titles(hook.requests)
    assert set(titles) == {f"[korea-japan] 韩日对话 {n}" for n in range(1, count + 1)}
    assert len(titles) - len(set(titles)) <= 1
    assert _store_counts(config) == {"pending": 0, "held": 0, "sent": count, "failed": 0}


def _feeds(*urls: str) -> list[FeedConfig]:
    return [FeedConfig(f"feed-{number}", url) for number, url in enumerate(urls)]


def test_poll_threads_are_what_the_origins_can_use() -> None:
    # One origin admits 2 requests at once; 3 more threads parse and store meanwhile.
    one_origin = _feeds(*(f"https://www.rfi.fr/cn/{n}/rss" for n in range(50)))
    assert poll_thread_count(one_origin) == 5
    # The default port is the same origin; another scheme is another one.
    same = _feeds(*(f"https://a.org/{n}" for n in range(10)), "https://a.org:443/x")
    assert poll_thread_count(same) == 5
    assert poll_thread_count([*same, *_feeds(*(f"http://a.org/{n}" for n in range(9)))]) == 7
    # Never more threads than feeds.
    assert poll_thread_count(_feeds("https://a.org/1", "https://a.org/2")) == 2
    many_origins = _feeds(*(f"https://site{n}.org/rss" for n in range(50)))
    assert poll_thread_count(many_origins) == MAXIMUM_CONCURRENT_POLLS
    # A file or a broken URL waits for no origin: each counts as its own.
    assert poll_thread_count(_feeds("file:///a.xml", "file:///b.xml", "not a url")) == 3


def test_run_killed_after_polls_keeps_the_feed_state_for_the_next_start(
    server, write_config, start_daemon
) -> None:
    # States are in the daemon's memory and flushed every few seconds; the store stays the
    # truth: a daemon killed without a word starts again with the feed's validators.
    server.add_feed("/cn", rss([_item(1, "法国新闻")]), etag='"v1"')
    config = write_config(feeds={"cn": {"url": server.url("/cn"), "interval": "1s"}})
    first = start_daemon(config)
    wait_until(lambda: server.hits("/cn") >= 3, "three polls")
    first.kill()
    polls_before = server.hits("/cn")

    second = start_daemon(config)
    wait_until(lambda: server.hits("/cn") >= polls_before + 2, "two polls after the restart")
    assert second.stop() == 0

    after_restart = [headers for path, headers in server.requests[polls_before:] if path == "/cn"]
    assert all(headers.get("If-None-Match") == '"v1"' for headers in after_restart)
    assert "poll feed=cn status=not_modified" in second.log()
    assert "status=200" not in second.log()


def test_run_starts_many_feeds_quietly(server, write_config, start_daemon) -> None:
    # Every feed is due at start: their first polls are spread, and a feed is never due
    # while its poll runs, so the scheduler skips no run.
    for number in range(100):
        server.add_feed(f"/f{number}", rss([_item(number, "法国新闻")]), etag=f'"{number}"')
    config = write_config(
        feeds={f"f{n}": {"url": server.url(f"/f{n}"), "interval": "1s"} for n in range(100)}
    )
    daemon = start_daemon(config)

    wait_until(
        lambda: all(server.hits(f"/f{n}") >= 2 for n in range(100)),
        "two polls of every feed",
        timeout=60,
    )

    assert daemon.stop() == 0
    log = daemon.log()
    assert "maximum number of running instances" not in log
    assert "skipped" not in log and "Traceback" not in log


def test_run_reloads_when_an_opml_file_of_feeds_from_changes(
    server, write_config, start_daemon, tmp_path: Path
) -> None:
    server.add_feed("/cn", rss([_item(1, "法国新闻")]))
    server.add_feed("/tw", rss([_item(2, "法國新聞")]))
    opml = tmp_path / "subs.opml"
    outline = '<outline text="{name}" xmlUrl="{url}"/>'
    opml.write_text(
        '<opml version="2.0"><body>'
        + outline.format(name="cn", url=server.url("/cn"))
        + "</body></opml>",
        encoding="utf-8",
    )
    config = write_config(feeds={}, feeds_from=["subs.opml"])
    daemon = start_daemon(config)
    wait_until(lambda: server.hits("/cn") >= 1, "the OPML feed's first poll")

    opml.write_text(
        '<opml version="2.0"><body><outline text="Taiwan">'
        + outline.format(name="tw", url=server.url("/tw"))
        + "</outline></body></opml>",
        encoding="utf-8",
    )
    wait_until(lambda: server.hits("/tw") >= 1, "the feed added to the OPML file to be polled")

    assert "reload status=applied feeds=1" in daemon.log()
    assert daemon.stop() == 0


def test_run_groups_a_first_poll_and_checkpoints_the_log_in_the_background(
    server, write_config, start_daemon
) -> None:
    # Two items of one story (the same text under two links) and 30 of their own.
    story_text = f"<p>{distinct_text('story', 300)}</p>"
    items = [
        Item(f"一则新闻 {side}", link=f"https://e.org/{side}", guid=side, description=story_text)
        for side in ("cn", "tw")
    ] + [_item(number, f"新闻 {number}") for number in range(30)]
    server.add_feed("/cn", rss(items))
    config = write_config(feeds={"cn": {"url": server.url("/cn"), "interval": "1h"}})
    database = config.parent / "state" / "monitor.db"

    def cli_json(*arguments: str) -> str:
        return subprocess.run(
            [sys.executable, "-m", "monitor", *arguments, "--json", "--config", str(config)],
            cwd=config.parent,
            capture_output=True,
            text=True,
            check=True,
        ).stdout

    daemon = start_daemon(config)
    wait_until(lambda: server.hits("/cn") >= 1, "the first poll")
    wait_until(
        lambda: (
            database.exists()
            and json.loads(cli_json("status"))["stories"] == {"articles_to_group": 0}
        ),
        "the first poll grouped",
    )
    stories = cli_json("stories")
    # SQLite's log copied into the database file by the daemon's checkpoints, not left
    # in the log until the daemon stops.
    wait_until(lambda: database.stat().st_size > 100_000, "a checkpoint")

    (story,) = [json.loads(line) for line in stories.splitlines()]
    assert [article["link"] for article in story["articles"]] == [
        "https://e.org/cn",
        "https://e.org/tw",
    ]
    assert daemon.stop() == 0
    assert "Traceback" not in daemon.log()
