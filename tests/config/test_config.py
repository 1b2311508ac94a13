"""Tests for monitor.config.loader: real YAML files in tmp_path, every error with its location."""

from __future__ import annotations

import os
import shutil
import textwrap
from pathlib import Path

import pytest

from monitor.config import (
    DEFAULT_MAX_AGE_SECONDS,
    DEFAULT_TIMEOUT_SECONDS,
    FULLTEXT_ALWAYS,
    FULLTEXT_IF_MISSING,
    FULLTEXT_OFF,
    Config,
    StoriesConfig,
    default_config_path,
    parse_duration,
    parse_size,
)
from monitor.model import ConfigError
from monitor.service.configuration import load_config

DATA = Path(__file__).parents[1] / "data" / "config"
MIB = 1024 * 1024
# Values that look like real credentials, so that Apprise accepts the URLs built from them.
TELEGRAM_TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
EXAMPLE_ENVIRON = {
    "TELEGRAM_BOT_TOKEN": TELEGRAM_TOKEN,
    "TELEGRAM_CHAT_ID": "-1001234567890",
    "SMTP_USER": "alerts",
    "SMTP_PASSWORD": "pa55-w0rd-smtp",
    "SLACK_TOKEN_A": "T1JJ3T3L2",
    "SLACK_TOKEN_B": "A1BRTD4JD",
    "SLACK_TOKEN_C": "TIiajkdnlazkcOXrIdevi7FQ",
}


def write(folder: Path, name: str, text: str) -> Path:
    """Write dedented YAML; its first line is line 1 of the file."""
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def problems(path: Path, environ: dict[str, str] | None = None) -> list[str]:
    """Load a config that must be invalid; return its problems as strings."""
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={} if environ is None else environ)
    return [str(problem) for problem in caught.value.problems]


def only_problem(path: Path, environ: dict[str, str] | None = None) -> str:
    found = problems(path, environ)
    assert len(found) == 1, found
    return found[0]


def minimal_main(folder: Path, extra: str = "") -> Path:
    """A valid main file with one feed and one channel (lines 1-5), then `extra` as is.

    `extra` may start with "  name: url" lines to add channels.
    """
    text = textwrap.dedent(
        """
        feeds:
          - name: rfi-cn
            url: https://www.rfi.fr/cn/rss
        channels:
          me: json://localhost/hook
        """
    ).lstrip("\n")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "monitor.yaml"
    path.write_text(text + extra, encoding="utf-8")
    return path


# ----------------------------------------------------------------------- parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30.0),
        ("10m", 600.0),
        ("2h", 7200.0),
        ("1d", 86400.0),
        ("1w", 604800.0),
        ("1.5h", 5400.0),
        ("1h30m", 5400.0),
        (" 10M ", 600.0),
        ("90", 90.0),
        ("0s", 0.0),
        (90, 90.0),
        (2.5, 2.5),
    ],
)
def test_parse_duration_with_valid_text_returns_seconds(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["10x", "", "m", "-5s", "1 hour", "5s5", True, None, -3, [1]])
def test_parse_duration_with_invalid_input_raises_value_error(text: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- parse_size


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("5MB", 5 * MIB),
        ("5MiB", 5 * MIB),
        ("5mb", 5 * MIB),
        ("512KB", 512 * 1024),
        ("512k", 512 * 1024),
        ("1GB", 1024 * MIB),
        ("1.5MB", 3 * MIB // 2),
        ("100", 100),
        ("100B", 100),
        (100, 100),
    ],
)
def test_parse_size_with_valid_text_returns_binary_bytes(text: str | int, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["5XB", "MB", "1.5", "", -1, True, 1.5])
def test_parse_size_with_invalid_input_raises_value_error(text: object) -> None:
    with pytest.raises(ValueError, match=r"size|bytes"):
        parse_size(text)  # type: ignore[arg-type]


# ------------------------------------------------------------------ default_config_path


def test_default_config_path_with_variable_returns_it(tmp_path: Path) -> None:
    chosen = tmp_path / "elsewhere.yaml"
    assert default_config_path({"NEWS_MONITOR_CONFIG": str(chosen)}) == chosen


def test_default_config_path_with_local_file_returns_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, "config/monitor.yaml", "{}\n")
    monkeypatch.chdir(tmp_path)
    assert default_config_path({}) == Path("config/monitor.yaml")


