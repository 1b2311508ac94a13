"""Matching: text normalisation, the query language, the compiled rule set, explain.

What other packages use of it is exported here.
"""

from monitor.matching.validation import (
    RuleProblem,
    field_name,
    positive_term_problems,
    query_problem,
    rule_problems,
    term_problem,
)

__all__ = [
    "RuleProblem",
    "field_name",
    "positive_term_problems",
    "query_problem",
    "rule_problems",
    "term_problem",
]
