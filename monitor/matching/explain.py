"""Explaining a match: every occurrence of a rule's positive terms in an article, with
offsets into the original field text (TermHit, ArticleExplainer). A regional variant that
stands for its term (软件 as 軟體 in a Taiwan article) is an occurrence of the term: the hit
names the term as written and points at the article's 軟體."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import regex

from monitor.matching.automaton import Span, first_near, span_gap, word_end
from monitor.matching.compile import CompiledRule
from monitor.matching.query import Atom, Near, Term
from monitor.matching.scan import ArticleScan, Scanner, cached_normalize, summarise
from monitor.matching.text import (
    is_latin_char,
    maps_one_to_one,
    normalize_with_origins,
    original_span,
)
from monitor.matching.vocabulary import ArticleVocabulary
from monitor.model import ARTICLE_FIELDS, Article, RuleMatch


@dataclass(frozen=True)
class TermHit:
    """One occurrence of a rule's term in an article, for explanations (RuleSet.explain)."""

    field: str  # the article field
    # The term as the user wrote it: each operand of a NEAR, a regex as /pattern/.
    term: str
    # Offsets into the ORIGINAL field text: article.field_text(field)[start:end] matched.
    start: int
    end: int


class ArticleExplainer:
    """RuleSet.explain() for the rules of one article: the fields normalised with offsets,
    and the occurrences of each atom, are worked out once and shared by the rules that ask
    (at 10,000 rules an article matches a handful, often through the same terms).

    Not thread-safe; meant to live as long as one article is being explained.
    """

    def __init__(
        self,
        rules_by_name: Mapping[str, CompiledRule],
        scanner: Scanner,
        article: Article,
        scan: ArticleScan | None = None,
    ) -> None:
        self._rules_by_name = rules_by_name
        self._scanner = scanner
        self._article = article
        # What matching this article found (RuleSet.explaining_match), if known: its
        # normalised fields, and the hits in the non-empty ones that any rule looks at.
        self._scan = scan
        self._vocabulary = scan.vocabulary if scan is not None else None
        self._scanned = scan.hits if scan is not None else None
        self._normalised = scan.texts if scan is not None else {}
        # field -> (normalised text, origins, whether origins are the identity)
        self._texts: dict[str, tuple[str, Sequence[int], bool]] = {}
        # (field, atom) -> its occurrences: (sort key, TermHit) pairs, the key a plain
        # tuple (ARTICLE_FIELDS position, start, end, term) that hashes and sorts in C
        self._atom_hits: dict[tuple[str, Atom], list[tuple[tuple[int, int, int, str], TermHit]]]
        self._atom_hits = {}

    def summary(self, rule_name: str) -> RuleMatch:
        """Given the name of a compiled rule that matches the article, return its RuleMatch
        (which terms were found where), as RuleSet.match() would.

        Raise KeyError if no enabled rule has that name.
        """
        rule = self._rules_by_name[rule_name]
        if self._scan is None:
            self._scan = self._scanner.scans([self._article])[0]
        return summarise(rule, self._scan)

    def explain(self, rule_name: str) -> tuple[TermHit, ...]:
        """Given the name of a compiled rule, return RuleSet.explain(article, rule_name).

        Raise KeyError if no enabled rule has that name.
        """
        rule = self._rules_by_name[rule_name]
        hits: dict[tuple[int, int, int, str], TermHit] = {}
        scanned = self._scanned
        atom_hits = self._atom_hits
        for atom in rule.positive_atoms:
            fields: Sequence[str] = atom.fields or ()
            if scanned is not None and type(atom) is Term:
                # Every occurrence that term_spans() keeps starts at a boundary, so the
                # scan has it among its prefix hits; most terms of a matching rule are in
                # none of its fields.
                key = atom.key
                fields = [
                    field
                    for field in fields
                    if (field_hits := scanned.get(field)) is not None and key in field_hits.prefix
                ]
            for field in fields:
                found = atom_hits.get((field, atom))
                if found is None:
                    found = atom_hits[(field, atom)] = self._find(field, atom)
                hits.update(found)
        return tuple(hits[key] for key in sorted(hits))

    def terms_in_order(self, rule_name: str) -> dict[str, tuple[str, ...]] | None:
        """Given the name of a compiled rule, return field by field (ARTICLE_FIELDS order)
        the terms as written that explain() finds there, each once, in the order of their
        first occurrence (start, then end, then text: how explain() sorts), without finding
        every occurrence. None when only explain() can tell: a rule with NEAR or a regex, an
        explainer made without a scan, a field whose normalised text is not one to one
        with the original (offsets there can tie where the normalised ones do not), or a
        term found there that has regional variants (which may differ in length).

        Raise KeyError if no enabled rule has that name.
        """
        rule = self._rules_by_name[rule_name]
        scanned = self._scanned
        if not rule.only_terms or scanned is None:
            return None
        terms_by_field: dict[str, tuple[str, ...]] = {}
        for field in ARTICLE_FIELDS:
            field_hits = scanned.get(field)
            if field_hits is None:
                continue
            # written term -> (start, end) of its first occurrence in the normalised field
            first: dict[str, tuple[int, int]] = {}
            for term in rule.positive_terms:
                if field not in (term.fields or ()):
                    continue
                start = field_hits.first_offset(term)
                if start is None:
                    continue
                if term.key != term.text:  # found maybe as a variant, of another length
                    return None
                end = start + len(term.text)
                if term.prefix:
                    end = word_end(field_hits.text, end)
                first[term.source] = min((start, end), first.get(term.source, (start, end)))
            if not first:
                continue
            if not self._text(field)[2]:  # offsets not the identity: explain() decides
                return None
            terms_by_field[field] = tuple(
                written
                for (_, _, written) in sorted((*span, written) for written, span in first.items())
            )
        return terms_by_field or None

    def _text(self, field: str) -> tuple[str, Sequence[int], bool]:
        """The field normalised, the original offset of each of its characters, and whether
        those are the identity (explain()'s common case); worked out once per field."""
        text = self._texts.get(field)
        if text is None:
            original = self._article.field_text(field)
            normalised = self._normalised.get(field)
            if normalised is not None and maps_one_to_one(original, normalised):
                # The common case: matching normalised the field already, one to one.
                text = (normalised, range(len(original) + 1), True)
            else:
                text = _normalised_with_origins(original)
            self._texts[field] = text
        return text

    def _find(self, field: str, atom: Atom) -> list[tuple[tuple[int, int, int, str], TermHit]]:
        normalised, origins, identity = self._text(field)
        scanner = self._scanner

        def spans_of(text: str, term: Term) -> list[Span]:
            return self._term_spans(field, text, term)

        spans = _explain_atom(
            atom, normalised, scanner.regexes, scanner.regex_time_limit_seconds, spans_of
        )
        if not identity:
            spans = [
                (*original_span(origins, start, end), written) for start, end, written in spans
            ]
        position = _FIELD_ORDER[field]
        return [
            ((position, start, end, written), TermHit(field, written, start, end))
            for start, end, written in spans
        ]

    def _term_spans(self, field: str, text: str, term: Term) -> list[Span]:
        """term_spans(text, term), and the spans of its regional variants that stand for it
        in this article, in order."""
        spans = term_spans(text, term)
        reading = self._scanner.readings.get(term.key)
        if reading is None:
            return spans
        if self._vocabulary is None:
            self._vocabulary = ArticleVocabulary(self._article)
        for variant in reading.variants:
            for start, end in term_spans(text, replace(term, text=variant)):
                # Confirmed on the variant itself, as the scan does (a prefix term's span
                # runs on to the end of its word).
                found_end = start + len(variant)
                if self._vocabulary.stands_for(field, text, reading.mainland, start, found_end):
                    spans.append((start, end))
        return sorted(set(spans))


