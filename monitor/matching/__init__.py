"""Matching: watch rules against articles (layer 2).

Text normalisation (text.py), the query language (query.py), rules compiled to expression
trees (compile.py), the one term automaton (automaton.py), an article's scan (scan.py),
the rule set that matches (ruleset.py), the explanation of a match (explain.py) and what
makes a rule valid (validation.py).
Other packages use what this module exports.
"""

from monitor.matching.compile import holds_without_terms, rule_tree
from monitor.matching.explain import ArticleExplainer, TermHit, near_spans, term_spans
from monitor.matching.query import (
    FIELD_ALIASES,
    And,
    Atom,
    Near,
    Node,
    Not,
    Or,
    QuerySyntaxError,
    Regex,
    Term,
    compile_regex,
    evaluate,
    parse_query,
    parse_term,
    term_problem,
    tree_atoms,
    tree_terms,
    with_default_fields,
)
from monitor.matching.ruleset import REGEX_TIME_LIMIT_SECONDS, SCAN_BATCH_ARTICLES, RuleSet
from monitor.matching.search_tokens import (
    INDEXED_FIELDS,
    AllOf,
    AllTokens,
    AnyOf,
    IndexQuery,
    article_tokens,
    index_query,
    tokens_version,
)
from monitor.matching.text import normalize
from monitor.matching.validation import (
    RuleProblem,
    field_name,
    positive_term_problems,
    query_problem,
    rule_problems,
)
from monitor.matching.vocabulary import fold_article_vocabulary, fold_vocabulary

__all__ = [
    "FIELD_ALIASES",
    "INDEXED_FIELDS",
    "REGEX_TIME_LIMIT_SECONDS",
    "SCAN_BATCH_ARTICLES",
    "AllOf",
    "AllTokens",
    "And",
    "AnyOf",
    "ArticleExplainer",
    "Atom",
    "IndexQuery",
    "Near",
    "Node",
    "Not",
    "Or",
    "QuerySyntaxError",
    "Regex",
    "RuleProblem",
    "RuleSet",
    "Term",
    "TermHit",
    "article_tokens",
    "compile_regex",
    "evaluate",
    "field_name",
    "fold_article_vocabulary",
    "fold_vocabulary",
    "holds_without_terms",
    "index_query",
    "near_spans",
    "normalize",
    "parse_query",
    "parse_term",
    "positive_term_problems",
    "query_problem",
    "rule_problems",
    "rule_tree",
    "term_problem",
    "term_spans",
    "tokens_version",
    "tree_atoms",
    "tree_terms",
    "with_default_fields",
]
