"""Tests for monitor.rules: term syntax, rule trees, and the one-automaton matcher."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor.config import RuleConfig
from monitor.errors import ConfigError
from monitor.items import Article
from monitor.rules import (
    And,
    Not,
    Or,
    RuleSet,
    Term,
    evaluate,
    parse_term,
    rule_tree,
    term_problem,
    tree_terms,
    with_default_fields,
)
from monitor.text import normalize, normalize_with_offsets

RULE_CASES = yaml.safe_load((Path(__file__).parent / "data" / "rule_cases.yaml").read_text())


def make_article(**fields: Any) -> Article:
    values: dict[str, Any] = {"title": "", "summary": "", "content": ""}
    values.update(fields)
    if "categories" in values:
        values["categories"] = tuple(values["categories"])
    return Article(guid=None, link=values.pop("link", None), canonical_link=None, **values)


def make_rule(name: str = "rule", **options: Any) -> RuleConfig:
    """Build a RuleConfig from the rules.yaml spelling (any/all/none) or the field names."""
    for short in ("any", "all", "none"):
        if short in options:
            options[f"{short}_terms"] = options.pop(short)
    for key in ("any_terms", "all_terms", "none_terms", "fields", "feeds"):
        if key in options:
            options[key] = tuple(options[key])
    return RuleConfig(name=name, **options)


def matched_names(rules: RuleSet, article: Article, feed: str = "rfi-cn") -> list[str]:
    return [match.rule_name for match in rules.match(article, feed)]


# ----------------------------------------------------------------------------- the table


@pytest.mark.parametrize("case", RULE_CASES, ids=[case["id"] for case in RULE_CASES])
def test_match_rule_case_returns_expected(case: dict[str, Any]) -> None:
    rules = RuleSet.compile([make_rule(case["id"], **case["rule"])])
    article = make_article(**case["article"])

    matched = matched_names(rules, article, case.get("feed", "rfi-cn")) == [case["id"]]

    assert matched is case["expect"]


def test_rule_cases_table_has_at_least_30_distinct_cases() -> None:
    ids = [case["id"] for case in RULE_CASES]
    assert len(ids) >= 30
    assert len(set(ids)) == len(ids)


# ----------------------------------------------------------------------------- terms


@pytest.mark.parametrize(
    "term",
    [
        "韩日",
        "AI",
        "ＡＩ",
        "sanction*",
        "ＳＡＮＣＴＩＯＮ＊",
        '"exact phrase"',
        '"sanction*"',
        "Nvidia AI",
    ],
)
def test_term_problem_valid_term_returns_none(term: str) -> None:
    assert term_problem(term) is None


@pytest.mark.parametrize(
    ("term", "fragment"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("\u3000", "empty"),
        ('""', "empty"),
        ('"  "', "empty"),
        ('"韩日', "unbalanced quote"),
        ('韩日"', "unbalanced quote"),
        ('"a" "b"', "enclose the whole term"),
        ('say "hi" now', "enclose the whole term"),
        ("*", "end of a Latin word"),
        ("sanc*tion", "end of a Latin word"),
        ("*sanction", "end of a Latin word"),
        ("sanction**", "end of a Latin word"),
        ("sanction *", "end of a Latin word"),
        ("韩日*", "end of a Latin word"),
    ],
)
def test_term_problem_invalid_term_returns_message(term: str, fragment: str) -> None:
    problem = term_problem(term)

    assert problem is not None
    assert fragment in problem


def test_parse_term_word_returns_normalised_text_and_source() -> None:
    assert parse_term("韓日") == Term(text="韩日", prefix=False, source="韓日")


def test_parse_term_phrase_strips_quotes() -> None:
    term = parse_term('"Exact Phrase"')

    assert (term.text, term.prefix, term.source) == ("exact phrase", False, '"Exact Phrase"')


def test_parse_term_phrase_keeps_star_literal() -> None:
    term = parse_term('"sanction*"')

    assert (term.text, term.prefix) == ("sanction*", False)


def test_parse_term_star_returns_prefix_term() -> None:
    term = parse_term("Sanction*")

    assert (term.text, term.prefix) == ("sanction", True)


def test_parse_term_fullwidth_star_returns_prefix_term() -> None:
    term = parse_term("ＳＡＮＣＴＩＯＮ＊")

    assert (term.text, term.prefix) == ("sanction", True)


def test_parse_term_invalid_term_raises_value_error() -> None:
    with pytest.raises(ValueError, match="unbalanced quote"):
        parse_term('"韩日')


# ----------------------------------------------------------------------------- trees


def test_rule_tree_list_form_returns_and_of_or_terms_and_not() -> None:
    rule = make_rule(any=["韩日", "日韩"], all=["劳工"], none=["体育"], fields=["title"])
    fields = ("title",)

    tree = rule_tree(rule)

    assert tree == And(
        (
            Or(
                (
                    Term("韩日", fields=fields, source="韩日"),
                    Term("日韩", fields=fields, source="日韩"),
                )
            ),
            Term("劳工", fields=fields, source="劳工"),
            Not(Or((Term("体育", fields=fields, source="体育"),))),
        )
    )


def test_rule_tree_only_all_terms_returns_and_without_or() -> None:
    tree = rule_tree(make_rule(all=["a", "b"]))

    assert isinstance(tree, And)
    assert [type(child) for child in tree.children] == [Term, Term]


def test_with_default_fields_term_with_own_fields_keeps_them() -> None:
    # What a query's `title:韩日` will rely on: the rule's fields fill in only the blanks.
    tree = And((Term("韩日", fields=("title",)), Not(Term("体育"))))

    assert with_default_fields(tree, ("title", "content")) == And(
        (Term("韩日", fields=("title",)), Not(Term("体育", fields=("title", "content"))))
    )


def test_evaluate_not_with_found_term_returns_false() -> None:
    tree = And((Term("a"), Not(Term("b"))))

    assert evaluate(tree, lambda term: True) is False
    assert evaluate(tree, lambda term: term.text == "a") is True


def test_tree_terms_splits_positive_and_negated_terms() -> None:
    tree = rule_tree(make_rule(any=["a"], all=["b"], none=["c"]))

    assert [term.text for term in tree_terms(tree)] == ["a", "b"]
    assert [term.text for term in tree_terms(tree, positive=False)] == ["c"]


# ----------------------------------------------------------------------------- compile


def test_ruleset_compile_disabled_rule_skipped() -> None:
    rules = RuleSet.compile(
        [
            make_rule("on", any=["韩日"]),
            make_rule("off", any=["韩日"], enabled=False),
            make_rule("also-on", any=["韩日"]),
        ]
    )

    assert rules.rule_names() == ("on", "also-on")
    assert matched_names(rules, make_article(title="韩日")) == ["on", "also-on"]


def test_ruleset_compile_invalid_terms_raises_config_error_listing_each() -> None:
    rules = [
        make_rule("bad-quote", any=['"韩日'], source_file="rules.yaml", source_line=3),
        make_rule("bad-star", all=["ok", "韩*"], source_file="rules.yaml", source_line=9),
    ]

    with pytest.raises(ConfigError) as caught:
        RuleSet.compile(rules)

    messages = [str(problem) for problem in caught.value.problems]
    assert len(messages) == 2
    assert messages[0].startswith("rules.yaml:3: rules (bad-quote).any[0]: ")
    assert "unbalanced quote" in messages[0]
    assert messages[1].startswith("rules.yaml:9: rules (bad-star).all[1]: ")


def test_ruleset_compile_invalid_disabled_rule_ignored() -> None:
    rules = RuleSet.compile([make_rule("off", any=['"韩日'], enabled=False)])

    assert rules.rule_names() == ()


def test_ruleset_compile_unknown_field_raises_config_error() -> None:
    with pytest.raises(ConfigError, match="fields must be among"):
        RuleSet.compile([make_rule(any=["韩日"], fields=["body"])])


def test_ruleset_compile_rule_without_terms_raises_config_error() -> None:
    with pytest.raises(ConfigError, match="at least one term"):
        RuleSet.compile([make_rule()])


def test_ruleset_compile_no_rules_matches_nothing() -> None:
    rules = RuleSet.compile([])

    assert rules.rule_names() == ()
    assert rules.match(make_article(title="韩日"), "rfi-cn") == []


# ----------------------------------------------------------------------------- match


def test_match_several_rules_returns_them_in_rule_order() -> None:
    rules = RuleSet.compile(
        [
            make_rule("b", any=["劳工"]),
            make_rule("a", any=["韩日"]),
            make_rule("c", any=["体育"]),
        ]
    )

    assert matched_names(rules, make_article(title="韩日", content="劳工")) == ["b", "a"]


def test_match_terms_by_field_lists_written_terms_in_rule_order() -> None:
    rules = RuleSet.compile(
        [make_rule("kj", any=["日韓", "韓日", "AI"], all=["劳工"], none=["体育"])]
    )
    article = make_article(title="韩日与日韩", summary="", content="强征劳工和ＡＩ")

    [match] = rules.match(article, "rfi-cn")

    assert match.terms_by_field == {"title": ("日韓", "韓日"), "content": ("AI", "劳工")}
    assert match.matched_terms == ("日韓", "韓日", "AI", "劳工")


def test_match_terms_by_field_ignores_fields_outside_rule() -> None:
    rules = RuleSet.compile([make_rule("kj", any=["韩日"], fields=["content"])])
    article = make_article(title="韩日", content="又是韩日")

    [match] = rules.match(article, "rfi-cn")

    assert match.terms_by_field == {"content": ("韩日",)}
    assert match.first_hit == ("content", 2)


def test_match_first_hit_points_at_earliest_term_in_field() -> None:
    rules = RuleSet.compile([make_rule("kj", any=["劳工", "韩日"])])
    article = make_article(summary="时隔9年韓日重启，讨论强征劳工")

    [match] = rules.match(article, "rfi-cn")

    assert match.first_hit == ("summary", 4)


def test_match_first_hit_prefers_earlier_field_over_earlier_offset() -> None:
    rules = RuleSet.compile([make_rule("kj", any=["韩日"])])
    article = make_article(title="时隔九年的外长对话：韩日", summary="韩日")

    [match] = rules.match(article, "rfi-cn")

    assert match.first_hit == ("title", 10)


def test_match_first_hit_skips_occurrence_without_boundary() -> None:
    rules = RuleSet.compile([make_rule("ai", any=["AI"])])
    article = make_article(content="He said the AI boom")

    [match] = rules.match(article, "rfi-cn")

    assert match.first_hit == ("content", 12)


def test_match_first_hit_offset_locates_term_in_normalised_text() -> None:
    rules = RuleSet.compile([make_rule("labour", any=["強徵勞工"])])
    content = "ＡＩ……二戰強徵勞工索賠"
    article = make_article(content=content)

    [match] = rules.match(article, "rfi-cn")
    field, offset = match.first_hit or ("", -1)
    normalised, origins = normalize_with_offsets(content)

    assert field == "content"
    assert normalised[offset : offset + 4] == normalize("強徵勞工")
    # The ellipsis became six dots, so the original offset is found through the map.
    assert content[origins[offset] : origins[offset + 4]] == "強徵勞工"


def test_match_prefix_and_whole_word_terms_on_same_text_both_work() -> None:
    rules = RuleSet.compile(
        [make_rule("exact", any=["sanction"]), make_rule("prefix", any=["sanction*"])]
    )

    assert matched_names(rules, make_article(content="sanctions")) == ["prefix"]
    assert matched_names(rules, make_article(content="sanction")) == ["exact", "prefix"]


def test_match_term_in_two_rules_with_different_fields_respects_each() -> None:
    rules = RuleSet.compile(
        [
            make_rule("title-only", any=["韩日"], fields=["title"]),
            make_rule("content-only", any=["韩日"], fields=["content"]),
        ]
    )

    assert matched_names(rules, make_article(content="韩日")) == ["content-only"]


def test_match_only_none_terms_matches_article_without_them() -> None:
    # The config loader forbids this; the matcher still gives it a meaning, and must check
    # such a rule on every article even though it has no term to be hit.
    rules = RuleSet.compile([make_rule("not-sport", none=["体育"])])

    assert matched_names(rules, make_article(title="韩日")) == ["not-sport"]
    assert matched_names(rules, make_article(title="体育")) == []


def test_match_none_term_found_rule_without_positive_hit_not_evaluated() -> None:
    rules = RuleSet.compile([make_rule("kj", any=["韩日"], none=["体育"])])

    assert matched_names(rules, make_article(title="体育")) == []


def test_match_fields_nobody_asks_for_ignored() -> None:
    rules = RuleSet.compile([make_rule("kj", any=["韩日"])])
    article = make_article(title="新闻", author="韩日", categories=["韩日"], link="韩日")

    assert rules.match(article, "rfi-cn") == []


# ----------------------------------------------------------------------------- scale


def test_match_10000_rules_returns_exactly_the_expected_rules() -> None:
    """10,000 generated rules sharing one automaton: the right ones match, no others.

    Rule i: any [word{i}, 词{i}], all [also{i}] for i % 3 == 0, none [veto{i}] for i % 4 == 0,
    fields [title] for i % 6 == 5, feeds [other] for i % 10 == 9. The terms end in digits,
    so word12 must not be found inside word123: the boundary rule is tested at scale too.
    """
    count = 10_000
    rules = []
    for i in range(count):
        options: dict[str, Any] = {"any": [f"word{i}", f"词{i}"]}
        if i % 3 == 0:
            options["all"] = [f"also{i}"]
        if i % 4 == 0:
            options["none"] = [f"veto{i}"]
        if i % 6 == 5:
            options["fields"] = ["title"]
        if i % 10 == 9:
            options["feeds"] = ["other"]
        rules.append(make_rule(f"r{i}", **options))
    compiled = RuleSet.compile(rules)

    generator = random.Random(20231005)
    in_title = set(generator.sample(range(count), 150))
    in_content = set(generator.sample(range(count), 150))
    also = set(generator.sample(range(count), 3000))
    veto = set(generator.sample(range(count), 3000))
    title = " ".join(f"word{i}" for i in sorted(in_title))
    # CJK terms written in Traditional where the article is, run together without spaces:
    # 词12 must still not be found inside 詞123 (a digit follows).
    content = "".join(f"詞{i}，" for i in sorted(in_content)) + " ".join(
        [*(f"also{i}" for i in sorted(also)), *(f"veto{i}" for i in sorted(veto))]
    )
    article = make_article(title=title, content=content)

    def expected(i: int, feed: str) -> bool:
        found = i in in_title or (i in in_content and i % 6 != 5)
        return (
            found
            and (i % 3 != 0 or i in also)
            and (i % 4 != 0 or i not in veto)
            and (i % 10 != 9 or feed == "other")
        )

    for feed in ("rfi-cn", "other"):
        want = [f"r{i}" for i in range(count) if expected(i, feed)]
        assert matched_names(compiled, article, feed) == want
        assert len(want) > 50
