"""Where a configuration problem is: YAML data with the line of every key and value, and
pydantic validation errors turned into a path, a line and a plain message.

PyYAML's safe_load() forgets where things came from. To point every configuration error at
a line, we compose the node tree (which keeps marks) and build the data ourselves, recording
for each path (a tuple of mapping keys and list indexes, as pydantic reports in `loc`) the
line of its key and of its value.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Annotated, Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

Path = tuple[Any, ...]  # mapping keys and list indexes from the document root


@dataclass(frozen=True)
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
        positions = {(key, *path): position for path, position in self.positions.items()}
        root = self.positions.get(())
        if root is not None:
            positions[()] = root
        duplicates = [
            DuplicateKey((key, *duplicate.path), duplicate.line, duplicate.first_line)
            for duplicate in self.duplicate_keys
        ]
        return YamlDocument({key: self.data}, positions, duplicates)


class YamlSyntaxError(Exception):
    """The text is not valid YAML; `line` is 1-based when PyYAML knows it."""

    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


def load_yaml(text: str) -> YamlDocument:
    """Given YAML text, return its data and positions. Raise YamlSyntaxError if invalid."""
    loader: yaml.SafeLoader | None = None
    try:
        loader = yaml.SafeLoader(text)
        root = loader.get_single_node()
        document = YamlDocument(None)
        if root is not None:
            document.data = _build(loader, root, (), None, document, active=set())
        return document
    except yaml.MarkedYAMLError as error:
        raise YamlSyntaxError(_describe_yaml_error(error), _error_line(error)) from None
    except yaml.reader.ReaderError as error:  # a control character; no mark, a position
        line = text.count("\n", 0, error.position) + 1
        message = f"YAML syntax error: character #x{error.character:04x} is not allowed"
        raise YamlSyntaxError(message, line) from None
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


def _error_line(error: yaml.MarkedYAMLError) -> int | None:
    mark = error.problem_mark or error.context_mark
    return mark.line + 1 if mark is not None else None


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