def test_default_config_path_without_variable_or_local_file_returns_etc(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert default_config_path({}) == Path("/etc/news-monitor/monitor.yaml")


# ------------------------------------------------------------------ load_config: values


def write_full_config(folder: Path) -> Path:
    write(
        folder,
        "rules/watch.yaml",
        """
        - name: korea-japan
          any: [韩日, 日韩]
          none: [体育]
          notify: [me, team]
        - name: forced-labour
          all: [强征劳工]
          fields: [title, category]
          feeds: [rfi-tw]
          notify: [team]
          digest: 1h
          quiet_hours: "23:00-07:00"
          max_per_hour: 5
          template: "{{ article.title }}"
        - name: morning-digest
          any: [sanction*, 2024]
          digest: "0 9 * * mon-fri"
          enabled: false
        """,
    )
    return write(
        folder,
        "monitor.yaml",
        """
        database: sqlite:///state/monitor.db
        timezone: Asia/Shanghai
        defaults:
          interval: 10m
          jitter: 1m
          max_bytes: 2MB
          max_age: 1d
        feeds:
          - name: rfi-cn
            url: https://www.rfi.fr/cn/rss
            interval: 5m
            timeout: 1.5s
          - name: rfi-tw
            url: https://www.rfi.fr/tw/rss
            max_bytes: 512KB
            notify_existing: true
            enabled: false
        channels:
          me: json://localhost/hook?token=${HOOK_TOKEN}
          team:
            - json://localhost/a
            - form://localhost/b
        rules_files: [rules/watch.yaml]
        rules:
          - name: inline
            any: [AI]
        delivery:
          retry_base: 10s
          retry_cap: 30m
          attempts: 3
        http:
          listen: 127.0.0.1:9464
        """,
    )


def test_load_config_with_full_config_returns_every_value(tmp_path: Path) -> None:
    path = write_full_config(tmp_path)

    config = load_config(path, environ={"HOOK_TOKEN": "hook-secret-42"})

    assert isinstance(config, Config)
    assert config.path == path
    assert config.timezone == "Asia/Shanghai"
    assert config.database_url == f"sqlite:///{tmp_path}/state/monitor.db"
    assert config.source_files == (path.resolve(), (tmp_path / "rules/watch.yaml").resolve())
    assert config.secrets == frozenset({"hook-secret-42"})
    assert config.http is not None and config.http.listen == "127.0.0.1:9464"
    assert (config.delivery.retry_base_seconds, config.delivery.retry_cap_seconds) == (10, 1800)
    assert config.delivery.attempts == 3


def test_load_config_with_defaults_section_inherits_per_feed(tmp_path: Path) -> None:
    config = load_config(write_full_config(tmp_path), environ={"HOOK_TOKEN": "x"})

    cn, tw = config.feeds
    assert (cn.name, cn.url) == ("rfi-cn", "https://www.rfi.fr/cn/rss")
    # A feed's own key wins over `defaults:`, which wins over the built-in default.
    assert (cn.interval_seconds, tw.interval_seconds) == (300.0, 600.0)
    assert (cn.jitter_seconds, tw.jitter_seconds) == (60.0, 60.0)
    assert (cn.timeout_seconds, tw.timeout_seconds) == (1.5, DEFAULT_TIMEOUT_SECONDS)
    assert (cn.max_bytes, tw.max_bytes) == (2 * MIB, 512 * 1024)
    assert cn.max_age_seconds == 86400.0
    assert (cn.notify_existing, tw.notify_existing) == (False, True)
    assert (cn.enabled, tw.enabled) == (True, False)


def test_load_config_with_channels_adds_console_and_keeps_url_tuples(tmp_path: Path) -> None:
    config = load_config(write_full_config(tmp_path), environ={"HOOK_TOKEN": "abc123"})

    assert [channel.name for channel in config.channels] == ["me", "team", "console"]
    assert config.channel("me").urls == ("json://localhost/hook?token=abc123",)
    assert config.channel("team").urls == ("json://localhost/a", "form://localhost/b")
    assert config.channel("console").urls == ("console://",)


def test_load_config_with_rules_in_two_places_returns_them_in_order(tmp_path: Path) -> None:
    config = load_config(write_full_config(tmp_path), environ={"HOOK_TOKEN": "x"})

    inline, korea, labour, digest = config.rules
    assert (inline.name, inline.any_terms, inline.notify) == ("inline", ("AI",), ("console",))
    assert (inline.source_file, inline.source_line) == (str(tmp_path / "monitor.yaml"), 25)
    assert inline.fields == ("title", "summary", "content")
    assert (korea.any_terms, korea.none_terms, korea.notify) == (
        ("韩日", "日韩"),
        ("体育",),
        ("me", "team"),
    )
    assert (korea.source_file, korea.source_line) == (str(tmp_path / "rules/watch.yaml"), 1)
    assert (labour.all_terms, labour.fields, labour.feeds) == (
        ("强征劳工",),
        ("title", "categories"),  # `category` is an alias
        ("rfi-tw",),
    )
    assert (labour.digest, labour.quiet_hours, labour.max_per_hour) == ("1h", "23:00-07:00", 5)
    assert labour.template == "{{ article.title }}"
    assert (digest.any_terms, digest.digest, digest.enabled) == (
        ("sanction*", "2024"),
        "0 9 * * mon-fri",
        False,
    )


def test_load_config_with_empty_main_file_returns_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, "config/monitor.yaml", "# nothing yet\n")
    monkeypatch.chdir(tmp_path)

    config = load_config(path, environ={})

    # No database, state_dir or $STATE_DIRECTORY: ./state in the working directory.
    assert config.state_dir == tmp_path / "state"
    assert config.database_url == f"sqlite:///{tmp_path}/state/monitor.db"
    assert (config.timezone, config.feeds, config.rules) == ("UTC", (), ())
    assert [channel.name for channel in config.channels] == ["console"]


def test_load_config_with_state_directory_variable_uses_it_for_database(tmp_path: Path) -> None:
    path = minimal_main(tmp_path / "etc", "state_dir: ignored\n")

    config = load_config(path, environ={"STATE_DIRECTORY": "/var/lib/news-monitor"})

    assert config.state_dir == Path("/var/lib/news-monitor")
    assert config.database_url == "sqlite:////var/lib/news-monitor/monitor.db"


def test_load_config_with_relative_state_dir_resolves_next_to_file(tmp_path: Path) -> None:
    path = minimal_main(tmp_path / "etc", "state_dir: ../var\n")

    config = load_config(path, environ={})

    assert config.state_dir == tmp_path / "var"
    assert config.database_url == f"sqlite:///{tmp_path}/var/monitor.db"


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:////srv/news/monitor.db",
        "sqlite://",
        "'sqlite:///:memory:'",
        "postgresql+psycopg://news@db.example.com/news",
    ],
)
def test_load_config_with_absolute_or_remote_database_passes_it_through(
    tmp_path: Path, url: str
) -> None:
    config = load_config(minimal_main(tmp_path, f"database: {url}\n"), environ={})
    assert config.database_url == url.strip("'")


