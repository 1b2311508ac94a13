"""The rule language: expression-tree nodes, the term syntax, and the `query:` parser.

A rule is a predicate over an article's fields, written as a tree of frozen dataclasses:

    Term   a word, a "quoted phrase" or a Latin prefix word*, found as a substring of the
           normalised text with the Latin boundary rule (text.is_latin_char)
    Near   two Terms at most `distance` characters apart, in either order, in one field
    Regex  a /regex/, searched for in the normalised text, case-insensitively
    And, Or, Not

The list form (any/all/none) and the query form both compile to these nodes
(monitor.matching.compile does the list form; monitor.matching.ruleset the matching). The
query grammar, loosest binding first:

    query    := or_expr
    or_expr  := and_expr ("OR" and_expr)*
    and_expr := unary (["AND"] unary)*          terms side by side are ANDed
    unary    := ("NOT" | "-") unary | near
    near     := primary ["NEAR/n" primary]      both sides plain terms
    primary  := [field ":"] ("(" or_expr ")" | "phrase" | word | /regex/)

So NOT binds tighter than AND, and AND tighter than OR: `a OR b c` is `a OR (b AND c)`,
`NOT a b` is `(NOT a) AND b`, and `-a NEAR/3 b` is `NOT (a NEAR/3 b)`. Only upper-case AND,
OR, NOT and NEAR/n are operators; `or` is a plain term. Full-width forms of the syntax
characters (（ ） ＂ － ： ＯＲ and the ideographic space) work as their ASCII twins, so a
query typed with a Chinese input method means what it looks like.

A field prefix (`title:`, `summary:`, `content:`, `link:`, `author:`, `category:` or
`categories:`) applies to the term, phrase, /regex/ or parenthesised group right after it;
terms without one get the rule's `fields` (with_default_fields). A word with a colon that is
not a field prefix (`https://...`) must be quoted.

Every syntax error raises QuerySyntaxError with the 1-based column (in characters) of the
offending token; QuerySyntaxError.pointer() shows the query with a caret under it.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, replace

import regex

from monitor.matching.text import is_latin_char, normalize
from monitor.model import ARTICLE_FIELDS

# Field names a rule may use besides ARTICLE_FIELDS, and what they stand for.
FIELD_ALIASES = {"category": "categories"}

# /regex/ terms: case-insensitive with full case folding (ß matches SS), as terms are.
REGEX_FLAGS = regex.IGNORECASE | regex.FULLCASE

# Deeper nesting (of parentheses and NOTs) is refused: the parser and the matcher recurse.
MAX_QUERY_DEPTH = 100


# ----------------------------------------------------------------------------- nodes
# slots: 10,000 rules make about 100,000 nodes; with a __dict__ each, 3-4 MB more.


@dataclass(frozen=True, slots=True)
class Term:
    """One term: matched as a substring of the normalised text, with the Latin boundary rule."""

    text: str  # normalised, quotes and * removed: what is looked for
    prefix: bool = False  # `sanction*`: no boundary needed after the term
    fields: tuple[str, ...] | None = None  # None: the rule's fields
    source: str = ""  # as the user wrote it (no field prefix), for explanations
    # What the matcher records the term's hits under: its text, unless the rule set gave the
    # term regional variants (monitor.matching.vocabulary), whose hits are its own.
    key: str = dataclasses.field(default="", repr=False)

    def __post_init__(self) -> None:
        if not self.key:
            object.__setattr__(self, "key", self.text)


@dataclass(frozen=True, slots=True)
class Near:
    """`left NEAR/distance right`: an occurrence of each, in one field, in either order, with
    at most `distance` characters of normalised text between the end of one and the start of
    the other. Overlapping occurrences count as near; one occurrence is never near itself
    (`a NEAR/5 a` needs two). A prefix term's occurrence runs to the end of its word."""

    left: Term
    right: Term
    distance: int
    fields: tuple[str, ...] | None = None  # None: the rule's fields; the operands carry the same


@dataclass(frozen=True, slots=True)
class Regex:
    """A /regex/: searched for in the normalised text of each field, case-insensitively."""

    pattern: str  # what is compiled: the written pattern with its literals normalised
    fields: tuple[str, ...] | None = None  # None: the rule's fields
    source: str = ""  # as the user wrote it, slashes included: /韓國/


