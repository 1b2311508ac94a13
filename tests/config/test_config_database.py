"""What status and health take of the configuration: where the database is, what is wrong
with the rest, and where the main file is when --config is not given."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config import ConfigNotFoundError, ListedFeed, find_config_file
from monitor.model import ConfigError
from monitor.service.configuration import load_config, load_database_settings


def _write(folder: Path, main: str, rules: str | None = None) -> Path:
    (folder / "monitor.yaml").write_text(main, encoding="utf-8")
    if rules is not None:
        (folder / "rules.yaml").write_text(rules, encoding="utf-8")
    return folder / "monitor.yaml"


SECRET_CHANNELS = """\
database: sqlite:///state/monitor.db
feeds:
  - name: private
    url: https://feeds.example.org/rss?key=${FEED_TOKEN}
channels:
  team: mailtos://bot:${cred:smtp}@smtp.example.com?to=desk@example.com
  pager: json://hooks.example.org/${file:hook-secret}
rules_files: [rules.yaml]
"""


def test_load_database_settings_reads_no_secret_but_the_databases(tmp_path: Path) -> None:
    # No $CREDENTIALS_DIRECTORY (outside systemd), no $FEED_TOKEN, no hook-secret file:
    # load_config fails on each, status needs none of them.
    config = _write(tmp_path, SECRET_CHANNELS, "- name: kj\n  any: [韩日]\n")
    with pytest.raises(ConfigError):
        load_config(config, environ={})

    settings = load_database_settings(config, environ={})

    assert settings.problems == ()
    assert settings.database_url == f"sqlite:///{tmp_path}/state/monitor.db"
    assert settings.feeds == (
        ListedFeed("private", "https://feeds.example.org/rss?key=${FEED_TOKEN}"),
    )
    assert settings.secrets == frozenset()


def test_load_database_settings_resolves_the_database_reference_as_a_secret(
    tmp_path: Path,
) -> None:
    url = "postgresql+psycopg://news:pa55word@db.example.org/news"
    config = _write(tmp_path, "database: ${DATABASE_URL}\nfeeds: []\n")

    settings = load_database_settings(config, environ={"DATABASE_URL": url})

    assert settings.database_url == url and settings.secrets == frozenset({url})


def test_load_database_settings_with_broken_rules_file_returns_its_problems(
    tmp_path: Path,
) -> None:
    config = _write(
        tmp_path,
        "feeds:\n  - name: cn\n    url: https://www.rfi.fr/cn/rss\n    interval: soon\n"
        "  - name: tw\n    url: https://www.rfi.fr/tw/rss\n    enabled: false\n"
        "timezone: Asia/Shanghai\nrules_files: [rules.yaml]\n",
        "- name: kj\n  any: [韩日]\n- name: labour\n  any: 强征劳工\n",
    )

    settings = load_database_settings(config, environ={"STATE_DIRECTORY": str(tmp_path)})

    assert [str(problem).split(": ")[0] for problem in settings.problems] == [
        f"{config}:4",
        f"{tmp_path}/rules.yaml:4",
    ]
    assert "feeds[0].interval" in str(settings.problems[0])
    assert "rules[1] (labour).any" in str(settings.problems[1])
    assert settings.database_url == f"sqlite:///{tmp_path}/monitor.db"
    assert settings.timezone == "Asia/Shanghai"
    assert [(feed.name, feed.enabled) for feed in settings.feeds] == [("cn", True), ("tw", False)]


def test_load_database_settings_without_check_everything_reads_no_rules_file(
    tmp_path: Path,
) -> None:
    config = _write(tmp_path, "feeds: []\nrules_files: [missing.yaml]\n")

    settings = load_database_settings(config, environ={}, check_everything=False)
    checked = load_database_settings(config, environ={})

    assert settings.problems == ()
    assert "no such rules file" in str(checked.problems[0])


@pytest.mark.parametrize(
    ("main", "expected"),
    [
        ("database: 42\n", "monitor.yaml:1: database"),
        ("database: ${NOWHERE}\n", "environment variable NOWHERE is not set"),
        ("feeds: [\n", "monitor.yaml:2"),
        ("- a list\n", "must be a mapping"),
    ],
)
def test_load_database_settings_that_cannot_locate_the_database_raises(
    tmp_path: Path, main: str, expected: str
) -> None:
    config = _write(tmp_path, main)

    with pytest.raises(ConfigError) as raised:
        load_database_settings(config, environ={})

    assert expected in str(raised.value)


# ------------------------------------------------------------------- find_config_file


def test_find_config_file_without_any_lists_every_place_it_looked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if Path("/etc/news-monitor/monitor.yaml").exists():
        pytest.skip("this machine has /etc/news-monitor/monitor.yaml")
    monkeypatch.chdir(tmp_path)

    with pytest.raises(ConfigNotFoundError) as raised:
        find_config_file({})

    assert str(raised.value).splitlines() == [
        "no configuration file found; looked at:",
        "  $NEWS_MONITOR_CONFIG: not set",
        f"  ./config/monitor.yaml ({tmp_path}/config/monitor.yaml): no such file",
        "  /etc/news-monitor/monitor.yaml: no such file",
        "give the file with --config PATH or $NEWS_MONITOR_CONFIG",
    ]


def test_find_config_file_with_variable_naming_no_file_says_so(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.yaml"

    with pytest.raises(ConfigNotFoundError) as raised:
        find_config_file({"NEWS_MONITOR_CONFIG": str(missing)})

    assert f"$NEWS_MONITOR_CONFIG={missing}: no such file" in str(raised.value)
    assert "are not looked at while $NEWS_MONITOR_CONFIG is set" in str(raised.value)


def test_find_config_file_with_local_file_returns_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "monitor.yaml").write_text("feeds: []\n", encoding="utf-8")

    assert find_config_file({}) == Path("config/monitor.yaml")
