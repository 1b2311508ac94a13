"""One article scanned: its normalised fields, the automaton's hits in each, the regex
results so far (ArticleScan), and what a matching rule found where (summarise)."""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import cast

import regex

from monitor.matching.automaton import FieldHits, TermAutomaton, scan_text
from monitor.matching.compile import CompiledRule
from monitor.matching.query import Atom, Near, Regex, Term
from monitor.matching.text import normalize
from monitor.matching.vocabulary import ArticleVocabulary, RegionalReading
from monitor.model import ARTICLE_FIELDS, Article, RuleMatch


class RegexTimeout(Exception):
    def __init__(self, node: Regex, field: str) -> None:
        super().__init__(node.source)
        self.node = node
        self.field = field


@dataclass(frozen=True)
class _TimedOut:
    field: str


_UNSEEN = object()


class ArticleScan:
    """One article's normalised fields and hits, and the regex results so far."""

    def __init__(
        self,
        texts: dict[str, str],
        hits: dict[str, FieldHits],
        regexes: dict[str, regex.Pattern[str]],
        time_limit_seconds: float,
        vocabulary: ArticleVocabulary | None = None,
    ) -> None:
        self.texts = texts  # field -> normalised text, for every field a rule looks at
        self.hits = hits  # field -> automaton hits, for non-empty fields
        # What confirms a regional variant in this article: None when no term has one.
        self.vocabulary = vocabulary
        self.regexes = regexes  # Regex.pattern -> compiled
        # Regex -> None (not found), (field, character offset) of its first match, or
        # _TimedOut: shared by the rules that use the same regex on the same fields.
        self.regex_results: dict[Regex, tuple[str, int] | _TimedOut | None] = {}
        self.time_limit_seconds = time_limit_seconds
        self.rule_started: float | None = None  # when the current rule's first regex ran

    def is_found(self, atom: Atom) -> bool:
        if type(atom) is Term:
            key = atom.key
            for field in atom.fields or ():
                field_hits = self.hits.get(field)
                # field_hits.first_offset(atom), inlined: this runs for every term of every
                # candidate rule
                if field_hits is not None and key in (
                    field_hits.prefix if atom.prefix else field_hits.whole
                ):
                    return True
            return False
        if isinstance(atom, Near):
            for field in atom.fields or ():
                field_hits = self.hits.get(field)
                if field_hits is not None and field_hits.near_holds(atom):
                    return True
            return False
        atom = cast(Regex, atom)  # neither a Term (exact type) nor a Near
        result = self.regex_results.get(atom, _UNSEEN)
        if result is _UNSEEN:
            result = self._search(atom)
            self.regex_results[atom] = result
        if isinstance(result, _TimedOut):
            raise RegexTimeout(atom, result.field)
        return result is not None

    def _search(self, node: Regex) -> tuple[str, int] | _TimedOut | None:
        compiled = self.regexes[node.pattern]
        if self.rule_started is None:
            self.rule_started = time.monotonic()
        for field in node.fields or ():
            remaining = self.time_limit_seconds - (time.monotonic() - self.rule_started)
            if remaining <= 0:
                return _TimedOut(field)
            try:
                found = compiled.search(self.texts.get(field, ""), timeout=remaining)
            except TimeoutError:
                return _TimedOut(field)
            if found is not None:
                return field, found.start()
        return None