@dataclass(frozen=True, slots=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    child: Node


Node = Term | Near | Regex | And | Or | Not
Atom = Term | Near | Regex  # the leaves: what evaluate() asks about


# ----------------------------------------------------------------------------- terms


def term_problem(term: str) -> str | None:
    """Given a rule term as written, return None if it is valid, else what is wrong with it."""
    return _split_term(term)[2]


def parse_term(term: str) -> Term:
    """Given a term as written (`word`, `"exact phrase"` or `sanction*`), return its Term.

    Raise ValueError if term_problem() finds something wrong with it.
    """
    text, prefix, problem = _split_term(term)
    if problem is not None:
        raise ValueError(f"{term!r}: {problem}")
    if text == term:
        text = term  # one string, not two equal ones: 10,000 rules hold 30,000 terms
    return Term(text=text, prefix=prefix, source=term)


def _split_term(term: str) -> tuple[str, bool, str | None]:
    """Given a term as written, return (normalised text, is prefix, problem or None)."""
    if not term.strip():
        return "", False, "empty term"
    # Normalise first, so that full-width ＂ and ＊ behave as " and *.
    written = normalize(term.strip()).strip()
    if not written:
        return "", False, "term is empty once normalised"
    quotes = written.count('"')
    if quotes:
        if quotes % 2:
            return "", False, "unbalanced quote"
        if quotes != 2 or not (written.startswith('"') and written.endswith('"')):
            return "", False, 'quotes must enclose the whole term, as in "exact phrase"'
        phrase = written[1:-1]  # kept as is, * included: a phrase is literal
        if not phrase.strip():
            return "", False, "empty phrase"
        return phrase, False, None
    if "*" in written:
        is_word_end = len(written) > 1 and is_latin_char(written[-2])
        if written.count("*") != 1 or not written.endswith("*") or not is_word_end:
            return "", False, "* is only allowed at the end of a Latin word, as in sanction*"
        return written[:-1], True, None
    return written, False, None


# ----------------------------------------------------------------------------- trees


def with_default_fields(node: Node, fields: tuple[str, ...]) -> Node:
    """Given a tree, return it with `fields` on every Term, Near and Regex that names no
    fields of its own."""
    match node:
        case Term(fields=None) | Regex(fields=None):
            return replace(node, fields=fields)
        case Near(left, right, _, None):
            return replace(
                node,
                fields=fields,
                left=replace(left, fields=fields),
                right=replace(right, fields=fields),
            )
        case Term() | Regex() | Near():
            return node
        case And(children):
            return And(tuple(with_default_fields(child, fields) for child in children))
        case Or(children):
            return Or(tuple(with_default_fields(child, fields) for child in children))
        case Not(child):
            return Not(with_default_fields(child, fields))
    raise TypeError(f"not a rule node: {node!r}")


def evaluate(node: Node, is_found: Callable[[Atom], bool]) -> bool:
    """Given a tree and a test for single atoms (Term, Near, Regex), return whether the tree
    holds. And and Or stop at the first child that decides them, in order."""
    # Exact type tests and loops: this runs for every candidate rule of every article (1.5
    # million nodes in a 10,000-rule `rules test`), and is several times faster than `match`
    # with all()/any() over generators. The node classes have no subclasses.
    kind = type(node)
    if kind is Term:
        return is_found(node)  # type: ignore[arg-type]
    if kind is And:
        for child in node.children:  # type: ignore[union-attr]  # noqa: SIM110 (speed)
            if not evaluate(child, is_found):
                return False
        return True
    if kind is Or:
        for child in node.children:  # type: ignore[union-attr]  # noqa: SIM110 (speed)
            if evaluate(child, is_found):
                return True
        return False
    if kind is Not:
        return not evaluate(node.child, is_found)  # type: ignore[union-attr]
    if kind is Near or kind is Regex:
        return is_found(node)  # type: ignore[arg-type]
    raise TypeError(f"not a rule node: {node!r}")


def tree_atoms(node: Node, *, positive: bool = True) -> tuple[Atom, ...]:
    """Given a tree, return its atoms (Term, Near, Regex; a Near whole) in order: with
    positive=True those under an even number of Nots (the ones that can make it match),
    else those under an odd number."""
    found: list[Atom] = []
    _collect_atoms(node, negated=not positive, out=found)
    return tuple(dict.fromkeys(found))


def tree_terms(node: Node, *, positive: bool = True) -> tuple[Term, ...]:
    """Given a tree, return its terms, NEAR operands included, in order: with positive=True
    those under an even number of Nots (the ones that can make it match), else those under
    an odd number."""
    terms: list[Term] = []
    for atom in tree_atoms(node, positive=positive):
        if isinstance(atom, Term):
            terms.append(atom)
        elif isinstance(atom, Near):
            terms.extend((atom.left, atom.right))
    return tuple(dict.fromkeys(terms))


def _collect_atoms(node: Node, *, negated: bool, out: list[Atom]) -> None:
    # isinstance rather than `match`: this runs for every rule at every compile.
    if isinstance(node, Term | Near | Regex):
        if not negated:
            out.append(node)
    elif isinstance(node, And | Or):
        for child in node.children:
            _collect_atoms(child, negated=negated, out=out)
    elif isinstance(node, Not):
        _collect_atoms(node.child, negated=not negated, out=out)


# ----------------------------------------------------------------------------- regexes


def compile_regex(pattern: str) -> regex.Pattern[str]:
    """Given a Regex node's pattern, return it compiled with REGEX_FLAGS.

    Raise regex.error if it is invalid (parse_query has checked it already).
    """
    return regex.compile(pattern, REGEX_FLAGS)


def fold_regex(pattern: str) -> str:
    """Given a /regex/ as written, return the pattern to run on normalised text.

    The text a regex runs on is normalised (NFKC, Traditional -> Simplified, casefold), so
    literal non-ASCII characters of the pattern are normalised the same way: /韓國/ finds
    韩国, /（韩日）/ finds the text's （韩日） (which NFKC made "(韩日)"). ASCII, escapes
    (\\u97d3, \\p{Han}) and everything else are left as written; a literal that becomes a
    regex metacharacter is escaped, and one that becomes several characters is grouped.
    """
    pieces: list[str] = []
    index = 0
    in_class = False
    class_body_start = 0  # where a `]` would still be a literal member of the class
    length = len(pattern)
    while index < length:
        char = pattern[index]
        if char == "\\":
            pieces.append(pattern[index : index + 2])
            index += 2
            continue
        if char.isascii():
            if in_class:
                if char == "]" and index > class_body_start:
                    in_class = False
            elif char == "[":
                in_class = True
                class_body_start = index + 1
                if pattern[class_body_start : class_body_start + 1] == "^":
                    class_body_start += 1
            pieces.append(char)
            index += 1
            continue
        end = index
        while end < length and not pattern[end].isascii():
            end += 1
        pieces.append(_fold_literals(pattern[index:end], in_class=in_class))
        index = end
    return "".join(pieces)


def _fold_literals(run: str, *, in_class: bool) -> str:
    """Given a run of literal non-ASCII characters of a regex, return them normalised."""
    whole = normalize(run)
    # Normalise the run as a whole where that keeps one character for one (t2s then sees
    # the characters in context), else character by character.
    folded = whole if len(whole) == len(run) else None
    pieces = []
    for position, char in enumerate(run):
        target = folded[position] if folded is not None else normalize(char)
        if len(target) == 1:
            pieces.append(regex.escape(target) if target.isascii() else target)
        elif in_class or not target:
            pieces.append(char)  # a class member must stay one character
        else:
            pieces.append(f"(?:{regex.escape(target)})")
    return "".join(pieces)


# ----------------------------------------------------------------------------- queries


class QuerySyntaxError(ValueError):
    """A query that cannot be parsed: what is wrong, and where (1-based column)."""

    def __init__(self, message: str, column: int, query: str) -> None:
        super().__init__(f"{message} at column {column}")
        self.message = message
        self.column = column
        self.query = query

    def with_pointer(self) -> str:
        """Return the message, then (for a query that is not blank) pointer()'s two lines:
        the form config errors show."""
        if not self.query.strip():
            return str(self)
        return f"{self}\n{self.pointer()}"

    def pointer(self, indent: str = "    ") -> str:
        """Return two lines: the query, and a caret under the column (wide CJK characters
        take two terminal cells, and the caret allows for that)."""
        shown = _one_line(self.query)
        before = shown[: self.column - 1]
        cells = sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in before)
        return f"{indent}{shown}\n{indent}{' ' * cells}^"


