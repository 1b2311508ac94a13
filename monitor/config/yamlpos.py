"""Where a configuration problem is: YAML data with the line of every key and value, and
pydantic validation errors turned into a path, a line and a plain message.

PyYAML's safe_load() forgets where things came from. To point every configuration error at
a line, we compose the node tree (which keeps marks) and build the data ourselves, recording
for each path (a tuple of mapping keys and list indexes, as pydantic reports in `loc`) the
line of its key and of its value.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

Path = tuple[Any, ...]  # mapping keys and list indexes from the document root


@dataclass(frozen=True, slots=True)  # slots: a rules file of 10,000 rules has 66,000
class NodePosition:
    """Where one value sits: the line of its key (or list dash) and of the value itself."""

    key_line: int  # 1-based; for list items and the root, the value's own line
    value_line: int  # 1-based
    is_scalar: bool


@dataclass(frozen=True)
class DuplicateKey:
    """A key given twice in one mapping; YAML keeps the last silently, we report it."""

    path: Path
    line: int
    first_line: int


class _Positions(dict[Path, NodePosition]):
    """A document's positions, most of them worked out only when one is asked for.

    The paths that _is_eager() selects are here from the start; the others (the keys and
    terms of each rule: nine tenths of a rules file's values) come from `deep()` the first
    time one of them, or the whole mapping, is asked for: in practice, only when a problem
    is reported. Reads through other dict methods (setdefault, pop, ...) are not supported.
    """

    def __init__(
        self,
        shallow: dict[Path, NodePosition],
        depth: int,
        deep: Callable[[], dict[Path, NodePosition]],
    ) -> None:
        super().__init__(shallow)
        self._depth = depth
        self._deep: Callable[[], dict[Path, NodePosition]] | None = deep

    def complete(self) -> None:
        """Add the deep positions, once."""
        if self._deep is not None:
            deep, self._deep = self._deep, None
            super().update(deep())

    def __contains__(self, path: object) -> bool:
        if super().__contains__(path):
            return True
        if self._deep is not None and isinstance(path, tuple) and not _is_eager(path, self._depth):
            self.complete()
            return super().__contains__(path)
        return False

    def __getitem__(self, path: Path) -> NodePosition:
        if path in self:
            return super().__getitem__(path)
        raise KeyError(path)

    def get(self, path: Path, default: Any = None) -> Any:
        return super().__getitem__(path) if path in self else default

    def __iter__(self) -> Iterator[Path]:
        self.complete()
        return super().__iter__()

    def __len__(self) -> int:
        self.complete()
        return super().__len__()

    def keys(self) -> Any:
        self.complete()
        return super().keys()

    def values(self) -> Any:
        self.complete()
        return super().values()

    def items(self) -> Any:
        self.complete()
        return super().items()

    def __eq__(self, other: object) -> bool:
        self.complete()
        if isinstance(other, _Positions):
            other.complete()
        return super().__eq__(other)

    __hash__ = None

    def __repr__(self) -> str:
        self.complete()
        return super().__repr__()


@dataclass
class YamlDocument:
    """A YAML file's data (plain dicts, lists and scalars) and where each part of it is."""

    data: Any
    positions: dict[Path, NodePosition] = field(default_factory=dict)
    duplicate_keys: list[DuplicateKey] = field(default_factory=list)

    def line_for(self, path: Path, *, key: bool = False) -> int | None:
        """Given a path, return the best line for a problem there.

        A path that does not exist (a missing key) falls back to its nearest ancestor. For a
        scalar value we point at the value (it may sit below its key); for a container, or
        when the key itself is the problem, at the key.
        """
        nearest = path
        while nearest not in self.positions and nearest:
            nearest = nearest[:-1]
        position = self.positions.get(nearest)
        if position is None:
            return None
        if nearest == path and position.is_scalar and not key:
            return position.value_line
        return position.key_line

    def nested_under(self, key: str) -> YamlDocument:
        """Return this document as if it were the value of `key` in a one-key mapping.

        A rules file may be a bare list; wrapping it lets one model validate both forms.
        """
        positions: dict[Path, NodePosition] = _nest(self.positions, key, complete=False)
        if isinstance(self.positions, _Positions) and self.positions._deep is not None:
            inner = self.positions
            positions = _Positions(
                positions, inner._depth + 1, lambda: _nest(inner, key, complete=True)
            )
        duplicates = [
            DuplicateKey((key, *duplicate.path), duplicate.line, duplicate.first_line)
            for duplicate in self.duplicate_keys
        ]
        return YamlDocument({key: self.data}, positions, duplicates)


def _nest(
    positions: dict[Path, NodePosition], key: str, *, complete: bool
) -> dict[Path, NodePosition]:
    """Given positions, return them under `key` (the root staying the root too); only those
    known so far unless `complete`."""
    if complete and isinstance(positions, _Positions):
        positions.complete()
    nested = {(key, *path): position for path, position in dict.items(positions)}
    root = dict.get(positions, ())
    if root is not None:
        nested[()] = root
    return nested


class YamlSyntaxError(Exception):
    """The text is not valid YAML; `line` and `column` (1-based) say where a person should
    look, when PyYAML knows it."""

    def __init__(self, message: str, line: int | None, column: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column


def load_yaml(text: str) -> YamlDocument:
    """Given YAML text, return its data and positions. Raise YamlSyntaxError if invalid."""
    if _CSafeLoader is not None and not _NON_PRINTABLE.search(text):
        # libyaml parses about four times faster (a rules file of 10,000 rules: 2.1 s in
        # Python), and building from its events never holds the whole node tree (50 MB for
        # that file). Its error messages differ from PyYAML's, and its grammar in corners:
        # any error, and anything _build_from_events() leaves aside (anchors, aliases, tags,
        # merge keys), goes to the pure-Python loader below, so that data, positions and
        # messages stay exactly as they were.
        try:
            document = _build_from_events(_CSafeLoader(text), shallow_text=text)
        except (yaml.YAMLError, RecursionError, ValueError, TypeError):
            document = None
        if document is not None:
            return document
    return _load_yaml_with(yaml.SafeLoader, text)


# libyaml's loader, when PyYAML was built with it. It reads the same YAML as the
# pure-Python loader; text with characters that PyYAML's reader refuses goes to the latter.
_CSafeLoader: Any = getattr(yaml, "CSafeLoader", None)
_NON_PRINTABLE = yaml.reader.Reader.NON_PRINTABLE
_STR_TAG = "tag:yaml.org,2002:str"
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _LeftAside(Exception):
    """Something _build_from_events() does not handle: the node-tree loader does."""


def _build_from_events(loader: Any, *, shallow_text: str | None = None) -> YamlDocument | None:
    """Given a loader over YAML text, return the document _load_yaml_with() would build
    (same data, positions and duplicate keys), built from the parser's events one at a
    time; None if the text uses anchors, aliases, explicit tags or merge keys, or holds
    other than one document, or a key that is not a plain value.

    Given `shallow_text` (the loader's text), positions below the keys of the items of a
    top-level list (rules[1].name is the deepest) are worked out only when asked for, by
    parsing that text again.
    """
    text = shallow_text
    try:
        document = _build_events(loader, SHALLOW_DEPTH if text is not None else None)
    except _LeftAside:
        return None
    finally:
        loader.dispose()
    if text is not None:
        depth = SHALLOW_DEPTH - (1 if isinstance(document.data, list) else 0)
        document.positions = _Positions(document.positions, depth, lambda: _deep_positions(text))
    return document


# The deepest paths whose positions are always recorded (the rest on demand): the items of
# a top-level list and their names, which config loading reads for every rule (rules[i],
# rules[i].name); one level less when the document is itself the list.
SHALLOW_DEPTH = 3


def _is_eager(path: Path, depth: int) -> bool:
    """Given a path and the depth of a document's shallow positions, return whether the
    path's position is recorded from the start."""
    return len(path) < depth or (len(path) == depth and path[-1] == "name")


def _deep_positions(text: str) -> dict[Path, NodePosition]:
    document = _build_from_events(_CSafeLoader(text))
    if document is None:  # not expected: the same text was built the first time
        document = _load_yaml_with(yaml.SafeLoader, text)
    return dict(document.positions)


def _build_events(loader: Any, depth: int | None) -> YamlDocument:
    """_build_from_events() itself; `depth`: record only the positions of paths that short
    (one part less when the root is a list), or all when None."""
    document = YamlDocument(None)
    positions = document.positions
    limit = depth if depth is not None else -1
    # One entry per open collection: [container, path, first line of each key (mappings),
    # pending key or None, pending key's line]; a list's next index is its length.
    stack: list[list[Any]] = []
    documents = 0

    def place(value: Any, line: int, is_scalar: bool) -> Path:
        """Record a value's position and put it in its parent; return its path."""
        nonlocal limit
        if not stack:
            positions[()] = NodePosition(line, line, is_scalar)
            document.data = value
            if depth is not None and isinstance(value, list):
                limit = depth - 1
            return ()
        parent = stack[-1]
        container = parent[0]
        if isinstance(container, list):
            path = (*parent[1], len(container))
            if limit < 0 or _is_eager(path, limit):
                positions[path] = NodePosition(line, line, is_scalar)
            container.append(value)
            return path
        key, key_line = parent[3], parent[4]
        parent[3] = _NO_KEY
        path = (*parent[1], key)
        if limit < 0 or _is_eager(path, limit):
            positions[path] = NodePosition(key_line, line, is_scalar)
        container[key] = value
        return path

    while True:
        event = loader.get_event()
        kind = type(event)
        if kind is yaml.ScalarEvent:
            if event.anchor is not None or event.tag not in (None, "!"):
                raise _LeftAside
            line = event.start_mark.line + 1
            tag = loader.resolve(yaml.ScalarNode, event.value, event.implicit)
            if tag == _STR_TAG:
                value = event.value
            else:
                node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark)
                value = loader.construct_object(node, deep=True)
            if stack and isinstance(stack[-1][0], dict) and stack[-1][3] is _NO_KEY:
                _take_key(stack[-1], value, tag, line, document)
            else:
                place(value, line, True)
        elif kind is yaml.MappingStartEvent or kind is yaml.SequenceStartEvent:
            if event.anchor is not None or event.tag not in (None, "!"):
                raise _LeftAside
            if stack and isinstance(stack[-1][0], dict) and stack[-1][3] is _NO_KEY:
                raise _LeftAside  # a collection as a key
            container: Any = {} if kind is yaml.MappingStartEvent else []
            path = place(container, event.start_mark.line + 1, False)
            stack.append([container, path, {}, _NO_KEY, 0])
        elif kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
            stack.pop()
        elif kind is yaml.DocumentStartEvent:
            documents += 1
            if documents > 1:
                raise _LeftAside  # the node-tree loader reports it
        elif kind is yaml.StreamEndEvent:
            return document
        elif kind is yaml.AliasEvent:
            raise _LeftAside
        # StreamStartEvent, DocumentEndEvent: nothing to do


_NO_KEY = object()


def _take_key(entry: list[Any], key: Any, tag: str, line: int, document: YamlDocument) -> None:
    """Given an open mapping's stack entry and a key just read, note it (and whether it
    was seen before in this mapping) until its value comes."""
    if tag == _MERGE_TAG:
        raise _LeftAside
    if not isinstance(key, str | int | float | bool) and key is not None:
        raise _LeftAside  # the node-tree loader reports it
    if type(key) is str:
        key = sys.intern(key)  # thousands of rules repeat a few keys: keep one copy
    first_lines = entry[2]
    if key in first_lines:
        document.duplicate_keys.append(DuplicateKey((*entry[1], key), line, first_lines[key]))
    else:
        first_lines[key] = line
    entry[3] = key
    entry[4] = line


def _load_yaml_with(loader_class: Any, text: str) -> YamlDocument:
    loader: yaml.SafeLoader | None = None
    try:
        loader = loader_class(text)
        root = loader.get_single_node()
        document = YamlDocument(None)
        if root is not None:
            document.data = _build(loader, root, (), None, document, active=set())
        return document
    except yaml.MarkedYAMLError as error:
        raise syntax_error(error, text) from None
    except yaml.reader.ReaderError as error:  # a control character; no mark, a position
        line = text.count("\n", 0, error.position) + 1
        column = error.position - text.rfind("\n", 0, error.position)
        message = f"YAML syntax error: character #x{error.character:04x} is not allowed"
        raise YamlSyntaxError(message, line, column) from None
    except yaml.YAMLError as error:
        raise YamlSyntaxError(f"invalid YAML: {error}", None) from None
    finally:
        if loader is not None:
            loader.dispose()


def _build(
    loader: yaml.SafeLoader,
    node: Node,
    path: Path,
    key_node: Node | None,
    document: YamlDocument,
    active: set[int],
) -> Any:
    value_line = node.start_mark.line + 1
    key_line = key_node.start_mark.line + 1 if key_node is not None else value_line
    document.positions[path] = NodePosition(key_line, value_line, isinstance(node, ScalarNode))
    if isinstance(node, ScalarNode):
        return loader.construct_object(node, deep=True)
    # An alias may refer to a node that contains it; walking it would never end.
    if id(node) in active:
        raise yaml.MarkedYAMLError(
            problem="recursive alias: a value contains itself", problem_mark=node.start_mark
        )
    active.add(id(node))
    try:
        if isinstance(node, SequenceNode):
            return [
                _build(loader, item, (*path, index), None, document, active)
                for index, item in enumerate(node.value)
            ]
        if isinstance(node, MappingNode):
            return _build_mapping(loader, node, path, document, active)
    finally:
        active.discard(id(node))
    raise yaml.MarkedYAMLError(problem="unsupported YAML node", problem_mark=node.start_mark)


def _build_mapping(
    loader: yaml.SafeLoader,
    node: MappingNode,
    path: Path,
    document: YamlDocument,
    active: set[int],
) -> dict[Any, Any]:
    _record_duplicate_keys(loader, node, path, document)
    # Resolves `<<: *anchor` merge keys in place, as SafeLoader does when it builds a dict;
    # merged pairs come first, so the mapping's own keys override them.
    loader.flatten_mapping(node)
    result: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        result[key] = _build(loader, value_node, (*path, key), key_node, document, active)
    return result


def _record_duplicate_keys(
    loader: yaml.SafeLoader, node: MappingNode, path: Path, document: YamlDocument
) -> None:
    """Note keys written twice in one mapping (merged `<<` keys may be overridden freely)."""
    first_lines: dict[Any, int] = {}
    for key_node, _value_node in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str | int | float | bool) and key is not None:
            raise yaml.MarkedYAMLError(
                problem="a mapping key must be a plain value", problem_mark=key_node.start_mark
            )
        key_line = key_node.start_mark.line + 1
        if key in first_lines:
            document.duplicate_keys.append(DuplicateKey((*path, key), key_line, first_lines[key]))
        else:
            first_lines[key] = key_line


