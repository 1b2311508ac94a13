"""Tests for monitor.matching (compile, automaton, scan, ruleset, explain): term syntax, rule
trees, and the one-automaton matcher."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.config import RuleConfig
from monitor.matching.compile import holds_without_terms, rule_tree
from monitor.matching.explain import TermHit, near_spans, term_spans
from monitor.matching.query import (
    And,
    Near,
    Not,
    Or,
    Regex,
    Term,
    compile_regex,
    evaluate,
    parse_term,
    term_problem,
    tree_atoms,
    tree_terms,
    with_default_fields,
)
from monitor.matching.ruleset import RuleSet
from monitor.matching.text import normalize, normalize_with_offsets, original_span
from monitor.model import ARTICLE_FIELDS, Article, ConfigError, RuleFailure

RULE_CASES = yaml.safe_load((Path(__file__).parents[1] / "data" / "rule_cases.yaml").read_text())


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


QUERY_CASES = [case for case in RULE_CASES if "query" in case["rule"]]
EXPLAINED_CASES = [case for case in RULE_CASES if "explain" in case]


def case_article(case: dict[str, Any]) -> Article:
    """Given a rule case, return its article (`text` is short for the content)."""
    if "text" in case:
        return make_article(content=case["text"])
    return make_article(**case["article"])


@pytest.mark.parametrize("case", RULE_CASES, ids=[case["id"] for case in RULE_CASES])
def test_match_rule_case_returns_expected(case: dict[str, Any]) -> None:
    rules = RuleSet.compile([make_rule(case["id"], **case["rule"])])
    article = case_article(case)

    matched = matched_names(rules, article, case.get("feed", "rfi-cn")) == [case["id"]]

    assert matched is case["expect"]


@pytest.mark.parametrize("case", EXPLAINED_CASES, ids=[case["id"] for case in EXPLAINED_CASES])
def test_explain_rule_case_returns_expected_hits(case: dict[str, Any]) -> None:
    rules = RuleSet.compile([make_rule(case["id"], **case["rule"])])
    article = case_article(case)

    hits = rules.explain(article, case["id"])

    shown = [
        [hit.field, hit.term, article.field_text(hit.field)[hit.start : hit.end]] for hit in hits
    ]
    assert shown == case["explain"]


def test_rule_cases_table_has_at_least_30_distinct_cases() -> None:
    ids = [case["id"] for case in RULE_CASES]
    assert len(ids) - len(QUERY_CASES) >= 30
    assert len(set(ids)) == len(ids)


def test_rule_cases_table_has_at_least_60_query_cases() -> None:
    assert len(QUERY_CASES) >= 60
    assert len(EXPLAINED_CASES) >= 15


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
    with pytest.raises(ConfigError, match="unknown field 'body'; fields are title,"):
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


# ----------------------------------------------------------------------------- queries


def test_rule_tree_with_query_ands_it_with_the_list_form_and_fills_fields() -> None:
    rule = make_rule(any=["韩日"], query="劳工 OR title:索赔", fields=["content"])
    fields = ("content",)

    tree = rule_tree(rule)

    assert tree == And(
        (
            Or((Term("韩日", fields=fields, source="韩日"),)),
            Or(
                (
                    Term("劳工", fields=fields, source="劳工"),
                    Term("索赔", fields=("title",), source="索赔"),
                )
            ),
        )
    )


def test_rule_tree_with_near_and_regex_fills_fields_of_both() -> None:
    tree = rule_tree(make_rule(query="韩日 NEAR/3 劳工 /韓國/", fields=["title"]))
    title = ("title",)

    assert tree == And(
        (
            And(
                (
                    Near(
                        Term("韩日", fields=title, source="韩日"),
                        Term("劳工", fields=title, source="劳工"),
                        3,
                        title,
                    ),
                    Regex("韩国", fields=title, source="/韓國/"),
                )
            ),
        )
    )


def test_tree_atoms_keeps_near_whole_and_tree_terms_spells_it_out() -> None:
    tree = rule_tree(make_rule(query="a NEAR/2 b /x/ -c"))

    assert [type(atom).__name__ for atom in tree_atoms(tree)] == ["Near", "Regex"]
    assert [term.text for term in tree_terms(tree)] == ["a", "b"]
    assert [term.text for term in tree_terms(tree, positive=False)] == ["c"]


@pytest.mark.parametrize(
    ("query", "holds"),
    [
        ("韩日", False),
        ("/韓國/", True),
        ("-体育", True),
        ("韩日 OR -体育", True),
        ("韩日 /x/", False),
        ("/x/ OR 韩日", True),
        ("-/x/", True),
        ("韩日 NEAR/2 劳工", False),
        ("NOT (韩日 NEAR/2 劳工)", True),
    ],
)
def test_holds_without_terms_finds_rules_to_evaluate_on_every_article(
    query: str, holds: bool
) -> None:
    assert holds_without_terms(rule_tree(make_rule(query=query))) is holds


def test_ruleset_compile_rule_with_only_a_query_compiles() -> None:
    rules = RuleSet.compile([make_rule("q", query="韩日")])

    assert rules.rule_names() == ("q",)


def test_ruleset_compile_bad_query_raises_config_error_with_column_and_caret() -> None:
    rules = [
        make_rule("ok", query="韩日", source_file="rules.yaml", source_line=1),
        make_rule("open", query="(韩日 OR 日韩", source_file="rules.yaml", source_line=3),
        make_rule("regex", query="韩日 /a(/", source_file="rules.yaml", source_line=5),
    ]

    with pytest.raises(ConfigError) as caught:
        RuleSet.compile(rules)

    messages = [str(problem) for problem in caught.value.problems]
    assert messages == [
        "rules.yaml:3: rules (open).query: unbalanced parenthesis at column 1\n"
        "    (韩日 OR 日韩\n"
        "    ^",
        # The caret allows for the two terminal cells of each CJK character.
        "rules.yaml:5: rules (regex).query: invalid regex: missing ) at column 7\n"
        "    韩日 /a(/\n"
        "            ^",
    ]


def test_match_near_lists_both_operands_where_the_near_holds() -> None:
    rules = RuleSet.compile([make_rule("near", query="韩日 NEAR/2 劳工 OR 索赔")])
    article = make_article(title="韩日和劳工", content="韩日外长会谈……劳工")

    [match] = rules.match(article, "rfi-cn")

    assert match.terms_by_field == {"title": ("韩日", "劳工")}
    assert match.first_hit == ("title", 0)


def test_match_regex_reports_its_field_and_character_offset() -> None:
    rules = RuleSet.compile([make_rule("regex", query="/韓國/")])
    article = make_article(title="新闻", summary="ＡＩ……时代的韓國")

    [match] = rules.match(article, "rfi-cn")

    # The ellipsis is six dots once normalised: 2 + 6 + 3 characters before 韩国.
    assert match.terms_by_field == {"summary": ("/韓國/",)}
    assert match.first_hit == ("summary", 11)


def test_match_pure_regex_rule_runs_on_article_without_any_term() -> None:
    rules = RuleSet.compile([make_rule("terms", any=["韩日"]), make_rule("regex", query="/g\\d+/")])

    assert matched_names(rules, make_article(title="Ｇ２０峰會")) == ["regex"]


def test_match_near_in_many_rules_uses_each_rules_distance() -> None:
    count = 2_000
    rules = RuleSet.compile(
        [make_rule(f"r{i}", query=f"word{i} NEAR/{i % 7} 词{i}") for i in range(count)]
    )
    # Rule i's operands i % 7 + 1 characters apart: one too many for every rule.
    far = " ".join(f"word{i}{' ' * (i % 7 + 1)}词{i}" for i in range(0, count, 3))
    near = " ".join(f"word{i}{' ' * (i % 7)}词{i}" for i in range(1, count, 3))

    assert matched_names(rules, make_article(content=far)) == []
    assert matched_names(rules, make_article(content=near)) == [f"r{i}" for i in range(1, count, 3)]


# ----------------------------------------------------------------------------- regex time


CATASTROPHIC = "/(a+)+$/"


def test_match_with_failures_catastrophic_regex_reports_failure_and_goes_on() -> None:
    rules = RuleSet.compile(
        [
            make_rule("slow", query=CATASTROPHIC),
            make_rule("fast", any=["韩日"]),
        ],
        regex_time_limit_seconds=0.05,
    )
    article = make_article(title="韩日", content="a" * 5000 + "!")

    matches, failures = rules.match_with_failures(article, "rfi-cn")

    assert [match.rule_name for match in matches] == ["fast"]
    [failure] = failures
    assert isinstance(failure, RuleFailure)
    assert failure.rule_name == "slow"
    assert CATASTROPHIC in failure.message
    assert "ran out of time" in failure.message


def test_match_with_failures_negated_slow_regex_does_not_make_rule_match() -> None:
    rules = RuleSet.compile(
        [make_rule("not-slow", query=f"韩日 -{CATASTROPHIC}")], regex_time_limit_seconds=0.05
    )
    article = make_article(title="韩日", content="a" * 5000 + "!")

    matches, failures = rules.match_with_failures(article, "rfi-cn")

    assert matches == []
    assert [failure.rule_name for failure in failures] == ["not-slow"]


def test_match_with_failures_regex_gated_by_missing_term_never_runs() -> None:
    rules = RuleSet.compile(
        [make_rule("gated", query=f"韩日 {CATASTROPHIC}")], regex_time_limit_seconds=0.05
    )
    article = make_article(title="新闻", content="a" * 5000 + "!")

    assert rules.match_with_failures(article, "rfi-cn") == ([], [])


def test_match_with_failures_shared_slow_regex_fails_every_rule_using_it() -> None:
    rules = RuleSet.compile(
        [make_rule("one", query=CATASTROPHIC), make_rule("two", query=f"韩日 {CATASTROPHIC}")],
        regex_time_limit_seconds=0.05,
    )
    article = make_article(content="韩日 " + "a" * 5000 + "!")

    matches, failures = rules.match_with_failures(article, "rfi-cn")

    assert matches == []
    assert [failure.rule_name for failure in failures] == ["one", "two"]


def test_match_slow_regex_returns_other_matches_and_logs_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rules = RuleSet.compile(
        [make_rule("slow", query=CATASTROPHIC), make_rule("fast", query="aaa* OR 韩日")],
        regex_time_limit_seconds=0.05,
    )

    matches = rules.match(make_article(content="a" * 5000 + "!"), "rfi-cn")

    assert [match.rule_name for match in matches] == ["fast"]
    assert "rule slow skipped" in caplog.text


def test_match_with_failures_without_regex_reports_no_failure() -> None:
    rules = RuleSet.compile([make_rule("kj", query="韩日")])

    matches, failures = rules.match_with_failures(make_article(title="韩日"), "rfi-cn")

    assert [match.rule_name for match in matches] == ["kj"]
    assert failures == []


# ----------------------------------------------------------------------------- explain


def shown_hits(article: Article, hits: tuple[TermHit, ...]) -> list[tuple[str, str, str]]:
    return [
        (hit.field, hit.term, article.field_text(hit.field)[hit.start : hit.end]) for hit in hits
    ]


def test_explain_list_form_sorts_by_field_order_then_start() -> None:
    rules = RuleSet.compile([make_rule("kj", any=["韩日", "日韩"], all=["劳工"], none=["体育"])])
    article = make_article(
        title="日韩与韩日", summary="", content="强征劳工，韩日体育", categories=["韩日"]
    )

    hits = rules.explain(article, "kj")

    assert hits == (
        TermHit("title", "日韩", 0, 2),
        TermHit("title", "韩日", 3, 5),
        TermHit("content", "劳工", 2, 4),
        TermHit("content", "韩日", 5, 7),
    )


def test_explain_offsets_point_into_original_text_after_expansion() -> None:
    rules = RuleSet.compile([make_rule("labour", any=["强征劳工", "AI"])])
    content = "ＡＩ……二戰強徵勞工索賠"
    article = make_article(content=content)

    hits = rules.explain(article, "labour")

    assert shown_hits(article, hits) == [
        ("content", "AI", "ＡＩ"),
        ("content", "强征劳工", "強徵勞工"),
    ]


def test_explain_term_that_normalises_across_an_expansion_covers_it_whole() -> None:
    rules = RuleSet.compile([make_rule("dots", any=['"..."'])])
    article = make_article(content="等等…")

    assert shown_hits(article, rules.explain(article, "dots")) == [("content", '"..."', "…")]


def test_explain_skips_occurrences_without_boundary() -> None:
    rules = RuleSet.compile([make_rule("ai", any=["AI"])])
    article = make_article(content="He said AI, Ai and OpenAI")

    hits = rules.explain(article, "ai")

    assert [(hit.start, hit.end) for hit in hits] == [(8, 10), (12, 14)]


def test_explain_negated_terms_are_not_listed() -> None:
    rules = RuleSet.compile([make_rule("q", query="韩日 -体育 NOT /娱乐/")])
    article = make_article(content="韩日体育娱乐")

    assert shown_hits(article, rules.explain(article, "q")) == [("content", "韩日", "韩日")]


def test_explain_near_lists_only_operands_in_a_near_pair() -> None:
    rules = RuleSet.compile([make_rule("near", query="韩日 NEAR/1 劳工")])
    article = make_article(content="劳工，是的。韩日外长会谈，韩日的劳工")

    hits = rules.explain(article, "near")

    assert [(hit.term, hit.start) for hit in hits] == [("韩日", 13), ("劳工", 16)]


def test_explain_near_in_both_orders() -> None:
    rules = RuleSet.compile([make_rule("near", query="韩日 NEAR/1 劳工")])
    article = make_article(content="劳工的韩日")

    hits = rules.explain(article, "near")

    assert [(hit.term, hit.start) for hit in hits] == [("劳工", 0), ("韩日", 3)]


def test_explain_regex_lists_every_match_as_written() -> None:
    rules = RuleSet.compile([make_rule("regex", query="title:/韓國|朝鮮/")])
    article = make_article(title="韩国与朝鲜，以及韓國", content="韩国")

    assert shown_hits(article, rules.explain(article, "regex")) == [
        ("title", "/韓國|朝鮮/", "韩国"),
        ("title", "/韓國|朝鮮/", "朝鲜"),
        ("title", "/韓國|朝鮮/", "韓國"),
    ]


def test_explain_prefix_term_covers_whole_word() -> None:
    rules = RuleSet.compile([make_rule("prefix", any=["sanction*"])])
    article = make_article(content="Sanctions, sanctioned, unsanctioned")

    assert shown_hits(article, rules.explain(article, "prefix")) == [
        ("content", "sanction*", "Sanctions"),
        ("content", "sanction*", "sanctioned"),
    ]


def test_explain_categories_offsets_are_into_joined_categories() -> None:
    rules = RuleSet.compile([make_rule("asia", query="category:亞洲")])
    article = make_article(title="新闻", categories=["国际", "亚洲"])

    [hit] = rules.explain(article, "asia")

    assert (hit.field, hit.start, hit.end) == ("categories", 3, 5)


def test_explain_does_not_check_whether_rule_matches() -> None:
    rules = RuleSet.compile([make_rule("kj", all=["韩日", "劳工"])])
    article = make_article(title="韩日")

    assert rules.explain(article, "kj") == (TermHit("title", "韩日", 0, 2),)


def test_explain_catastrophic_regex_returns_without_stalling() -> None:
    rules = RuleSet.compile([make_rule("slow", query=CATASTROPHIC)], regex_time_limit_seconds=0.05)

    assert rules.explain(make_article(content="a" * 5000 + "!"), "slow") == ()


def test_explain_unknown_or_disabled_rule_raises_key_error() -> None:
    rules = RuleSet.compile([make_rule("off", any=["韩日"], enabled=False)])

    with pytest.raises(KeyError):
        rules.explain(make_article(title="韩日"), "off")


# ------------------------------------------------- explain: the per-article fast path
# Backtest explains every hit through RuleSet.explaining_match(): one ArticleExplainer per
# article, which reuses the normalised fields and the automaton's hits of matching. It must
# give exactly what explain() gave when it normalised every field with offsets and looked
# for every positive atom in every field: reference_explain() below.


def reference_explain(article: Article, rule: RuleConfig) -> tuple[TermHit, ...]:
    spans: set[tuple[str, int, int, str]] = set()
    texts: dict[str, tuple[str, tuple[int, ...]]] = {}
    for atom in tree_atoms(rule_tree(rule)):
        for field in atom.fields or ():
            texts.setdefault(field, normalize_with_offsets(article.field_text(field)))
            text = texts[field][0]
            if isinstance(atom, Term):
                found = [(start, end, atom.source) for start, end in term_spans(text, atom)]
            elif isinstance(atom, Near):
                left, right = near_spans(text, atom)
                found = [(start, end, atom.left.source) for start, end in left]
                found += [(start, end, atom.right.source) for start, end in right]
            else:
                pattern = compile_regex(atom.pattern)
                found = [
                    (match.start(), match.end(), atom.source)
                    for match in pattern.finditer(text)
                    if match.end() > match.start()
                ]
            spans.update((field, start, end, written) for start, end, written in found)
    hits = {
        TermHit(field, written, *original_span(texts[field][1], start, end))
        for field, start, end, written in spans
    }
    order = {field: position for position, field in enumerate(ARTICLE_FIELDS)}
    return tuple(sorted(hits, key=lambda hit: (order[hit.field], hit.start, hit.end, hit.term)))


# Words of the articles, Traditional and full-width spellings included, and words that a
# term only touches (said for ai, sanctions for sanction).
ARTICLE_WORDS = (
    "韩日", "韓日", "强征劳工", "強徵勞工", "会谈", "會談", "外长", "外長", "AI", "ＡＩ", "ai",
    "said", "sanction", "sanctions", "Sanctions", "芯片", "半导体", "導體", "…", "℃", "Straße",
    "cafe\u0301", "，", "。", " ", "\n", "（", "）", "5", "ｶﾞ",
)  # fmt: skip
RULE_TERMS = (
    "韩日", "韓日", "强征劳工", "会谈", "外长", "AI", "ai", "sanction", "sanction*", "芯片",
    "导体", "半导体", "strasse", "café", '"韩日 会谈"',
)  # fmt: skip
QUERIES = (
    "韩日 NEAR/5 会谈",
    "AI OR 芯片",
    "title:韩日 -外长",
    "/韓.{0,3}日/",
    "sanction* 韩日",
    "(强征劳工 OR 导体) 会谈",
)

articles_strategy = st.builds(
    lambda title, summary, content, categories: make_article(
        title="".join(title), summary="".join(summary), content="".join(content),
        categories=["".join(category) for category in categories],
    ),
    st.lists(st.sampled_from(ARTICLE_WORDS), max_size=8),
    st.lists(st.sampled_from(ARTICLE_WORDS), max_size=25),
    st.lists(st.sampled_from(ARTICLE_WORDS), max_size=40),
    st.lists(st.lists(st.sampled_from(ARTICLE_WORDS), min_size=1, max_size=3), max_size=2),
)  # fmt: skip
rules_strategy = st.lists(
    st.one_of(
        st.builds(
            lambda terms, fields: {"any": terms, "fields": fields},
            st.lists(st.sampled_from(RULE_TERMS), min_size=1, max_size=4),
            st.sampled_from(
                [["title", "summary", "content"], ["title"], ["content", "categories"]]
            ),
        ),
        st.builds(
            lambda query, extra: {"query": query, "any": extra},
            st.sampled_from(QUERIES),
            st.lists(st.sampled_from(RULE_TERMS), max_size=2),
        ),
    ),
    min_size=1,
    max_size=6,
)


@given(articles=st.lists(articles_strategy, min_size=1, max_size=4), rule_specs=rules_strategy)
@settings(max_examples=150, deadline=None, database=None)
def test_explaining_match_explains_each_hit_as_reference(
    articles: list[Article], rule_specs: list[dict[str, Any]]
) -> None:
    rules = [make_rule(f"r{index}", **spec) for index, spec in enumerate(rule_specs)]
    by_name = {rule.name: rule for rule in rules}
    rule_set = RuleSet.compile(rules)
    # Many articles at once (what `rules test` does) must give what one at a time gives.
    batched = rule_set.explaining_matches([(article, "rfi-cn") for article in articles])
    for article, (batch_names, batch_failures, batch_explainer) in zip(
        articles, batched, strict=True
    ):
        names, failures, explainer = rule_set.explaining_match(article, "rfi-cn")
        assert (batch_names, batch_failures) == (names, failures)
        for name in names:
            assert batch_explainer.summary(name) == explainer.summary(name)
            assert batch_explainer.explain(name) == explainer.explain(name)
            assert batch_explainer.terms_in_order(name) == explainer.terms_in_order(name)

        matches, expected_failures = rule_set.match_with_failures(article, "rfi-cn")
        assert names == [match.rule_name for match in matches]
        assert failures == expected_failures
        for match in matches:
            assert explainer.summary(match.rule_name) == match
            expected = reference_explain(article, by_name[match.rule_name])
            assert explainer.explain(match.rule_name) == expected
            assert rule_set.explain(article, match.rule_name) == expected
            # `rules test --json` takes a hit's terms from terms_in_order() when it answers,
            # from explain() otherwise: both must give the same JSON.
            in_order = explainer.terms_in_order(match.rule_name)
            assert in_order is None or in_order == fields_in_explain_order(expected)


def test_explaining_matches_applies_each_article_its_own_feed() -> None:
    rules = RuleSet.compile(
        [make_rule("asia", any=["韩日"], feeds=["asia"]), make_rule("all", any=["韩日"])]
    )
    article = make_article(title="韩日")

    results = rules.explaining_matches([(article, "asia"), (article, "cn"), (article, "asia")])

    assert [names for names, _, _ in results] == [["asia", "all"], ["all"], ["asia", "all"]]


def fields_in_explain_order(hits: tuple[TermHit, ...]) -> dict[str, tuple[str, ...]]:
    """Each field's terms, once each, in the order explain() shows them first."""
    fields: dict[str, tuple[str, ...]] = {}
    for hit in hits:
        if hit.term not in fields.get(hit.field, ()):
            fields[hit.field] = (*fields.get(hit.field, ()), hit.term)
    return fields


