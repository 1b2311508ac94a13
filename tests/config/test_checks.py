"""Tests for monitor.config.checks: what later stages check reaches the loader as StageChecks,
and their messages come back with the file, line and key of the value."""

from __future__ import annotations

import textwrap
from dataclasses import replace
from pathlib import Path

import pytest

from monitor import config
from monitor.config import StageChecks
from monitor.model import ConfigError
from monitor.service.configuration import STAGE_CHECKS

MAIN = textwrap.dedent(
    """\
    feeds:
      - name: rfi-cn
        url: https://www.rfi.fr/cn/rss
    channels:
      me:
        urls: json://localhost/hook
        template: "{{ article.title }}"
    rules:
      - name: kj
        any: [韩日]
        all: [劳工]
        fields: [title]
        query: 韩日
        digest: "0 8 * * *"
    """
)


def _problems(path: Path, checks: StageChecks) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        config.load_config(path, environ={}, checks=checks)
    return [str(problem) for problem in caught.value.problems]


def _rejecting(name: str) -> StageChecks:
    """The real checks, but the one called `name` rejects every value it is given."""

    def reject(value: str) -> str:
        if name == "field_name":  # returns the field's name, raises for an unknown one
            raise ValueError(f"rejected {value}")
        return f"rejected {value}"

    def reject_rule(*_written: object) -> list[tuple[tuple[str | int, ...], str]]:
        return [((), "rejected rule"), (("all", 0), "rejected term list")]

    return replace(STAGE_CHECKS, **{name: reject_rule if name == "rule_problems" else reject})


def test_load_config_with_the_stage_checks_accepts_a_valid_file(tmp_path: Path) -> None:
    path = tmp_path / "monitor.yaml"
    path.write_text(MAIN, encoding="utf-8")

    loaded = config.load_config(path, environ={}, checks=STAGE_CHECKS)

    assert [rule.name for rule in loaded.rules] == ["kj"]


@pytest.mark.parametrize(
    ("check", "expected"),
    [
        ("check_channel_url", ["6: channels.me.urls: rejected json://localhost/hook"]),
        ("check_template", ["7: channels.me.template: rejected {{ article.title }}"]),
        (
            "check_term",
            ["10: rules[0] (kj).any[0]: rejected 韩日", "11: rules[0] (kj).all[0]: rejected 劳工"],
        ),
        ("field_name", ["12: rules[0] (kj).fields[0]: rejected title"]),
        ("check_query", ["13: rules[0] (kj).query: rejected 韩日"]),
        ("check_cron", ["14: rules[0] (kj).digest: invalid cron expression: rejected 0 8 * * *"]),
    ],
)
def test_load_config_reports_what_a_stage_check_rejects_at_its_value(
    tmp_path: Path, check: str, expected: list[str]
) -> None:
    path = tmp_path / "monitor.yaml"
    path.write_text(MAIN, encoding="utf-8")

    found = _problems(path, _rejecting(check))

    assert found == [f"{path}:{line}" for line in expected]


def test_load_config_reports_rule_problems_at_their_keys(tmp_path: Path) -> None:
    path = tmp_path / "monitor.yaml"
    path.write_text(MAIN, encoding="utf-8")

    found = _problems(path, _rejecting("rule_problems"))

    assert found == [
        f"{path}:9: rules[0] (kj): rejected rule",
        f"{path}:11: rules[0] (kj).all[0]: rejected term list",
    ]