def test_load_config_with_console_channel_keeps_the_users_definition(tmp_path: Path) -> None:
    path = minimal_main(tmp_path, "  console: json://localhost/console\n")

    config = load_config(path, environ={})

    assert [channel.name for channel in config.channels] == ["me", "console"]
    assert config.channel("console").urls == ("json://localhost/console",)


def test_load_config_with_file_reference_reads_it_relative_to_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, "etc/secrets/hook.txt", "file-token-77\n")
    path = minimal_main(
        tmp_path / "etc", "  file: json://localhost/hook?token=${file:secrets/hook.txt}\n"
    )
    monkeypatch.chdir(tmp_path)  # not the config's folder

    config = load_config(path, environ={})

    assert config.channel("file").urls == ("json://localhost/hook?token=file-token-77",)
    assert "file-token-77" in config.secrets


def test_load_config_with_cred_reference_reads_credentials_directory(tmp_path: Path) -> None:
    write(tmp_path, "credentials/hook", "cred-token-99\n\n")
    path = minimal_main(tmp_path, "  cred: json://localhost/hook?token=${cred:hook}\n")

    config = load_config(path, environ={"CREDENTIALS_DIRECTORY": str(tmp_path / "credentials")})

    # Only one trailing newline is removed; the other is part of the value (and, in a
    # URL, percent-encoded like any other character that is not a letter or digit).
    assert config.channel("cred").urls == ("json://localhost/hook?token=cred-token-99%0A",)
    assert "cred-token-99\n" in config.secrets


def test_load_config_with_rules_mapping_form_loads_rules(tmp_path: Path) -> None:
    write(tmp_path, "rules.yaml", "rules:\n  - name: a\n    any: [x]\n")
    path = minimal_main(tmp_path, "rules_files: [rules.yaml]\n")

    config = load_config(path, environ={})

    assert [(rule.name, rule.source_line) for rule in config.rules] == [("a", 2)]


def test_load_config_with_yaml_anchor_and_merge_key_shares_values(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "monitor.yaml",
        """
        feeds:
          - &base
            name: one
            url: https://example.com/one.xml
            interval: 2m
          - <<: *base
            name: two
        """,
    )

    config = load_config(path, environ={})

    assert [(feed.name, feed.interval_seconds) for feed in config.feeds] == [
        ("one", 120.0),
        ("two", 120.0),
    ]


def test_load_config_with_design_example_loads_the_query_rule(tmp_path: Path) -> None:
    shutil.copytree(DATA, tmp_path / "config")

    config = load_config(tmp_path / "config" / "monitor.yaml", environ=EXAMPLE_ENVIRON)

    assert config.rules[1].name == "forced-labour"
    assert config.rules[1].query == "(强征劳工 OR 强制劳动 OR 劳工索赔) -广告"
    assert config.rules[1].fields == ("title", "summary")
    assert config.rules[0].query is None


def test_load_config_with_design_example_without_query_loads_it(tmp_path: Path) -> None:
    shutil.copytree(DATA, tmp_path / "config")
    rules = tmp_path / "config" / "rules.yaml"
    rules.write_text(rules.read_text().replace("query:", "any: [强征劳工]\n  # query:"))

    config = load_config(tmp_path / "config" / "monitor.yaml", environ=EXAMPLE_ENVIRON)

    assert [feed.interval_seconds for feed in config.feeds] == [300.0, 600.0, 600.0]
    assert config.feed("rfi-tw").max_bytes == 5 * MIB
    assert config.feed("rfi-tw").max_age_seconds == DEFAULT_MAX_AGE_SECONDS
    assert config.channel("me").urls == (f"tgram://{TELEGRAM_TOKEN}/-1001234567890",)
    assert set(EXAMPLE_ENVIRON.values()) == config.secrets
    assert config.rules[1].digest == "1h"


# ------------------------------------------------------------------ load_config: errors


def test_load_config_with_unknown_key_in_rules_file_reports_file_line_and_path(
    tmp_path: Path,
) -> None:
    rules = write(
        tmp_path,
        "rules.yaml",
        """
        - name: korea-japan
          any: [韩日, 日韩]

        - name: forced-labour
          any: [强征劳工]
          notify: [me]
          colour: red
        """,
    )
    path = minimal_main(tmp_path, "rules_files: [rules.yaml]\n")

    found = only_problem(path)

    assert found.startswith(f"{rules}:7: rules[1] (forced-labour).colour: unknown key")
    assert "expected one of: name, any, all, none" in found


def test_load_config_with_misspelt_key_suggests_the_right_one(tmp_path: Path) -> None:
    path = minimal_main(tmp_path, "defaults:\n  intervall: 5m\n")

    found = only_problem(path)

    assert found == f"{path}:7: defaults.intervall: unknown key (did you mean interval?)"


