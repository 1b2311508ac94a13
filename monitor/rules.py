"""Watch rules -> one compiled matcher over all rules."""

from __future__ import annotations


def term_problem(term: str) -> str | None:
    """Given a rule term as written, return None if it is valid, else what is wrong with it."""
    if not term.strip():
        return "empty term"
    return None
