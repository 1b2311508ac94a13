"""YAML -> validated, frozen config objects; every error with its file, line and key path.

The dataclasses of monitor.config.settings are the contract the rest of the program reads.
load_config() is the only way to build them from files.

How loading works: each file is composed into data plus the line of every key and value
(monitor.config.yamlpos), `${...}` references are substituted (monitor.config.sources), and
the pydantic models of monitor.config.schema validate the result, with the checks only later
stages can make handed in as StageChecks (monitor.config.checks). Every problem (YAML,
substitution, validation, cross-references, duplicates) is collected with its location;
only when there is none are the dataclasses built (monitor.config.building,
monitor.config.rule_files).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from monitor.config.building import (
    build_config,
    duplicate_feed_problems,
    http_problems,
    listed_feeds,
    reference_names,
    resolve_database_url,
    resolve_state_dir,
)
from monitor.config.checks import StageChecks
from monitor.config.feed_lists import (
    FeedList,
    build_feed_configs,
    expand_group_references,
    gather_feeds,
    validate_opml_feeds,
)
from monitor.config.rule_files import (
    build_rule,
    duplicate_rule_problems,
    read_rules_files,
    rule_shape_problems,
    validate_rules_file,
)
from monitor.config.schema import MainFileSchema
from monitor.config.settings import DATABASE_KEYS, Config, DatabaseSettings, ListedFeed
from monitor.config.sources import (
    Loading,
    Source,
    finished_problems,
    read_source,
    record_validation_error,
    validate,
)
from monitor.model import ConfigError


def load_config(
    path: str | Path, environ: Mapping[str, str] | None = None, *, checks: StageChecks
) -> Config:
    """Given the main configuration file, return the validated Config.

    `checks` checks what only later stages know (monitor.service.configuration builds
    them). `environ` supplies ${NAME}, $STATE_DIRECTORY and $CREDENTIALS_DIRECTORY (default:
    os.environ). Raise ConfigError carrying every problem found in every file, sorted by
    file then line; no message contains a substituted value.
    """
    environ = os.environ if environ is None else environ
    loading = Loading(environ, checks=checks)
    config, _ = _load(Path(path), loading)
    if loading.problems or config is None:
        raise ConfigError(finished_problems(loading.problems, loading.secrets))
    return config


def load_feed_list(
    path: str | Path, environ: Mapping[str, str] | None = None, *, checks: StageChecks
) -> tuple[ListedFeed, ...]:
    """Given the main configuration file, return every feed it configures (its own and
    those of its feeds_from: files) as written: no ${...} is resolved, so no secret is read
    and a URL keeps its ${...}. Raise ConfigError if the configuration has problems (other
    than the references it leaves unresolved)."""
    environ = os.environ if environ is None else environ
    loading = Loading(environ, checks=checks, resolve_only=frozenset())
    _, feed_list = _load(Path(path), loading)
    if loading.problems or feed_list is None:
        raise ConfigError(finished_problems(loading.problems, loading.secrets))
    return feed_list.listed()


def load_database_settings(
    path: str | Path,
    environ: Mapping[str, str] | None = None,
    *,
    checks: StageChecks,
    check_everything: bool = True,
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
    loading = Loading(environ, checks=checks, resolve_only=DATABASE_KEYS)
    feed_list = None
    if check_everything:
        # For its problems and the feeds: the Config it may build is not used.
        _, feed_list = _load(Path(path), loading)
    else:
        _read_main(Path(path), loading)
    main = loading.main
    located = _validated_keys(main, DATABASE_KEYS, loading) if main is not None else None
    if (
        main is None
        or located is None
        or any(failed[:1] in {(key,) for key in DATABASE_KEYS} for failed in main.unresolved)
    ):
        raise ConfigError(finished_problems(loading.problems, loading.secrets))
    shown = _validated_keys(main, frozenset({"timezone"}), loading)
    state_dir = resolve_state_dir(located.state_dir, main.folder, environ)
    return DatabaseSettings(
        path=main.path,
        database_url=resolve_database_url(located.database, main.folder, state_dir),
        timezone=(shown.timezone if shown is not None else None) or "UTC",
        feeds=feed_list.listed() if feed_list is not None else listed_feeds(main.document.data),
        problems=tuple(finished_problems(loading.problems, loading.secrets)),
        secrets=frozenset(secret for secret in loading.secrets if secret),
    )


def _load(path: Path, loading: Loading) -> tuple[Config | None, FeedList | None]:
    main = _read_main(path, loading)
    if main is None:
        return None, None
    feed_list = gather_feeds(main, loading)
    context: dict[str, Any] = {**reference_names(main.document.data), "checks": loading.checks}
    context["feeds"] = context["feeds"] | feed_list.names()
    context["groups"] = feed_list.groups()
    main_model = validate(MainFileSchema, main, context, loading)
    opml_feeds = validate_opml_feeds(feed_list, context, loading)
    rules_files = read_rules_files(main, loading)
    # Each rules file's rules are built as they are validated (see validate_rules_file).
    file_rules = [validate_rules_file(source, context, loading) for source in rules_files]
    rule_sources = [main, *rules_files]
    for source in rule_sources:
        loading.problems.extend(rule_shape_problems(source, loading))
    loading.problems.extend(duplicate_feed_problems(main))
    if main_model is not None:
        loading.problems.extend(http_problems(main, main_model))
    loading.problems.extend(duplicate_rule_problems(rule_sources))
    if loading.problems or main_model is None or any(built is None for built in file_rules):
        return None, feed_list
    rules = [build_rule(rule, main, index) for index, rule in enumerate(main_model.rules or [])]
    for built in file_rules:
        rules.extend(built or ())
    feeds = build_feed_configs(feed_list, main_model.feeds or [], opml_feeds, main_model.defaults)
    source_files = [source.path for source in rule_sources] + feed_list.files
    config = build_config(
        main, main_model, feeds, expand_group_references(tuple(rules), feeds), source_files, loading
    )
    return config, feed_list


def _read_main(path: Path, loading: Loading) -> Source | None:
    """Given the main file, return it read, or None if it cannot be read or is no mapping."""
    main = read_source(path, str(path), loading)
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


def _validated_keys(main: Source, keys: frozenset[str], loading: Loading) -> MainFileSchema | None:
    """Validate only these keys of the main file (the others as if absent); return the model,
    or None after recording the problems (load_config reports the same ones)."""
    data = main.document.data
    try:
        return MainFileSchema.model_validate({key: data[key] for key in keys if key in data})
    except ValidationError as error:
        record_validation_error(error, MainFileSchema, main, loading)
        return None