@pytest.mark.parametrize(
    ("extra", "line", "key_path", "message"),
    [
        ("rules:\n  - name: r\n    any: 韩日\n", 8, "rules[0] (r).any", "expected a list"),
        (
            "rules:\n  - name: r\n    any: [x]\n    enabled: 'no'\n",
            9,
            "rules[0] (r).enabled",
            "expected true or false, got text",
        ),
        ("rules:\n  - name: 12\n    any: [x]\n", 7, "rules[0].name", "expected text, got a number"),
        ("rules:\n  - just-a-name\n", 7, "rules[0]", "expected a mapping"),
        ("rules_files: rules.yaml\n", 6, "rules_files", "expected a list"),
        ("http: {listen: localhost}\n", 6, "http.listen", 'expected "host:port"'),
        ("timezone: Mars/Olympus\n", 6, "timezone", "unknown timezone 'Mars/Olympus'"),
        ("delivery:\n  attempts: 0\n", 7, "delivery.attempts", "must be at least 1"),
        ("delivery:\n  retry_base: 2h\n", 6, "delivery", "retry_cap must not be below"),
        ("database: monitor.db\n", 6, "database", "expected a database URL"),
        ("retention: soon\n", 6, "retention", "'soon' is not a duration"),
        ("retention: 12h\n", 6, "retention", "must be at least 1d"),
    ],
)
def test_load_config_with_wrong_value_reports_line_and_key_path(
    tmp_path: Path, extra: str, line: int, key_path: str, message: str
) -> None:
    path = minimal_main(tmp_path, extra)

    found = only_problem(path)

    assert found.startswith(f"{path}:{line}: {key_path}: {message}"), found


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("interval: 10x", "'10x' is not a duration"),
        ("interval: 500ms", "'500ms' is not a duration"),
        ("interval: 0.5s", "must be at least 1s"),
        ("interval: [1m]", "expected a duration"),
        ("timeout: 0s", "must be above 0s"),
        ("jitter: -1s", "'-1s' is not a duration"),
        ("max_bytes: 5XB", "'5XB' is not a size"),
        ("max_bytes: 0", "must be at least 1 byte"),
        (
            "url: ftp://example.com/feed.xml",
            "a feed URL must start with http://, https:// or file://",
        ),
        ("url: https:///feed.xml", "a feed URL needs a host"),
        ("enabled: maybe", "expected true or false"),
        ("fulltext: sometimes", "expected true, false or always, got other text"),
        ("fulltext: 1", "expected true, false or always, got a number"),
    ],
)
def test_load_config_with_bad_feed_setting_reports_its_line(
    tmp_path: Path, setting: str, message: str
) -> None:
    path = write(
        tmp_path,
        "monitor.yaml",
        f"""
        feeds:
          - name: ok
            url: file:///srv/feed.xml
          - name: broken
            {setting}
        """,
    )
    if not setting.startswith("url:"):
        path.write_text(path.read_text() + "    url: https://example.com/feed.xml\n")
    key = setting.split(":")[0]

    found = only_problem(path)

    assert found.startswith(f"{path}:5: feeds[1].{key}: {message}"), found


def test_load_config_fulltext_per_feed_wins_over_defaults(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "monitor.yaml",
        """
        defaults: {fulltext: true}
        feeds:
          - {name: inherits, url: "https://example.org/a"}
          - {name: always, url: "https://example.org/b", fulltext: always}
          - {name: never, url: "https://example.org/c", fulltext: false}
        """,
    )
    bare = minimal_main(tmp_path / "bare")

    config = load_config(path, environ={})

    assert [feed.fulltext for feed in config.feeds] == [
        FULLTEXT_IF_MISSING,
        FULLTEXT_ALWAYS,
        FULLTEXT_OFF,
    ]
    assert load_config(bare, environ={}).feeds[0].fulltext == FULLTEXT_OFF


def test_load_config_with_bad_fulltext_default_reports_its_line(tmp_path: Path) -> None:
    path = minimal_main(tmp_path, "defaults:\n  fulltext: yes please\n")

    found = only_problem(path)

    assert ": defaults.fulltext: expected true, false or always" in found, found


def test_load_config_with_interval_of_one_second_accepts_it(tmp_path: Path) -> None:
    config = load_config(minimal_main(tmp_path, "defaults: {interval: 1s}\n"), environ={})
    assert config.feeds[0].interval_seconds == 1.0


def test_load_config_with_retention_returns_seconds_and_without_it_none(tmp_path: Path) -> None:
    kept = load_config(minimal_main(tmp_path / "a", "retention: 90d\n"), environ={})
    forever = load_config(minimal_main(tmp_path / "b"), environ={})

    assert (kept.retention_seconds, forever.retention_seconds) == (90 * 86400.0, None)


def test_load_config_stories_defaults_on_and_false_turns_them_off(tmp_path: Path) -> None:
    default = load_config(minimal_main(tmp_path / "a"), environ={})
    off = load_config(minimal_main(tmp_path / "b", "stories: false\n"), environ={})
    tuned = load_config(
        minimal_main(tmp_path / "c", "stories: {window: 2d, similarity: 0.7}\n"), environ={}
    )

    assert default.stories == StoriesConfig(True, 72 * 3600.0, None)
    assert off.stories.enabled is False
    assert tuned.stories == StoriesConfig(True, 2 * 86400.0, 0.7)


def test_load_config_with_bad_stories_reports_file_line_and_key(tmp_path: Path) -> None:
    path = minimal_main(
        tmp_path,
        "stories:\n  window: soon\n  similarity: 1.5\n  merge: true\n"
        "rules:\n  - name: korea-japan\n    any: [韩日]\n    per_story: sometimes\n",
    )

    assert problems(path) == [
        f"{path}:7: stories.window: 'soon' is not a duration; write a number and a unit, "
        "such as 30s, 10m, 2h or 1d",
        f"{path}:8: stories.similarity: must be from 0 to 1 (higher is stricter), not 1.5",
        f"{path}:9: stories.merge: unknown key; expected one of: enabled, window, similarity",
        f"{path}:13: rules[0] (korea-japan).per_story: expected true or false, got text",
    ]
    assert only_problem(minimal_main(tmp_path / "b", "stories: 72h\n")) == (
        f"{tmp_path}/b/monitor.yaml:6: stories: expected false, true, or a mapping such as "
        "{window: 72h, similarity: 0.5}; got text"
    )


