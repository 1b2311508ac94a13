"""The search index's tokens: what an article is indexed under, and what a query asks the
index for, so that the index hands the rule engine every article a query could match.

An index of words cannot find Chinese terms (Chinese has no spaces), and a trigram index
cannot find two-character ones, which most watch terms are (韩日, 劳工, 关税). So text
written without spaces (Han, kana, hangul: matching.text's CJK characters) is indexed as
overlapping bigrams, the way Lucene's CJK analyser does (韩日副外长 -> 韩日 日副 副外 外长),
and Latin text (any other letter or digit) as words. Both come from the normalised text the
rules see (matching.text.normalize: Traditional folded to Simplified, full width, case), so
韓日 and 韩日 are one token.

A query becomes a boolean expression over tokens (index_query) that every article the query
matches satisfies: a term needs all its tokens (韩日副 needs 韩日 and 日副), in any of the
texts that find it (its regional variants: 软件 also looks for 软体, which 軟體 folds to).
What the index cannot narrow (a one-character term, a /regex/, NOT) asks nothing of it. The
index gives candidates only: the rule engine decides, so search finds exactly what rules do.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from monitor.matching.query import And, Near, Node, Not, Or, Regex, Term
from monitor.matching.text import is_cjk_char, is_latin_char, normalize
from monitor.matching.vocabulary import regional_readings
from monitor.model import DEFAULT_MATCH_FIELDS

# Fields an article is indexed under: those rules and search look at unless a query names
# others (a term on another field, author: say, asks nothing of the index).
INDEXED_FIELDS = DEFAULT_MATCH_FIELDS
# Bump when the tokens of a text change (tokenizer, normalisation): stored tokens made by an
# earlier version no longer match queries made by this one, so the index is rebuilt.
TOKENS_VERSION = 1


def tokens_version() -> str:
    """What the tokens depend on: this module's version, and the Unicode and OpenCC data of
    normalisation. A stored index made under another is rebuilt."""
    from importlib.metadata import version

    return f"{TOKENS_VERSION}/unicode {unicodedata.unidata_version}/opencc {version('opencc')}"


_LATIN, _CJK, _OTHER = "L", "C", " "
_RUN = re.compile(f"{_LATIN}+|{_CJK}+")


class _Kinds(dict[int, str]):
    """Character -> its kind, for str.translate: each character is classified (by the rules'
    own boundary tests) the first time it is seen, so an article's text is classified at
    the speed of translate, not of a Python loop over its characters."""

    def __missing__(self, code: int) -> str:
        char = chr(code)
        if is_latin_char(char):
            kind = _LATIN
        elif unicodedata.category(char)[0] in "LN" and is_cjk_char(char):
            kind = _CJK
        else:
            kind = _OTHER
        self[code] = kind
        return kind


_KINDS = _Kinds()


def _runs(normalised: str) -> Iterator[tuple[str, str]]:
    """The text's runs of Latin letters and digits, and of CJK letters, each with its kind."""
    kinds = normalised.translate(_KINDS)
    for found in _RUN.finditer(kinds):
        yield found.group()[0], normalised[found.start() : found.end()]


def _bigrams(run: str) -> Iterator[str]:
    return (run[index : index + 2] for index in range(len(run) - 1))


def text_tokens(normalised: str) -> set[str]:
    """Given normalised text, return the tokens it is indexed under: its Latin words, and
    the bigrams of its CJK runs (a run of one character has none: no query needs it)."""
    tokens: set[str] = set()
    for kind, run in _runs(normalised):
        if kind == _LATIN:
            tokens.add(run)
        else:
            tokens.update(_bigrams(run))
    return tokens


def article_tokens(texts: Iterable[str]) -> list[str]:
    """Given an article's texts (its INDEXED_FIELDS, as stored), return its tokens, sorted."""
    tokens: set[str] = set()
    for text in texts:
        if text:
            tokens |= text_tokens(normalize(text))
    return sorted(tokens)


# ----------------------------------------------------------------------------- queries


@dataclass(frozen=True)
class AllTokens:
    """Articles indexed under every one of these tokens; with `prefix`, the last one may be
    the start of a longer word (`sanction*`)."""

    tokens: tuple[str, ...]
    prefix: bool = False


@dataclass(frozen=True)
class AllOf:
    children: tuple[IndexQuery, ...]


@dataclass(frozen=True)
class AnyOf:
    children: tuple[IndexQuery, ...]


IndexQuery = AllTokens | AllOf | AnyOf


def term_tokens(normalised: str, *, prefix: bool) -> AllTokens | None:
    """Given a term's normalised text, return the tokens every text it matches is indexed
    under, or None when there are none to ask for (a one-character term, punctuation).

    A Latin word is a whole word in the text only where the rules ask for a boundary: at the
    term's ends when they are Latin (unless it is a prefix term, at its end), and between
    two CJK runs. A CJK run's bigrams are in the text wherever the run is; a run of one
    character at the term's edge may be part of a longer run in the text, so it asks nothing.
    """
    tokens: list[str] = []
    runs = list(_runs(normalised))
    for kind, run in runs:
        if kind == _LATIN:
            tokens.append(run)
        else:
            tokens.extend(_bigrams(run))
    if not tokens:
        return None
    last_kind, last_run = runs[-1]
    ends_in_word = last_kind == _LATIN and normalised.endswith(last_run)
    return AllTokens(tuple(dict.fromkeys(tokens)), prefix=prefix and ends_in_word)


def index_query(tree: Node) -> IndexQuery | None:
    """Given a query's tree, return what an article it matches must be indexed under, or
    None when the index cannot narrow it (every article is a candidate)."""
    match tree:
        case Term():
            return _term_query(tree)
        case Near(left=left, right=right):
            return _all_of([_term_query(left), _term_query(right)])
        case And(children=children):
            return _all_of([index_query(child) for child in children])
        case Or(children=children):
            found = [index_query(child) for child in children]
            if any(child is None for child in found):
                return None
            return AnyOf(tuple(child for child in found if child is not None))
        case Not() | Regex():
            # NOT x holds where x's tokens are too (x's phrase need not be), and a regex
            # may match anything: neither narrows the candidates.
            return None
    raise TypeError(f"not a query node: {tree!r}")


def _term_query(term: Term) -> IndexQuery | None:
    if term.fields is not None and not set(term.fields) <= set(INDEXED_FIELDS):
        return None  # (author:, link:, ...: fields the index does not hold)
    texts = [term.text]
    reading = regional_readings([term.source]).get(term.source) if term.source else None
    if reading is not None:
        texts += [reading.mainland, *reading.variants]
    found = [term_tokens(text, prefix=term.prefix) for text in dict.fromkeys(texts)]
    if any(tokens is None for tokens in found):
        return None
    alternatives = tuple(tokens for tokens in found if tokens is not None)
    return alternatives[0] if len(alternatives) == 1 else AnyOf(alternatives)


def _all_of(children: list[IndexQuery | None]) -> IndexQuery | None:
    narrowing = tuple(child for child in children if child is not None)
    if not narrowing:
        return None
    return narrowing[0] if len(narrowing) == 1 else AllOf(narrowing)
