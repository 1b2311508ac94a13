"""Watch rules -> expression trees -> compiled rules (what RuleSet matches).

Every rule becomes a small expression tree (monitor.matching.query: Term, Near, Regex, And, Or,
Not). The list form compiles to

    And( Or(any...) if any,  each of all...,  Not(Or(none...)) if none,  query if query )

and a `query:` is parsed by monitor.matching.query.parse_query into the same nodes; terms without a
field prefix get the rule's `fields`. Terms with regional variants (monitor.matching.vocabulary:
软件 also finds 軟體) get a key of their own (Term.key).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from monitor.config import RuleConfig
from monitor.matching.query import (
    And,
    Atom,
    Near,
    Node,
    Not,
    Or,
    Regex,
    Term,
    parse_query,
    parse_term,
    tree_atoms,
    with_default_fields,
)
from monitor.matching.validation import RuleProblem, rule_problems
from monitor.matching.vocabulary import RegionalReading, regional_readings
from monitor.model import ConfigError, ConfigProblem


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


_NO_FEEDS: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)  # one per rule: 10,000 of them
class CompiledRule:
    name: str
    tree: Node  # as written (with fields filled in): explained
    plan: Node  # the same predicate, cheapest children first: evaluated
    feeds: frozenset[str]  # empty: every feed
    positive_atoms: tuple[Atom, ...]  # can make the rule match: explained
    negated_atoms: tuple[Atom, ...]  # can only stop it
    positive_terms: tuple[Term, ...]  # the positive atoms, NEAR operands spelt out: indexed
    negated_terms: tuple[Term, ...]
    only_terms: bool  # no Near, no Regex: the common case, summarised the quick way


def compile_rules(rules: Sequence[RuleConfig], *, feed_limits: bool) -> tuple[CompiledRule, ...]:
    """Given rules, return the enabled ones compiled, in their order, without regional
    readings (with_regional_keys adds them). With feed_limits=False, the rules' `feeds:` are
    ignored: each rule sees every article.

    Raise ConfigError listing every invalid term, query syntax error, unknown field and
    rule without terms.
    """
    compiled: list[CompiledRule] = []
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
    return tuple(compiled)


def with_regional_keys(
    rules: tuple[CompiledRule, ...],
) -> tuple[tuple[CompiledRule, ...], dict[str, RegionalReading]]:
    """Given compiled rules, return (them with the key of its regional reading on each term
    that has one, Term.key; the readings by key). Working the readings out may take a
    process (monitor.matching.vocabulary)."""
    readings = regional_readings(
        term.source for rule in rules for term in rule.positive_terms + rule.negated_terms
    )
    if not readings:
        return rules, {}
    # Compiled again, with the keys of their readings: the few rules that have them.
    keyed = tuple(
        _compile_rule(rule.name, _with_regional_keys(rule.tree, readings), rule.feeds)
        if any(term.source in readings for term in rule.positive_terms + rule.negated_terms)
        else rule
        for rule in rules
    )
    return keyed, {reading.key: reading for reading in readings.values()}


def _with_regional_keys(node: Node, readings: Mapping[str, RegionalReading]) -> Node:
    """Given a tree and regional readings by term as written, return the tree with the key
    of its reading on each term that has one (the same nodes where nothing changes)."""
    if isinstance(node, Term):
        return _keyed_term(node, readings)
    if isinstance(node, Near):
        left = _keyed_term(node.left, readings)
        right = _keyed_term(node.right, readings)
        if left is node.left and right is node.right:
            return node
        return replace(node, left=left, right=right)
    if isinstance(node, And | Or):
        children = tuple(_with_regional_keys(child, readings) for child in node.children)
        if all(new is old for new, old in zip(children, node.children, strict=True)):
            return node
        return type(node)(children)
    if isinstance(node, Not):
        child = _with_regional_keys(node.child, readings)
        return node if child is node.child else Not(child)
    return node  # Regex


def _keyed_term(term: Term, readings: Mapping[str, RegionalReading]) -> Term:
    reading = readings.get(term.source)
    return term if reading is None else replace(term, key=reading.key)


def _compile_rule(name: str, tree: Node, feeds: frozenset[str]) -> CompiledRule:
    positive_atoms = tree_atoms(tree)
    negated_atoms = tree_atoms(tree, positive=False)
    return CompiledRule(
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


def index_texts(rule: CompiledRule) -> tuple[str, ...]:
    """Given a compiled rule, return the term keys (Term.key) to index it under: the rule is
    evaluated on an article only if one of them is found there.

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
    return tuple(dict.fromkeys(term.key for term in rule.positive_terms))


def _needed_texts(node: Node) -> tuple[str, ...] | None:
    """Given a tree, return term keys one of which must be found for it to hold, or None
    if it can hold without any (a negation, a regex)."""
    if isinstance(node, Term):
        return (node.key,)
    if isinstance(node, Near):
        return (node.left.key,)  # both operands must occur; one is enough to index
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