def test_load_config_rule_per_story_defaults_true(tmp_path: Path) -> None:
    rules = "rules:\n  - {name: a, any: [x]}\n  - {name: b, any: [y], per_story: false}\n"
    config = load_config(minimal_main(tmp_path, rules), environ={})

    assert [rule.per_story for rule in config.rules] == [True, False]


def test_load_config_with_feed_without_url_reports_missing_key_at_item(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "monitor.yaml",
        "feeds:\n  - name: a\n    url: https://a.example/\n  - name: b\n    interval: 5m\n",
    )

    assert only_problem(path) == f"{path}:4: feeds[1].url: required, but missing"


def test_load_config_with_duplicate_feed_names_reports_the_second(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "monitor.yaml",
        """
        feeds:
          - name: rfi-cn
            url: https://www.rfi.fr/cn/rss
          - name: rfi-cn
            url: https://www.rfi.fr/cn/asia/rss
        """,
    )

    found = only_problem(path)

    assert found == f"{path}:4: feeds[1].name: another feed is already named 'rfi-cn' (line 2)"


def test_load_config_with_duplicate_rule_names_across_files_reports_the_second(
    tmp_path: Path,
) -> None:
    rules = write(tmp_path, "rules.yaml", "- name: other\n  any: [b]\n- name: same\n  any: [c]\n")
    path = minimal_main(
        tmp_path, "rules:\n  - name: same\n    any: [a]\nrules_files: [rules.yaml]\n"
    )

    found = only_problem(path)

    assert found == (
        f"{rules}:3: rules[1] (same).name: another rule is already named 'same' ({path}:7)"
    )


def test_load_config_with_duplicate_yaml_key_reports_it(tmp_path: Path) -> None:
    path = minimal_main(tmp_path, "timezone: UTC\ntimezone: Asia/Tokyo\n")

    found = only_problem(path)

    assert found == f"{path}:7: timezone: duplicate key; it first appears on line 6"


@pytest.mark.parametrize(
    ("rule", "key_path", "message"),
    [
        ("notify: [me, nobody]", "notify[1]", "no channel is named 'nobody'"),
        ("feeds: [rfi-cn, rfi-xx]", "feeds[1]", "no feed is named 'rfi-xx'"),
        ("fields: [title, body]", "fields[1]", "unknown field 'body'; fields are title,"),
        ("notify: []", "notify", "must not be an empty list"),
        ("none: ['\"unbalanced']", "none[0]", "unbalanced quote"),
        ("digest: every hour", "digest", "expected a duration such as 1h or a 5-field cron"),
        ("digest: '61 9 * * *'", "digest", "invalid cron expression"),
        ("quiet_hours: 23:00-24:00", "quiet_hours", "hours run from 00 to 23"),
        ("quiet_hours: tonight", "quiet_hours", 'expected "HH:MM-HH:MM"'),
        ("max_per_hour: 0", "max_per_hour", "must be at least 1"),
        ("template: [a]", "template", "expected text, got a list"),
    ],
)
def test_load_config_with_bad_rule_option_reports_its_line(
    tmp_path: Path, rule: str, key_path: str, message: str
) -> None:
    rules = write(
        tmp_path,
        "rules.yaml",
        f"""
        - name: fine
          any: [x]
        - name: watch
          any: [韩日]
          {rule}
        """,
    )
    path = minimal_main(tmp_path, "rules_files: [rules.yaml]\n")

    found = only_problem(path)

    assert found.startswith(f"{rules}:5: rules[1] (watch).{key_path}: {message}"), found


@pytest.mark.parametrize("expression", ["0 8 * * 7", "0 8 * * 0", "30 7 * * 5-7"])
def test_load_config_with_crontab_sunday_digest_accepts_it(tmp_path: Path, expression: str) -> None:
    path = minimal_main(
        tmp_path, f"rules:\n  - name: weekly\n    any: [韩日]\n    digest: '{expression}'\n"
    )

    assert load_config(path).rules[0].digest == expression


def test_load_config_with_only_none_terms_reports_the_rule(tmp_path: Path) -> None:
    path = minimal_main(tmp_path, "rules:\n  - name: everything\n    none: [体育]\n")

    found = only_problem(path)

    assert found.startswith(f"{path}:7: rules[0] (everything): a rule needs at least one term")
    assert "would match every article" in found


def test_load_config_with_only_a_query_loads_it(tmp_path: Path) -> None:
    path = minimal_main(tmp_path, "rules:\n  - name: q\n    query: 韩日 OR 日韩\n")

    config = load_config(path, environ={})

    assert config.rules[0].query == "韩日 OR 日韩"
    assert config.rules[0].any_terms == ()


def test_load_config_with_query_and_list_form_keeps_both(tmp_path: Path) -> None:
    path = minimal_main(
        tmp_path, "rules:\n  - name: q\n    none: [体育]\n    query: 'title:/韓國/ 首尔'\n"
    )

    [rule] = load_config(path, environ={}).rules

    assert (rule.none_terms, rule.query) == (("体育",), "title:/韓國/ 首尔")


def test_load_config_with_unbalanced_query_reports_column_and_caret(tmp_path: Path) -> None:
    rules = write(
        tmp_path,
        "rules.yaml",
        """
        - name: fine
          query: 韩日
        - name: forced-labour
          query: '(强征劳工 OR 强制劳动 -广告'
        """,
    )
    path = minimal_main(tmp_path, "rules_files: [rules.yaml]\n")

    assert only_problem(path) == (
        f"{rules}:4: rules[1] (forced-labour).query: unbalanced parenthesis at column 1\n"
        "    (强征劳工 OR 强制劳动 -广告\n"
        "    ^"
    )


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("韩日 OR", "OR needs a term after it at column 4"),
        ("'\"\"'", "empty phrase at column 1"),
        ("a NEAR/x b", "NEAR needs a distance in characters, as in NEAR/5 at column 3"),
        ("a /b", "unterminated /regex/: the closing / is missing at column 3"),
        ("/[韓/", "invalid regex: unterminated character set at column 4"),
        ("body:韩日", "unknown field 'body'"),
    ],
)
def test_load_config_with_bad_query_reports_its_message(
    tmp_path: Path, query: str, message: str
) -> None:
    path = minimal_main(tmp_path, f"rules:\n  - name: q\n    query: {query}\n")

    found = only_problem(path)

    assert found.startswith(f"{path}:8: rules[0] (q).query: {message}"), found
    assert found.count("\n") == 2 and found.endswith("^")