def _one_line(text: str) -> str:
    """Return text with line breaks and tabs shown as spaces: one character for one."""
    return "".join(" " if char in "\t\r\n\v\f" else char for char in text)


@functools.lru_cache(maxsize=16_384)
def parse_query(query: str) -> Node:
    """Given a query as written, return its tree; unprefixed terms have fields=None (see
    with_default_fields). Every /regex/ is compiled once here to check it. Cached: loading
    a config parses each query more than once, and the trees are immutable.

    Raise QuerySyntaxError (a ValueError) if it is not a valid query.
    """
    tokens = _tokenize(query)
    parser = _Parser(tokens, query)
    return parser.parse()


# Token kinds.
_WORD, _PHRASE, _REGEX, _FIELD = "word", "phrase", "regex", "field"
_LEFT, _RIGHT, _AND, _OR, _NOT, _MINUS, _NEAR, _END = "(", ")", "AND", "OR", "NOT", "-", "NEAR", ""

_FIELD_PREFIX = re.compile(r"([A-Za-z]+):")
_NEAR_WORD = re.compile(r"NEAR(?:/(.*))?", re.S)
# Full-width forms and the ideographic space, folded to ASCII to read the syntax only.
_SYNTAX_FOLD = {chr(code): chr(code - 0xFEE0) for code in range(0xFF01, 0xFF5F)} | {"\u3000": " "}


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str  # as written
    column: int  # 1-based
    value: str | int | None = None  # a field's name, NEAR's distance, a regex's pattern