def syntax_error(error: yaml.MarkedYAMLError, text: str) -> YamlSyntaxError:
    """Given PyYAML's error for `text`, return it as a YamlSyntaxError located where a
    person should look, which is not always where PyYAML stopped:

    - a quote or a bracket never closed: PyYAML stops where the file, or the line, ends
      without it (often lines later); the place is the quote or bracket that opened;
    - a key without its ":": PyYAML stops on the next line; the place is the key;
    - a line of plain text that runs on into the next line, where a ":" then appears
      ("timezone UTC" followed by "feeds: []", or a line indented too far under a value):
      PyYAML stops at that ":"; the place is where the text began, or, when the text is a
      value, the line indented too far.
    """
    problem, context = error.problem_mark, error.context_mark
    message = _describe_yaml_error(error)
    mark = problem or context
    place: tuple[int, int] | None = None  # 0-based (line, column) when it is not a mark's
    if problem is not None and context is not None and problem.line != context.line:
        if error.context == "while scanning a quoted scalar":
            mark = context
            message = f"YAML syntax error: this quote is not closed ({error.problem})"
        elif error.context in ("while parsing a flow sequence", "while parsing a flow mapping"):
            mark = context
            bracket = text[context.index] if context.index < len(text) else "bracket"
            message = (
                f"YAML syntax error: this {bracket} is not closed "
                f"({error.problem} on line {problem.line + 1})"
            )
        elif error.context == "while scanning a simple key":
            mark = context
    elif problem is not None and error.problem == "mapping values are not allowed here":
        scalar, is_value = _plain_text_before_error(text)
        if scalar is not None and scalar.start_mark.line < problem.line:
            runs_on = f"the text on line {scalar.start_mark.line + 1} runs on into this line"
            if is_value:
                line_start = problem.index - problem.column
                indent = len(text[line_start : problem.index]) - len(
                    text[line_start : problem.index].lstrip(" ")
                )
                place = (problem.line, indent)
                message = (
                    f"YAML syntax error: this line is indented too far ({runs_on}, "
                    "where a ':' is not allowed)"
                )
            else:
                mark = scalar.start_mark
                message = (
                    "YAML syntax error: this key has no ':' after it (a key ends with ':' "
                    f"and a space); without it, the text runs on into line {problem.line + 1}"
                )
    if error.problem and "'\\t'" in error.problem:
        message += " (YAML indents with spaces, never tabs)"
    elif error.problem and error.problem.startswith("expected <block end>"):
        message += " (is this line indented like the ones it belongs with?)"
    if place is None and mark is not None:
        place = (mark.line, mark.column)
    if place is None:
        return YamlSyntaxError(message, None)
    return YamlSyntaxError(message, place[0] + 1, place[1] + 1)


