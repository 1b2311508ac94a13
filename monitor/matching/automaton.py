"""The term automaton: every term of every rule found in a normalised field in one pass, and
what a field's hits tell (first offsets, NEAR spans). Offsets are character offsets into
the normalised field. A term's hits are recorded under its key (Term.key); the automaton
also holds each term's regional variants (monitor.matching.vocabulary), whose hits count
only where the article confirms them.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import ahocorasick_rs

from monitor.matching.query import Near, Term
from monitor.matching.text import is_latin_char
from monitor.matching.vocabulary import RegionalReading

# Given a term's Mainland form and the span of one of its variants in the field, whether
# the variant stands for the term there (vocabulary.ArticleVocabulary.stands_for).
Confirm = Callable[[str, int, int], bool]


class TermAutomaton:
    """Every term of a rule set, found in a field in one pass: ahocorasick-rs over the
    field's text, overlapping matches included (半导体 and 导体; 韩日 inside 日韩日), in order
    of their end, with character offsets. Built from distinct terms (normalised text), each
    with what the scan needs to know of it (_term_value).

    ahocorasick-rs rather than pyahocorasick: pyahocorasick finds a node's children by
    linear search, which is slow with thousands of Chinese first characters under its root.
    At 10,000 rules (32,000 terms) it scanned 4,000 fields of bench/rules.py's articles in
    2.8 s against 0.12 s; at 10 rules, 0.06 s against 0.03 s. Both report the same matches.
    """

    def __init__(
        self,
        texts: Mapping[str, str],
        near_keys: set[str],
        readings: Mapping[str, RegionalReading],
    ) -> None:
        """Given every term's key -> text, the keys of NEAR operands and the regional
        readings of the terms that have variants (by key: exactly those in texts)."""
        # Patterns that are not simply one term's own text: pattern -> [(key, the term's
        # Mainland form for a variant, None for the term's own text)]. Few: a list each.
        reports: dict[str, list[tuple[str, str | None]]] = {}
        for key, reading in readings.items():
            reports.setdefault(reading.text, []).append((key, None))
            for variant in reading.variants:
                reports.setdefault(variant, []).append((key, reading.mainland))
        # The other terms' key is their text (Term.key).
        own = [text for key, text in texts.items() if key not in readings]
        for text in own:
            if text in reports:
                reports[text].append((text, None))
        patterns = sorted({*own, *reports})  # sorted: the same automaton for the same rules
        del own
        # The matcher keeps its own copy of the patterns; only the values stay here.
        self._matcher = ahocorasick_rs.AhoCorasick(
            patterns, matchkind=ahocorasick_rs.MatchKind.Standard
        )
        # What the scan needs to know of each pattern, by pattern index.
        self.values: list[Any] = [
            _term_value(pattern, near=pattern in near_keys)
            if pattern not in reports
            else _reports(pattern, reports[pattern], near_keys)
            for pattern in patterns
        ]
        self.readings = readings

    def find(self, text: str) -> list[tuple[int, int, int]]:
        """Given text, return each (pattern index, start, end) found, in order of end."""
        return self._matcher.find_matches_as_indexes(text, overlapping=True)


@dataclass
class FieldHits:
    """What the automaton found in one normalised field."""

    text: str  # the normalised field
    # term text -> first start with the boundary rule met on both sides (where needed)
    whole: dict[str, int]
    # term text -> first start with a boundary before it: all a prefix term needs. Every key
    # of `whole` is here too, with the same or an earlier start.
    prefix: dict[str, int]
    # For the texts of NEAR operands only: every (start, end, boundary after) with a boundary
    # before, in order.
    spans: dict[str, list[tuple[int, int, bool]]]

    def first_offset(self, term: Term) -> int | None:
        return (self.prefix if term.prefix else self.whole).get(term.key)

    def occurrences(self, term: Term) -> list[tuple[int, int]]:
        """Given a NEAR operand, return its (start, end) spans in order; a prefix
        term's span runs to the end of its word."""
        found = self.spans.get(term.key, ())
        if term.prefix:
            return [(start, word_end(self.text, end)) for start, end, _ in found]
        return [(start, end) for start, end, whole in found if whole]

    def near_holds(self, near: Near) -> bool:
        left = self.occurrences(near.left)
        if not left:
            return False
        right = left if near.right == near.left else self.occurrences(near.right)
        if not right:
            return False
        distance = near.distance

        def within(one: tuple[int, int], other: tuple[int, int]) -> bool:
            return span_gap(one, other) <= distance  # overlapping spans are near

        return first_near(left, right, within) is not None


def _term_value(text: str, *, near: bool) -> str | tuple[str, bool, bool, bool]:
    """Given a normalised term, return what the scan needs to know of it (scan_text)."""
    # Which ends need the Latin boundary check is decided once here, not per hit.
    check_before, check_after = is_latin_char(text[0]), is_latin_char(text[-1])
    if not (check_before or check_after or near):
        # Most terms (Chinese ones) need neither check: their value is the term itself, a
        # string the rule holds anyway, rather than a tuple (about 3 MB at 10,000 rules).
        return text
    return (text, check_before, check_after, near)


