"""The feeds of a configuration as one list: those under `feeds:` and those of the OPML files
under `feeds_from:`, their groups, and the checks across them.

One URL is one feed: an outline whose xmlUrl is already a feed's URL (in the main file, or
in an earlier outline, of this file or another) adds its folder to that feed's groups and
nothing else. One name is one feed: a name given to two different URLs is a problem named
at the second place, with the first place in the message.

Each OPML feed is validated as a feed entry of the main file would be (FeedSchema), from
what the outline gives (name, url, group) over its file's per-file defaults. A problem
with a default is reported once, at its feeds_from entry, not once per outline.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError

from monitor.config.building import build_feed
from monitor.config.opml import OpmlError, read_opml
from monitor.config.schema import (
    FEEDS_FROM_OWN_KEYS,
    GROUP_PREFIX,
    DefaultsSchema,
    FeedSchema,
    FeedsFromSchema,
    normalise_group,
)
from monitor.config.settings import FeedConfig, ListedFeed, RuleConfig
from monitor.config.sources import Loading, Source
from monitor.config.yamlpos import error_message
from monitor.model import ConfigProblem

# What an outline's problem is about: the feed's own keys named as OPML names them.
_OUTLINE_ATTRIBUTES = {"name": "text", "url": "xmlUrl", "group": "(its folders)"}


@dataclass(frozen=True)
class OpmlOrigin:
    """Where an OPML feed comes from, and what is validated for it."""

    display: str  # the OPML file as shown in messages
    line: int
    written: dict[str, Any]  # FeedSchema's input: the file's defaults, then name, url, group


@dataclass
class GatheredFeed:
    """One feed of the configuration, valid or not, with everything said about it."""

    name: str
    url: str  # as written (a ${...} of the main file left as it is when not resolved)
    groups: list[str]  # normalised, in the order they were given
    place: str  # "file:line", for a message that names both places
    enabled: bool = True
    yaml_index: int | None = None  # its index under feeds:, for a feed of the main file
    opml: OpmlOrigin | None = None  # for a feed of an OPML file

    def listed(self) -> ListedFeed:
        return ListedFeed(self.name, self.url, self.enabled, tuple(self.groups))


@dataclass
class FeedList:
    """Every feed of the configuration, main file first, then each OPML file in turn."""

    feeds: list[GatheredFeed] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)  # the OPML files read (absolute)

    def names(self) -> set[str]:
        return {feed.name for feed in self.feeds}

    def groups(self) -> set[str]:
        """Every group a rule may name: each feed's groups and the folders around them."""
        named: set[str] = set()
        for feed in self.feeds:
            for group in feed.groups:
                folders = group.split("/")
                named.update("/".join(folders[:depth]) for depth in range(1, len(folders) + 1))
        return named

    def listed(self) -> tuple[ListedFeed, ...]:
        return tuple(feed.listed() for feed in self.feeds)


def gather_feeds(main: Source, loading: Loading) -> FeedList:
    """Given the main file, return its feeds and those of the OPML files it names, and
    record the problems of reading those files and of names and URLs given twice."""
    feed_list = FeedList()
    by_name: dict[str, GatheredFeed] = {}
    by_url: dict[str, GatheredFeed] = {}
    entries = main.document.data.get("feeds")
    for index, entry in enumerate(entries if isinstance(entries, list) else []):
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str) or name in by_name:
            continue  # validation, or duplicate_feed_problems, reports it
        url = entry.get("url")
        url = url if isinstance(url, str) else ""
        line = main.document.line_for(("feeds", index, "name"))
        feed = GatheredFeed(
            name,
            url,
            _written_groups(entry.get("group")),
            f"{main.display}:{line}",
            enabled=entry.get("enabled") is not False,
            yaml_index=index,
        )
        _add(feed, feed_list, by_name, by_url)
    for display, path, defaults in _feeds_from_files(main, loading):
        feed_list.files.append(path)
        try:
            outlines = read_opml(path)
        except OpmlError as error:
            loading.problems.append(
                ConfigProblem(display, error.line, "", error.message, error.column)
            )
            continue
        default_groups = _written_groups(defaults.get("group"))
        for outline in outlines:
            place = f"{display}:{outline.line}"
            problem = _outline_problem(outline.name, outline.url)
            if problem is not None or outline.name is None:
                where = f"outline ({outline.name})" if outline.name else "outline"
                loading.problems.append(ConfigProblem(display, outline.line, where, problem or ""))
                continue
            groups = [outline.group] if outline.group else default_groups
            known = by_url.get(outline.url)
            if known is not None:  # one URL, one feed: in every group it is listed under
                known.groups.extend(group for group in groups if group not in known.groups)
                continue
            other = by_name.get(outline.name)
            if other is not None:
                message = (
                    f"another feed is already named {outline.name!r}, with another URL "
                    f"({other.place})"
                )
                loading.problems.append(
                    ConfigProblem(display, outline.line, f"outline ({outline.name})", message)
                )
                continue
            written = {**defaults, "name": outline.name, "url": outline.url}
            if outline.group:
                written["group"] = outline.group
            feed = GatheredFeed(
                outline.name,
                outline.url,
                list(groups),
                place,
                enabled=defaults.get("enabled") is not False,
                opml=OpmlOrigin(display, outline.line, written),
            )
            _add(feed, feed_list, by_name, by_url)
    return feed_list


def _add(
    feed: GatheredFeed,
    feed_list: FeedList,
    by_name: dict[str, GatheredFeed],
    by_url: dict[str, GatheredFeed],
) -> None:
    feed_list.feeds.append(feed)
    by_name[feed.name] = feed
    if feed.url.strip():
        by_url.setdefault(feed.url.strip(), feed)