_FIELD_ORDER = {field: position for position, field in enumerate(ARTICLE_FIELDS)}


def term_spans(text: str, term: Term) -> list[tuple[int, int]]:
    """Given normalised text and a term, return the (start, end) of every occurrence that
    respects the Latin boundary rule, overlapping ones included, in order. A prefix term's
    occurrence runs to the end of its word (`sanction*` in sanctions: the whole word)."""
    needle = term.text
    check_before, check_after = _latin_ends(needle)
    if not (check_before or check_after or term.prefix):
        # A CJK term (the common case): every occurrence counts.
        return _occurrences(text, needle)
    found: list[tuple[int, int]] = []
    start = text.find(needle)
    while start >= 0:
        end = start + len(needle)
        if not (check_before and start > 0 and is_latin_char(text[start - 1])):
            if term.prefix:
                while end < len(text) and is_latin_char(text[end]):
                    end += 1
                found.append((start, end))
            elif not (check_after and end < len(text) and is_latin_char(text[end])):
                found.append((start, end))
        start = text.find(needle, start + 1)
    return found


@functools.lru_cache(maxsize=4096)
def _latin_ends(needle: str) -> tuple[bool, bool]:
    """Given a term's text, return whether its first and its last character are Latin
    (must not touch a Latin character)."""
    return is_latin_char(needle[0]), is_latin_char(needle[-1])


