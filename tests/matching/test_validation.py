"""Tests for monitor.matching.validation: the rule checks the loader and the compiler share."""

from __future__ import annotations

from typing import Any

import pytest

from monitor.matching import (
    RuleProblem,
    field_name,
    positive_term_problems,
    query_problem,
    rule_problems,
)


def _problems(
    *,
    any_terms: tuple[str, ...] = (),
    none_terms: tuple[str, ...] = (),
    query: str | None = None,
    fields: tuple[str, ...] = ("title",),
    match_everything: bool = False,
) -> list[RuleProblem]:
    return rule_problems(
        any_terms=any_terms,
        all_terms=(),
        none_terms=none_terms,
        query=query,
        fields=fields,
        match_everything=match_everything,
    )


def test_rule_problems_with_valid_rule_returns_none() -> None:
    assert _problems(any_terms=("韩日",), query="劳工 -体育") == []


def test_rule_problems_locates_each_bad_term_query_and_field() -> None:
    found = _problems(any_terms=("ok", '"韩日'), query="(a", fields=("title", "body"))

    assert [problem.key for problem in found] == [("any", 1), ("query",), ("fields", 1)]
    assert "unbalanced quote" in found[0].message
    assert found[1].message == query_problem("(a")
    assert found[2].message.startswith("unknown field 'body'; fields are title,")


@pytest.mark.parametrize(
    ("parts", "allowed"),
    [
        ({"none_terms": ("体育",)}, True),
        ({"query": "-体育"}, True),
        ({}, False),
    ],
)
def test_rule_problems_with_match_everything_allows_only_excluding_rules(
    parts: dict[str, Any], allowed: bool
) -> None:
    strict = _problems(**parts)
    lenient = _problems(**parts, match_everything=True)

    assert strict != []
    assert (lenient == []) is allowed


def test_positive_term_problems_with_only_none_says_it_matches_everything() -> None:
    assert positive_term_problems(None, [], ["体育"], None) == [
        RuleProblem(
            (),
            "a rule needs at least one term under any or all (with only none it "
            "would match every article)",
        )
    ]


def test_positive_term_problems_with_invalid_parts_leaves_them_to_other_checks() -> None:
    assert positive_term_problems("韩日", None, None, "-体育") == []
    assert positive_term_problems(None, None, None, "(a") == []


def test_field_name_maps_aliases_and_rejects_unknown_fields() -> None:
    assert field_name("category") == "categories"
    with pytest.raises(ValueError, match="unknown field 'body'"):
        field_name("body")
