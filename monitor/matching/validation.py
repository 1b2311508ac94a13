"""What makes a watch rule valid: its terms, its query, its fields, and something to look for.

Defined once here and used twice: the configuration loader runs these checks on every rule
as it is written in a file (monitor.service.configuration hands them to it), and
RuleSet.compile() runs them again on the rules it is given, which the loader has normally
checked already.

Each check returns what is wrong as a message for people, or None; a rule's problems come as
RuleProblem, located by their key path inside the rule (("any", 0), ("query",), ...), which
the caller turns into a file, line and key.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from monitor.matching.query import (
    FIELD_ALIASES,
    And,
    Node,
    Not,
    Or,
    QuerySyntaxError,
    evaluate,
    parse_query,
    parse_term,
    term_problem,
)
from monitor.model import ARTICLE_FIELDS

__all__ = [
    "RuleProblem",
    "field_name",
    "positive_term_problems",
    "query_problem",
    "rule_problems",
    "term_problem",
]

NO_TERM = "a rule needs at least one term under any or all"
ONLY_NONE = " (with only none it would match every article)"
ONLY_EXCLUDES = (
    "this query matches articles that contain none of its terms (it only excludes); add a "
    "term or /regex/ to look for"
)


class RuleProblem(NamedTuple):
    """One thing wrong with a rule: where inside the rule (an empty key: the rule itself)
    and what, for people."""

    key: tuple[str | int, ...]
    message: str


def query_problem(query: str) -> str | None:
    """Given a rule's query, return None if it parses (its regexes compile), else the syntax
    error with two more lines: the query and a caret under the column (none for a blank
    query)."""
    try:
        parse_query(query)
    except QuerySyntaxError as error:
        return error.with_pointer()
    return None


def field_name(name: str) -> str:
    """Given a field a rule names, return the article field it stands for (`category` is
    `categories`). Raise ValueError, with a message for people, if there is none."""
    name = FIELD_ALIASES.get(name, name)
    if name not in ARTICLE_FIELDS:
        raise ValueError(_unknown_field(name))
    return name


def _unknown_field(name: str) -> str:
    return f"unknown field {name!r}; fields are {', '.join(ARTICLE_FIELDS)}"


def positive_term_problems(
    any_terms: object, all_terms: object, none_terms: object, query: object
) -> list[RuleProblem]:
    """Given a rule's any, all, none and query as written (None when absent), report a rule
    with nothing to look for: without any or all terms (with only none it matches every
    article), or with a query that, together with the lists, holds on an article that
    contains none of its terms (`-体育`, `NOT a OR NOT b`).

    A value of the wrong kind, or an invalid term or query, is not reported here: the other
    checks report it.
    """
    if query is not None:
        if _matches_without_terms(any_terms, all_terms, none_terms, query):
            return [RuleProblem(("query",), ONLY_EXCLUDES)]
        return []
    if all(value is None or value == [] for value in (any_terms, all_terms)):
        return [RuleProblem((), NO_TERM + (ONLY_NONE if none_terms else ""))]
    return []


def rule_problems(
    *,
    any_terms: Sequence[str],
    all_terms: Sequence[str],
    none_terms: Sequence[str],
    query: str | None,
    fields: Sequence[str],
    match_everything: bool = False,
    terms_parsed: bool = False,
) -> list[RuleProblem]:
    """Given a built rule's parts (fields by their article names, as field_name() returns
    them), return every problem of its terms, query and fields, and a rule with nothing to
    look for (positive_term_problems).

    With `match_everything`, a rule with only none terms or a query that only excludes is
    allowed (it matches every article without those terms); a rule without any term or
    query is not. With `terms_parsed`, the caller has parsed every term and the query
    without error: they are not parsed again.
    """
    problems: list[RuleProblem] = []
    if not terms_parsed:
        for key, terms in (("any", any_terms), ("all", all_terms), ("none", none_terms)):
            for index, term in enumerate(terms):
                message = term_problem(term)
                if message is not None:
                    problems.append(RuleProblem((key, index), message))
        if query is not None:
            message = query_problem(query)
            if message is not None:
                problems.append(RuleProblem(("query",), message))
    if not fields:
        problems.append(RuleProblem(("fields",), "a rule needs at least one field"))
    for index, name in enumerate(fields):
        if name not in ARTICLE_FIELDS:
            problems.append(RuleProblem(("fields", index), _unknown_field(name)))
    if not match_everything:
        problems.extend(
            positive_term_problems(list(any_terms), list(all_terms), list(none_terms), query)
        )
    elif not (any_terms or all_terms or none_terms or query is not None):
        problems.append(RuleProblem((), NO_TERM))  # an empty And() would match every article
    return problems


def _matches_without_terms(any_terms: Any, all_terms: Any, none_terms: Any, query: Any) -> bool:
    """Given a rule's parts as written, with a query, return whether the rule (list form and
    query ANDed) holds on an article that contains none of its terms. False when something
    in it is invalid: that is reported on its own."""
    try:
        parts: list[Node] = [parse_query(str(query))]
        for key, written in (("any", any_terms), ("all", all_terms), ("none", none_terms)):
            written = written or []
            if not isinstance(written, list | tuple):
                return False
            terms = [parse_term(str(term)) for term in written]
            if key == "all":
                parts.extend(terms)
            elif terms:
                alternatives = Or(tuple(terms))
                parts.append(alternatives if key == "any" else Not(alternatives))
    except ValueError:
        return False
    return evaluate(And(tuple(parts)), lambda _atom: False)