def _outline_problem(name: str | None, url: str) -> str | None:
    if name is None:
        return "an outline with an xmlUrl needs a text (or title) attribute: it names the feed"
    if "${" in url:
        return (
            "xmlUrl holds ${...}, which is not substituted in an OPML file (the file may come "
            "from anywhere): give this feed in monitor.yaml instead"
        )
    if urlsplit(url).scheme.lower() == "file":
        return (
            "xmlUrl names a local file (file://), which an OPML file may not (the file may "
            "come from anywhere): give this feed in monitor.yaml instead"
        )
    return None


def _written_groups(value: Any) -> list[str]:
    """The valid groups of a `group:` as written (validation reports the others)."""
    written = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    groups: list[str] = []
    for text in written:
        try:
            group = normalise_group(text) if isinstance(text, str) else None
        except ValueError:
            group = None
        if group is not None and group not in groups:
            groups.append(group)
    return groups


def _feeds_from_files(main: Source, loading: Loading) -> list[tuple[str, Path, dict[str, Any]]]:
    """Each OPML file named under feeds_from: as shown, its absolute path, and its per-file
    defaults (none when they are invalid: validation reports them at the entry)."""
    entries = main.document.data.get("feeds_from")
    files: list[tuple[str, Path, dict[str, Any]]] = []
    seen: set[Path] = set()
    for index, entry in enumerate(entries if isinstance(entries, list) else []):
        written = entry.get("file") if isinstance(entry, dict) else entry
        location: tuple[Any, ...] = ("feeds_from", index)
        if isinstance(entry, dict):
            location = (*location, "file")
        if not isinstance(written, str) or not written.strip() or location in main.unresolved:
            continue  # validation reports it, or its ${...} is reported (or left unresolved)
        absolute = Path(os.path.abspath(main.folder / written))
        display = str(Path(main.display).parent / written)
        if absolute.resolve() in seen:
            loading.problems.append(main.problem(location, "this OPML file is already listed"))
            continue
        seen.add(absolute.resolve())
        if not absolute.is_file():
            loading.problems.append(main.problem(location, f"no such OPML file: {display}"))
            continue
        defaults: dict[str, Any] = {}
        if isinstance(entry, dict):
            try:
                FeedsFromSchema.model_validate(entry, context={"checks": loading.checks})
                defaults = {key: value for key, value in entry.items() if key != "file"}
            except ValidationError:
                pass  # reported where the entry is written, by the main file's validation
        files.append((display, absolute, defaults))
    return files


def validate_opml_feeds(
    feed_list: FeedList, context: dict[str, Any], loading: Loading
) -> dict[int, FeedSchema]:
    """Validate every OPML feed as a feed entry; return the valid ones by their index in
    the list, after recording the problems of the others at their outline."""
    validated: dict[int, FeedSchema] = {}
    for index, feed in enumerate(feed_list.feeds):
        if feed.opml is None:
            continue
        try:
            validated[index] = FeedSchema.model_validate(feed.opml.written, context=context)
        except ValidationError as error:
            _record_outline_error(error, feed, feed.opml, loading)
    return validated


def _record_outline_error(
    error: ValidationError, feed: GatheredFeed, origin: OpmlOrigin, loading: Loading
) -> None:
    for detail in error.errors(include_url=False):
        location = tuple(detail["loc"])
        key = str(location[0]) if location else ""
        if key and key not in FEEDS_FROM_OWN_KEYS and key != "group":
            continue  # a per-file default: reported at its feeds_from entry
        where = f"outline ({feed.name})"
        if key in _OUTLINE_ATTRIBUTES:
            where += f".{_OUTLINE_ATTRIBUTES[key]}"
        message = error_message(detail, FeedSchema, location)
        loading.problems.append(ConfigProblem(origin.display, origin.line, where, message))


def build_feed_configs(
    feed_list: FeedList,
    yaml_feeds: list[FeedSchema],
    opml_feeds: dict[int, FeedSchema],
    defaults: DefaultsSchema | None,
) -> tuple[FeedConfig, ...]:
    """Every feed as FeedConfig, main file first, with its gathered groups."""
    return tuple(
        build_feed(
            yaml_feeds[feed.yaml_index] if feed.yaml_index is not None else opml_feeds[index],
            defaults,
            tuple(feed.groups),
        )
        for index, feed in enumerate(feed_list.feeds)
    )


def expand_group_references(
    rules: tuple[RuleConfig, ...], feeds: tuple[FeedConfig, ...]
) -> tuple[RuleConfig, ...]:
    """Replace each `group:NAME` in a rule's feeds with the names of the feeds in that group
    or in a group inside it (group:Asia covers Asia/Japan), in the order of the feeds."""
    if not any(name.startswith(GROUP_PREFIX) for rule in rules for name in rule.feeds):
        return rules
    expanded = []
    for rule in rules:
        if not any(name.startswith(GROUP_PREFIX) for name in rule.feeds):
            expanded.append(rule)
            continue
        names: dict[str, None] = {}
        for reference in rule.feeds:
            if not reference.startswith(GROUP_PREFIX):
                names[reference] = None
                continue
            group = reference.removeprefix(GROUP_PREFIX)
            for feed in feeds:
                if any(own == group or own.startswith(group + "/") for own in feed.groups):
                    names[feed.name] = None
        expanded.append(replace(rule, feeds=tuple(names)))
    return tuple(expanded)