@dataclass(frozen=True, slots=True)
class _Reports:
    """A pattern that is not simply one term's own text: a regional variant, or a text that
    terms of several keys share. Each report: (key, check before, check after, near,
    Mainland form for a variant or None)."""

    reports: tuple[tuple[str, bool, bool, bool, str | None], ...]


def _reports(pattern: str, found: list[tuple[str, str | None]], near_keys: set[str]) -> _Reports:
    check_before, check_after = is_latin_char(pattern[0]), is_latin_char(pattern[-1])
    return _Reports(
        tuple(
            (key, check_before, check_after, key in near_keys, mainland) for key, mainland in found
        )
    )


def scan_text(automaton: TermAutomaton, text: str, confirm: Confirm | None = None) -> FieldHits:
    """Given the automaton, a normalised field and what confirms a regional variant found in
    it (None: nothing does), return the first valid start of each term, and every valid
    span of the terms NEAR uses.

    Matches come in order of their end, so the first one kept for a term is also its
    earliest start.
    """
    whole: dict[str, int] = {}
    prefix: dict[str, int] = {}
    spans: dict[str, list[tuple[int, int, bool]]] = {}
    size = len(text)
    values = automaton.values
    reported: list[tuple[_Reports, int, int]] | None = None
    for index, start, end in automaton.find(text):
        value = values[index]
        if value.__class__ is str:  # a term with no boundary to check, no NEAR (_term_value)
            if value not in whole:
                prefix[value] = whole[value] = start
            continue
        if value.__class__ is _Reports:  # rare: seen to after the loop
            if reported is None:
                reported = []
            reported.append((value, start, end))
            continue
        term, check_before, check_after, near = value
        if term in whole:
            continue  # NEAR operands never get here: they are added to `whole` at the end
        if check_before and start > 0 and is_latin_char(text[start - 1]):
            continue  # `ai` inside `said`
        if term not in prefix:
            prefix[term] = start
        if check_after and end < size and is_latin_char(text[end]):
            if near:
                spans.setdefault(term, []).append((start, end, False))
            continue  # `sanction` inside `sanctions`: only a prefix hit
        if near:
            spans.setdefault(term, []).append((start, end, True))
            continue
        whole[term] = start
    if reported is not None:
        _add_reports(reported, text, whole, prefix, spans, confirm)
    for term, found in spans.items():
        first_whole = next((start for start, _, is_whole in found if is_whole), None)
        if first_whole is not None:
            whole[term] = first_whole
    return FieldHits(text=text, whole=whole, prefix=prefix, spans=spans)


def _add_reports(
    reported: list[tuple[_Reports, int, int]],
    text: str,
    whole: dict[str, int],
    prefix: dict[str, int],
    spans: dict[str, list[tuple[int, int, bool]]],
    confirm: Confirm | None,
) -> None:
    """scan_text() for the patterns with reports: the same boundary rules, and a variant
    counts only if `confirm` says so. Spans go in order of start, as NEAR needs them."""
    size = len(text)
    sorted_spans: set[str] = set()
    for value, start, end in reported:
        for key, check_before, check_after, near, mainland in value.reports:
            if not near and whole.get(key, size) < start:
                continue  # an earlier hit is known: this one changes nothing
            if check_before and start > 0 and is_latin_char(text[start - 1]):
                continue
            if mainland is not None and (confirm is None or not confirm(mainland, start, end)):
                continue
            is_whole = not (check_after and end < size and is_latin_char(text[end]))
            prefix[key] = min(start, prefix.get(key, start))
            if near:
                spans.setdefault(key, []).append((start, end, is_whole))
                sorted_spans.add(key)
            elif is_whole:
                whole[key] = min(start, whole.get(key, start))
    for key in sorted_spans:
        spans[key].sort()


def word_end(text: str, end: int) -> int:
    """Given text and the end of a prefix term's match, return the end of its word."""
    while end < len(text) and is_latin_char(text[end]):
        end += 1
    return end


Span = tuple[int, int]


def first_near(
    left: list[Span], right: list[Span], within: Callable[[Span, Span], bool]
) -> tuple[Span, Span] | None:
    """Given the spans of two terms, each list in order of start, and a test of closeness,
    return a pair (left span, right span) that is near, or None. Two identical spans (one
    occurrence) are never a pair.

    For one span `a`, the best right spans are the last one starting before it (the
    largest end: ends grow with starts within one term's list) and the first ones starting
    at or after it (the smallest gap), so three candidates per left span are enough.
    """
    starts = [start for start, _ in right]
    for span in left:
        index = bisect_left(starts, span[0])
        for candidate in right[max(0, index - 1) : index + 2]:
            if candidate != span and within(span, candidate):
                return span, candidate
    return None


def span_gap(one: Span, other: Span) -> int:
    """Return the gap between two spans: negative when they overlap."""
    return max(other[0] - one[1], one[0] - other[1])