def _plain_text_before_error(text: str) -> tuple[Any, bool]:
    """Given YAML text that fails to scan, return the last scalar token read before the
    failure (or None) and whether it was a mapping's value."""
    last: Any = None
    is_value = False
    previous: Any = None
    try:
        for token in yaml.scan(text, Loader=yaml.SafeLoader):
            if isinstance(token, yaml.ScalarToken):
                last, is_value = token, isinstance(previous, yaml.ValueToken)
            previous = token
    except yaml.YAMLError:
        pass
    return last, is_value


def _describe_yaml_error(error: yaml.MarkedYAMLError) -> str:
    # PyYAML's own str() repeats the marks with 1-based lines and a source snippet; we only
    # want the sentence, since the line goes into the problem's location.
    parts = [part for part in (error.context, error.problem) if part]
    return "YAML syntax error: " + ", ".join(parts) if parts else "YAML syntax error"


# -------------------------------------------------------------------- describing places


def key_path(path: Path, data: Any, named_lists: tuple[str, ...] = ("rules",)) -> str:
    """Format a path as `feeds[2].interval`.

    Items of a top-level list named in `named_lists` also show their `name:`, since people
    know their rules by name: `rules[1] (forced-labour).query`.
    """
    text = ""
    node = data
    for depth, part in enumerate(path):
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
        node = _child(node, part)
        if depth == 1 and path[0] in named_lists and isinstance(node, dict):
            name = node.get("name")
            if isinstance(name, str) and name:
                text += f" ({name})"
    return text


