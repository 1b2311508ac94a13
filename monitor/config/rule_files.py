"""Watch rules: the rules files named by the main file, rules validated one at a time,
checks across rules (something to look for, unique names), and RuleConfig built.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from monitor.config.schema import RuleSchema, RulesFileSchema
from monitor.config.settings import RuleConfig
from monitor.config.sources import Loading, Source, read_source, record_validation_error, validate
from monitor.model import DEFAULT_MATCH_FIELDS, ConfigProblem


def read_rules_files(main: Source, loading: Loading) -> list[Source]:
    """Read every file named under rules_files; a missing one is reported at its entry."""
    entries = main.document.data.get("rules_files")
    if not isinstance(entries, list):
        return []
    sources: list[Source] = []
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
        source = read_source(absolute, display, loading, rules_file=True)
        if source is None:
            continue
        if not isinstance(source.document.data, dict):
            message = "a rules file holds a list of rules (or a mapping with one key, rules:)"
            loading.problems.append(source.problem((), message))
            continue
        sources.append(source)
    return sources


def validate_rules_file(
    source: Source, context: dict[str, Any], loading: Loading
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
    if not (
        isinstance(rules, list)
        and all(key == "rules" for key in data)
        and all(type(rule) is dict for rule in rules)
    ):
        model = validate(RulesFileSchema, source, context, loading)
        if model is None:
            return None
        return [build_rule(rule, source, index) for index, rule in enumerate(model.rules or [])]
    built: list[RuleConfig] | None = []
    for index, rule in enumerate(rules):
        try:
            validated = RuleSchema.model_validate(rule, context=context)
        except ValidationError as error:
            record_validation_error(error, RulesFileSchema, source, loading, ("rules", index))
            built = None  # keep validating: every problem is reported
            continue
        if built is not None:
            built.append(build_rule(validated, source, index))
    return built


def rule_list(source: Source) -> list[Any]:
    rules = source.document.data.get("rules")
    return rules if isinstance(rules, list) else []


def rule_shape_problems(source: Source, loading: Loading) -> list[ConfigProblem]:
    """Report rules without any positive term: with only `none`, a rule matches everything;
    so does a query that only excludes (`-体育`, `NOT a OR NOT b`). The check itself is
    matching's, handed in as StageChecks.rule_problems."""
    checks = loading.checks
    problems = []
    for index, rule in enumerate(rule_list(source)):
        if not isinstance(rule, dict):
            continue
        written = (rule.get("any"), rule.get("all"), rule.get("none"), rule.get("query"))
        for key, message in checks.rule_problems(*written):
            problems.append(source.problem(("rules", index, *key), message))
    return problems


def duplicate_rule_problems(sources: list[Source]) -> list[ConfigProblem]:
    """Rule names must be unique across all files: deliveries are recorded per rule name."""
    problems = []
    first_places: dict[str, str] = {}
    for source in sources:
        for index, rule in enumerate(rule_list(source)):
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


def build_rule(rule: RuleSchema, source: Source, index: int) -> RuleConfig:
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
        per_story=rule.per_story,
        source_file=source.display,
        source_line=source.document.line_for(("rules", index)),
    )
