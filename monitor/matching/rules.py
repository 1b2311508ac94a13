"""Watch rules -> one compiled matcher over all rules; explain().

Every rule becomes a small expression tree (monitor.matching.query: Term, Near, Regex, And, Or,
Not).
The list form compiles to

    And( Or(any...) if any,  each of all...,  Not(Or(none...)) if none,  query if query )

and a `query:` is parsed by monitor.matching.query.parse_query into the same nodes; terms without a
field prefix get the rule's `fields`.

Matching one article (RuleSet.match_with_failures):

1. Normalise each field that some rule looks at, once (monitor.matching.text.normalize).
2. Run ONE Aho-Corasick automaton, holding every term of every rule (NEAR operands and
   negated terms included; over UTF-8 bytes: see _TermAutomaton), over each field, keep per
   field the first offset of each term that respects the Latin boundary rule. Only for the
   terms that some NEAR uses, every occurrence is kept, as (start, end) pairs.
3. Evaluate the tree only of rules that use at least one positive term that was hit (a
   reverse index from term to rules), plus the "always evaluated" rules: those that can hold
   with no term hit at all (a pure NOT, a pure /regex/, `/x/ OR a`). A tree is monotone: a
   term under an even number of Nots can only make it truer, a term under an odd number only
   falser. So a rule that is false with no positive hits (and every regex as favourable as
   can be) stays false when only its negated terms are hit, and only positive terms need
   indexing. A rule without regex is indexed only under the terms of one conjunct it
   cannot hold without (`any: [a, b], all: [c]`: under c), see _index_texts.
4. Each tree is evaluated cheapest child first (terms, then NEARs, then anything holding a
   regex), stopping as soon as the result is known: `韩日 /韓.{0,5}日/` runs its regex only
   on articles that have 韩日. A regex runs on the normalised text with a time limit per
   rule per article (REGEX_TIME_LIMIT_SECONDS); running out of time makes the rule not
   match that article and is reported as a RuleFailure. A regex's result is shared by every
   rule that uses the same regex on the same fields.

Matching many articles (RuleSet.explaining_matches, which `rules test` uses) runs step 1 over
all of them, then step 2, then step 3, rather than the three steps per article: the
automaton of 10,000 rules is megabytes, and normalising evicted it from the CPU's caches
between two articles.

Steps 1 and 2 cost the same whatever the number of rules (nearly: the automaton grows),
and step 3 costs in proportion to the rules that share a term with the article. So 10,000
rules cost about as much as 10: on synthetic 3.6 KB Chinese articles (bench/rules.py), 0.13
ms per article with 10 rules, 0.33 ms with 10,000 (a mix of lists, field-prefixed boolean
queries, NEARs, phrases, prefixes and term-gated regexes; 4 matches per article).

What breaks that is always-evaluated rules: each costs its evaluation on every article, and
a pure /regex/ rule one regex search per field per article: 10 more such rules add about
0.07 ms per article, 100 add 0.7 ms (a simple pattern; a pathological one costs up to
REGEX_TIME_LIMIT_SECONDS). Prefer `term /regex/` to a bare `/regex/`: the term gates it.

A RuleSet is immutable once compiled: share one between threads, and compile a new one on
reload.
"""

from __future__ import annotations

import functools
import logging
import time
from bisect import bisect_left
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import ahocorasick_rs
import regex

from monitor.config import RuleConfig

# The language itself lives in monitor.matching.query; these names are part of this
# module's API too.
from monitor.matching.query import And as And
from monitor.matching.query import Atom as Atom
from monitor.matching.query import Near as Near
from monitor.matching.query import Node as Node
from monitor.matching.query import Not as Not
from monitor.matching.query import Or as Or
from monitor.matching.query import QuerySyntaxError as QuerySyntaxError
from monitor.matching.query import Regex as Regex
from monitor.matching.query import Term as Term
from monitor.matching.query import compile_regex
from monitor.matching.query import evaluate as evaluate
from monitor.matching.query import parse_query as parse_query
from monitor.matching.query import parse_term as parse_term
from monitor.matching.query import term_problem as term_problem
from monitor.matching.query import tree_atoms as tree_atoms
from monitor.matching.query import tree_terms as tree_terms
from monitor.matching.query import with_default_fields as with_default_fields
from monitor.matching.text import (
    is_latin_char,
    maps_one_to_one,
    normalize,
    normalize_with_origins,
    original_span,
)
from monitor.matching.validation import RuleProblem, rule_problems
from monitor.model import (
    ARTICLE_FIELDS,
    Article,
    ConfigError,
    ConfigProblem,
    RuleFailure,
    RuleMatch,
)

logger = logging.getLogger(__name__)

# How long the regexes of one rule may run on one article, all fields together.
REGEX_TIME_LIMIT_SECONDS = 0.1
# Articles matched together by callers of explaining_matches() that have many (`rules
# test`). From about 16 on, larger batches were no faster within the noise of the bench
# host; each article holds its normalised fields until its batch is done (about 6 KB).
SCAN_BATCH_ARTICLES = 64


