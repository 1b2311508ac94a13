"""The search index's tokens (monitor.matching.search_tokens): what an article is indexed
under, and what a query asks of the index. The index may give candidates a query does not
match (the rule engine decides), never miss one it matches: every matching case of the
rule table is checked for that."""

from __future__ import annotations

from typing import Any

import pytest
from test_rules import RULE_CASES, case_article, make_rule

from monitor.matching import (
    AllOf,
    AllTokens,
    AnyOf,
    IndexQuery,
    RuleSet,
    article_tokens,
    index_query,
    parse_query,
    rule_tree,
)
from monitor.model import Article


def holds(query: IndexQuery, tokens: set[str]) -> bool:
    """Whether an article indexed under `tokens` is a candidate for `query`."""
    match query:
        case AllTokens(tokens=wanted, prefix=prefix):
            exact = wanted[:-1] if prefix else wanted
            last_found = not prefix or any(token.startswith(wanted[-1]) for token in tokens)
            return set(exact) <= tokens and last_found
        case AllOf(children=children):
            return all(holds(child, tokens) for child in children)
        case AnyOf(children=children):
            return any(holds(child, tokens) for child in children)
    raise TypeError(query)


def tokens_of(article: Article) -> set[str]:
    return set(article_tokens([article.title, article.summary, article.content]))


def test_cjk_text_is_indexed_as_bigrams_of_its_simplified_form() -> None:
    tokens = tokens_of(case_article({"article": {"title": "韓日副外長"}}))

    assert tokens == {"韩日", "日副", "副外", "外长"}


def test_latin_text_is_indexed_as_folded_words_beside_the_bigrams() -> None:
    tokens = tokens_of(case_article({"article": {"summary": "ＡＩ芯片 G7峰會: Sanctions on U.S."}}))

    assert tokens == {"ai", "芯片", "g7", "峰会", "sanctions", "on", "u", "s"}


def test_a_one_character_run_gives_no_token_and_a_one_character_term_asks_nothing() -> None:
    assert tokens_of(case_article({"article": {"title": "中 美"}})) == set()
    assert index_query(parse_query("韩")) is None
    assert index_query(parse_query("韩 AND 日本")) == AllTokens(("日本",))


def test_a_term_asks_for_all_its_bigrams_in_any_of_its_regional_forms() -> None:
    assert index_query(parse_query("韓日副")) == AllTokens(("韩日", "日副"))
    found = index_query(parse_query("软件"))

    assert isinstance(found, AnyOf)
    assert set(found.children) == {AllTokens(("软件",)), AllTokens(("软体",))}


@pytest.mark.parametrize(
    "query",
    ["韩日 NOT 会谈", "韩日 -会谈", "/韓./", "author:韩日", "韩日 OR /x/"],
)
def test_what_the_index_cannot_narrow_asks_nothing_of_it(query: str) -> None:
    found = index_query(parse_query(query))

    assert found is None or found == AllTokens(("韩日",))


def test_a_latin_prefix_term_asks_for_words_starting_with_it() -> None:
    assert index_query(parse_query("sanction*")) == AllTokens(("sanction",), prefix=True)
    assert index_query(parse_query("韩国 AND sanction")) == AllOf(
        (AllTokens(("韩国",)), AllTokens(("sanction",)))
    )


def _matching_cases() -> list[dict[str, Any]]:
    return [case for case in RULE_CASES if case["expect"]]


@pytest.mark.parametrize("case", _matching_cases(), ids=[c["id"] for c in _matching_cases()])
def test_every_article_a_rule_matches_is_a_candidate_of_its_query(case: dict[str, Any]) -> None:
    rule = make_rule(case["id"], **case["rule"])
    article = case_article(case)
    assert RuleSet.compile([rule]).match(article, case.get("feed", "rfi-cn"))

    wanted = index_query(rule_tree(rule))

    article_fields = {
        "title": article.title,
        "summary": article.summary,
        "content": article.content,
    }
    assert wanted is None or holds(wanted, tokens_of(article)), (wanted, article_fields)