def test_terms_in_order_answers_for_plain_terms_and_leaves_the_rest_to_explain() -> None:
    rules = RuleSet.compile(
        [
            make_rule("plain", any=["会谈", "韩日", "韓日", "AI"]),
            make_rule("near", query="韩日 NEAR/5 会谈"),
            make_rule("regex", query="/韓.{0,3}日/"),
        ]
    )
    # 韩日 and 韓日 start and end at the same place: their text breaks the tie, as in
    # explain(). AI inside "said AI" is whole; the one in "SAID" is not.
    article = make_article(title="会谈：韓日 AI", content="SAID 韓日会谈 said AI")
    names, _, explainer = rules.explaining_match(article, "rfi-cn")

    assert names == ["plain", "near", "regex"]
    assert explainer.terms_in_order("plain") == {
        "title": ("会谈", "韓日", "韩日", "AI"),
        "content": ("韓日", "韩日", "会谈", "AI"),
    }
    assert explainer.terms_in_order("plain") == fields_in_explain_order(explainer.explain("plain"))
    assert explainer.terms_in_order("near") is None
    assert explainer.terms_in_order("regex") is None
    # Normalising changes the offsets (…… becomes six dots): only explain() can tell.
    shifted = make_article(title="……韩日")
    _, _, explainer = rules.explaining_match(shifted, "rfi-cn")
    assert explainer.terms_in_order("plain") is None


def test_explainer_shares_work_between_rules_of_one_article() -> None:
    rules = RuleSet.compile(
        [
            make_rule("a", any=["韩日"]),
            make_rule("b", any=["韩日", "会谈"]),
            make_rule("c", any=["x"]),
        ]
    )
    article = make_article(title="韓日會談", content="据悉……韓日副外長会谈")
    names, _, explainer = rules.explaining_match(article, "rfi-cn")

    assert names == ["a", "b"]
    assert explainer.explain("b") == rules.explain(article, "b")
    assert explainer.explain("a") == rules.explain(article, "a")
    assert explainer.explain("c") == ()  # not matched: nothing of it was found
    # The summary of a match, from the scan matching made or from a scan of its own.
    assert explainer.summary("b") == rules.match(article, "rfi-cn")[1]
    assert rules.explainer(article).summary("a") == rules.match(article, "rfi-cn")[0]
    with pytest.raises(KeyError):
        explainer.explain("unknown")