def _tokenize(query: str) -> list[_Token]:
    # The syntax is read from a copy with full-width forms folded (same length, so columns
    # hold); terms keep their text as written.
    view = "".join(_SYNTAX_FOLD.get(char, char) for char in query)
    tokens: list[_Token] = []
    index = 0
    length = len(view)

    def fail(message: str, at: int) -> QuerySyntaxError:
        return QuerySyntaxError(message, at + 1, query)

    def ends_token(at: int) -> bool:
        return at >= length or view[at].isspace() or view[at] in "()"

    after_field, field_at = False, 0
    while index < length:
        char = view[index]
        if char.isspace():
            if after_field:
                raise fail(f"{tokens[-1].text} must be followed by what to look for", field_at)
            index += 1
            continue
        start = index
        was_after_field, after_field = after_field, False
        if char in "()":
            tokens.append(_Token(char, query[index], index + 1))
            index += 1
        elif char == '"':
            close = view.find('"', index + 1)
            if close < 0:
                raise fail("unterminated phrase: the closing quote is missing", start)
            index = close + 1
            if not ends_token(index):
                raise fail("a phrase must be followed by a space or )", index)
            tokens.append(_Token(_PHRASE, query[start:index], start + 1))
        elif query[index] == "/":  # an ASCII slash only: ／ is a word's character
            index = _regex_end(query, index)
            if index < 0:
                raise fail("unterminated /regex/: the closing / is missing", start)
            if index == start + 2:
                raise fail("empty /regex/", start)
            if not ends_token(index):
                raise fail("a /regex/ must be followed by a space or )", index)
            pattern = query[start + 1 : index - 1]
            tokens.append(_Token(_REGEX, query[start:index], start + 1, pattern))
        elif not was_after_field and (field := _FIELD_PREFIX.match(view, index)) is not None:
            name = field.group(1).lower()
            name = FIELD_ALIASES.get(name, name)
            if name not in ARTICLE_FIELDS:
                raise fail(
                    f"unknown field {field.group(1)!r} (fields are "
                    f"{', '.join(ARTICLE_FIELDS)}, category; quote a term that holds a colon)",
                    start,
                )
            index = field.end()
            tokens.append(_Token(_FIELD, query[start:index], start + 1, name))
            after_field, field_at = True, start
            if index >= length:
                raise fail(f"{tokens[-1].text} must be followed by what to look for", start)
        elif char == "-":
            if was_after_field:
                raise fail(
                    f"{tokens[-1].text} must be followed by what to look for; "
                    f"write -{tokens[-1].text}term to exclude a term",
                    tokens[-1].column - 1,
                )
            if index + 1 >= length or view[index + 1].isspace() or view[index + 1] == ")":
                raise fail("- must be followed by what to exclude, as in -体育", start)
            tokens.append(_Token(_MINUS, query[index], index + 1))
            index += 1
        else:
            while not ends_token(index):
                index += 1
            word = view[start:index]
            tokens.append(_word_token(word, query[start:index], start, fail, was_after_field))
    tokens.append(_Token(_END, "", length + 1))
    return tokens