def _child(node: Any, part: Any) -> Any:
    if isinstance(node, dict):
        return node.get(part)
    if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
        return node[part]
    return None


def describe(value: Any) -> str:
    """Name the YAML type of a value for messages, without showing the value (a secret?)."""
    if value is None:
        return "nothing (an empty value)"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"


# ---------------------------------------------------------------- pydantic errors, placed


def error_location(detail: Any, document: YamlDocument) -> tuple[Path, bool]:
    """Given one pydantic error (an item of ValidationError.errors()), return the path it is
    about and whether the problem is the key itself (unknown key) rather than its value."""
    location = tuple(detail["loc"])
    about_key = detail["type"] in ("extra_forbidden", "invalid_key")
    if location and location[-1] == "[key]":  # a mapping key of the wrong type
        location, about_key = location[:-1], True
    # Indexes the data does not have were added by a validator that turned one value into a
    # list (a single channel URL); point at the value as written, not at "[0]".
    while location and isinstance(location[-1], int) and location not in document.positions:
        location = location[:-1]
    return location, about_key


_EXPECTED = {
    "string_type": "text",
    "bool_type": "true or false",
    "int_type": "a whole number",
    "list_type": "a list (write [a, b], or one '- item' per line)",
    "dict_type": "a mapping of keys to values",
    "model_type": "a mapping of keys to values",
    "model_attributes_type": "a mapping of keys to values",
}


