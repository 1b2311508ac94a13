"""Reading one configuration file: YAML with the line of every key, ${...} substituted,
validated against a pydantic model, every problem recorded with its file, line and key path.

What one load accumulates across files is a Loading; each file read is a Source.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from monitor.config.checks import StageChecks
from monitor.config.secrets import SECRETS, SecretMask, substitute
from monitor.config.yamlpos import (
    YamlDocument,
    YamlSyntaxError,
    error_location,
    error_message,
    key_path,
    load_yaml,
)
from monitor.model import ConfigProblem


@dataclass
class Loading:
    """What one load_config() call accumulates across files."""

    environ: Mapping[str, str]
    # What only later stages can check: every file is validated with it.
    checks: StageChecks
    problems: list[ConfigProblem] = field(default_factory=list)
    secrets: set[str] = field(default_factory=set)
    # None: every ${...} is resolved. Otherwise only those under these keys of the main
    # file; the others are left as written, neither read nor checked.
    resolve_only: frozenset[str] | None = None
    main: Source | None = None  # the main file, once read

    def resolves(self, source: Source, path: tuple[Any, ...]) -> bool:
        if self.resolve_only is None:
            return True
        return not source.rules_file and bool(path) and path[0] in self.resolve_only


@dataclass
class Source:
    """One YAML file being loaded."""

    display: str  # the path as shown in messages: as given, or joined to the main file's
    path: Path  # absolute
    document: YamlDocument
    # Paths whose ${...} failed (their own problem is reported, validation's is not), or
    # were left unresolved on purpose (see Loading.resolve_only: nothing is reported).
    unresolved: list[tuple[Any, ...]] = field(default_factory=list)
    rules_file: bool = False

    @property
    def folder(self) -> Path:
        return self.path.parent

    def problem(self, path: tuple[Any, ...], message: str, *, key: bool = False) -> ConfigProblem:
        line = self.document.line_for(path, key=key)
        return ConfigProblem(self.display, line, key_path(path, self.document.data), message)


def read_source(
    path: Path, display: str, loading: Loading, *, rules_file: bool = False
) -> Source | None:
    """Given a file, return it composed and substituted, or None if it cannot be read."""
    absolute = Path(os.path.abspath(path))
    try:
        text = absolute.read_text(encoding="utf-8-sig")
    except OSError as error:
        reason = f"cannot read the file: {error.strerror or error}"
        loading.problems.append(ConfigProblem(display, None, "", reason))
        return None
    except UnicodeDecodeError:
        loading.problems.append(ConfigProblem(display, None, "", "the file is not UTF-8 text"))
        return None
    try:
        document = load_yaml(text)
    except YamlSyntaxError as error:
        problem = ConfigProblem(display, error.line, "", error.message, error.column)
        loading.problems.append(problem)
        return None
    # A rules file may be a bare list; seen as {rules: [...]}, its rules are located and
    # named exactly like inline rules (rules[1] (name)).
    if rules_file and (document.data is None or isinstance(document.data, list)):
        document = document.nested_under("rules")
    source = Source(display, absolute, document, rules_file=rules_file)
    for duplicate in document.duplicate_keys:
        message = f"duplicate key; it first appears on line {duplicate.first_line}"
        loading.problems.append(source.problem(duplicate.path, message, key=True))
    document.data = _substitute_tree(document.data, (), source, loading)
    return source


def validate(
    model: type[BaseModel], source: Source, context: dict[str, Any], loading: Loading
) -> Any:
    """Validate a file's data; return the model, or None after recording every problem."""
    try:
        # Checking a channel URL, Apprise may log a value it was given (monitor.config.secrets).
        with SECRETS.including(loading.secrets):
            return model.model_validate(source.document.data, context=context)
    except ValidationError as error:
        record_validation_error(error, model, source, loading)
        return None


def record_validation_error(
    error: ValidationError,
    model: type[BaseModel],
    source: Source,
    loading: Loading,
    prefix: tuple[Any, ...] = (),
) -> None:
    """Record each error of a validation of `model` (or of the part of it at `prefix`)."""
    for detail in error.errors(include_url=False):
        detail["loc"] = _written_location((*prefix, *detail["loc"]), source.document.data)
        location, about_key = error_location(detail, source.document)
        # A failed ${...} is reported already; the text it left behind is not a problem.
        if any(location[: len(path)] == path for path in source.unresolved):
            continue
        message = error_message(detail, model, location)
        loading.problems.append(source.problem(location, message, key=about_key))


def _written_location(location: tuple[Any, ...], data: Any) -> tuple[Any, ...]:
    """A channel given as a URL or a list of URLs is validated as {urls: ...}: report its
    problems where the URLs are written (channels.me, channels.me[1]), not at `urls`."""
    if len(location) >= 3 and location[0] == "channels" and location[2] == "urls":
        channels = data.get("channels") if isinstance(data, dict) else None
        written = channels.get(location[1]) if isinstance(channels, dict) else None
        if not isinstance(written, dict):
            return (*location[:2], *location[3:])
    return location


# ------------------------------------------------------------------------- substitution


def _substitute_tree(value: Any, path: tuple[Any, ...], source: Source, loading: Loading) -> Any:
    """Return `value` with ${...} replaced in every string (monitor.config.secrets); keys are left
    as written. In a channel or feed URL each value is encoded for its part of the URL.

    Lists and mappings are changed in place rather than copied: a copy of a rules file's
    data would double what loading holds at its peak, and nothing needs the text as written.
    """
    if isinstance(value, str):
        if "${" not in value:  # the common case: nothing to substitute, nothing to report
            return value
        if not loading.resolves(source, path):
            source.unresolved.append(path)
            return value
        result = substitute(value, source.folder, loading.environ, url=_is_url(path))
        loading.secrets.update(result.values)
        for message in result.problems:
            loading.problems.append(source.problem(path, message))
        if result.problems:
            source.unresolved.append(path)
        return result.text
    if isinstance(value, list):
        for index, item in enumerate(value):
            if not isinstance(item, str) or "${" in item:
                value[index] = _substitute_tree(item, (*path, index), source, loading)
        return value
    if isinstance(value, dict):
        for key, item in value.items():  # only values are replaced: the keys stay as they are
            if not isinstance(item, str) or "${" in item:
                value[key] = _substitute_tree(item, (*path, key), source, loading)
        return value
    return value


def _is_url(path: tuple[Any, ...]) -> bool:
    """Whether the value at `path` is a feed URL or a channel's Apprise URL: feeds[i].url,
    channels.NAME, channels.NAME[i], channels.NAME.urls or channels.NAME.urls[i]."""
    if len(path) == 3 and path[0] == "feeds":
        return path[2] == "url"
    if not path or path[0] != "channels" or len(path) < 2:
        return False
    rest = path[2:]
    if rest[:1] == ("urls",):
        rest = rest[1:]
    return rest == () or (len(rest) == 1 and isinstance(rest[0], int))


# ----------------------------------------------------------------------------- problems


def finished_problems(problems: list[ConfigProblem], secrets: set[str]) -> list[ConfigProblem]:
    """Mask every secret in the problems, drop repeats, and sort them by file and line."""
    mask = SecretMask(secrets).apply
    cleaned = {
        ConfigProblem(
            mask(problem.file),
            problem.line,
            mask(problem.key_path),
            mask(problem.message),
            problem.column,
        ): None
        for problem in problems
    }
    return sorted(cleaned, key=lambda problem: (problem.file, problem.line or 0))