def _occurrences(text: str, needle: str) -> list[tuple[int, int]]:
    """Given text and a non-empty needle, return the (start, end) of each occurrence,
    overlapping ones included."""
    found: list[tuple[int, int]] = []
    length = len(needle)
    start = text.find(needle)
    while start >= 0:
        found.append((start, start + length))
        start = text.find(needle, start + 1)
    return found


def near_spans(
    text: str, near: Near, spans_of: Callable[[str, Term], list[Span]] | None = None
) -> tuple[list[Span], list[Span]]:
    """Given normalised text, a Near and what finds a term's occurrences (term_spans() if
    None), return the occurrences of its left and of its right operand that take part in
    at least one near pair."""
    spans_of = spans_of or term_spans
    left = spans_of(text, near.left)
    right = spans_of(text, near.right)

    def within(one: Span, other: Span) -> bool:
        return span_gap(one, other) <= near.distance

    kept_left = [span for span in left if first_near([span], right, within) is not None]
    kept_right = [span for span in right if first_near([span], left, within) is not None]
    return kept_left, kept_right


@functools.lru_cache(maxsize=64)
def _normalised_with_origins(text: str) -> tuple[str, Sequence[int], bool]:
    # explain() runs once per hit (in the daemon: per alert), so the fields of one article
    # are asked for again for every rule it matches; normalising with offsets is the
    # costly part. The flag says the origins are the identity (the common case).
    normalised = cached_normalize(text)
    if maps_one_to_one(text, normalised):  # no need to normalise again
        return normalised, range(len(text) + 1), True
    normalised, origins = normalize_with_origins(text)
    return normalised, origins, isinstance(origins, range)


def _explain_atom(
    atom: Atom,
    text: str,
    regexes: dict[str, regex.Pattern[str]],
    time_limit_seconds: float,
    spans_of: Callable[[str, Term], list[Span]],
) -> list[tuple[int, int, str]]:
    """Given a positive atom, a normalised field and what finds a term's occurrences, return
    (start, end, term as written) of each of its occurrences."""
    if isinstance(atom, Term):
        return [(start, end, atom.source) for start, end in spans_of(text, atom)]
    if isinstance(atom, Near):
        left, right = near_spans(text, atom, spans_of)
        return [(start, end, atom.left.source) for start, end in left] + [
            (start, end, atom.right.source) for start, end in right
        ]
    found: list[tuple[int, int, str]] = []
    try:
        for match in regexes[atom.pattern].finditer(text, timeout=time_limit_seconds):
            if match.end() > match.start():
                found.append((match.start(), match.end(), atom.source))
    except TimeoutError:
        pass  # keep what was found in time
    return found
