"""`status` and `health` as people and Docker run them: real processes, a real daemon, a
real SQLite file; whatever the configuration's state, they read the database."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from feeds import Item, rss
from processes import DEADLINE_SECONDS, run_cli, wait_until
from receivers import free_port

from monitor.config import url_safe_to_show

# The place every command looks last for its configuration; tests of "none found" need none.
SYSTEM_CONFIG = Path("/etc/news-monitor/monitor.yaml")


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


StartDaemon = Callable[..., subprocess.Popen]


@pytest.fixture
def start_daemon(tmp_path: Path) -> Iterator[StartDaemon]:
    """Start `news-monitor run --config CONFIG ARGUMENTS...`; killed after the test if alive."""
    processes: list[subprocess.Popen] = []

    def start(config: Path, *arguments: str) -> subprocess.Popen:
        log = (tmp_path / f"daemon-{len(processes)}.log").open("w", encoding="utf-8")
        process = subprocess.Popen(
            [sys.executable, "-m", "monitor", "run", "--config", str(config), *arguments],
            cwd=config.parent,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        log.close()  # the child has its own copy
        processes.append(process)
        return process

    yield start
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait()


def _status(config: Path, **env: str) -> dict:
    result = run_cli("status", "--json", "--config", str(config), cwd=config.parent, env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _health(config: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    return run_cli("health", "--config", str(config), *arguments, cwd=config.parent)


def _local_feed(tmp_path: Path) -> str:
    feed = tmp_path / "feed.xml"
    feed.write_bytes(rss([Item("韩日重启对话", link="https://e.org/1", guid="1")]))
    return feed.as_uri()


# --------------------------------------------------------------- what status needs of config


def test_status_with_credential_channel_outside_systemd_exits_zero_and_shows_feeds(
    tmp_path: Path, write_config
) -> None:
    credential = "cr3d-s3cret-value"
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "smtp").write_text(credential, encoding="utf-8")
    config = write_config(
        feeds={"local": _local_feed(tmp_path)},
        channels={"team": "mailtos://bot:${cred:smtp}@smtp.example.com?to=desk@example.com"},
        rules=[{"name": "kj", "any": ["韩日"], "notify": ["team"]}],
    )
    service = {"CREDENTIALS_DIRECTORY": str(credentials)}
    assert (
        run_cli("run", "--once", "--config", str(config), cwd=tmp_path, env=service).returncode == 0
    )

    # As an operator runs it in a shell: no $CREDENTIALS_DIRECTORY.
    as_json = run_cli("status", "--json", "--config", str(config), cwd=tmp_path)
    as_text = run_cli("status", "--config", str(config), cwd=tmp_path)

    assert as_json.returncode == 0, as_json.stderr
    assert as_text.returncode == 0, as_text.stderr
    document = json.loads(as_json.stdout)
    (feed,) = document["feeds"]
    assert feed["name"] == "local" and feed["articles"] == 1 and feed["error"] is None
    assert document["config_problems"] == []
    assert "local" in as_text.stdout and "config problems" not in as_text.stdout
    for output in (as_json.stdout, as_json.stderr, as_text.stdout, as_text.stderr):
        assert credential not in output


def test_status_with_broken_rules_file_exits_zero_and_lists_the_problem(
    tmp_path: Path, write_config
) -> None:
    config = write_config(
        feeds={"local": _local_feed(tmp_path)},
        rules=[{"name": "kj", "any": ["韩日"], "notify": ["console"]}],
    )
    assert run_cli("run", "--once", "--config", str(config), cwd=tmp_path).returncode == 0
    (tmp_path / "rules.yaml").write_text(
        "- name: kj\n  any: 韩日\n  notify: [console]\n", encoding="utf-8"
    )

    as_json = run_cli("status", "--json", "--config", "monitor.yaml", cwd=tmp_path)
    as_text = run_cli("status", "--config", "monitor.yaml", cwd=tmp_path)

    assert as_json.returncode == 0, as_json.stderr
    assert as_text.returncode == 0, as_text.stderr
    document = json.loads(as_json.stdout)
    (problem,) = document["config_problems"]
    assert problem.startswith("rules.yaml:2: rules[0] (kj).any: expected a list")
    assert [(feed["name"], feed["articles"]) for feed in document["feeds"]] == [("local", 1)]
    assert document["deliveries"] == {"pending": 0, "held": 0, "sent": 0, "failed": 0}
    assert "config problems" in as_text.stdout and problem in as_text.stdout


def test_status_with_broken_feed_list_shows_the_feeds_the_database_knows(
    tmp_path: Path, write_config
) -> None:
    config = write_config(feeds={"local": _local_feed(tmp_path)})
    assert run_cli("run", "--once", "--config", str(config), cwd=tmp_path).returncode == 0
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace("- name: local", "- nam: local"), encoding="utf-8")

    document = _status(config)

    assert document["config_problems"]
    (feed,) = document["feeds"]
    assert (feed["name"], feed["configured"], feed["articles"]) == ("local", False, 1)


def test_status_on_a_database_nothing_has_run_on_creates_none(tmp_path: Path, write_config) -> None:
    config = write_config(feeds={"local": _local_feed(tmp_path)})

    result = run_cli("status", "--config", str(config), cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert "daemon: not running (none has run on this database)" in result.stdout
    assert f"database: none yet at {tmp_path}/state/monitor.db" in result.stdout
    assert not (tmp_path / "state").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="the case is root reading a service's database")
def test_status_and_health_as_root_leave_no_root_owned_file_in_the_service_state(
    tmp_path: Path, write_config
) -> None:
    # The service runs as another user (DynamicUser, or uid 10001 in the image); an operator
    # runs status as root. Nothing it leaves may be root's: the service could not write it.
    # SQLite itself gives the -wal and -shm files it creates as root the database's owner;
    # a database file that status created would be root's.
    service_uid = 10001
    config = write_config(feeds={"local": _local_feed(tmp_path)})
    state = tmp_path / "state"
    state.mkdir()
    os.chown(state, service_uid, service_uid)
    before_any = run_cli("status", "--config", str(config), cwd=tmp_path)
    assert before_any.returncode == 0, before_any.stderr
    assert list(state.iterdir()) == []  # no database made for the service, as root
    assert run_cli("run", "--once", "--config", str(config), cwd=tmp_path).returncode == 0
    for path in [state, *state.iterdir()]:
        os.chown(path, service_uid, service_uid)

    results = [
        run_cli(*command, "--config", str(config), cwd=tmp_path)
        for command in (["status"], ["status", "--json"], ["health"])
    ]

    owners = {path.name: path.stat().st_uid for path in [state, *state.iterdir()]}
    assert set(owners.values()) == {service_uid}, owners
    assert [result.returncode for result in results] == [0, 0, 1]  # no daemon runs


# ------------------------------------------------------------------------------- liveness


def test_status_and_health_follow_the_daemon_from_start_to_stop(
    tmp_path: Path, write_config, start_daemon: StartDaemon
) -> None:
    port = free_port()
    config = write_config(
        feeds={"local": _local_feed(tmp_path)},
        rules=[{"name": "kj", "any": ["韩日"], "notify": ["console"]}],
        http={"listen": f"127.0.0.1:{port}"},
    )
    assert run_cli("run", "--once", "--config", str(config), cwd=tmp_path).returncode == 0
    before = _status(config)
    before_health = _health(config)

    daemon = start_daemon(config, "--instance", "news-1")
    wait_until(lambda: _health(config).returncode == 0, "health to see the daemon")
    running = _status(config)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
        healthz = json.loads(response.read())
    named = _health(config, "--instance", "news-1")
    other = _health(config, "--instance", "news-2")
    # An invalid edit: the daemon keeps its rules, and neither command fails for it.
    (tmp_path / "rules.yaml").write_text("- name: kj\n  any: 韩日\n", encoding="utf-8")
    broken_health = _health(config)
    broken_status = _status(config)
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(timeout=DEADLINE_SECONDS) == 0
    after = _status(config)
    after_health = _health(config)

    assert before["daemon"]["running"] is False and before["instances"] == []
    assert before_health.returncode == 1
    assert before_health.stderr.strip() == "no daemon has run on this database"
    assert running["daemon"]["running"] is True
    assert running["daemon"]["pid"] == daemon.pid
    assert running["daemon"]["host"] == socket.gethostname()
    (instance,) = running["instances"]
    assert (instance["name"], instance["pid"]) == ("news-1", daemon.pid)
    assert set(instance) == {"name", "host", "pid", "started", "last_seen"}
    assert healthz["healthy"] is True and healthz["instance"] == "news-1"
    assert named.returncode == 0 and "news-1" in named.stdout
    assert other.returncode == 1 and "no instance named 'news-2'" in other.stderr
    assert broken_health.returncode == 0
    assert broken_status["daemon"]["running"] is True
    assert broken_status["config_problems"][0].startswith(f"{tmp_path}/rules.yaml:2:")
    assert after["daemon"]["running"] is False and after["instances"] == []
    assert after["daemon"]["pid"] == daemon.pid  # the last one seen
    assert after_health.returncode == 1 and "news-1 stopped at" in after_health.stderr


def test_run_restarted_with_the_same_name_after_a_kill_replaces_its_record(
    tmp_path: Path, write_config, start_daemon: StartDaemon
) -> None:
    config = write_config(feeds={"local": _local_feed(tmp_path)})
    killed = start_daemon(config, "--instance", "box:1")
    wait_until(lambda: _health(config).returncode == 0, "the first daemon's heartbeat")
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=DEADLINE_SECONDS)

    again = start_daemon(config, "--instance", "box:1")
    wait_until(
        lambda: _status(config)["daemon"]["pid"] == again.pid, "the restarted daemon's record"
    )

    instances = _status(config)["instances"]
    assert [(instance["name"], instance["pid"]) for instance in instances] == [("box:1", again.pid)]


# --------------------------------------------------------------------------- health codes


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("no daemon", "no daemon has run on this database"),
        ("no database", "no database at"),
        ("broken main file", "the configuration does not locate the database"),
        ("unreachable database", "database unavailable"),
        ("unknown option", "unrecognized arguments"),
        ("bad instance name", "an instance name is"),
    ],
)
def test_health_without_a_running_daemon_exits_one_never_two(
    tmp_path: Path, write_config, case: str, expected: str
) -> None:
    config = write_config(feeds={"local": _local_feed(tmp_path)})
    arguments = ["health", "--config", str(config)]
    if case == "no daemon":
        assert run_cli("run", "--once", "--config", str(config), cwd=tmp_path).returncode == 0
    elif case == "broken main file":
        config.write_text("feeds: [\n", encoding="utf-8")
    elif case == "unreachable database":
        write_config(
            feeds={}, database=f"postgresql+psycopg://nobody@127.0.0.1:{closed_port()}/none"
        )
    elif case == "unknown option":
        arguments.append("--bogus")
    elif case == "bad instance name":
        arguments += ["--instance", ""]

    result = run_cli(*arguments, cwd=tmp_path)

    assert result.returncode == 1, result.stderr
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    if case != "unknown option":  # argparse adds its usage line
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


# ------------------------------------------------------------------- where the config is


@pytest.mark.skipif(SYSTEM_CONFIG.exists(), reason=f"this machine has {SYSTEM_CONFIG}")
@pytest.mark.parametrize(
    "command",
    [
        ["check"],
        ["status"],
        ["run", "--once"],
        ["rules", "test"],
        ["notify", "test", "console"],
        ["deliveries", "retry"],
        ["health"],
    ],
)
def test_every_command_without_config_lists_every_place_it_looked(
    tmp_path: Path, command: list[str]
) -> None:
    result = run_cli(*command, cwd=tmp_path)

    assert result.returncode == (1 if command == ["health"] else 2)
    for place in (
        "$NEWS_MONITOR_CONFIG: not set",
        f"./config/monitor.yaml ({tmp_path}/config/monitor.yaml): no such file",
        "/etc/news-monitor/monitor.yaml: no such file",
    ):
        assert place in result.stderr, result.stderr


# ------------------------------------------------------------- URLs read from the database


@pytest.mark.parametrize(
    ("url", "written", "shown"),
    [
        ("https://e.org/rss?x=1", "https://e.org/old?x=1", "https://e.org/rss?x=1"),
        ("https://e.org/new?key=s3cr3t", "https://e.org/rss?key=${KEY}", "https://e.org/new?…"),
        ("https://u:s3cr3t@e.org:8443/new", "https://u:${PW}@e.org/rss", "https://e.org:8443/new"),
        ("https://e.org/s3cr3t/rss", "https://e.org/${TOKEN}/rss", "https://e.org/…"),
        ("https://e.org/s3cr3t/rss?a=b", None, "https://e.org/…?…"),
    ],
)
def test_shown_url_cuts_what_may_hold_a_secret_status_did_not_resolve(
    url: str, written: str | None, shown: str
) -> None:
    assert url_safe_to_show(url, written) == shown