class Scanner:
    """What scanning articles takes: the automaton over every term of a rule set (None when
    there is no term at all), the fields any term or regex looks at (in ARTICLE_FIELDS order:
    the only ones normalised), and every regex pattern compiled (held here so that no cache
    can evict one) with the time limit of one rule's regexes per article."""

    def __init__(
        self,
        automaton: TermAutomaton | None,
        fields: tuple[str, ...],
        regexes: dict[str, regex.Pattern[str]],
        regex_time_limit_seconds: float,
    ) -> None:
        self.automaton = automaton
        self.fields = fields
        self.regexes = regexes
        self.regex_time_limit_seconds = regex_time_limit_seconds

    def scans(self, articles: Sequence[Article]) -> list[ArticleScan]:
        """Given articles, return each one's normalised fields and the hits in each: every
        field normalised first, then the automaton over all of them (explaining_matches)."""
        fields = self.fields
        texts_by_article = [
            {field: cached_normalize(article.field_text(field)) for field in fields}
            for article in articles
        ]
        automaton = self.automaton
        with_variants = automaton is not None and bool(automaton.readings)
        scans = []
        for article, texts in zip(articles, texts_by_article, strict=True):
            hits: dict[str, FieldHits] = {}
            vocabulary = ArticleVocabulary(article) if with_variants else None
            if automaton is not None:
                for field, text in texts.items():
                    if text:
                        confirm = None
                        if vocabulary is not None:
                            confirm = functools.partial(vocabulary.stands_for, field, text)
                        hits[field] = scan_text(automaton, text, confirm)
            scans.append(
                ArticleScan(texts, hits, self.regexes, self.regex_time_limit_seconds, vocabulary)
            )
        return scans

    @property
    def readings(self) -> Mapping[str, RegionalReading]:
        """The regional reading of each term that has variants, by Term.key."""
        return self.automaton.readings if self.automaton is not None else {}


def summarise(rule: CompiledRule, scan: ArticleScan) -> RuleMatch:
    """Given a matching rule and the article's scan, return which positive terms were found
    where, and the earliest hit in the first field (in ARTICLE_FIELDS order) that has one."""
    if rule.only_terms:
        return _summarise_terms(rule, scan.hits)
    terms_by_field: dict[str, tuple[str, ...]] = {}
    first_hit: tuple[str, int] | None = None
    for field in ARTICLE_FIELDS:
        field_hits = scan.hits.get(field)
        found: dict[str, int] = {}  # source -> offset of a term, in rule order
        regex_found: dict[str, int] = {}  # source -> offset of a regex's match
        for atom in rule.positive_atoms:
            if field not in (atom.fields or ()):
                continue
            if isinstance(atom, Regex):
                result = scan.regex_results.get(atom)
                if isinstance(result, tuple) and result[0] == field:
                    regex_found.setdefault(atom.source, result[1])
                    found.setdefault(atom.source, -1)  # keeps the rule order
                continue
            if field_hits is None:
                continue
            if isinstance(atom, Near):
                if not field_hits.near_holds(atom):
                    continue
                terms: tuple[Term, ...] = (atom.left, atom.right)
            else:
                terms = (atom,)
            for term in terms:
                offset = field_hits.first_offset(term)
                if offset is not None:
                    found[term.source] = min(offset, found.get(term.source, offset))
        if not found:
            continue
        terms_by_field[field] = tuple(found)
        if first_hit is None:
            offsets = [offset for offset in found.values() if offset >= 0]
            first_hit = (field, min(offsets + list(regex_found.values())))
    return RuleMatch(rule_name=rule.name, terms_by_field=terms_by_field, first_hit=first_hit)


def _summarise_terms(rule: CompiledRule, hits: dict[str, FieldHits]) -> RuleMatch:
    """summarise() for a rule made of plain terms only (no NEAR, no regex)."""
    terms_by_field: dict[str, tuple[str, ...]] = {}
    first_hit: tuple[str, int] | None = None
    for field in ARTICLE_FIELDS:
        field_hits = hits.get(field)
        if field_hits is None:
            continue
        found: dict[str, int] = {}  # source -> offset, in rule order
        whole, prefix = field_hits.whole, field_hits.prefix
        for term in rule.positive_terms:
            if field not in (term.fields or ()):
                continue
            # field_hits.first_offset(term), inlined (runs for every term of every match)
            offset = (prefix if term.prefix else whole).get(term.key)
            if offset is not None:
                found[term.source] = min(offset, found.get(term.source, offset))
        if found:
            terms_by_field[field] = tuple(found)
            if first_hit is None:
                first_hit = (field, min(found.values()))
    return RuleMatch(rule_name=rule.name, terms_by_field=terms_by_field, first_hit=first_hit)


@functools.lru_cache(maxsize=16)
def cached_normalize(text: str) -> str:
    # match() normalises each field of an article, and explaining a hit needs the same
    # text again right after: the few fields of the last articles are kept.
    return normalize(text)
