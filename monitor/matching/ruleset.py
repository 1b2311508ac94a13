"""Watch rules -> one compiled matcher over all rules (RuleSet); explain().

Each rule is compiled to an expression tree (monitor.matching.compile); RuleSet holds all of
them, one term automaton (monitor.matching.automaton) and the index from terms to rules.

Matching one article (RuleSet.match_with_failures):

1. Normalise each field that some rule looks at, once (monitor.matching.text.normalize).
2. Run ONE Aho-Corasick automaton, holding every term of every rule (NEAR operands and
   negated terms included; see monitor.matching.automaton), over each field, keep per
   field the first offset of each term that respects the Latin boundary rule. Only for the
   terms that some NEAR uses, every occurrence is kept, as (start, end) pairs. The
   automaton also holds each term's regional variants (软件: 软体 for 軟體; see
   monitor.matching.vocabulary); a variant's hit counts only if the article confirms it.
3. Evaluate the tree only of rules that use at least one positive term that was hit (a
   reverse index from term to rules), plus the "always evaluated" rules: those that can hold
   with no term hit at all (a pure NOT, a pure /regex/, `/x/ OR a`). A tree is monotone: a
   term under an even number of Nots can only make it truer, a term under an odd number only
   falser. So a rule that is false with no positive hits (and every regex as favourable as
   can be) stays false when only its negated terms are hit, and only positive terms need
   indexing. A rule without regex is indexed only under the terms of one conjunct it
   cannot hold without (`any: [a, b], all: [c]`: under c), see compile.index_texts.
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

import logging
import threading
from collections.abc import Sequence
from typing import Any

import regex

from monitor.config import RuleConfig
from monitor.matching.automaton import TermAutomaton
from monitor.matching.compile import (
    CompiledRule,
    compile_rules,
    holds_without_terms,
    index_texts,
    with_regional_keys,
)
from monitor.matching.explain import ArticleExplainer, TermHit
from monitor.matching.query import Near, Regex, compile_regex, evaluate
from monitor.matching.scan import ArticleScan, RegexTimeout, Scanner, summarise
from monitor.model import ARTICLE_FIELDS, Article, RuleFailure, RuleMatch

logger = logging.getLogger(__name__)


# How long the regexes of one rule may run on one article, all fields together.
REGEX_TIME_LIMIT_SECONDS = 0.1


# Articles matched together by callers of explaining_matches() that have many (`rules
# test`). From about 16 on, larger batches were no faster within the noise of the bench
# host; each article holds its normalised fields until its batch is done (about 6 KB).
SCAN_BATCH_ARTICLES = 64


class RuleSet:
    """Every enabled rule compiled into one matcher. Build it with RuleSet.compile().

    The rules are checked and compiled at once; the regional readings of their terms, and
    the automaton that needs them, when the first article is matched or explained (working
    the readings out may take a process, about 0.3 s: a run that matches nothing, such as a
    cycle of unchanged feeds, does not pay for it).
    """

    def __init__(self, rules: tuple[CompiledRule, ...], regex_time_limit_seconds: float) -> None:
        self._compiled = rules  # without regional readings; () once the matcher is built
        self._names = tuple(rule.name for rule in rules)
        self._regex_time_limit_seconds = regex_time_limit_seconds
        self._built: _Matcher | None = None
        self._build_lock = threading.Lock()

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
        return cls(compile_rules(rules, feed_limits=feed_limits), regex_time_limit_seconds)

    def _matcher(self) -> _Matcher:
        matcher = self._built
        if matcher is None:
            with self._build_lock:
                if self._built is None:
                    self._built = _Matcher.build(self._compiled, self._regex_time_limit_seconds)
                    self._compiled = ()  # the matcher holds them now, with their keys
                matcher = self._built
        return matcher

    def rule_names(self) -> tuple[str, ...]:
        """Return the names of the compiled (enabled) rules, in config order."""
        return self._names

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
        matcher = self._matcher()
        scan = matcher.scanner.scans([article])[0]
        matching, failures = matcher.evaluate(scan, feed_name)
        return [summarise(rule, scan) for rule in matching], failures

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
        matcher = self._matcher()
        scans = matcher.scanner.scans([article for article, _ in articles])
        results = []
        for (article, feed_name), scan in zip(articles, scans, strict=True):
            matching, failures = matcher.evaluate(scan, feed_name)
            names = [rule.name for rule in matching]
            explainer = ArticleExplainer(matcher.by_name, matcher.scanner, article, scan)
            results.append((names, failures, explainer))
        return results

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
        matcher = self._matcher()
        return ArticleExplainer(matcher.by_name, matcher.scanner, article)


class _Matcher:
    """What matching takes, built from compiled rules once their terms have their regional
    readings (RuleSet._matcher)."""

    def __init__(
        self,
        rules: tuple[CompiledRule, ...],
        rules_by_term: dict[str, int | tuple[int, ...]],
        always_evaluated: tuple[int, ...],
        scanner: Scanner,
    ) -> None:
        self.rules = rules
        self.by_name = {rule.name: rule for rule in rules}
        # positive term key -> index of the rule that uses it, or indexes of the rules
        self.rules_by_term = rules_by_term
        # rules whose tree can hold with no term hit (a pure NOT, a pure regex): checked on
        # every article
        self.always_evaluated = always_evaluated
        # the automaton, the fields it looks at and the regexes
        self.scanner = scanner

    @classmethod
    def build(cls, compiled: tuple[CompiledRule, ...], regex_time_limit_seconds: float) -> _Matcher:
        try:
            rules, readings = with_regional_keys(compiled)
        except Exception:  # whatever OpenCC raised: matching goes on without variants
            logger.exception("regional vocabulary unavailable: terms match as written only")
            rules, readings = compiled, {}
        near_keys = {
            term.key
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
        texts_by_key: dict[str, str] = {}
        for index, rule in enumerate(rules):
            for term in rule.positive_terms + rule.negated_terms:
                texts_by_key[term.key] = term.text
            for atom in rule.positive_atoms + rule.negated_atoms:
                fields.update(atom.fields or ())
                if isinstance(atom, Regex) and atom.pattern not in regexes:
                    regexes[atom.pattern] = compile_regex(atom.pattern)
            for text in index_texts(rule):
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
        automaton = TermAutomaton(texts_by_key, near_keys, readings) if texts_by_key else None
        del texts_by_key
        scanner = Scanner(
            automaton=automaton,
            fields=tuple(field for field in ARTICLE_FIELDS if field in fields),
            regexes=regexes,
            regex_time_limit_seconds=regex_time_limit_seconds,
        )
        return cls(
            rules=rules,
            rules_by_term=rules_by_term,
            always_evaluated=tuple(always_evaluated),
            scanner=scanner,
        )

    def evaluate(
        self, scan: ArticleScan, feed_name: str
    ) -> tuple[list[CompiledRule], list[RuleFailure]]:
        """The rules that match the scanned article, in rule order, and the failures."""
        candidates = set(self.always_evaluated)
        for field_hits in scan.hits.values():
            for text in field_hits.prefix:
                indexes = self.rules_by_term.get(text)
                if indexes.__class__ is int:
                    candidates.add(indexes)
                elif indexes is not None:
                    candidates.update(indexes)  # type: ignore[arg-type]
        matches: list[CompiledRule] = []
        failures: list[RuleFailure] = []
        for index in sorted(candidates):
            rule = self.rules[index]
            if rule.feeds and feed_name not in rule.feeds:
                continue
            scan.rule_started = None
            try:
                if evaluate(rule.plan, scan.is_found):
                    matches.append(rule)
            except RegexTimeout as timeout:
                message = (
                    f"regex {timeout.node.source} ran out of time "
                    f"({self.scanner.regex_time_limit_seconds:g}s) on the {timeout.field}; "
                    "the rule counts as not matching this article"
                )
                failures.append(RuleFailure(rule_name=rule.name, message=message))
        return matches, failures
