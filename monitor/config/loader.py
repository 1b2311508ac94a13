"""YAML -> validated, frozen config objects; every error with its file, line and key path.

The dataclasses below are the contract the rest of the program reads. load_config() is the
only way to build them from files.

How loading works: each file is composed into data plus the line of every key and value
(monitor.config.yamlpos), `${...}` references are substituted, and the pydantic models of
monitor.config.schema validate the result. Every problem (YAML, substitution, validation,
cross-references, duplicates) is collected with its location; only when there is none are
the dataclasses built.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

# Part of this module's public API: where the main file is when --config is not given.
from monitor.config.locations import default_config_path as default_config_path
from monitor.config.locations import find_config_file as find_config_file
from monitor.config.schema import (
    DEFAULT_DELIVERY_ATTEMPTS,
    DEFAULT_INTERVAL_SECONDS,
    DEFAULT_JITTER_SECONDS,
    DEFAULT_MAX_AGE_SECONDS,
    DEFAULT_MAX_BYTES,
    DEFAULT_RETRY_BASE_SECONDS,
    DEFAULT_RETRY_CAP_SECONDS,
    DEFAULT_TIMEOUT_SECONDS,
    ChannelSchema,
    DefaultsSchema,
    DeliverySchema,
    FeedSchema,
    MainFileSchema,
    RuleSchema,
    RulesFileSchema,
)

# Part of this module's public API; defined in monitor.config.schema, whose checks use them.
from monitor.config.schema import parse_duration as parse_duration
from monitor.config.schema import parse_size as parse_size
from monitor.config.secrets import SECRETS, SecretMask, substitute
from monitor.config.yamlpos import (
    YamlDocument,
    YamlSyntaxError,
    error_location,
    error_message,
    key_path,
    load_yaml,
)
from monitor.matching.query import And, Node, Not, Or, evaluate, parse_query, parse_term
from monitor.model import DEFAULT_MATCH_FIELDS, ConfigError, ConfigProblem


@dataclass(frozen=True)
class FeedConfig:
    name: str
    url: str
    interval_seconds: float = DEFAULT_INTERVAL_SECONDS
    jitter_seconds: float = DEFAULT_JITTER_SECONDS
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    max_bytes: int = DEFAULT_MAX_BYTES
    max_age_seconds: float = DEFAULT_MAX_AGE_SECONDS
    notify_existing: bool = False
    enabled: bool = True


@dataclass(frozen=True)
class ChannelConfig:
    name: str
    urls: tuple[str, ...]  # Apprise URLs with ${...} already substituted: secret-bearing
    template: str | None = (
        None  # Jinja2 body template for this channel (monitor.delivery.templates)
    )


@dataclass(frozen=True, slots=True)  # slots: a rules file may hold 10,000 of them
class RuleConfig:
    name: str
    any_terms: tuple[str, ...] = ()
    all_terms: tuple[str, ...] = ()
    none_terms: tuple[str, ...] = ()
    query: str | None = None  # the query form (monitor.matching.query); ANDed with any/all/none
    fields: tuple[str, ...] = DEFAULT_MATCH_FIELDS
    feeds: tuple[str, ...] = ()  # empty: every feed
    notify: tuple[str, ...] = ("console",)
    enabled: bool = True
    # Delivery options, validated now, applied by the delivery features.
    digest: str | None = None
    quiet_hours: str | None = None
    max_per_hour: int | None = None
    template: str | None = None
    source_file: str = ""
    source_line: int | None = None


@dataclass(frozen=True)
class DeliveryConfig:
    retry_base_seconds: float = DEFAULT_RETRY_BASE_SECONDS
    retry_cap_seconds: float = DEFAULT_RETRY_CAP_SECONDS
    attempts: int = DEFAULT_DELIVERY_ATTEMPTS  # every try counts, the first included


@dataclass(frozen=True)
class Config:
    path: Path  # the main file
    database_url: str
    state_dir: Path
    timezone: str = "UTC"
    feeds: tuple[FeedConfig, ...] = ()
    channels: tuple[ChannelConfig, ...] = ()
    rules: tuple[RuleConfig, ...] = ()
    delivery: DeliveryConfig = field(default_factory=DeliveryConfig)
    http_listen: str | None = None
    # Every value substituted from ${...}: never to be shown in logs, errors or status.
    secrets: frozenset[str] = frozenset()
    # The main file and every rules file, for reload on change.
    source_files: tuple[Path, ...] = ()
    # `retention:`: articles first seen longer ago than this lose their bodies (their
    # identity keys stay, so they never come back as new); None keeps everything.
    retention_seconds: float | None = None

    def channel(self, name: str) -> ChannelConfig | None:
        return next((channel for channel in self.channels if channel.name == name), None)

    def feed(self, name: str) -> FeedConfig | None:
        return next((feed for feed in self.feeds if feed.name == name), None)


# The keys of the main file that say where the database is: the only ones whose ${...}
# load_database_settings resolves.
DATABASE_KEYS = frozenset({"database", "state_dir"})


@dataclass(frozen=True)
class ListedFeed:
    """A feed as the main file lists it, valid or not."""

    name: str
    url: str  # as written: ${...} left as it is
    enabled: bool = True


@dataclass(frozen=True)
class DatabaseSettings:
    """What reading the database takes of the configuration (load_database_settings)."""

    path: Path  # the main file
    database_url: str
    timezone: str
    feeds: tuple[ListedFeed, ...]
    # What is wrong in the configuration (in no particular part), as load_config would say
    # it, except for the ${...} references that were not resolved.
    problems: tuple[ConfigProblem, ...]
    secrets: frozenset[str]  # the values substituted into database: and state_dir:


# --------------------------------------------------------------------------- public API
# parse_duration and parse_size belong to it too: defined in monitor.config.schema, imported above.


def load_config(path: str | Path, environ: Mapping[str, str] | None = None) -> Config:
    """Given the main configuration file, return the validated Config.

    `environ` supplies ${NAME}, $STATE_DIRECTORY and $CREDENTIALS_DIRECTORY (default:
    os.environ). Raise ConfigError carrying every problem found in every file, sorted by
    file then line; no message contains a substituted value.
    """
    environ = os.environ if environ is None else environ
    loading = _Loading(environ)
    config = _load(Path(path), loading)
    if loading.problems or config is None:
        raise ConfigError(_finished_problems(loading.problems, loading.secrets))
    return config


def load_database_settings(
    path: str | Path, environ: Mapping[str, str] | None = None, *, check_everything: bool = True
) -> DatabaseSettings:
    """Given the main configuration file, return where the database is and what the main
    file lists, for commands that read the database only (status, health).

    Only the ${...} of database: and state_dir: are resolved: no other secret is read (a
    channel's ${cred:NAME} works outside systemd), and other references are left as written,
    unchecked. With `check_everything`, every file is loaded as load_config loads it and its
    problems are returned, not raised; without, the rules files are not read at all. Raise
    ConfigError only when the database cannot be located: the main file unreadable, not
    YAML or not a mapping, or database: or state_dir: invalid.
    """
    environ = os.environ if environ is None else environ
    loading = _Loading(environ, resolve_only=DATABASE_KEYS)
    if check_everything:
        _load(Path(path), loading)  # for its problems: the Config it may build is not used
    else:
        _read_main(Path(path), loading)
    main = loading.main
    located = _validated_keys(main, DATABASE_KEYS, loading) if main is not None else None
    if (
        main is None
        or located is None
        or any(failed[:1] in {(key,) for key in DATABASE_KEYS} for failed in main.unresolved)
    ):
        raise ConfigError(_finished_problems(loading.problems, loading.secrets))
    shown = _validated_keys(main, frozenset({"timezone"}), loading)
    state_dir = _state_dir(located.state_dir, main.folder, environ)
    return DatabaseSettings(
        path=main.path,
        database_url=_database_url(located.database, main.folder, state_dir),
        timezone=(shown.timezone if shown is not None else None) or "UTC",
        feeds=_listed_feeds(main.document.data),
        problems=tuple(_finished_problems(loading.problems, loading.secrets)),
        secrets=frozenset(secret for secret in loading.secrets if secret),
    )


# ------------------------------------------------------------------------------ loading


@dataclass
class _Loading:
    """What one load_config() call accumulates across files."""

    environ: Mapping[str, str]
    problems: list[ConfigProblem] = field(default_factory=list)
    secrets: set[str] = field(default_factory=set)
    # None: every ${...} is resolved. Otherwise only those under these keys of the main
    # file; the others are left as written, neither read nor checked.
    resolve_only: frozenset[str] | None = None
    main: _Source | None = None  # the main file, once read

    def resolves(self, source: _Source, path: tuple[Any, ...]) -> bool:
        if self.resolve_only is None:
            return True
        return not source.rules_file and bool(path) and path[0] in self.resolve_only


@dataclass
class _Source:
    """One YAML file being loaded."""

    display: str  # the path as shown in messages: as given, or joined to the main file's
    path: Path  # absolute
    document: YamlDocument
    # Paths whose ${...} failed (their own problem is reported, validation's is not), or
    # were left unresolved on purpose (see _Loading.resolve_only: nothing is reported).
    unresolved: list[tuple[Any, ...]] = field(default_factory=list)
    rules_file: bool = False

    @property
    def folder(self) -> Path:
        return self.path.parent

    def problem(self, path: tuple[Any, ...], message: str, *, key: bool = False) -> ConfigProblem:
        line = self.document.line_for(path, key=key)
        return ConfigProblem(self.display, line, key_path(path, self.document.data), message)


def _load(path: Path, loading: _Loading) -> Config | None:
    main = _read_main(path, loading)
    if main is None:
        return None
    context = _reference_names(main.document.data)
    main_model = _validate(MainFileSchema, main, context, loading)
    rules_files = _read_rules_files(main, loading)
    # Each rules file's rules are built as they are validated (see _validate_rules_file).
    file_rules = [_validate_rules_file(source, context, loading) for source in rules_files]
    rule_sources = [main, *rules_files]
    for source in rule_sources:
        loading.problems.extend(_rule_shape_problems(source))
    loading.problems.extend(_duplicate_feed_problems(main))
    loading.problems.extend(_duplicate_rule_problems(rule_sources))
    if loading.problems or main_model is None or any(built is None for built in file_rules):
        return None
    rules = [_build_rule(rule, main, index) for index, rule in enumerate(main_model.rules or [])]
    for built in file_rules:
        rules.extend(built or ())
    return _build_config(main, main_model, tuple(rules), rule_sources, loading)


def _read_main(path: Path, loading: _Loading) -> _Source | None:
    """Given the main file, return it read, or None if it cannot be read or is no mapping."""
    main = _read_source(path, str(path), loading)
    if main is None:
        return None
    if main.document.data is None:  # an empty file: every setting at its default
        main.document.data = {}
    if not isinstance(main.document.data, dict):
        loading.problems.append(
            main.problem((), "the main configuration file must be a mapping of settings")
        )
        return None
    loading.main = main
    return main


def _read_source(
    path: Path, display: str, loading: _Loading, *, rules_file: bool = False
) -> _Source | None:
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
    source = _Source(display, absolute, document, rules_file=rules_file)
    for duplicate in document.duplicate_keys:
        message = f"duplicate key; it first appears on line {duplicate.first_line}"
        loading.problems.append(source.problem(duplicate.path, message, key=True))
    document.data = _substitute_tree(document.data, (), source, loading)
    return source


def _read_rules_files(main: _Source, loading: _Loading) -> list[_Source]:
    """Read every file named under rules_files; a missing one is reported at its entry."""
    entries = main.document.data.get("rules_files")
    if not isinstance(entries, list):
        return []
    sources: list[_Source] = []
    seen: set[Path] = set()
    for index, entry in enumerate(entries):
        if not isinstance(entry, str) or not entry.strip():
            continue  # validation reports it
        location = ("rules_files", index)
        absolute = Path(os.path.abspath(main.folder / entry))
        display = str(Path(main.display).parent / entry)
        if absolute.resolve() == main.path.resolve():
            loading.problems.append(main.problem(location, "this is the main file itself"))
            continue
        if absolute.resolve() in seen:
            loading.problems.append(main.problem(location, "this rules file is already listed"))
            continue
        seen.add(absolute.resolve())
        if not absolute.is_file():
            loading.problems.append(main.problem(location, f"no such rules file: {display}"))
            continue
        source = _read_source(absolute, display, loading, rules_file=True)
        if source is None:
            continue
        if not isinstance(source.document.data, dict):
            message = "a rules file holds a list of rules (or a mapping with one key, rules:)"
            loading.problems.append(source.problem((), message))
            continue
        sources.append(source)
    return sources


def _validate(
    model: type[BaseModel], source: _Source, context: dict[str, set[str]], loading: _Loading
) -> Any:
    """Validate a file's data; return the model, or None after recording every problem."""
    try:
        # Checking a channel URL, Apprise may log a value it was given (monitor.config.secrets).
        with SECRETS.including(loading.secrets):
            return model.model_validate(source.document.data, context=context)
    except ValidationError as error:
        _record_validation_error(error, model, source, loading)
        return None


def _validate_rules_file(
    source: _Source, context: dict[str, set[str]], loading: _Loading
) -> list[RuleConfig] | None:
    """Validate a rules file; return its rules built, or None after recording every problem.

    A file of thousands of rules is validated one rule at a time, and each rule built as soon
    as it is valid: RulesFileSchema.model_validate() would hold a pydantic model for every
    rule (about 1 KB each) next to the YAML data until all are built, which is most of what
    loading 10,000 rules leaves behind in the process. The problems are those the whole-file
    model reports, in the same order: its rules are a list of RuleSchema, validated item by
    item, so an item's errors are RuleSchema's own under ("rules", index). Anything else
    than {rules: [mappings]} goes through the whole-file model.
    """
    data = source.document.data
    rules = data.get("rules") if isinstance(data, dict) else None
    per_rule = (
        isinstance(rules, list)
        and all(key == "rules" for key in data)
        and all(type(rule) is dict for rule in rules)
    )
    if not per_rule:
        model = _validate(RulesFileSchema, source, context, loading)
        if model is None:
            return None
        return [_build_rule(rule, source, index) for index, rule in enumerate(model.rules or [])]
    built: list[RuleConfig] | None = []
    for index, rule in enumerate(rules):
        try:
            validated = RuleSchema.model_validate(rule, context=context)
        except ValidationError as error:
            _record_validation_error(error, RulesFileSchema, source, loading, ("rules", index))
            built = None  # keep validating: every problem is reported
            continue
        if built is not None:
            built.append(_build_rule(validated, source, index))
    return built


def _record_validation_error(
    error: ValidationError,
    model: type[BaseModel],
    source: _Source,
    loading: _Loading,
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


def _validated_keys(
    main: _Source, keys: frozenset[str], loading: _Loading
) -> MainFileSchema | None:
    """Validate only these keys of the main file (the others as if absent); return the model,
    or None after recording the problems (load_config reports the same ones)."""
    data = main.document.data
    try:
        return MainFileSchema.model_validate({key: data[key] for key in keys if key in data})
    except ValidationError as error:
        _record_validation_error(error, MainFileSchema, main, loading)
        return None


def _listed_feeds(data: dict[Any, Any]) -> tuple[ListedFeed, ...]:
    """The feeds the main file lists, valid or not: each entry that has a name, once."""
    feeds = data.get("feeds")
    listed: dict[str, ListedFeed] = {}
    for feed in feeds if isinstance(feeds, list) else []:
        name = feed.get("name") if isinstance(feed, dict) else None
        if isinstance(name, str) and name not in listed:
            url = feed.get("url")
            enabled = feed.get("enabled") is not False
            listed[name] = ListedFeed(name, url if isinstance(url, str) else "", enabled)
    return tuple(listed.values())


def _reference_names(data: dict[Any, Any]) -> dict[str, set[str]]:
    """Collect the feed and channel names rules may refer to, even from invalid entries.

    Taken from the raw data so that one feed with a bad interval does not also make every
    rule that names it fail with "unknown feed".
    """
    feeds = data.get("feeds")
    channels = data.get("channels")
    feed_names = {
        feed["name"]
        for feed in (feeds if isinstance(feeds, list) else [])
        if isinstance(feed, dict) and isinstance(feed.get("name"), str)
    }
    channel_names = (
        {name for name in channels if isinstance(name, str)}
        if isinstance(channels, dict)
        else set()
    )
    return {"feeds": feed_names, "channels": channel_names | {"console"}}


# ------------------------------------------------------------------------- substitution


def _substitute_tree(value: Any, path: tuple[Any, ...], source: _Source, loading: _Loading) -> Any:
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


# ------------------------------------------------------------------- cross-entry checks


def _rule_list(source: _Source) -> list[Any]:
    rules = source.document.data.get("rules")
    return rules if isinstance(rules, list) else []


def _rule_shape_problems(source: _Source) -> list[ConfigProblem]:
    """Report rules without any positive term: with only `none`, a rule matches everything;
    so does a query that only excludes (`-体育`, `NOT a OR NOT b`)."""
    problems = []
    for index, rule in enumerate(_rule_list(source)):
        if not isinstance(rule, dict):
            continue
        if rule.get("query") is not None:
            if _matches_without_terms(rule):
                message = (
                    "this query matches articles that contain none of its terms (it only "
                    "excludes); add a term or /regex/ to look for"
                )
                problems.append(source.problem(("rules", index, "query"), message))
            continue
        terms = [rule.get("any"), rule.get("all")]
        if all(value is None or value == [] for value in terms):
            message = "a rule needs at least one term under any or all"
            if rule.get("none"):
                message += " (with only none it would match every article)"
            problems.append(source.problem(("rules", index), message))
    return problems


def _matches_without_terms(rule: dict[Any, Any]) -> bool:
    """Given a rule's raw data with a query, return whether the rule (list form and query
    ANDed) holds on an article that contains none of its terms. False when something in it
    is invalid: that is reported on its own."""
    try:
        tree = parse_query(str(rule["query"]))
        parts: list[Node] = [tree]
        for key in ("any", "all", "none"):
            written = rule.get(key) or []
            if not isinstance(written, list):
                return False
            terms = [parse_term(str(term)) for term in written]
            if key == "all":
                parts.extend(terms)
            elif terms:
                alternatives = Or(tuple(terms))
                parts.append(alternatives if key == "any" else Not(alternatives))
    except ValueError:
        return False
    return evaluate(And(tuple(parts)), lambda _atom: False)


def _duplicate_feed_problems(main: _Source) -> list[ConfigProblem]:
    feeds = main.document.data.get("feeds")
    problems = []
    first_lines: dict[str, int | None] = {}
    for index, feed in enumerate(feeds if isinstance(feeds, list) else []):
        name = feed.get("name") if isinstance(feed, dict) else None
        if not isinstance(name, str):
            continue
        location = ("feeds", index, "name")
        if name in first_lines:
            message = f"another feed is already named {name!r} (line {first_lines[name]})"
            problems.append(main.problem(location, message))
        else:
            first_lines[name] = main.document.line_for(location)
    return problems


def _duplicate_rule_problems(sources: list[_Source]) -> list[ConfigProblem]:
    """Rule names must be unique across all files: deliveries are recorded per rule name."""
    problems = []
    first_places: dict[str, str] = {}
    for source in sources:
        for index, rule in enumerate(_rule_list(source)):
            name = rule.get("name") if isinstance(rule, dict) else None
            if not isinstance(name, str):
                continue
            location = ("rules", index, "name")
            if name in first_places:
                message = f"another rule is already named {name!r} ({first_places[name]})"
                problems.append(source.problem(location, message))
            else:
                first_places[name] = f"{source.display}:{source.document.line_for(location)}"
    return problems


# ----------------------------------------------------------------------------- building


def _build_config(
    main: _Source,
    model: MainFileSchema,
    rules: tuple[RuleConfig, ...],
    rule_sources: list[_Source],
    loading: _Loading,
) -> Config:
    state_dir = _state_dir(model.state_dir, main.folder, loading.environ)
    return Config(
        path=main.path,
        database_url=_database_url(model.database, main.folder, state_dir),
        state_dir=state_dir,
        timezone=model.timezone or "UTC",
        feeds=tuple(_build_feed(feed, model.defaults) for feed in model.feeds or []),
        channels=_build_channels(model.channels or {}),
        rules=rules,
        delivery=_build_delivery(model.delivery),
        http_listen=model.http.listen if model.http else None,
        secrets=frozenset(secret for secret in loading.secrets if secret),
        source_files=tuple(dict.fromkeys(source.path.resolve() for source in rule_sources)),
        retention_seconds=model.retention,
    )


def _state_dir(configured: str | None, folder: Path, environ: Mapping[str, str]) -> Path:
    # systemd sets $STATE_DIRECTORY, colon-separated when StateDirectory= lists several.
    from_systemd = environ.get("STATE_DIRECTORY", "").split(":")[0]
    if from_systemd:
        return Path(os.path.abspath(from_systemd))
    if configured:
        return Path(os.path.abspath(folder / configured))
    return Path(os.path.abspath("state"))


_SQLITE_URL = re.compile(r"(?P<scheme>sqlite(?:\+\w+)?):///(?P<path>[^?]*)(?P<query>\?.*)?", re.S)


def _database_url(configured: str | None, folder: Path, state_dir: Path) -> str:
    """Return the database URL with a relative SQLite path made absolute from `folder`."""
    if configured is None:
        return f"sqlite:///{state_dir / 'monitor.db'}"
    match = _SQLITE_URL.fullmatch(configured)
    if match is None:
        return configured  # PostgreSQL and others: passed through as written
    path = match["path"]
    if not path or path.startswith("/") or path == ":memory:" or path.startswith("file:"):
        return configured
    absolute = os.path.abspath(folder / path)
    return f"{match['scheme']}:///{absolute}{match['query'] or ''}"


def _build_feed(feed: FeedSchema, defaults: DefaultsSchema | None) -> FeedConfig:
    def setting(name: str, builtin: Any) -> Any:
        for layer in (feed, defaults):
            value = getattr(layer, name, None) if layer is not None else None
            if value is not None:
                return value
        return builtin

    return FeedConfig(
        name=feed.name,
        url=feed.url,
        interval_seconds=setting("interval", DEFAULT_INTERVAL_SECONDS),
        jitter_seconds=setting("jitter", DEFAULT_JITTER_SECONDS),
        timeout_seconds=setting("timeout", DEFAULT_TIMEOUT_SECONDS),
        max_bytes=setting("max_bytes", DEFAULT_MAX_BYTES),
        max_age_seconds=setting("max_age", DEFAULT_MAX_AGE_SECONDS),
        notify_existing=feed.notify_existing,
        enabled=feed.enabled,
    )


def _build_channels(channels: dict[str, ChannelSchema]) -> tuple[ChannelConfig, ...]:
    built = [
        ChannelConfig(name, tuple(channel.urls), channel.template)
        for name, channel in channels.items()
    ]
    if "console" not in channels:
        built.append(ChannelConfig("console", ("console://",)))
    return tuple(built)


def _build_rule(rule: RuleSchema, source: _Source, index: int) -> RuleConfig:
    return RuleConfig(
        name=rule.name,
        any_terms=tuple(rule.any_terms or ()),
        all_terms=tuple(rule.all_terms or ()),
        none_terms=tuple(rule.none_terms or ()),
        query=rule.query,
        # dict.fromkeys: `[category, categories]` names one field once.
        fields=tuple(dict.fromkeys(rule.fields)) if rule.fields else DEFAULT_MATCH_FIELDS,
        feeds=tuple(rule.feeds or ()),
        notify=tuple(rule.notify) if rule.notify else ("console",),
        enabled=rule.enabled,
        digest=rule.digest,
        quiet_hours=rule.quiet_hours,
        max_per_hour=rule.max_per_hour,
        template=rule.template,
        source_file=source.display,
        source_line=source.document.line_for(("rules", index)),
    )


def _build_delivery(delivery: DeliverySchema | None) -> DeliveryConfig:
    if delivery is None:
        return DeliveryConfig()
    return DeliveryConfig(
        retry_base_seconds=delivery.retry_base or DEFAULT_RETRY_BASE_SECONDS,
        retry_cap_seconds=delivery.retry_cap or DEFAULT_RETRY_CAP_SECONDS,
        attempts=delivery.attempts or DEFAULT_DELIVERY_ATTEMPTS,
    )


# ----------------------------------------------------------------------------- problems


def _finished_problems(problems: list[ConfigProblem], secrets: set[str]) -> list[ConfigProblem]:
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
