"""Several daemons on one PostgreSQL database, as real processes: they share the polls and
the deliveries, survive each other (kill -9, a rolling restart, a partition) and never
alert twice. Each test has a database of its own on the local PostgreSQL server.

Intervals and the lease are short (2 s, 6 s) so that the tests see many rounds quickly.
"""

from __future__ import annotations

import itertools
import json
import signal
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from feeds import Item, rss
from processes import DEADLINE_SECONDS, Daemon, run_cli, wait_until
from receivers import free_port
from sqlalchemy import create_engine, text
from tcp_proxy import TcpProxy

from monitor.store import Store

INTERVAL_SECONDS = 2.0
LEASE_SECONDS = 6.0
FEEDS = 6
START_SECONDS = 90.0  # a daemon's start on a busy machine, several at once
RULE = {"name": "korea-japan", "any": ["韩日"], "notify": ["hook"]}

StartDaemon = Callable[..., Daemon]


@pytest.fixture
def start_daemon(tmp_path: Path) -> Iterator[StartDaemon]:
    daemons: list[Daemon] = []

    def start(config: Path, instance: str, **options: object) -> Daemon:
        daemon = Daemon(
            config, tmp_path / f"{instance}-{len(daemons)}.log", instance=instance, **options
        )
        daemons.append(daemon)
        return daemon

    yield start
    for daemon in daemons:
        daemon.kill()


def _item(number: int, title: str) -> Item:
    return Item(title, link=f"https://e.org/{number}", guid=str(number))


def _publish(server, feed: int, items: list[Item]) -> None:
    server.add_feed(f"/f{feed}", rss(items), etag=f'"{feed}-{len(items)}"')


def _config(write_config, server, hook, database: str, *, hook_path: str = "/alerts", **extra):
    return write_config(
        feeds={f"f{n}": server.url(f"/f{n}") for n in range(FEEDS)},
        channels={"hook": hook.json_url(hook_path)},
        rules=[RULE],
        database=database,
        defaults={"interval": f"{INTERVAL_SECONDS:g}s", "jitter": "0s", "timeout": "5s"},
        cluster={"lease": f"{LEASE_SECONDS:g}s"},
        **extra,
    )


def _titles(hook) -> list[str]:
    return [request.json["title"] for request in hook.requests]


def _assert_polled_at_most_once_per_interval(server, since: float) -> None:
    """No feed was requested more often than its interval allows over the time observed
    (counted), and never twice at once (no two requests closer than half an interval)."""
    elapsed = time.monotonic() - since
    for feed in range(FEEDS):
        times = [t for t in server.hit_times(f"/f{feed}") if t >= since]
        assert len(times) <= elapsed / INTERVAL_SECONDS + 2, (feed, len(times), elapsed)
        gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
        assert all(gap > INTERVAL_SECONDS / 2 for gap in gaps), (feed, gaps)