def test_load_config_with_empty_query_reports_it_without_caret(tmp_path: Path) -> None:
    path = minimal_main(tmp_path, "rules:\n  - name: q\n    query: ' '\n")

    assert only_problem(path) == f"{path}:8: rules[0] (q).query: empty query at column 1"


def test_load_config_with_bad_queries_in_several_rules_reports_all(tmp_path: Path) -> None:
    path = minimal_main(
        tmp_path,
        "rules:\n"
        "  - name: one\n    query: (a\n"
        "  - name: two\n    query: /a(/\n"
        "  - name: three\n    any: ['\"x']\n",
    )

    found = problems(path)

    assert [problem.split("\n")[0] for problem in found] == [
        f"{path}:8: rules[0] (one).query: unbalanced parenthesis at column 1",
        f"{path}:10: rules[1] (two).query: invalid regex: missing ) at column 4",
        f"{path}:12: rules[2] (three).any[0]: unbalanced quote",
    ]


def test_load_config_with_query_that_only_excludes_reports_it(tmp_path: Path) -> None:
    path = minimal_main(tmp_path, "rules:\n  - name: q\n    query: -体育 -娱乐\n")

    found = only_problem(path)

    assert found.startswith(f"{path}:8: rules[0] (q).query: this query matches articles")
    assert "only excludes" in found


def test_load_config_with_excluding_query_and_any_terms_loads_it(tmp_path: Path) -> None:
    path = minimal_main(tmp_path, "rules:\n  - name: q\n    any: [韩日]\n    query: -体育\n")

    assert load_config(path, environ={}).rules[0].query == "-体育"


def test_load_config_with_null_query_and_no_terms_reports_missing_term(tmp_path: Path) -> None:
    path = minimal_main(tmp_path, "rules:\n  - name: q\n    query:\n")

    assert only_problem(path).startswith(f"{path}:7: rules[0] (q): a rule needs at least one term")


def test_load_config_with_query_not_text_reports_type(tmp_path: Path) -> None:
    path = minimal_main(tmp_path, "rules:\n  - name: q\n    query: [韩日]\n")

    assert only_problem(path) == f"{path}:8: rules[0] (q).query: expected text, got a list"


def test_load_config_with_missing_variable_names_it(tmp_path: Path) -> None:
    path = write(tmp_path, "monitor.yaml", "channels:\n  me: tgram://${TELEGRAM_BOT_TOKEN}/1\n")

    found = only_problem(path, {"OTHER": "x"})

    assert found == f"{path}:2: channels.me: environment variable TELEGRAM_BOT_TOKEN is not set"


@pytest.mark.parametrize(
    ("reference", "environ", "message"),
    [
        ("${cred:hook}", {}, "credential hook: $CREDENTIALS_DIRECTORY is not set"),
        ("${cred:missing}", {"CREDENTIALS_DIRECTORY": "/nonexistent"}, "credential missing:"),
        (
            "${cred:../x}",
            {"CREDENTIALS_DIRECTORY": "/tmp"},
            "${cred:../x}: a credential name is a plain",
        ),
        ("${file:no-such-file}", {}, "${file:no-such-file}: cannot read"),
        ("${vault:x}", {}, "unknown reference ${vault:...}"),
        ("${NOT-A-NAME}", {}, "${NOT-A-NAME} is not a valid environment variable name"),
        ("${UNTERMINATED", {}, "unterminated ${"),
    ],
)
def test_load_config_with_unresolvable_reference_reports_it(
    tmp_path: Path, reference: str, environ: dict[str, str], message: str
) -> None:
    path = minimal_main(tmp_path, f"  other: json://localhost/{reference}\n")

    found = only_problem(path, environ)

    assert found.startswith(f"{path}:6: channels.other: {message}"), found


def test_load_config_with_secret_in_invalid_url_never_shows_the_secret(tmp_path: Path) -> None:
    secret = "s3cr3t-T0ken-value"
    path = write(
        tmp_path,
        "monitor.yaml",
        """
        channels:
          me: tgram://${BOT_TOKEN}/123
          list:
            - json://localhost/ok
            - ${BOT_TOKEN}://localhost/
        feeds:
          - name: private
            url: gopher://example.com/?key=${BOT_TOKEN}
            interval: ${BOT_TOKEN}
        rules:
          - name: r
            any: [x]
            notify: ["${BOT_TOKEN}"]
        """,
    )

    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={"BOT_TOKEN": secret})

    assert len(caught.value.problems) == 5, caught.value.problems
    # Apprise lower-cases a scheme when it names it: compare without case.
    assert secret.lower() not in str(caught.value).lower()
    assert all(secret.lower() not in str(problem).lower() for problem in caught.value.problems)
    assert f"{path}:2: channels.me: not a valid Telegram URL" in str(caught.value)