@dataclass(frozen=True)
class TermHit:
    """One occurrence of a rule's term in an article, for explanations (RuleSet.explain)."""

    field: str  # the article field
    # The term as the user wrote it: each operand of a NEAR, a regex as /pattern/.
    term: str
    # Offsets into the ORIGINAL field text: article.field_text(field)[start:end] matched.
    start: int
    end: int


# ----------------------------------------------------------------------------- trees


def rule_tree(rule: RuleConfig) -> Node:
    """Given a rule, return its expression tree, every Term, Near and Regex carrying the
    fields it looks at.

    Raise ValueError if a term is invalid (QuerySyntaxError, a ValueError, for the query).
    """
    fields = tuple(rule.fields)

    def term(written: str) -> Term:
        parsed = parse_term(written)
        return Term(text=parsed.text, prefix=parsed.prefix, fields=fields, source=written)

    parts: list[Node] = []
    if rule.any_terms:
        parts.append(Or(tuple(term(written) for written in rule.any_terms)))
    parts.extend(term(written) for written in rule.all_terms)
    if rule.none_terms:
        parts.append(Not(Or(tuple(term(written) for written in rule.none_terms))))
    if rule.query is not None:
        parts.append(with_default_fields(parse_query(rule.query), fields))
    return And(tuple(parts))


def holds_without_terms(node: Node) -> bool:
    """Given a tree, return whether it can hold on an article where no Term (hence no Near)
    is found, regexes being as favourable as can be: then it must be evaluated on every
    article. A rule for which this is true matches an empty article when it has no regex."""
    return _holds_without_terms(node, negated=False)


def _holds_without_terms(node: Node, *, negated: bool) -> bool:
    if isinstance(node, Term | Near):
        return False
    if isinstance(node, Regex):
        return not negated  # found where it helps, absent where it hurts
    if isinstance(node, And):
        return all(_holds_without_terms(child, negated=negated) for child in node.children)
    if isinstance(node, Or):
        return any(_holds_without_terms(child, negated=negated) for child in node.children)
    if isinstance(node, Not):
        return not _holds_without_terms(node.child, negated=not negated)
    raise TypeError(f"not a rule node: {node!r}")


def _cost(node: Node) -> int:
    """A rough rank of what evaluating a node costs: terms 0, NEAR 1, anything regex 2."""
    if isinstance(node, Term):
        return 0
    if isinstance(node, Near):
        return 1
    if isinstance(node, Regex):
        return 2
    if isinstance(node, Not):
        return _cost(node.child)
    if isinstance(node, And | Or):
        return max((_cost(child) for child in node.children), default=0)
    raise TypeError(f"not a rule node: {node!r}")


def _cheapest_first(node: Node) -> Node:
    """Given a tree, return the same predicate with every And's and Or's children ordered
    cheapest first (stable), so that evaluate() rarely reaches a regex it does not need."""
    # The tree itself when nothing moves (the common case: a rule without NEAR or regex),
    # so that 10,000 rules do not keep two copies of every tree.
    if isinstance(node, And | Or):
        children = tuple(sorted((_cheapest_first(child) for child in node.children), key=_cost))
        if all(new is old for new, old in zip(children, node.children, strict=True)):
            return node
        return type(node)(children)
    if isinstance(node, Not):
        child = _cheapest_first(node.child)
        return node if child is node.child else Not(child)
    return node


# ----------------------------------------------------------------------------- matching


# Offsets into a field are UTF-8 byte offsets, and the field is carried as a str of one
# character per byte (as latin-1 decoding gives them) so that slicing it stays cheap. UTF-8 is
# self-synchronising: the bytes of a term can only match where a character starts.


class _TermAutomaton:
    """Every term of a rule set, found in a field in one pass: ahocorasick-rs over the
    field's UTF-8 bytes, overlapping matches included (半导体 and 导体; 韩日 inside 日韩日),
    in order of their end. Built from distinct terms (normalised text), each with what the
    scan needs to know of it (_term_value).

    ahocorasick-rs rather than pyahocorasick: pyahocorasick finds a node's children by
    linear search, and its trie is scattered in memory. At 10,000 rules (32,000 terms) it
    scanned 9,000 fields of bench/rules.py's articles in 0.31 s against 0.11 s; at 10 rules,
    0.08 s against 0.02 s. Both report the same matches in the same order (checked over
    15,000 fields).
    """

    def __init__(self, terms: Sequence[str], near_texts: set[str]) -> None:
        # The matcher keeps its own copy of the patterns; only the values stay here.
        self._matcher = ahocorasick_rs.BytesAhoCorasick(
            [text.encode("utf-8") for text in terms], matchkind=ahocorasick_rs.MatchKind.Standard
        )
        # What the scan needs to know of each term, by pattern index.
        self.values: list[Any] = [_term_value(text, near=text in near_texts) for text in terms]

    def find(self, data: bytes) -> list[tuple[int, int, int]]:
        """Given UTF-8 bytes, return each (pattern index, start, end) found, in order of end."""
        return self._matcher.find_matches_as_indexes(data, overlapping=True)  # type: ignore[no-any-return]


