"""The command line as a user runs it: real processes, exit codes, stdout and stderr."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import pytest
from feeds import Item, rss
from processes import run_cli

import monitor
from monitor.cli.command_line import build_parser

ROOT = Path(__file__).resolve().parents[2]
BUNDLED_CONFIG = ROOT / "config" / "monitor.yaml"


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_main_version_prints_version(tmp_path: Path) -> None:
    result = run_cli("--version", cwd=tmp_path)

    assert result.returncode == 0
    assert result.stdout.strip() == f"news-monitor {monitor.__version__}"


def test_check_bundled_config_is_valid(tmp_path: Path) -> None:
    result = run_cli("check", "--config", str(BUNDLED_CONFIG), cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert "ok (4 feeds" in result.stdout


def test_check_broken_config_reports_every_problem_with_location(tmp_path: Path) -> None:
    (tmp_path / "monitor.yaml").write_text(
        "feeds:\n"
        "  - name: cn\n"
        "    url: https://www.rfi.fr/cn/rss\n"
        "    interval: soon\n"
        "channels:\n"
        "  me: tgram://${TELEGRAM_BOT_TOKEN}/1\n"
        "  bad: nosuchservice://x\n"
        "rules_files: [rules.yaml]\n"
        "colour: blue\n",
        encoding="utf-8",
    )
    (tmp_path / "rules.yaml").write_text(
        "- name: korea-japan\n"
        "  any: [韩日]\n"
        "  notify: [nobody]\n"
        "- name: labour\n"
        "  any: 强征劳工\n"
        "  feeds: [nowhere]\n",
        encoding="utf-8",
    )

    result = run_cli("check", "--config", "monitor.yaml", cwd=tmp_path)

    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    for expected in (
        "monitor.yaml:4: feeds[0].interval",
        "monitor.yaml:6: channels.me",
        "TELEGRAM_BOT_TOKEN",
        "monitor.yaml:7: channels.bad",
        "monitor.yaml:9: colour",
        "rules.yaml:3: rules[0] (korea-japan).notify",
        "rules.yaml:5: rules[1] (labour).any",
        "rules.yaml:6: rules[1] (labour).feeds",
    ):
        assert expected in result.stderr, (expected, result.stderr)


def test_check_rule_with_timing_options_is_valid_without_warnings(tmp_path: Path, write_config):
    config = write_config(
        feeds={"a": (tmp_path / "feed.xml").as_uri()},
        rules=[
            {"name": "kj", "any": ["韩日"], "digest": "1h", "quiet_hours": "23:00-07:00"},
            {"name": "labour", "any": ["强征劳工"], "digest": "0 8 * * 1-5"},
            {"name": "busy", "any": ["台海"], "max_per_hour": 3},
        ],
    )

    result = run_cli("check", "--config", str(config), cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_run_once_prints_console_alert_for_new_matching_article(tmp_path: Path, write_config):
    feed = tmp_path / "feed.xml"
    feed.write_bytes(rss([Item("法国新闻", link="https://e.org/1", guid="1")]))
    config = write_config(
        feeds={"local": feed.as_uri()},
        rules=[{"name": "korea-japan", "any": ["韩日"], "notify": ["console"]}],
    )
    baseline = run_cli("run", "--once", "--config", str(config), cwd=tmp_path)
    feed.write_bytes(
        rss(
            [
                Item("韓日重啓戰略對話", link="https://e.org/2", guid="2", description="韓日兩國"),
                Item("法国新闻", link="https://e.org/1", guid="1"),
            ]
        )
    )

    second = run_cli("run", "--once", "--config", str(config), cwd=tmp_path)
    third = run_cli("run", "--once", "--config", str(config), cwd=tmp_path)

    assert baseline.returncode == 0 and baseline.stdout == ""
    assert second.returncode == 0, second.stderr
    assert "[korea-japan] 韓日重啓戰略對話" in second.stdout
    assert "https://e.org/2" in second.stdout
    assert third.returncode == 0 and third.stdout == ""
    assert (tmp_path / "state" / "monitor.db").exists()


def test_run_once_when_every_feed_fails_logs_each_error_and_exits_one(
    tmp_path: Path, write_config
) -> None:
    port = closed_port()
    config = write_config(
        feeds={"a": f"http://127.0.0.1:{port}/a", "b": f"http://127.0.0.1:{port}/b"}
    )

    result = run_cli("run", "--once", "--config", str(config), cwd=tmp_path)

    assert result.returncode == 1
    assert "poll feed=a status=error" in result.stderr
    assert "poll feed=b status=error" in result.stderr
    assert "every enabled feed failed" in result.stderr
    assert "Traceback" not in result.stderr


def test_run_once_when_some_feeds_fail_or_none_is_enabled_exits_zero(
    tmp_path: Path, write_config
) -> None:
    feed = tmp_path / "feed.xml"
    feed.write_bytes(rss([Item("法国新闻", link="https://e.org/1", guid="1")]))
    unreachable = f"http://127.0.0.1:{closed_port()}/a"
    some_fail = write_config(
        feeds={"local": feed.as_uri(), "down": unreachable}, directory=tmp_path / "some"
    )
    none_enabled = write_config(
        feeds={"down": {"url": unreachable, "enabled": False}}, directory=tmp_path / "none"
    )

    some = run_cli("run", "--once", "--config", str(some_fail), cwd=tmp_path)
    idle = run_cli("run", "--once", "--config", str(none_enabled), cwd=tmp_path)

    assert some.returncode == 0, some.stderr
    assert "poll feed=down status=error" in some.stderr
    assert idle.returncode == 0, idle.stderr


def test_run_once_with_json_logs_writes_one_object_per_line(tmp_path: Path, write_config):
    config = write_config(feeds={"down": f"http://127.0.0.1:{closed_port()}/rss"})

    result = run_cli("--log-format", "json", "run", "--once", "--config", str(config), cwd=tmp_path)

    entries = [json.loads(line) for line in result.stderr.splitlines()]
    (poll,) = [entry for entry in entries if entry["message"].startswith("poll ")]
    assert poll["feed"] == "down" and poll["status"] == "error" and poll["level"] == "warning"


def test_run_once_under_journald_logs_without_timestamps(tmp_path: Path, write_config):
    config = write_config(feeds={"down": f"http://127.0.0.1:{closed_port()}/rss"})
    plain = run_cli("run", "--once", "--config", str(config), cwd=tmp_path)

    journald = run_cli(
        "run", "--once", "--config", str(config), cwd=tmp_path, env={"JOURNAL_STREAM": "8:1234"}
    )

    timestamp = r"^\d{4}-\d\d-\d\dT"
    assert all(re.match(timestamp, line) for line in plain.stderr.splitlines())
    poll_lines = [line for line in journald.stderr.splitlines() if "poll feed=down" in line]
    assert poll_lines and not any(re.match(timestamp, line) for line in poll_lines)
    assert poll_lines[0].startswith("WARNING monitor.service.daemon: poll feed=down status=error")


def test_run_once_with_unusable_database_exits_one(tmp_path: Path, write_config) -> None:
    (tmp_path / "blocker").write_text("a file where a directory should be")
    config = write_config(
        feeds={"a": (tmp_path / "feed.xml").as_uri()},
        database=f"sqlite:///{tmp_path}/blocker/monitor.db",
    )

    result = run_cli("run", "--once", "--config", str(config), cwd=tmp_path)

    assert result.returncode == 1
    assert "Traceback" not in result.stderr


def test_status_json_lists_feeds_and_deliveries_without_secrets(
    tmp_path: Path, write_config
) -> None:
    secret = "s3cr3t-token-value"
    feed = tmp_path / "feed.xml"
    feed.write_bytes(rss([Item("韩日", link="https://e.org/1", guid="1")]))
    config = write_config(
        feeds={
            "local": feed.as_uri(),
            "down": f"http://127.0.0.1:{closed_port()}/rss?key=${{TOKEN}}",
        },
        channels={"hook": f"json://bot:${{TOKEN}}@127.0.0.1:{closed_port()}/x"},
        rules=[{"name": "kj", "any": ["韩日"], "notify": ["hook"]}],
    )
    env = {"TOKEN": secret}
    run = run_cli("run", "--once", "--config", str(config), cwd=tmp_path, env=env)

    status = run_cli("status", "--json", "--config", str(config), cwd=tmp_path, env=env)
    text = run_cli("status", "--config", str(config), cwd=tmp_path, env=env)

    assert run.returncode == status.returncode == text.returncode == 0
    for output in (run.stdout, run.stderr, status.stdout, text.stdout, text.stderr):
        assert secret not in output
    document = json.loads(status.stdout)
    feeds = {feed["name"]: feed for feed in document["feeds"]}
    assert set(feeds["local"]) >= {
        "name", "url", "last_poll", "http_status", "error", "error_streak", "articles",
        "next_poll",
    }  # fmt: skip
    assert feeds["local"]["articles"] == 1 and feeds["local"]["error"] is None
    assert feeds["local"]["next_poll"] is None  # run --once schedules nothing
    assert feeds["down"]["error"] and feeds["down"]["error_streak"] == 1
    assert document["deliveries"] == {"pending": 0, "held": 0, "sent": 0, "failed": 0}
    assert document["failing_rules"] == []
    assert "local" in text.stdout and "deliveries: pending 0" in text.stdout


def test_deliveries_retry_puts_failed_back_and_the_next_run_sends_them(
    tmp_path: Path, write_config, hook
) -> None:
    feed = tmp_path / "feed.xml"
    feed.write_bytes(rss([]))
    config = write_config(
        feeds={"local": feed.as_uri()},
        channels={"hook": hook.json_url("/alerts")},
        rules=[
            {"name": "kj", "any": ["韩日"], "notify": ["hook"]},
            {"name": "labour", "any": ["强征劳工"], "notify": ["hook"]},
        ],
        delivery={"attempts": 1},
    )
    assert run_cli("run", "--once", "--config", str(config), cwd=tmp_path).returncode == 0
    feed.write_bytes(
        rss(
            [
                Item("韩日重启对话", link="https://e.org/1", guid="1"),
                Item("强征劳工索赔", link="https://e.org/2", guid="2"),
            ]
        )
    )
    hook.set_status(500)
    assert run_cli("run", "--once", "--config", str(config), cwd=tmp_path).returncode == 0
    failed = run_cli("status", "--config", str(config), cwd=tmp_path)

    one = run_cli("deliveries", "retry", "--rule", "kj", "--config", str(config), cwd=tmp_path)
    status = run_cli("status", "--json", "--config", str(config), cwd=tmp_path)
    hook.set_status(200)
    run = run_cli("run", "--once", "--config", str(config), cwd=tmp_path)
    rest = run_cli("deliveries", "retry", "--config", str(config), cwd=tmp_path)

    assert "deliveries: pending 0, held 0, sent 0, failed 2" in failed.stdout
    assert "last error rule=kj channel=hook" in failed.stdout and "500" in failed.stdout
    assert "news-monitor deliveries retry" in failed.stdout
    assert (one.returncode, one.stdout) == (0, "1 failed delivery of rule kj put back to pending\n")
    assert json.loads(status.stdout)["deliveries"] == {
        "pending": 1, "held": 0, "sent": 0, "failed": 1,
    }  # fmt: skip
    assert run.returncode == 0
    assert [request.json["title"] for request in hook.requests if request.status == 200] == [
        "[kj] 韩日重启对话"
    ]
    assert (rest.returncode, rest.stdout) == (0, "1 failed delivery put back to pending\n")


def test_notify_test_with_failing_service_exits_one(tmp_path: Path, write_config) -> None:
    config = write_config(
        feeds={"a": (tmp_path / "feed.xml").as_uri()},
        channels={"hook": f"json://127.0.0.1:{closed_port()}/x"},
    )

    result = run_cli("notify", "test", "hook", "--config", str(config), cwd=tmp_path)
    console = run_cli("notify", "test", "console", "--config", str(config), cwd=tmp_path)

    assert result.returncode == 1 and "FAILED" in result.stdout
    assert console.returncode == 0 and "news-monitor test alert" in console.stdout


@pytest.mark.parametrize(
    "command",
    [
        "run",
        "check",
        "status",
        "health",
        "notify",
        "rules",
        "deliveries",
        "feeds",
        "db",
        "stories",
        "search",
    ],
)
def test_build_parser_every_command_is_in_readme(command: str) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")

    assert f"news-monitor {command}" in readme
    assert f"    {command} " in build_parser().format_help()


def test_readme_opens_with_make_run_and_make_test() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    first_block = readme.split("```")[1]

    assert "make run" in first_block and "make test" in first_block


def test_notify_test_uses_the_channel_template(tmp_path: Path, write_config) -> None:
    config = write_config(
        feeds={"a": (tmp_path / "feed.xml").as_uri()},
        channels={"console": {"urls": "console://", "template": "Sample: {{ article.title }}"}},
    )

    result = run_cli("notify", "test", "console", "--config", str(config), cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert "Sample: news-monitor test alert" in result.stdout


# -- start-up: what a cycle with nothing to send does not import -------------------------------

# As the news-monitor script runs a command (monitor.__main__), then what it left behind.
_MODULES_AFTER_RUN = """
import gc, json, sys
from monitor.__main__ import main
sys.argv = ["news-monitor", *sys.argv[1:]]
code = main()
loaded = set(sys.modules)
print(json.dumps({
    "code": code,
    "apprise": "apprise" in loaded,
    "apprise_plugins": sorted(m for m in loaded if m.startswith("apprise.plugins.")),
    "jinja2": "jinja2" in loaded,
    "prometheus_client": "prometheus_client" in loaded,
    "feedparser": "feedparser" in loaded,
    "collector_enabled": gc.isenabled(),
}))
"""


def _modules_after(arguments: list[str], cwd: Path) -> dict:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-c", _MODULES_AFTER_RUN, *arguments],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_run_once_with_console_channel_and_nothing_to_send_imports_no_apprise(
    tmp_path: Path, write_config
) -> None:
    feed = tmp_path / "feed.xml"
    feed.write_bytes(rss([Item("法国新闻", link="https://e.org/1", guid="1")]))
    config = write_config(
        feeds={"local": feed.as_uri()},
        channels={"console": "console://"},
        rules=[{"name": "korea-japan", "any": ["韩日"], "notify": ["console"]}],
    )

    loaded = _modules_after(["run", "--once", "--config", str(config)], tmp_path)

    assert loaded["code"] == 0
    assert not loaded["apprise"]
    assert not loaded["jinja2"]  # no template configured
    assert not loaded["prometheus_client"]  # no http: endpoint in run --once


def test_run_once_with_webhook_channel_checks_it_with_apprise_plugin_registry(
    tmp_path: Path, write_config
) -> None:
    config = write_config(feeds={}, channels={"hook": f"json://127.0.0.1:{closed_port()}/hook"})

    loaded = _modules_after(["run", "--once", "--config", str(config)], tmp_path)

    assert loaded["code"] == 0
    # A json:// URL is checked through Apprise's registry (which imports every plugin).
    assert "apprise.plugins.custom_json" in loaded["apprise_plugins"]


def test_check_rejects_bad_channel_url_with_location_and_no_secret(tmp_path: Path) -> None:
    (tmp_path / "monitor.yaml").write_text(
        "feeds: []\nchannels:\n  ok: console://\n  me: tgram://s3cr3t-but-invalid\n",
        encoding="utf-8",
    )

    result = run_cli("check", "--config", str(tmp_path / "monitor.yaml"), cwd=tmp_path)

    assert result.returncode != 0
    assert re.search(r"monitor\.yaml:4", result.stdout + result.stderr)
    assert "not a valid Telegram URL (tgram://)" in result.stdout + result.stderr
    assert "s3cr3t" not in result.stdout + result.stderr


def test_run_once_of_unchanged_feed_imports_no_feedparser(tmp_path: Path, write_config) -> None:
    feed = tmp_path / "feed.xml"
    feed.write_bytes(rss([Item("法国新闻", link="https://e.org/1", guid="1")]))
    config = write_config(feeds={"local": feed.as_uri()}, channels={}, rules=[])

    first = _modules_after(["run", "--once", "--config", str(config)], tmp_path)
    again = _modules_after(["run", "--once", "--config", str(config)], tmp_path)

    assert first["feedparser"]  # a new body is parsed
    assert not again["feedparser"]  # the same body again is not


@pytest.mark.parametrize(
    "command",
    [["check"], ["run", "--once"], ["rules", "test"], ["status"], ["rules", "test", "--rule", "x"]],
)
def test_every_command_leaves_the_garbage_collector_on(
    command: list[str], tmp_path: Path, write_config
) -> None:
    # A daemon left without the collector would keep every reference cycle it ever made.
    config = write_config(
        feeds={},
        channels={"console": "console://"},
        rules=[{"name": "korea-japan", "any": ["韩日"], "notify": ["console"]}],
    )

    after = _modules_after([*command, "--config", str(config)], tmp_path)

    assert after["code"] == (2 if "x" in command else 0)  # an unknown rule is a usage error
    assert after["collector_enabled"]


def test_run_once_sending_to_webhook_delivers_through_apprise(
    tmp_path: Path, write_config, hook
) -> None:
    feed = tmp_path / "feed.xml"
    feed.write_bytes(rss([Item("法国新闻", link="https://e.org/1", guid="1")]))
    config = write_config(
        feeds={"local": feed.as_uri()},
        channels={"hook": hook.json_url("/alerts")},
        rules=[{"name": "korea-japan", "any": ["韩日"], "notify": ["hook"]}],
    )
    _modules_after(["run", "--once", "--config", str(config)], tmp_path)  # the baseline
    feed.write_bytes(rss([Item("韓日重啓戰略對話", link="https://e.org/2", guid="2")]))

    loaded = _modules_after(["run", "--once", "--config", str(config)], tmp_path)

    assert loaded["code"] == 0
    assert "韓日重啓戰略對話" in hook.wait_for(1)[0].json["title"]