def test_load_config_with_errors_in_two_files_reports_all_sorted(tmp_path: Path) -> None:
    rules = write(
        tmp_path,
        "rules.yaml",
        """
        - name: a
          any: [x]
          notify: [nowhere]
        - name: b
          none: [y]
        """,
    )
    path = write(
        tmp_path,
        "monitor.yaml",
        """
        rules_files: [rules.yaml]
        timezone: Nowhere/City
        feeds:
          - name: f
            url: https://example.com/rss
            interval: soon
        """,
    )

    found = problems(path)

    assert [problem.split(": ")[0] for problem in found] == [
        f"{path}:2",
        f"{path}:6",
        f"{rules}:3",
        f"{rules}:4",
    ]


@pytest.mark.parametrize(
    ("text", "place", "message"),
    [
        ("timezone: UTC\nfeeds:\n  - name: a\n   url: b\n", "4:4", "expected <block end>"),
        ("timezone: UTC\n\tfeeds: []\n", "2:1", "found character '\\t'"),
        ("timezone: UTC\nhttp: {listen: 'a\x01'}\n", "2:18", "character #x0001 is not allowed"),
        ("timezone: UTC\n---\ntimezone: UTC\n", "2:1", "expected a single document"),
        ("feeds: &a [*a]\n", "1:8", "recursive alias"),
        ("timezone: 'UTC\nfeeds: []\n", "1:11", "this quote is not closed"),
        ("channels:\n  me: console://\n  team tgram://x/y\nrules: []\n", "3:3", "expected ':'"),
        ("rules_files: [rules.yaml\nfeeds: []\n", "1:14", "this [ is not closed"),
    ],
)
def test_load_config_with_yaml_syntax_error_reports_its_line_and_column(
    tmp_path: Path, text: str, place: str, message: str
) -> None:
    path = tmp_path / "monitor.yaml"
    path.write_text(text, encoding="utf-8")

    found = only_problem(path)

    assert found.startswith(f"{path}:{place}: YAML syntax error: "), found
    assert message in found


def test_load_config_with_syntax_error_in_rules_file_still_reports_main_file(
    tmp_path: Path,
) -> None:
    rules = write(tmp_path, "rules.yaml", "- name: a\n  any: [x\n")
    path = minimal_main(tmp_path, "rules_files: [rules.yaml]\ntimezone: Bad/Zone\n")

    found = problems(path)

    assert len(found) == 2, found
    assert found[0].startswith(f"{path}:7: timezone: unknown timezone")
    assert found[1].startswith(f"{rules}:2:8: YAML syntax error: this [ is not closed")


def test_load_config_with_missing_file_reports_it(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"

    found = only_problem(path)

    assert found == f"{path}: cannot read the file: No such file or directory"


def test_load_config_with_missing_rules_file_reports_where_it_is_named(tmp_path: Path) -> None:
    path = minimal_main(tmp_path, "rules_files:\n  - rules.yaml\n  - absent.yaml\n")
    write(tmp_path, "rules.yaml", "[]\n")

    found = only_problem(path)

    assert found == f"{path}:8: rules_files[1]: no such rules file: {tmp_path / 'absent.yaml'}"


def test_load_config_with_relative_path_shows_paths_as_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, "config/rules.yaml", "- name: a\n  any: [x]\n  colour: red\n")
    minimal_main(tmp_path / "config", "rules_files: [rules.yaml]\n")
    monkeypatch.chdir(tmp_path)

    found = only_problem(Path("config/monitor.yaml"))

    assert found.startswith(f"{os.path.join('config', 'rules.yaml')}:3: rules[0] (a).colour:")


def test_load_config_with_non_mapping_main_file_reports_it(tmp_path: Path) -> None:
    path = write(tmp_path, "monitor.yaml", "- feeds\n")

    assert only_problem(path) == (
        f"{path}:1: the main configuration file must be a mapping of settings"
    )


# ------------------------------------------------------------------ templates, channel forms


def test_load_config_with_channel_mapping_returns_urls_and_template(tmp_path: Path) -> None:
    path = minimal_main(
        tmp_path,
        """\
  desk:
    urls: [json://localhost/a, json://localhost/b]
    template: "📰 {{ article|link }}"
  solo:
    urls: json://localhost/c
""",
    )

    config = load_config(path, environ={})

    assert config.channel("me").urls == ("json://localhost/hook",)
    assert config.channel("me").template is None
    assert config.channel("desk").urls == ("json://localhost/a", "json://localhost/b")
    assert config.channel("desk").template == "📰 {{ article|link }}"
    assert (config.channel("solo").urls, config.channel("solo").template) == (
        ("json://localhost/c",),
        None,
    )


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("'{{ article.title }'", "unexpected '}'"),
        ("'{{ article.title|shout }}'", "No filter named 'shout'"),
        ("'{{ article.titel }}'", "an article has no attribute 'titel' (it has title, link,"),
        ("\"{{ ''.__class__ }}\"", "access to attribute '__class__' of 'str' object is unsafe"),
        ("'{{ count }}: {{ article.title }}'", "in a digest: 'article' is undefined; a digest"),
    ],
)
def test_load_config_with_bad_rule_template_reports_file_line_and_message(
    tmp_path: Path, template: str, message: str
) -> None:
    rules = write(
        tmp_path,
        "rules.yaml",
        f"""
        - name: fine
          any: [x]
          template: "{{{{ article|link }}}}"
        - name: watch
          any: [韩日]
          template: {template}
        """,
    )
    path = minimal_main(tmp_path, "rules_files: [rules.yaml]\n")

    found = only_problem(path)

    assert found.startswith(f"{rules}:6: rules[1] (watch).template: {message}"), found