def _get(port: int, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _health(port: int) -> tuple[int, dict]:
    status, body = _get(port, "/healthz")
    return status, json.loads(body)


def _polls_by(daemon: Daemon) -> int:
    return daemon.log().count("poll feed=")


def _status(config: Path) -> dict:
    result = run_cli("status", "--json", "--config", str(config), cwd=config.parent)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_three_instances_share_the_polls_alert_once_and_carry_on_after_kill_9(
    server, hook, write_config, postgres_database, start_daemon
) -> None:
    for feed in range(FEEDS):
        _publish(server, feed, [_item(feed * 100, "法国新闻")])
    config = _config(write_config, server, hook, postgres_database)
    daemons = [start_daemon(config, f"node-{n}") for n in range(3)]
    wait_until(lambda: all(d.started() for d in daemons), "three daemons", START_SECONDS)
    wait_until(
        lambda: all(server.hits(f"/f{n}") >= 3 for n in range(FEEDS)),
        "every feed polled three times",
    )
    observed_from = time.monotonic()
    for feed in range(FEEDS):
        _publish(
            server, feed, [_item(feed * 100 + 1, f"韩日对话 {feed}"), _item(feed * 100, "法国新闻")]
        )
    hook.wait_for(FEEDS, timeout_seconds=DEADLINE_SECONDS)
    wait_until(lambda: len(_status(config)["instances"]) == 3, "three live instances")

    victim = max(daemons, key=_polls_by)  # surely one holding work
    victim.process.send_signal(signal.SIGKILL)
    victim.process.wait(timeout=DEADLINE_SECONDS)
    for feed in range(FEEDS):
        _publish(
            server,
            feed,
            [
                _item(feed * 100 + 2, f"韩日峰会 {feed}"),
                _item(feed * 100 + 1, f"韩日对话 {feed}"),
                _item(feed * 100, "法国新闻"),
            ],
        )
    hook.wait_for(2 * FEEDS, timeout_seconds=DEADLINE_SECONDS + LEASE_SECONDS)
    after_kill = {n: server.hits(f"/f{n}") for n in range(FEEDS)}
    wait_until(
        lambda: all(server.hits(f"/f{n}") >= after_kill[n] + 2 for n in range(FEEDS)),
        "every feed polled on after the kill",
    )
    wait_until(lambda: len(_status(config)["instances"]) == 2, "the killed one gone from status")

    survivors = [d for d in daemons if d is not victim]
    assert [d.stop() for d in survivors] == [0, 0]
    titles = _titles(hook)
    assert Counter(titles) == Counter(
        [f"[korea-japan] 韩日对话 {n}" for n in range(FEEDS)]
        + [f"[korea-japan] 韩日峰会 {n}" for n in range(FEEDS)]
    )  # every alert once, none twice
    _assert_polled_at_most_once_per_interval(server, observed_from)
    assert sum(_polls_by(d) > 0 for d in daemons) >= 2  # the polls were shared
    for daemon in survivors:
        assert "Traceback" not in daemon.log()


def test_a_rolling_restart_loses_and_duplicates_nothing(
    server, hook, write_config, postgres_database, start_daemon
) -> None:
    count = 24
    for feed in range(FEEDS):
        _publish(server, feed, [])
    server.add_feed("/f0", rss([_item(n, f"韩日对话 {n}") for n in range(count)]), etag='"backlog"')
    config = _config(write_config, server, hook, postgres_database)
    first, second = start_daemon(config, "node-a"), start_daemon(config, "node-b")
    wait_until(lambda: first.started() and second.started(), "two daemons", START_SECONDS)
    wait_until(lambda: all(server.hits(f"/f{n}") >= 1 for n in range(FEEDS)), "baselines")
    hook.set_delay(0.2)  # a slow service: the restarts happen mid-backlog
    server.add_feed(
        "/f0",
        rss([_item(n, f"韩日对话 {n}") for n in range(count, 2 * count)]),
        etag='"news"',
    )
    wait_until(lambda: len(hook.requests) >= 3, "the alerts to be under way")

    assert first.stop() == 0
    first = start_daemon(config, "node-a")
    wait_until(first.started, "node-a again", START_SECONDS)
    assert second.stop() == 0
    second = start_daemon(config, "node-b")
    wait_until(second.started, "node-b again", START_SECONDS)
    wait_until(lambda: len(hook.requests) >= count, "every alert", DEADLINE_SECONDS * 2)
    assert first.stop() == 0 and second.stop() == 0

    assert Counter(_titles(hook)) == Counter(
        f"[korea-japan] 韩日对话 {n}" for n in range(count, 2 * count)
    )


def test_instances_started_at_the_same_moment_on_an_empty_database_all_come_up(
    server, hook, write_config, postgres_database, start_daemon
) -> None:
    for feed in range(FEEDS):
        _publish(server, feed, [_item(feed, f"韩日旧闻 {feed}")])  # a baseline: no alert
    config = _config(write_config, server, hook, postgres_database)
    daemons = [start_daemon(config, f"node-{n}") for n in range(3)]
    wait_until(lambda: all(d.started() for d in daemons), "three daemons", START_SECONDS)
    wait_until(lambda: all(server.hits(f"/f{n}") >= 2 for n in range(FEEDS)), "two polls each")
    assert [d.stop() for d in daemons] == [0, 0, 0]

    engine = create_engine(postgres_database)
    with engine.connect() as connection:
        steps = connection.execute(
            text("SELECT number, count(*) FROM schema_migration GROUP BY number")
        ).all()
        baselines = connection.execute(
            text("SELECT count(*) FROM article WHERE baseline")
        ).scalar_one()
    engine.dispose()
    assert steps and all(count == 1 for _, count in steps)
    assert baselines == FEEDS
    assert hook.requests == []  # nothing of the baselines alerted
    for daemon in daemons:
        assert "Traceback" not in daemon.log() and "store_error" not in daemon.log()


def test_an_instance_cut_off_from_the_database_stops_sending_and_the_others_take_over(
    server, hook, write_config, postgres_database, start_daemon
) -> None:
    count = 12
    for feed in range(FEEDS):
        _publish(server, feed, [])
    # Each instance alerts through a path of its own: the receiver tells who sent what.
    config = _config(
        write_config,
        server,
        hook,
        "${DATABASE_URL}",
        hook_path="/alerts/${NEWS_MONITOR_INSTANCE}",
        http={"listen": "127.0.0.1:${HTTP_PORT}"},
    )
    ports = {"inst-cut": free_port(), "inst-direct": free_port()}
    database = postgres_database.rsplit("/", 1)[1]
    with TcpProxy("127.0.0.1", 5432) as proxy:
        behind_proxy = f"postgresql+psycopg://postgres@127.0.0.1:{proxy.port}/{database}"
        cut_off = start_daemon(
            config,
            "inst-cut",
            env={"DATABASE_URL": behind_proxy, "HTTP_PORT": str(ports["inst-cut"])},
        )
        wait_until(cut_off.started, "the daemon behind the proxy", START_SECONDS)
        wait_until(lambda: all(server.hits(f"/f{n}") >= 1 for n in range(FEEDS)), "baselines")
        hook.set_delay(0.5)
        server.add_feed(
            "/f0", rss([_item(n, f"韩日对话 {n}") for n in range(count)]), etag='"news"'
        )
        wait_until(lambda: len(hook.requests) >= 2, "its alerts to be under way")
        other = start_daemon(
            config,
            "inst-direct",
            env={"DATABASE_URL": postgres_database, "HTTP_PORT": str(ports["inst-direct"])},
        )
        wait_until(other.started, "the other daemon", START_SECONDS)

        proxy.cut()
        cut_at = time.monotonic()
        wait_until(
            lambda: len({r.json["title"] for r in hook.requests}) == count,
            "every alert, the rest from the other instance",
            DEADLINE_SECONDS + 2 * LEASE_SECONDS,
        )
        wait_until(lambda: "sending=paused" in cut_off.log(), "the cut-off one to pause")
        # Each instance tells its own state: the cut-off one has lost its lease.
        wait_until(
            lambda: (
                _health(ports["inst-cut"])[0] == 503
                and not _health(ports["inst-cut"])[1]["lease"]["held"]
            ),
            "the cut-off one's /healthz to say its lease is lost",
        )
        healthy, details = _health(ports["inst-direct"])
        metrics = _get(ports["inst-direct"], "/metrics")[1].decode()
        proxy.heal()
        wait_until(lambda: "sending=resumed" in cut_off.log(), "its lease renewed after healing")
        wait_until(lambda: _health(ports["inst-cut"])[0] == 200, "the cut-off one healthy again")
        assert cut_off.stop() == 0 and other.stop() == 0

    assert healthy == 200 and details["lease"]["held"] and details["instance"] == "inst-direct"
    assert "news_monitor_lease_held 1.0" in metrics
    by_cut_off = [r for r in hook.requests if r.path.endswith("/inst-cut")]
    assert all(r.received_at < cut_at + LEASE_SECONDS for r in by_cut_off)
    assert any(r.path.endswith("/inst-direct") for r in hook.requests)  # it took the rest over
    titles = Counter(_titles(hook))
    assert set(titles) == {f"[korea-japan] 韩日对话 {n}" for n in range(count)}
    # What may arrive twice is the message in flight when the connection was cut: sent,
    # its outcome not recorded.
    assert sum(titles.values()) - count <= 1


def test_a_second_daemon_on_sqlite_is_refused_while_the_first_process_lives(
    server, write_config, start_daemon
) -> None:
    _publish(server, 0, [])
    config = write_config(feeds={"f0": server.url("/f0")})
    first = start_daemon(config, "first")
    wait_until(first.started, "the first daemon", START_SECONDS)

    refused = run_cli("run", "--config", str(config), cwd=config.parent)
    once = run_cli("run", "--once", "--config", str(config), cwd=config.parent)
    first.kill()
    after_kill = start_daemon(config, "after-kill")
    wait_until(after_kill.started, "a daemon right after kill -9", START_SECONDS)
    assert after_kill.stop() == 0

    assert refused.returncode == 1
    assert "first" in refused.stderr and f"pid {first.process.pid}" in refused.stderr
    assert "PostgreSQL" in refused.stderr
    assert once.returncode == 0, once.stderr  # run --once beside a daemon stays allowed


def test_db_copy_moves_a_sqlite_store_to_postgresql_and_nothing_alerts_again(
    server, hook, write_config, postgres_database
) -> None:
    server.add_feed("/cn", rss([_item(1, "法国新闻")]), etag='"1"')
    channels = {"hook": hook.json_url("/alerts")}
    config = write_config(feeds={"cn": server.url("/cn")}, channels=channels, rules=[RULE])
    assert run_cli("run", "--once", "--config", str(config), cwd=config.parent).returncode == 0
    server.add_feed("/cn", rss([_item(2, "韩日对话"), _item(1, "法国新闻")]), etag='"2"')
    assert run_cli("run", "--once", "--config", str(config), cwd=config.parent).returncode == 0
    hook.wait_for(1)

    password = "Pw9zQx7Kv2"  # ignored by the server's trust authentication
    target = postgres_database.replace("postgres@", f"postgres:{password}@", 1)
    copied = run_cli("db", "copy", "--to", target, "--config", str(config), cwd=config.parent)
    again = run_cli("db", "copy", "--to", target, "--config", str(config), cwd=config.parent)

    moved = write_config(
        feeds={"cn": server.url("/cn")}, channels=channels, rules=[RULE], database=target
    )
    # The search index is not copied: the copied articles wait for the target's indexer,
    # and a search finds them meanwhile.
    pending = Store(target)
    try:
        assert pending.articles_to_index() == 2
    finally:
        pending.close()
    found = run_cli("search", "韩日", "--config", str(moved), cwd=moved.parent)
    assert found.returncode == 0 and "韩日对话" in found.stdout
    assert run_cli("run", "--once", "--config", str(moved), cwd=moved.parent).returncode == 0
    server.add_feed(
        "/cn", rss([_item(3, "韩日峰会"), _item(2, "韩日对话"), _item(1, "法国新闻")]), etag='"3"'
    )
    assert run_cli("run", "--once", "--config", str(moved), cwd=moved.parent).returncode == 0
    hook.wait_for(2)

    assert copied.returncode == 0, copied.stderr
    assert "article" in copied.stdout and "delivery" in copied.stdout
    assert again.returncode == 1 and "already holds rows" in again.stderr
    for output in (copied.stdout, copied.stderr, again.stdout, again.stderr):
        assert password not in output
    assert _titles(hook) == ["[korea-japan] 韩日对话", "[korea-japan] 韩日峰会"]
    indexed = Store(target)
    try:
        assert indexed.articles_to_index() == 0  # (each run --once indexed what waited)
    finally:
        indexed.close()