def _from_utf8(encoded: str) -> str:
    return encoded.encode("latin-1").decode("utf-8")


_NO_FEEDS: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)  # one per rule: 10,000 of them
class _CompiledRule:
    name: str
    tree: Node  # as written (with fields filled in): explained
    plan: Node  # the same predicate, cheapest children first: evaluated
    feeds: frozenset[str]  # empty: every feed
    positive_atoms: tuple[Atom, ...]  # can make the rule match: explained
    negated_atoms: tuple[Atom, ...]  # can only stop it
    positive_terms: tuple[Term, ...]  # the positive atoms, NEAR operands spelt out: indexed
    negated_terms: tuple[Term, ...]
    only_terms: bool  # no Near, no Regex: the common case, summarised the quick way


@dataclass
class _FieldHits:
    """What the automaton found in one normalised field. Offsets are byte offsets into the
    UTF-8 form of the field; char_offset() converts one."""

    utf8: str  # the normalised field's UTF-8 bytes, one character each (latin-1 decoded)
    # term text -> first start with the boundary rule met on both sides (where needed)
    whole: dict[str, int]
    # term text -> first start with a boundary before it: all a prefix term needs. Every key
    # of `whole` is here too, with the same or an earlier start.
    prefix: dict[str, int]
    # For the texts of NEAR operands only: every (start, end, boundary after) with a boundary
    # before, in order.
    spans: dict[str, list[tuple[int, int, bool]]]

    def first_offset(self, term: Term) -> int | None:
        return (self.prefix if term.prefix else self.whole).get(term.text)

    def char_offset(self, byte_offset: int) -> int:
        return len(_from_utf8(self.utf8[:byte_offset]))

    def occurrences(self, term: Term) -> list[tuple[int, int]]:
        """Given a NEAR operand, return its (start, end) byte spans in order; a prefix
        term's span runs to the end of its word."""
        found = self.spans.get(term.text, ())
        if term.prefix:
            return [(start, _word_end(self.utf8, end)) for start, end, _ in found]
        return [(start, end) for start, end, whole in found if whole]

    def near_holds(self, near: Near) -> bool:
        left = self.occurrences(near.left)
        if not left:
            return False
        right = left if near.right == near.left else self.occurrences(near.right)
        if not right:
            return False
        utf8, distance = self.utf8, near.distance

        def within(one: tuple[int, int], other: tuple[int, int]) -> bool:
            return _utf8_gap_within(utf8, one, other, distance)

        return _first_near(left, right, within) is not None


class _RegexTimeout(Exception):
    def __init__(self, node: Regex, field: str) -> None:
        super().__init__(node.source)
        self.node = node
        self.field = field


@dataclass(frozen=True)
class _TimedOut:
    field: str


_UNSEEN = object()


