"""Tests for monitor.matching.query: the query parser, its errors, regex folding, and a property
test of the compiled matcher against a naive reference evaluator."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.config import RuleConfig
from monitor.matching.query import (
    And,
    Near,
    Not,
    Or,
    QuerySyntaxError,
    Regex,
    Term,
    fold_regex,
    parse_query,
)
from monitor.matching.ruleset import RuleSet
from monitor.matching.text import is_latin_char, normalize
from monitor.model import Article

# ----------------------------------------------------------------------------- trees


def term(text: str, source: str | None = None, **options: Any) -> Term:
    return Term(text=text, source=text if source is None else source, **options)


@pytest.mark.parametrize(
    ("query", "tree"),
    [
        ("韩日", term("韩日")),
        ("韓日", term("韩日", "韓日")),
        ("韩日 日韩", And((term("韩日"), term("日韩")))),
        ("韩日 AND 日韩", And((term("韩日"), term("日韩")))),
        ("韩日 OR 日韩", Or((term("韩日"), term("日韩")))),
        ("a OR b c", Or((term("a"), And((term("b"), term("c")))))),
        ("a b OR c", Or((And((term("a"), term("b"))), term("c")))),
        ("NOT a b", And((Not(term("a")), term("b")))),
        ("-a", Not(term("a"))),
        ("-a -b", And((Not(term("a")), Not(term("b"))))),
        ("NOT NOT a", Not(Not(term("a")))),
        ("-(a OR b)", Not(Or((term("a"), term("b"))))),
        ("(a OR b) c", And((Or((term("a"), term("b"))), term("c")))),
        ("a or b", And((term("a"), term("or"), term("b")))),
        ("a and not b", And((term("a"), term("and"), term("not"), term("b")))),
        ('"Trade War"', term("trade war", '"Trade War"')),
        ('"a OR b"', term("a or b", '"a OR b"')),
        ("Sanction*", Term("sanction", prefix=True, source="Sanction*")),
        ("title:韩日", term("韩日", fields=("title",))),
        ("Title:韩日", term("韩日", fields=("title",))),
        ("category:亚洲", term("亚洲", fields=("categories",))),
        ('author:"Jean Dupont"', term("jean dupont", '"Jean Dupont"', fields=("author",))),
        (
            "title:(a OR content:b)",
            Or((term("a", fields=("title",)), term("b", fields=("content",)))),
        ),
        ("a NEAR/5 b", Near(term("a"), term("b"), 5)),
        ("-a NEAR/0 b", Not(Near(term("a"), term("b"), 0))),
        (
            "title:a NEAR/2 b",
            Near(term("a", fields=("title",)), term("b", fields=("title",)), 2, ("title",)),
        ),
        (
            "title:(a NEAR/2 b)",
            Near(term("a", fields=("title",)), term("b", fields=("title",)), 2, ("title",)),
        ),
        ("/韓國/", Regex("韩国", source="/韓國/")),
        ("title:/a b/", Regex("a b", fields=("title",), source="/a b/")),
        (r"/a\/b/", Regex(r"a\/b", source=r"/a\/b/")),
        ("link:https://x", term("https://x", fields=("link",))),
        ('"https://x"', term("https://x", '"https://x"')),
        ("US-China", term("us-china", "US-China")),
        ("10:30", term("10:30")),
        ("（韩日　ＯＲ　日韩）", Or((term("韩日"), term("日韩")))),
        ("－体育", Not(term("体育"))),
        ("NEARBY", term("nearby", "NEARBY")),
    ],
)
def test_parse_query_returns_tree(query: str, tree: Any) -> None:
    assert parse_query(query) == tree


def test_parse_query_deep_but_allowed_nesting_parses() -> None:
    query = "(" * 50 + "a" + ")" * 50

    assert parse_query(query) == term("a")


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("query", "column", "fragment"),
    [
        ("", 1, "empty query"),
        ("   ", 1, "empty query"),
        ("(韩日 OR 日韩", 1, "unbalanced parenthesis"),
        ("韩日 (日韩 OR (劳工)", 4, "unbalanced parenthesis"),
        ("韩日 OR 日韩)", 9, "unbalanced parenthesis"),
        (") a", 1, "unbalanced parenthesis"),
        ("()", 1, "empty parentheses"),
        ("a ()", 3, "empty parentheses"),
        ("韩日 OR", 4, "OR needs a term after it"),
        ("OR 韩日", 1, "OR needs a term before it"),
        ("韩日 OR OR 日韩", 7, "OR needs a term before it"),
        ("(OR a)", 2, "OR needs a term before it"),
        ("(a OR)", 4, "OR needs a term after it"),
        ("a AND", 3, "AND needs a term after it"),
        ("AND a", 1, "AND needs a term before it"),
        ("a NOT", 3, "NOT needs a term after it"),
        ("-", 1, "- must be followed"),
        ("a - b", 3, "- must be followed"),
        ("(a -)", 4, "- must be followed"),
        ('""', 1, "empty phrase"),
        ('韩日 "  "', 4, "empty phrase"),
        ('韩日 "日韩', 4, "unterminated phrase"),
        ('"a"b', 4, "a phrase must be followed by a space"),
        ('say"hi"', 1, "quotes must enclose the whole term"),
        ("韩日*", 1, "* is only allowed at the end of a Latin word"),
        ("a sanc*tion", 3, "* is only allowed at the end of a Latin word"),
        ("a NEAR/x b", 3, "NEAR needs a distance"),
        ("a NEAR b", 3, "NEAR needs a distance"),
        ("a NEAR/ b", 3, "NEAR needs a distance"),
        ("a NEAR/-1 b", 3, "NEAR needs a distance"),
        ("a NEAR/2.5 b", 3, "NEAR needs a distance"),
        ("a NEAR/3", 3, "NEAR needs a term after it"),
        ("NEAR/3 b", 1, "NEAR needs a term before it"),
        ("a NEAR/3 (b OR c)", 10, "not a group"),
        ("(a OR b) NEAR/3 c", 1, "not a group"),
        ("a NEAR/3 /b/", 10, "not a /regex/"),
        ("a NEAR/3 b NEAR/3 c", 12, "join several NEARs with AND"),
        ("title:a NEAR/3 content:b", 9, "same field"),
        ("/韓國", 1, "unterminated /regex/"),
        ("a /b\\/", 3, "unterminated /regex/"),
        ("a //", 3, "empty /regex/"),
        ("/a/i", 4, "a /regex/ must be followed by a space"),
        ("韩日 /a(b/", 8, "invalid regex: missing )"),  # the regex module points at the end
        ("/[a/", 4, "invalid regex: unterminated character set"),
        ("/a{2,1}/", 4, "invalid regex: min repeat greater than max repeat"),
        ("/*a/", 2, "invalid regex: nothing to repeat"),
        ("body:韩日", 1, "unknown field 'body'"),
        ("a https://rfi.fr", 3, "unknown field 'https'"),
        ("title: 韩日", 1, "title: must be followed"),
        ("title:", 1, "title: must be followed"),
        ("(title:)", 2, "title: must be followed"),
        ("title:-韩日", 1, "write -title:term"),
        ("(" * 101 + "a" + ")" * 101, 101, "nested more than 100 levels"),
        ("NOT " * 101 + "a", 401, "nested more than 100 levels"),
    ],
)
def test_parse_query_bad_query_raises_with_column(query: str, column: int, fragment: str) -> None:
    with pytest.raises(QuerySyntaxError) as caught:
        parse_query(query)

    assert fragment in caught.value.message
    assert caught.value.column == column
    assert str(caught.value) == f"{caught.value.message} at column {column}"


def test_query_syntax_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="unbalanced parenthesis at column 1"):
        parse_query("(a")


def test_query_syntax_error_pointer_puts_caret_under_column() -> None:
    with pytest.raises(QuerySyntaxError) as caught:
        parse_query("a OR b)")

    assert caught.value.pointer() == "    a OR b)\n          ^"


def test_query_syntax_error_pointer_counts_wide_characters_twice() -> None:
    with pytest.raises(QuerySyntaxError) as caught:
        parse_query("强征劳工 OR 日韩)")

    assert caught.value.column == 11
    assert caught.value.pointer(indent="") == "强征劳工 OR 日韩)\n" + " " * 16 + "^"


def test_query_syntax_error_pointer_shows_line_breaks_as_spaces() -> None:
    with pytest.raises(QuerySyntaxError) as caught:
        parse_query("a OR\nb)")

    assert caught.value.pointer(indent="") == "a OR b)\n      ^"


# ----------------------------------------------------------------------------- regexes


@pytest.mark.parametrize(
    ("written", "folded"),
    [
        ("韓國", "韩国"),
        ("韓+國", "韩+国"),
        ("[韓韩]國", "[韩韩]国"),
        ("（韓日）", r"\(韩日\)"),
        ("[（）]", r"[\(\)]"),
        ("ＡＩ", "ai"),
        ("a.b*", "a.b*"),
        (r"\u97d3", r"\u97d3"),
        (r"\p{Han}+", r"\p{Han}+"),
        ("Straße", "Stra(?:ss)e"),
        ("[ß]", "[ß]"),
        ("等等…", r"等等(?:\.\.\.)"),
    ],
)
def test_fold_regex_normalises_literals_only(written: str, folded: str) -> None:
    assert fold_regex(written) == folded


# ----------------------------------------------------------------------------- property

# A naive reference for the language: every occurrence by brute force on normalize(text),
# the boundary rule spelt out, booleans by recursion. The compiled matcher (one automaton,
# first offsets, positions for NEAR, cheapest-first evaluation) must agree with it.

TERMS = ["韩日", "日韩", "韓日", "劳工", "半导体", "导体", "AI", "ai", "said", "or", "war"]
PHRASES = ['"trade war"', '"韩 日"', '"AI芯片"']
PREFIXES = ["sanction*", "tra*"]
REGEXES = ["/韩.?日/", r"/ai\b/", "/导体$/", "/(trade|war) w/"]
FIELDS = ["title", "content"]
TEXT_PIECES = [
    "韩",
    "日",
    "韓",
    "劳工",
    "半",
    "导体",
    "ai",
    "AI",
    "ＡＩ",
    "said",
    "sanction",
    "s",
    "trade",
    " war",
    "芯片",
    "or",
    " ",
    "，",
    "x",
    "…",
]


@dataclass(frozen=True)
class RefTerm:
    written: str
    field: str | None


@dataclass(frozen=True)
class RefNear:
    left: str
    right: str
    distance: int
    field: str | None


@dataclass(frozen=True)
class RefRegex:
    written: str
    field: str | None


@dataclass(frozen=True)
class RefBool:
    operator: str  # "and", "or", "not"
    children: tuple[Any, ...]


def needle(written: str) -> tuple[str, bool]:
    """Given a term as written, return (what to look for, is prefix)."""
    if written.startswith('"'):
        return normalize(written[1:-1]), False
    if written.endswith("*"):
        return normalize(written[:-1]), True
    return normalize(written), False


def reference_spans(text: str, written: str) -> list[tuple[int, int]]:
    wanted, prefix = needle(written)
    spans = []
    for start in range(len(text) - len(wanted) + 1):
        end = start + len(wanted)
        if text[start:end] != wanted:
            continue
        if start > 0 and is_latin_char(wanted[0]) and is_latin_char(text[start - 1]):
            continue
        if prefix:
            while end < len(text) and is_latin_char(text[end]):
                end += 1
        elif end < len(text) and is_latin_char(wanted[-1]) and is_latin_char(text[end]):
            continue
        spans.append((start, end))
    return spans


def reference_holds(node: Any, texts: dict[str, str]) -> bool:
    # Without a prefix, a term looks at the rule's fields: both of them.
    fields = [node.field] if getattr(node, "field", None) else FIELDS
    if isinstance(node, RefTerm):
        return any(reference_spans(texts[field], node.written) for field in fields)
    if isinstance(node, RefNear):
        for field in fields:
            for one in reference_spans(texts[field], node.left):
                for other in reference_spans(texts[field], node.right):
                    gap = max(other[0] - one[1], one[0] - other[1])
                    if one != other and gap <= node.distance:
                        return True
        return False
    if isinstance(node, RefRegex):
        pattern = node.written[1:-1]
        return any(re.search(pattern, texts[field], re.IGNORECASE) is not None for field in fields)
    if node.operator == "and":
        return all(reference_holds(child, texts) for child in node.children)
    if node.operator == "or":
        return any(reference_holds(child, texts) for child in node.children)
    return not reference_holds(node.children[0], texts)


def prefixed(field: str | None, text: str) -> str:
    return f"{field}:{text}" if field else text


def render(node: Any, draw: Any) -> str:
    """Given a reference node, return a query for it with only the parentheses that
    precedence needs (and some that it does not)."""
    redundant = draw(st.booleans())
    if isinstance(node, RefTerm | RefRegex):
        return prefixed(node.field, node.written)
    if isinstance(node, RefNear):
        return f"{prefixed(node.field, node.left)} NEAR/{node.distance} {node.right}"
    if node.operator == "not":
        child = node.children[0]
        inner = render(child, draw)
        if (isinstance(child, RefBool) and child.operator != "not") or redundant:
            inner = f"({inner})"
        return f"{draw(st.sampled_from(['NOT ', '-']))}{inner}"
    parts = []
    for child in node.children:
        inner = render(child, draw)
        needs = isinstance(child, RefBool) and child.operator == "or"
        if needs or (draw(st.booleans()) and redundant):
            inner = f"({inner})"
        parts.append(inner)
    if node.operator == "or":
        return " OR ".join(parts)
    return draw(st.sampled_from([" ", " AND "])).join(parts)


fields_strategy = st.sampled_from([None, None, "title", "content"])
atom_strategy = st.one_of(
    st.builds(RefTerm, st.sampled_from(TERMS + PHRASES + PREFIXES), fields_strategy),
    st.builds(
        RefNear,
        st.sampled_from(TERMS + PHRASES + PREFIXES),
        st.sampled_from(TERMS + PHRASES + PREFIXES),
        st.integers(0, 6),
        fields_strategy,
    ),
    st.builds(RefRegex, st.sampled_from(REGEXES), fields_strategy),
)
tree_strategy = st.recursive(
    atom_strategy,
    lambda children: st.one_of(
        st.builds(
            RefBool,
            st.sampled_from(["and", "or"]),
            st.lists(children, min_size=2, max_size=3).map(tuple),
        ),
        st.builds(RefBool, st.just("not"), st.tuples(children)),
    ),
    max_leaves=8,
)
text_strategy = st.lists(st.sampled_from(TEXT_PIECES), max_size=14).map("".join)


@settings(
    max_examples=200,
    deadline=None,
    database=None,  # no .hypothesis folder in the repository
    suppress_health_check=[HealthCheck.too_slow],
)
@given(data=st.data(), tree=tree_strategy, title=text_strategy, content=text_strategy)
def test_compiled_query_agrees_with_naive_reference(
    data: st.DataObject, tree: Any, title: str, content: str
) -> None:
    query = render(tree, data.draw)
    rules = RuleSet.compile([RuleConfig(name="q", query=query, fields=("title", "content"))])
    article = Article(
        guid=None, link=None, canonical_link=None, title=title, summary="", content=content
    )
    texts = {"title": normalize(title), "content": normalize(content)}

    matched = [match.rule_name for match in rules.match(article, "feed")] == ["q"]

    assert matched is reference_holds(tree, texts), query


@settings(max_examples=100, deadline=None, database=None)
@given(written=st.sampled_from(TERMS + PHRASES + PREFIXES), text=text_strategy)
def test_explain_finds_every_reference_occurrence(written: str, text: str) -> None:
    rules = RuleSet.compile([RuleConfig(name="q", query=written, fields=("content",))])
    article = Article(guid=None, link=None, canonical_link=None, title="", summary="", content=text)

    hits = rules.explain(article, "q")

    assert len(hits) == len(reference_spans(normalize(text), written))
    for hit in hits:
        assert normalize(text[hit.start : hit.end]).startswith(needle(written)[0])


NEAR_OPERANDS = ["韩日", "日韩", "劳工", "AI", "sanction*", '"AI 劳工"']
NEAR_PIECES = ["韩日", "劳工", " ", "x", "AI", "ai", "sanctions", "，", "…", "日", "韩"]


@settings(max_examples=200, deadline=None, database=None)
@given(
    near=st.builds(
        RefNear,
        st.sampled_from(NEAR_OPERANDS),
        st.sampled_from(NEAR_OPERANDS),
        st.integers(0, 6),
        st.sampled_from([None, "title"]),
    ),
    title=st.lists(st.sampled_from(NEAR_PIECES), max_size=20).map("".join),
    content=st.lists(st.sampled_from(NEAR_PIECES), max_size=20).map("".join),
)
def test_compiled_near_agrees_with_naive_reference_and_explains_its_pairs(
    near: RefNear, title: str, content: str
) -> None:
    query = f"{prefixed(near.field, near.left)} NEAR/{near.distance} {near.right}"
    rules = RuleSet.compile([RuleConfig(name="q", query=query, fields=("title", "content"))])
    article = Article(
        guid=None, link=None, canonical_link=None, title=title, summary="", content=content
    )
    texts = {"title": normalize(title), "content": normalize(content)}

    matched = [match.rule_name for match in rules.match(article, "feed")] == ["q"]
    hits = rules.explain(article, "q")

    assert matched is reference_holds(near, texts), query
    assert bool(hits) is matched