def test_load_config_with_bad_multiline_template_names_the_template_line(tmp_path: Path) -> None:
    path = minimal_main(
        tmp_path,
        """\
  desk:
    urls: json://localhost/a
    template: |
      **{{ article.title }}**
      {{ article.feed|nosuch }}
""",
    )

    found = only_problem(path)

    assert found == (f"{path}:8: channels.desk.template: template line 2: No filter named 'nosuch'")


def test_load_config_with_unknown_key_in_channel_mapping_suggests_urls(tmp_path: Path) -> None:
    path = minimal_main(tmp_path, "  desk:\n    url: json://localhost/a\n")

    found = problems(path)

    assert found == [
        f"{path}:6: channels.desk.urls: required, but missing",
        f"{path}:7: channels.desk.url: unknown key (did you mean urls?)",
    ]


def test_load_config_with_bad_url_in_channel_list_reports_it_where_written(
    tmp_path: Path,
) -> None:
    path = minimal_main(
        tmp_path,
        """\
  team:
    - json://localhost/a
    - tgram://not-valid
  desk:
    urls: [json://localhost/a, tgram://not-valid]
  solo: tgram://not-valid
""",
    )

    found = problems(path)

    assert found == [
        f"{path}:8: channels.team[1]: not a valid Telegram URL (tgram://)",
        f"{path}:10: channels.desk.urls[1]: not a valid Telegram URL (tgram://)",
        f"{path}:11: channels.solo: not a valid Telegram URL (tgram://)",
    ]


@pytest.mark.parametrize(
    ("http", "listen"),
    [("http: {}", "127.0.0.1:9464"), ("http: {listen: '9000'}", "127.0.0.1:9000"), ("", None)],
)
def test_load_config_http_listen_defaults_to_loopback(
    tmp_path: Path, http: str, listen: str | None
) -> None:
    path = minimal_main(tmp_path, http + "\n")

    http_config = load_config(path).http
    assert (http_config.listen if http_config else None) == listen


# ---------------------------------------------------- large rules files: positions on demand


def many_rules(count: int, *, broken: dict[int, str] | None = None) -> str:
    """A bare-list rules file, seven lines per rule; `broken` replaces a rule's second term."""
    lines = []
    for index in range(count):
        second = (broken or {}).get(index, "另一个")
        lines += [f"- name: rule-{index}", "  any:", f"    - 词{index}", f"    - {second}"]
        lines += ["  fields:", "    - title", "    - summary"]
    return "\n".join(lines) + "\n"


def test_load_config_with_large_rules_file_keeps_each_rule_line(tmp_path: Path) -> None:
    write(tmp_path, "rules.yaml", many_rules(500))
    path = minimal_main(tmp_path, "rules_files: [rules.yaml]\n")

    config = load_config(path, environ={})

    assert len(config.rules) == 500
    assert [rule.source_line for rule in config.rules[:3]] == [1, 8, 15]
    assert config.rules[499].source_line == 499 * 7 + 1
    assert config.rules[499].source_file == str(tmp_path / "rules.yaml")


def test_load_config_with_deep_errors_in_large_rules_file_reports_exact_lines(
    tmp_path: Path,
) -> None:
    # The positions of terms are worked out only when a problem needs one: the lines must
    # still be exact, for a term (deep) and for a duplicate name (shallow).
    text = many_rules(400, broken={3: "'\"unclosed'", 350: "'a*b'"})
    text += "- name: rule-5\n  any: [a]\n"
    rules = write(tmp_path, "rules.yaml", text)
    path = minimal_main(tmp_path, "rules_files: [rules.yaml]\n")

    found = problems(path)

    assert any(line.startswith(f"{rules}:25: rules[3] (rule-3).any[1]: ") for line in found)
    assert any(line.startswith(f"{rules}:2454: rules[350] (rule-350).any[1]: ") for line in found)
    assert any(
        line.startswith(f"{rules}:2801: rules[400] (rule-5).name: another rule is already named")
        for line in found
    ), found


def test_load_config_with_rules_file_reports_the_same_problems_rule_by_rule(
    tmp_path: Path,
) -> None:
    # A bare list of mappings is validated rule by rule (monitor.config.rule_files keeps no
    # pydantic model per rule); with one item that is no mapping the whole file goes through
    # RulesFileSchema at once. Both must report the same problems, in the same order.
    rules = """
        - name: ok
          any: [韩日]
        - name: typo
          anny: [a]
          any: [b]
        - any: [no-name]
        - name: bad
          any: ['"open', 7, "x*y"]
          fields: [titel]
          notify: [nowhere]
          max_per_hour: 0
        - {name: flow, any: a, enabled: "yes"}
        - name: env
          any: ["${UNSET_VARIABLE}"]
        """
    write(tmp_path, "rules.yaml", rules)
    write(tmp_path, "whole.yaml", rules + "- 42\n")
    per_rule = problems(minimal_main(tmp_path, "rules_files: [rules.yaml]\n"))
    (tmp_path / "monitor.yaml").unlink()
    whole = problems(minimal_main(tmp_path, "rules_files: [whole.yaml]\n"))

    assert whole[-1].startswith(f"{tmp_path / 'whole.yaml'}:15: rules[6]: expected a mapping")
    assert [line.replace("whole.yaml", "rules.yaml") for line in whole[:-1]] == per_rule
    assert len(per_rule) == 10, per_rule


def test_load_config_with_references_in_rules_substitutes_them_in_place(tmp_path: Path) -> None:
    write(tmp_path, "rules.yaml", "- name: a\n  any: [x, '${WORD}', y]\n  max_per_hour: '${N}'\n")
    path = minimal_main(tmp_path, "rules_files: [rules.yaml]\n")

    config = load_config(path, environ={"WORD": "选举", "N": "3"})

    assert config.rules[0].any_terms == ("x", "选举", "y")
    assert config.rules[0].max_per_hour == 3