class _ArticleScan:
    """One article's normalised fields and hits, and the regex results so far."""

    def __init__(
        self,
        texts: dict[str, str],
        hits: dict[str, _FieldHits],
        regexes: dict[str, regex.Pattern[str]],
        time_limit_seconds: float,
    ) -> None:
        self.texts = texts  # field -> normalised text, for every field a rule looks at
        self.hits = hits  # field -> automaton hits, for non-empty fields
        self.regexes = regexes  # Regex.pattern -> compiled
        # Regex -> None (not found), (field, character offset) of its first match, or
        # _TimedOut: shared by the rules that use the same regex on the same fields.
        self.regex_results: dict[Regex, tuple[str, int] | _TimedOut | None] = {}
        self.time_limit_seconds = time_limit_seconds
        self.rule_started: float | None = None  # when the current rule's first regex ran

    def is_found(self, atom: Atom) -> bool:
        if type(atom) is Term:
            text = atom.text
            for field in atom.fields or ():
                field_hits = self.hits.get(field)
                # field_hits.first_offset(atom), inlined: this runs for every term of every
                # candidate rule
                if field_hits is not None and text in (
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
        result = self.regex_results.get(atom, _UNSEEN)
        if result is _UNSEEN:
            result = self._search(atom)
            self.regex_results[atom] = result
        if isinstance(result, _TimedOut):
            raise _RegexTimeout(atom, result.field)
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


class RuleSet:
    """Every enabled rule compiled into one matcher. Build it with RuleSet.compile()."""

    def __init__(
        self,
        rules: tuple[_CompiledRule, ...],
        automaton: _TermAutomaton | None,
        rules_by_term: dict[str, int | tuple[int, ...]],
        always_evaluated: tuple[int, ...],
        fields: tuple[str, ...],
        regexes: dict[str, regex.Pattern[str]],
        regex_time_limit_seconds: float,
    ) -> None:
        self._rules = rules
        self._by_name = {rule.name: rule for rule in rules}
        self._automaton = automaton  # None when there is no term at all
        # positive term text -> index of the rule that uses it, or indexes of the rules
        self._rules_by_term = rules_by_term
        # rules whose tree can hold with no term hit (a pure NOT, a pure regex): checked on
        # every article
        self._always_evaluated = always_evaluated
        # the fields any term or regex looks at, in ARTICLE_FIELDS order: the only ones
        # normalised
        self._fields = fields
        # every regex pattern -> compiled, held here so that no cache can evict one
        self._regexes = regexes
        self._regex_time_limit_seconds = regex_time_limit_seconds

    @classmethod
    def compile(
        cls,
        rules: Sequence[RuleConfig],
        *,
        regex_time_limit_seconds: float = REGEX_TIME_LIMIT_SECONDS,
        feed_limits: bool = True,
    ) -> RuleSet:
        """Given rules, return one matcher over the enabled ones, in their order. A rule's
        regexes get at most `regex_time_limit_seconds` per article, all together. With
        feed_limits=False, the rules' `feeds:` are ignored: each rule sees every article.

        Raise ConfigError listing every invalid term, query syntax error, unknown field and
        rule without terms (the config loader should have caught them all already). A rule
        with only `none` terms, or a query that only excludes, compiles and matches every
        article without them; the loader forbids both.
        """
        compiled: list[_CompiledRule] = []
        problems: list[ConfigProblem] = []
        for rule in rules:
            if not rule.enabled:
                continue
            try:
                tree: Node | None = rule_tree(rule)  # parses each term once: the common case
            except ValueError:
                tree = None
            found = rule_problems(
                any_terms=rule.any_terms,
                all_terms=rule.all_terms,
                none_terms=rule.none_terms,
                query=rule.query,
                fields=rule.fields,
                match_everything=True,
                terms_parsed=tree is not None,
            )
            if found:
                problems.extend(_problem(rule, problem) for problem in found)
                continue
            assert tree is not None  # a term or query that does not parse is found above
            # One shared empty set for the rules without feed limits (10,000 empty sets
            # would take 2 MB).
            feeds = frozenset(rule.feeds) if rule.feeds and feed_limits else _NO_FEEDS
            compiled.append(_compile_rule(rule.name, tree, feeds))
        if problems:
            raise ConfigError(problems)
        return cls._from_compiled(tuple(compiled), regex_time_limit_seconds)

    @classmethod
    def _from_compiled(
        cls, rules: tuple[_CompiledRule, ...], regex_time_limit_seconds: float
    ) -> RuleSet:
        near_texts = {
            term.text
            for rule in rules
            if not rule.only_terms
            for atom in rule.positive_atoms + rule.negated_atoms
            if isinstance(atom, Near)
            for term in (atom.left, atom.right)
        }
        # A term that indexes one rule (nearly all of them) maps to its index alone, not to
        # a list or a tuple of one: 10,000 of those are about 1 MB.
        rules_by_term: dict[str, Any] = {}
        always_evaluated: list[int] = []
        fields: set[str] = set()
        regexes: dict[str, regex.Pattern[str]] = {}
        term_texts: set[str] = set()
        for index, rule in enumerate(rules):
            for term in rule.positive_terms + rule.negated_terms:
                term_texts.add(term.text)
            for atom in rule.positive_atoms + rule.negated_atoms:
                fields.update(atom.fields or ())
                if isinstance(atom, Regex) and atom.pattern not in regexes:
                    regexes[atom.pattern] = compile_regex(atom.pattern)
            for text in _index_texts(rule):
                indexes = rules_by_term.get(text)
                if indexes is None:
                    rules_by_term[text] = index
                elif indexes.__class__ is int:
                    if indexes != index:
                        rules_by_term[text] = [indexes, index]
                elif indexes[-1] != index:
                    indexes.append(index)
            if holds_without_terms(rule.tree):
                always_evaluated.append(index)
        for text, indexes in rules_by_term.items():
            if indexes.__class__ is list:
                rules_by_term[text] = tuple(indexes)  # same keys: no copy of the dict
        # sorted: the same automaton for the same rules
        automaton = _TermAutomaton(sorted(term_texts), near_texts) if term_texts else None
        del term_texts
        return cls(
            rules=rules,
            automaton=automaton,
            rules_by_term=rules_by_term,
            always_evaluated=tuple(always_evaluated),
            fields=tuple(field for field in ARTICLE_FIELDS if field in fields),
            regexes=regexes,
            regex_time_limit_seconds=regex_time_limit_seconds,
        )

    def rule_names(self) -> tuple[str, ...]:
        """Return the names of the compiled (enabled) rules, in config order."""
        return tuple(rule.name for rule in self._rules)

    def match(self, article: Article, feed_name: str) -> list[RuleMatch]:
        """Given an article and the name of the feed it came from, return one RuleMatch per
        rule that matches it, in rule order. A rule whose regex ran out of time does not
        match, and is logged; match_with_failures() returns such failures instead."""
        matches, failures = self.match_with_failures(article, feed_name)
        for failure in failures:
            logger.warning("rule %s skipped: %s", failure.rule_name, failure.message)
        return matches

    def match_with_failures(
        self, article: Article, feed_name: str
    ) -> tuple[list[RuleMatch], list[RuleFailure]]:
        """Given an article and the name of the feed it came from, return (one RuleMatch per
        rule that matches it, one RuleFailure per rule that could not be evaluated on it),
        both in rule order. A rule fails when its regexes run out of time; it then counts as
        not matching this article."""
        return self._match(self._scan(article), feed_name)

    def explaining_match(
        self, article: Article, feed_name: str
    ) -> tuple[list[str], list[RuleFailure], ArticleExplainer]:
        """Given an article and the name of the feed it came from, return the names of the
        rules that match it and the failures (as match_with_failures(article, feed_name)
        does), and explainer(article), the latter cheaper than on its own: it knows from
        matching which terms occur in which field, and does not look for the others. The
        explainer's summary() gives a name's RuleMatch: who explains the hits seldom needs
        it (at 10,000 rules, 185,000 summaries cost about a tenth of a `rules test`).

        For many articles at once, explaining_matches() is faster."""
        return self.explaining_matches([(article, feed_name)])[0]

    def explaining_matches(
        self, articles: Sequence[tuple[Article, str]]
    ) -> list[tuple[list[str], list[RuleFailure], ArticleExplainer]]:
        """Given (article, name of the feed it came from) pairs, return explaining_match()
        of each, in the same order.

        Faster than one explaining_match() per article for more than a few: each step runs
        over every article before the next starts (normalising the fields, then the
        automaton over all of them, then evaluating the rules), so each step's tables stay
        in the CPU's caches instead of evicting each other. At 10,000 rules the automaton
        is megabytes; SCAN_BATCH_ARTICLES articles at a time is what `rules test` passes.
        """
        scans = self._scans([article for article, _ in articles])
        results = []
        for (article, feed_name), scan in zip(articles, scans, strict=True):
            matching, failures = self._evaluate(scan, feed_name)
            names = [rule.name for rule in matching]
            results.append((names, failures, ArticleExplainer(self, article, scan)))
        return results

    def _match(
        self, scan: _ArticleScan, feed_name: str
    ) -> tuple[list[RuleMatch], list[RuleFailure]]:
        matching, failures = self._evaluate(scan, feed_name)
        return [_summarise(rule, scan) for rule in matching], failures

    def _evaluate(
        self, scan: _ArticleScan, feed_name: str
    ) -> tuple[list[_CompiledRule], list[RuleFailure]]:
        """The rules that match the scanned article, in rule order, and the failures."""
        candidates = set(self._always_evaluated)
        for field_hits in scan.hits.values():
            for text in field_hits.prefix:
                indexes = self._rules_by_term.get(text)
                if indexes.__class__ is int:
                    candidates.add(indexes)  # type: ignore[arg-type]
                elif indexes is not None:
                    candidates.update(indexes)  # type: ignore[arg-type]
        matches: list[_CompiledRule] = []
        failures: list[RuleFailure] = []
        for index in sorted(candidates):
            rule = self._rules[index]
            if rule.feeds and feed_name not in rule.feeds:
                continue
            scan.rule_started = None
            try:
                if evaluate(rule.plan, scan.is_found):
                    matches.append(rule)
            except _RegexTimeout as timeout:
                message = (
                    f"regex {timeout.node.source} ran out of time "
                    f"({self._regex_time_limit_seconds:g}s) on the {timeout.field}; "
                    "the rule counts as not matching this article"
                )
                failures.append(RuleFailure(rule_name=rule.name, message=message))
        return matches, failures

    def explain(self, article: Article, rule_name: str) -> tuple[TermHit, ...]:
        """Given an article and the name of a compiled rule, return every occurrence of every
        positive term of the rule in the fields it looks at: words, phrases and prefixes
        (a prefix's occurrence runs to the end of its word), both operands of each pair
        that satisfies a NEAR, and every non-empty match of each regex. Sorted by field
        (ARTICLE_FIELDS order), then start; offsets point into the original field text.

        Whether the rule matches is not checked (the feed is not known here). Slower than
        match(): meant for the few hits shown to a person. A regex that runs out of time
        contributes the matches it found before. Raise KeyError if no enabled rule has
        that name. To explain several rules of one article, explainer() is cheaper.
        """
        return self.explainer(article).explain(rule_name)

    def explainer(self, article: Article) -> ArticleExplainer:
        """Given an article, return an ArticleExplainer: explain() for any number of rules of
        this one article, each field normalised once and each term looked for once."""
        return ArticleExplainer(self, article)

    def _scan(self, article: Article) -> _ArticleScan:
        """Given an article, return its normalised fields and the hits in each."""
        return self._scans([article])[0]

    def _scans(self, articles: Sequence[Article]) -> list[_ArticleScan]:
        """Given articles, return each one's normalised fields and the hits in each: every
        field normalised first, then the automaton over all of them (explaining_matches)."""
        fields = self._fields
        texts_by_article = [
            {field: _normalised(article.field_text(field)) for field in fields}
            for article in articles
        ]
        automaton = self._automaton
        scans = []
        for texts in texts_by_article:
            hits: dict[str, _FieldHits] = {}
            if automaton is not None:
                for field, text in texts.items():
                    if text:
                        data = text.encode("utf-8")
                        hits[field] = _scan_text(automaton, data, data.decode("latin-1"))
            scans.append(_ArticleScan(texts, hits, self._regexes, self._regex_time_limit_seconds))
        return scans


class ArticleExplainer:
    """RuleSet.explain() for the rules of one article: the fields normalised with offsets,
    and the occurrences of each atom, are worked out once and shared by the rules that ask
    (at 10,000 rules an article matches a handful, often through the same terms).

    Not thread-safe; meant to live as long as one article is being explained.
    """

    def __init__(
        self,
        rule_set: RuleSet,
        article: Article,
        scan: _ArticleScan | None = None,
    ) -> None:
        self._rule_set = rule_set
        self._article = article
        # What matching this article found (RuleSet.explaining_match), if known: its
        # normalised fields, and the hits in the non-empty ones that any rule looks at.
        self._scan = scan
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
        rule = self._rule_set._by_name[rule_name]
        if self._scan is None:
            self._scan = self._rule_set._scan(self._article)
        return _summarise(rule, self._scan)

    def explain(self, rule_name: str) -> tuple[TermHit, ...]:
        """Given the name of a compiled rule, return RuleSet.explain(article, rule_name).

        Raise KeyError if no enabled rule has that name.
        """
        rule = self._rule_set._by_name[rule_name]
        hits: dict[tuple[int, int, int, str], TermHit] = {}
        scanned = self._scanned
        atom_hits = self._atom_hits
        for atom in rule.positive_atoms:
            fields = atom.fields or ()
            if scanned is not None and type(atom) is Term:
                # Every occurrence that term_spans() keeps starts at a boundary, so the
                # scan has it among its prefix hits; most terms of a matching rule are in
                # none of its fields.
                text = atom.text
                fields = [
                    field
                    for field in fields
                    if (field_hits := scanned.get(field)) is not None and text in field_hits.prefix
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
        explainer made without a scan, or a field whose normalised text is not one to one
        with the original (offsets there can tie where the normalised ones do not).

        Raise KeyError if no enabled rule has that name.
        """
        rule = self._rule_set._by_name[rule_name]
        scanned = self._scanned
        if not rule.only_terms or scanned is None:
            return None
        terms_by_field: dict[str, tuple[str, ...]] = {}
        for field in ARTICLE_FIELDS:
            field_hits = scanned.get(field)
            if field_hits is None:
                continue
            # written term -> (start, end) of its first occurrence, in normalised UTF-8 bytes:
            # byte order is character order
            first: dict[str, tuple[int, int]] = {}
            for term in rule.positive_terms:
                if field not in (term.fields or ()):
                    continue
                start = field_hits.first_offset(term)
                if start is None:
                    continue
                end = start + len(term.text.encode("utf-8"))
                if term.prefix:
                    end = _word_end(field_hits.utf8, end)
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
        rule_set = self._rule_set
        spans = _explain_atom(
            atom, normalised, rule_set._regexes, rule_set._regex_time_limit_seconds
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


_FIELD_ORDER = {field: position for position, field in enumerate(ARTICLE_FIELDS)}


def _compile_rule(name: str, tree: Node, feeds: frozenset[str]) -> _CompiledRule:
    positive_atoms = tree_atoms(tree)
    negated_atoms = tree_atoms(tree, positive=False)
    return _CompiledRule(
        name=name,
        tree=tree,
        plan=_cheapest_first(tree),
        feeds=feeds,
        positive_atoms=positive_atoms,
        negated_atoms=negated_atoms,
        positive_terms=_spelt_out(positive_atoms),
        negated_terms=_spelt_out(negated_atoms),
        only_terms=all(isinstance(atom, Term) for atom in positive_atoms + negated_atoms),
    )


def _index_texts(rule: _CompiledRule) -> tuple[str, ...]:
    """Given a compiled rule, return the term texts to index it under: the rule is evaluated
    on an article only if one of them is found there.

    Without a regex, the terms of one conjunct that the rule cannot match without (the one
    with the fewest): `any: [a, b], all: [c]` needs c, so an article with a but not c is not
    worth evaluating (at 10,000 rules, half the candidates). A rule with a regex is indexed
    under all its positive terms, as its regexes run in evaluation order and a timeout is
    reported: skipping such a rule could hide one.
    """
    if not any(isinstance(atom, Regex) for atom in rule.positive_atoms + rule.negated_atoms):
        needed = _needed_texts(rule.tree)
        if needed is not None:
            return needed
    return tuple(dict.fromkeys(term.text for term in rule.positive_terms))


def _needed_texts(node: Node) -> tuple[str, ...] | None:
    """Given a tree, return term texts one of which must be found for it to hold, or None
    if it can hold without any (a negation, a regex)."""
    if isinstance(node, Term):
        return (node.text,)
    if isinstance(node, Near):
        return (node.left.text,)  # both operands must occur; one is enough to index
    if isinstance(node, And):
        needs = [need for need in map(_needed_texts, node.children) if need is not None]
        return min(needs, key=len) if needs else None
    if isinstance(node, Or):
        texts: dict[str, None] = {}
        for child in node.children:
            need = _needed_texts(child)
            if need is None:
                return None
            texts.update(dict.fromkeys(need))
        return tuple(texts)
    return None  # Not, Regex


def _spelt_out(atoms: tuple[Atom, ...]) -> tuple[Term, ...]:
    """Given atoms, return their terms in order, each NEAR's two operands included."""
    if all(atom.__class__ is Term for atom in atoms):
        # Distinct already (tree_atoms): one tuple for both, not two equal ones per rule.
        return atoms  # type: ignore[return-value]
    terms: list[Term] = []
    for atom in atoms:
        if isinstance(atom, Term):
            terms.append(atom)
        elif isinstance(atom, Near):
            terms.extend((atom.left, atom.right))
    return tuple(dict.fromkeys(terms))


def _problem(rule: RuleConfig, problem: RuleProblem) -> ConfigProblem:
    location = f"rules ({rule.name})" + "".join(
        f"[{part}]" if isinstance(part, int) else f".{part}" for part in problem.key
    )
    return ConfigProblem(rule.source_file or "<rules>", rule.source_line, location, problem.message)


def _term_value(text: str, *, near: bool) -> str | tuple[str, bool, bool, bool]:
    """Given a normalised term, return what the scan needs to know of it (_scan_text)."""
    # Which ends need the Latin boundary check is decided once here, not per hit.
    check_before, check_after = is_latin_char(text[0]), is_latin_char(text[-1])
    if not (check_before or check_after or near):
        # Most terms (Chinese ones) need neither check: their value is the term itself, a
        # string the rule holds anyway, rather than a tuple (about 3 MB at 10,000 rules).
        return text
    return (text, check_before, check_after, near)


def _scan_text(automaton: _TermAutomaton, data: bytes, utf8: str) -> _FieldHits:
    """Given the automaton and a normalised field's UTF-8 bytes (also as a str, one
    character per byte), return the first valid start of each term, and every valid span of
    the terms NEAR uses.

    Matches come in order of their end, so the first one kept for a term is also its
    earliest start.
    """
    whole: dict[str, int] = {}
    prefix: dict[str, int] = {}
    spans: dict[str, list[tuple[int, int, bool]]] = {}
    size = len(data)
    values = automaton.values
    for index, start, end in automaton.find(data):
        value = values[index]
        if value.__class__ is str:  # a term with no boundary to check, no NEAR (_term_value)
            if value not in whole:
                prefix[value] = whole[value] = start
            continue
        term, check_before, check_after, near = value
        if term in whole:
            continue  # NEAR operands never get here: they are added to `whole` at the end
        if check_before and start > 0 and is_latin_char(_char_before(utf8, start)):
            continue  # `ai` inside `said`
        if term not in prefix:
            prefix[term] = start
        if check_after and end < size and is_latin_char(_char_at(utf8, end)):
            if near:
                spans.setdefault(term, []).append((start, end, False))
            continue  # `sanction` inside `sanctions`: only a prefix hit
        if near:
            spans.setdefault(term, []).append((start, end, True))
            continue
        whole[term] = start
    for term, found in spans.items():
        first_whole = next((start for start, _, is_whole in found if is_whole), None)
        if first_whole is not None:
            whole[term] = first_whole
    return _FieldHits(utf8=utf8, whole=whole, prefix=prefix, spans=spans)


def _char_before(utf8: str, start: int) -> str:
    """Given UTF-8 text and the start of a character, return the character before it."""
    begin = start - 1
    while begin > 0 and "\x80" <= utf8[begin] <= "\xbf":  # continuation bytes
        begin -= 1
    return _from_utf8(utf8[begin:start])


def _char_length(lead: str) -> int:
    code = ord(lead)
    return 1 if code < 0xC0 else 2 if code < 0xE0 else 3 if code < 0xF0 else 4


def _char_at(utf8: str, start: int) -> str:
    """Given UTF-8 text and the start of a character, return that character."""
    return _from_utf8(utf8[start : start + _char_length(utf8[start])])


def _word_end(utf8: str, end: int) -> int:
    """Given UTF-8 text and the end of a prefix term's match, return the end of its word."""
    while end < len(utf8):
        length = _char_length(utf8[end])
        if not is_latin_char(_from_utf8(utf8[end : end + length])):
            break
        end += length
    return end


Span = tuple[int, int]


def _first_near(
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


def _gap(one: Span, other: Span) -> int:
    """Return the gap between two spans: negative when they overlap."""
    return max(other[0] - one[1], one[0] - other[1])


def _utf8_gap_within(utf8: str, one: Span, other: Span, distance: int) -> bool:
    """Given UTF-8 text and two byte spans, return whether at most `distance` characters
    separate them (overlapping spans are near). A character is 1 to 4 bytes, so the byte gap
    decides most cases without decoding."""
    gap = _gap(one, other)
    if gap <= distance:
        return True
    if gap > 4 * distance:
        return False
    low, high = (one[1], other[0]) if other[0] >= one[1] else (other[1], one[0])
    return len(_from_utf8(utf8[low:high])) <= distance


def _summarise(rule: _CompiledRule, scan: _ArticleScan) -> RuleMatch:
    """Given a matching rule and the article's scan, return which positive terms were found
    where, and the earliest hit in the first field (in ARTICLE_FIELDS order) that has one."""
    if rule.only_terms:
        return _summarise_terms(rule, scan.hits)
    terms_by_field: dict[str, tuple[str, ...]] = {}
    first_hit: tuple[str, int] | None = None
    for field in ARTICLE_FIELDS:
        field_hits = scan.hits.get(field)
        found: dict[str, int] = {}  # source -> byte offset, in rule order
        regex_found: dict[str, int] = {}  # source -> character offset
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
                terms = (atom.left, atom.right)
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
            # Byte order is character order, so the earliest bytes are the earliest hit.
            byte_offsets = [offset for offset in found.values() if offset >= 0]
            offsets = list(regex_found.values())
            if byte_offsets and field_hits is not None:
                offsets.append(field_hits.char_offset(min(byte_offsets)))
            first_hit = (field, min(offsets))
    return RuleMatch(rule_name=rule.name, terms_by_field=terms_by_field, first_hit=first_hit)


def _summarise_terms(rule: _CompiledRule, hits: dict[str, _FieldHits]) -> RuleMatch:
    """_summarise() for a rule made of plain terms only (no NEAR, no regex)."""
    terms_by_field: dict[str, tuple[str, ...]] = {}
    first_hit: tuple[str, int] | None = None
    for field in ARTICLE_FIELDS:
        field_hits = hits.get(field)
        if field_hits is None:
            continue
        found: dict[str, int] = {}  # source -> byte offset, in rule order
        whole, prefix = field_hits.whole, field_hits.prefix
        for term in rule.positive_terms:
            if field not in (term.fields or ()):
                continue
            # field_hits.first_offset(term), inlined (runs for every term of every match)
            offset = (prefix if term.prefix else whole).get(term.text)
            if offset is not None:
                found[term.source] = min(offset, found.get(term.source, offset))
        if found:
            terms_by_field[field] = tuple(found)
            if first_hit is None:
                # Byte order is character order, so the earliest bytes are the earliest hit.
                first_hit = (field, field_hits.char_offset(min(found.values())))
    return RuleMatch(rule_name=rule.name, terms_by_field=terms_by_field, first_hit=first_hit)


# ----------------------------------------------------------------------------- explain


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


def near_spans(text: str, near: Near) -> tuple[list[Span], list[Span]]:
    """Given normalised text and a Near, return the occurrences of its left and of its right
    operand that take part in at least one near pair."""
    left = term_spans(text, near.left)
    right = term_spans(text, near.right)

    def within(one: Span, other: Span) -> bool:
        return _gap(one, other) <= near.distance

    kept_left = [span for span in left if _first_near([span], right, within) is not None]
    kept_right = [span for span in right if _first_near([span], left, within) is not None]
    return kept_left, kept_right


@functools.lru_cache(maxsize=16)
def _normalised(text: str) -> str:
    # match() normalises each field of an article, and explaining a hit needs the same
    # text again right after: the few fields of the last articles are kept.
    return normalize(text)


@functools.lru_cache(maxsize=64)
def _normalised_with_origins(text: str) -> tuple[str, Sequence[int], bool]:
    # explain() runs once per hit (in the daemon: per alert), so the fields of one article
    # are asked for again for every rule it matches; normalising with offsets is the
    # costly part. The flag says the origins are the identity (the common case).
    normalised = _normalised(text)
    if maps_one_to_one(text, normalised):  # no need to normalise again
        return normalised, range(len(text) + 1), True
    normalised, origins = normalize_with_origins(text)
    return normalised, origins, isinstance(origins, range)


def _explain_atom(
    atom: Atom, text: str, regexes: dict[str, regex.Pattern[str]], time_limit_seconds: float
) -> list[tuple[int, int, str]]:
    """Given a positive atom and a normalised field, return (start, end, term as written)
    of each of its occurrences."""
    if isinstance(atom, Term):
        return [(start, end, atom.source) for start, end in term_spans(text, atom)]
    if isinstance(atom, Near):
        left, right = near_spans(text, atom)
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


__all__ = [
    "REGEX_TIME_LIMIT_SECONDS",
    "And",
    "Atom",
    "Near",
    "Node",
    "Not",
    "Or",
    "QuerySyntaxError",
    "Regex",
    "RuleSet",
    "Term",
    "TermHit",
    "evaluate",
    "holds_without_terms",
    "near_spans",
    "parse_query",
    "parse_term",
    "rule_tree",
    "term_problem",
    "term_spans",
    "tree_atoms",
    "tree_terms",
    "with_default_fields",
]