def error_message(detail: Any, model: type[BaseModel], location: Path) -> str:
    """Given one pydantic error from validating `model`, return a message for people.

    Never pydantic's own text with the input: the input may hold a secret.
    """
    kind = detail["type"]
    if kind == "value_error":  # our validators: their message is already for people
        return str(detail["ctx"]["error"])
    if kind == "missing":
        return "required, but missing"
    if kind == "extra_forbidden":
        return _unknown_key_message(str(location[-1]), _known_keys(model, location[:-1]))
    if kind == "invalid_key":
        return "keys must be text"
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}, got {describe(detail['input'])}"
    return str(detail["msg"])


def _unknown_key_message(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    if close:
        return f"unknown key (did you mean {close[0]}?)"
    if known:
        return f"unknown key; expected one of: {', '.join(known)}"
    return "unknown key"


def _known_keys(model: type[BaseModel], location: Path) -> list[str]:
    """Given a root model and the path of a mapping in its data, list the keys it allows."""
    current: Any = model
    for part in location:
        current = _unwrap(current)
        if get_origin(current) in (list, dict):
            current = get_args(current)[-1]  # list[X] -> X, dict[K, V] -> V
        elif isinstance(current, type) and issubclass(current, BaseModel):
            fields = {info.alias or name: info for name, info in current.model_fields.items()}
            if part not in fields:
                return []
            current = fields[part].annotation
        else:
            return []
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return [info.alias or name for name, info in current.model_fields.items()]
    return []


def _unwrap(annotation: Any) -> Any:
    """Strip Annotated[...] and `| None` from a type annotation."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, type(int | None)):
            options = [arg for arg in get_args(annotation) if arg is not type(None)]
            if len(options) != 1:
                return annotation
            annotation = options[0]
        else:
            return annotation