def _word_token(
    word: str,
    written: str,
    start: int,
    fail: Callable[[str, int], QuerySyntaxError],
    after_field: bool,
) -> _Token:
    """Given a word (syntax view and as written), return its token: an operator or a term."""
    if not after_field:
        if word in (_AND, _OR, _NOT):
            return _Token(word, written, start + 1)
        near = _NEAR_WORD.fullmatch(word)
        if near is not None:
            distance = near.group(1)
            if distance is None or not distance.isascii() or not distance.isdigit():
                raise fail("NEAR needs a distance in characters, as in NEAR/5", start)
            return _Token(_NEAR, written, start + 1, int(distance))
    return _Token(_WORD, written, start + 1)


def _regex_end(query: str, start: int) -> int:
    """Given a query and the index of a regex's opening slash, return the index just after
    its closing slash, or -1 if there is none. A backslash escapes the next character."""
    index = start + 1
    while index < len(query):
        if query[index] == "\\":
            index += 2
        elif query[index] == "/":
            return index + 1
        else:
            index += 1
    return -1


_OPERAND_STARTS = (_WORD, _PHRASE, _REGEX, _FIELD, _LEFT, _NOT, _MINUS)


class _Parser:
    """Recursive descent over the tokens; see the grammar in the module docstring."""

    def __init__(self, tokens: list[_Token], query: str) -> None:
        self._tokens = tokens
        self._query = query
        self._position = 0
        self._depth = 0

    def parse(self) -> Node:
        if self._peek().kind == _END:
            raise QuerySyntaxError("empty query", 1, self._query)
        node = self._or_expression()
        token = self._peek()
        if token.kind == _RIGHT:
            raise self._fail("unbalanced parenthesis", token)
        if token.kind != _END:  # not expected: every other token starts or joins an operand
            raise self._fail(f"unexpected {token.text}", token)
        return node

    # -- helpers

    def _peek(self) -> _Token:
        return self._tokens[self._position]

    def _next(self) -> _Token:
        token = self._tokens[self._position]
        self._position += 1
        return token

    def _fail(self, message: str, token: _Token) -> QuerySyntaxError:
        return QuerySyntaxError(message, token.column, self._query)

    def _operand_problem(self, after: _Token | None) -> QuerySyntaxError:
        """Return the error for a missing operand, `after` being the token before it."""
        token = self._peek()
        if token.kind in (_OR, _AND, _NEAR):
            name = "NEAR" if token.kind == _NEAR else token.kind
            return self._fail(f"{name} needs a term before it", token)
        if after is None:
            message = "unbalanced parenthesis" if token.kind == _RIGHT else "expected a term"
            return self._fail(message, token)
        if after.kind == _LEFT:
            if token.kind == _RIGHT:
                return self._fail("empty parentheses", after)
            return self._fail("unbalanced parenthesis", after)
        name = "NEAR" if after.kind == _NEAR else after.text
        return self._fail(f"{name} needs a term after it", after)

    def _nested(self, token: _Token) -> None:
        self._depth += 1
        if self._depth > MAX_QUERY_DEPTH:
            raise self._fail(f"nested more than {MAX_QUERY_DEPTH} levels deep", token)

    # -- grammar

    def _or_expression(self, after: _Token | None = None) -> Node:
        children = [self._and_expression(after)]
        while self._peek().kind == _OR:
            operator = self._next()
            children.append(self._and_expression(operator))
        return children[0] if len(children) == 1 else Or(tuple(children))

    def _and_expression(self, after: _Token | None) -> Node:
        children = [self._unary(after)]
        while True:
            token = self._peek()
            if token.kind == _AND:
                self._next()
                children.append(self._unary(token))
            elif token.kind in _OPERAND_STARTS:
                children.append(self._unary(None))
            else:
                break
        return children[0] if len(children) == 1 else And(tuple(children))

    def _unary(self, after: _Token | None) -> Node:
        token = self._peek()
        if token.kind in (_NOT, _MINUS):
            self._next()
            self._nested(token)
            child = self._unary(token)
            self._depth -= 1
            return Not(child)
        return self._near(after)

    def _near(self, after: _Token | None) -> Node:
        first = self._peek()
        left = self._primary(after)
        operator = self._peek()
        if operator.kind != _NEAR:
            return left
        self._next()
        second = self._peek()
        right = self._primary(operator)
        if self._peek().kind == _NEAR:
            raise self._fail(
                "NEAR joins two terms; join several NEARs with AND, as in "
                "a NEAR/5 b AND b NEAR/5 c",
                self._peek(),
            )
        for side, token in ((left, first), (right, second)):
            if not isinstance(side, Term):
                what = "a /regex/" if isinstance(side, Regex) else "a group"
                raise self._fail(
                    f"NEAR joins two terms (words, phrases or prefix*), not {what}", token
                )
        assert isinstance(left, Term) and isinstance(right, Term)  # for type checkers
        if left.fields is not None and right.fields is not None and left.fields != right.fields:
            raise self._fail("both sides of NEAR must look at the same field", operator)
        fields = left.fields if left.fields is not None else right.fields
        distance = operator.value
        assert isinstance(distance, int)
        return Near(replace(left, fields=fields), replace(right, fields=fields), distance, fields)

    def _primary(self, after: _Token | None) -> Node:
        token = self._peek()
        if token.kind == _FIELD:
            self._next()
            name = token.value
            assert isinstance(name, str)
            inner = self._peek()
            if inner.kind not in (_WORD, _PHRASE, _REGEX, _LEFT):
                raise self._fail(f"{token.text} must be followed by what to look for", token)
            return _with_field(self._primary(token), (name,))
        if token.kind == _LEFT:
            self._next()
            self._nested(token)
            node = self._or_expression(token)
            if self._peek().kind != _RIGHT:
                raise self._fail("unbalanced parenthesis", token)
            self._next()
            self._depth -= 1
            return node
        if token.kind in (_WORD, _PHRASE):
            self._next()
            text, prefix, problem = _split_term(token.text)
            if problem is not None:
                raise self._fail(problem, token)
            if text == token.text:
                text = token.text  # one string, not two equal ones (as in parse_term)
            return Term(text=text, prefix=prefix, source=token.text)
        if token.kind == _REGEX:
            self._next()
            written = token.value
            assert isinstance(written, str)
            return Regex(_checked_regex(written, token, self._query), source=token.text)
        raise self._operand_problem(after)


def _with_field(node: Node, fields: tuple[str, ...]) -> Node:
    # A prefix applies to what names no field of its own: title:(a OR content:b) keeps b's.
    return with_default_fields(node, fields)


def _checked_regex(written: str, token: _Token, query: str) -> str:
    """Given a /regex/'s pattern as written, return it folded (fold_regex) and compiled once.

    Raise QuerySyntaxError at the error's position in the pattern if it is invalid.
    """
    folded = fold_regex(written)
    try:
        compile_regex(folded)
    except regex.error as folded_error:
        problem, column = folded_error, token.column
        try:
            regex.compile(written, REGEX_FLAGS)  # positions in the pattern as written
        except regex.error as written_error:
            problem = written_error
            # regex.error has .pos and .msg, which its type stubs do not declare
            position: int | None = getattr(written_error, "pos", None)
            if position is not None:
                column += 1 + min(position, len(written))
        message: str = getattr(problem, "msg", str(problem))
        raise QuerySyntaxError(f"invalid regex: {message}", column, query) from None
    return folded
