"""The YAML schema: pydantic models and value checks for the configuration files.

The models mirror the main file and the rules files key for key; the checks each take a value
as YAML gave it and return it normalised, or raise ValueError with a message for the user.
monitor.config.loader composes the files, substitutes ${...}, validates them with these models and
builds its frozen dataclasses from the result. This module must not import monitor.config.loader.

What only a later stage can check (an Apprise URL, a template, a cron expression, a rule's
terms, query and fields) is checked by the StageChecks (monitor.config.checks) that the
loader passes in the validation context, under "checks".
"""

from __future__ import annotations

import math
import re
import zoneinfo
from collections.abc import Callable
from datetime import time
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    ValidationInfo,
    create_model,
    model_validator,
)

from monitor.config.checks import StageChecks
from monitor.config.yamlpos import describe

# What an absent key stands for. monitor.config.loader uses them as its dataclasses' defaults,
# and fetching as its own (monitor.ingest); they live here because DeliverySchema checks
# retry_cap against the default retry_base.
DEFAULT_INTERVAL_SECONDS = 600.0
DEFAULT_JITTER_SECONDS = 30.0
DEFAULT_TIMEOUT_SECONDS = 20.0
DEFAULT_MAX_BYTES = 5 * 1024 * 1024
DEFAULT_MAX_AGE_SECONDS = 2 * 86400.0
DEFAULT_RETRY_BASE_SECONDS = 30.0
DEFAULT_RETRY_CAP_SECONDS = 3600.0
DEFAULT_DELIVERY_ATTEMPTS = 10
# cluster.lease: how long an instance that stopped renewing its lease (killed, hung, cut off
# from the database) keeps its work before the others take it over.
DEFAULT_CLUSTER_LEASE_SECONDS = 60.0
# The shortest lease accepted: an instance renews it six times per lease, and a renewal is a
# write to the database.
MIN_CLUSTER_LEASE_SECONDS = 3.0
# A feed's `fulltext:` as FeedConfig holds it: off; the article page's text for items that
# carry no content:encoded (YAML `true`); for every new item, replacing what the feed gave
# (`always`).
FULLTEXT_OFF = "off"
FULLTEXT_IF_MISSING = "if_missing"
FULLTEXT_ALWAYS = "always"
# `stories.window`: how long after a story's first article others may still join it.
DEFAULT_STORY_WINDOW_SECONDS = 72 * 3600.0
# The shortest `retention:` accepted: old articles are pruned once a day, so a shorter
# retention could not be kept anyway.
MIN_RETENTION_SECONDS = 86400.0


# ------------------------------------------------------------------ durations and sizes
# parse_duration and parse_size are public: monitor.config exports them, and the rest of
# the program imports them from there.


def parse_duration(text: str | int | float) -> float:
    """Given a duration, return it in seconds. Raise ValueError if it is not one.

    Accepted: a number with a unit (s, m, h, d, w), decimals and sums included ("30s",
    "10m", "1.5h", "1h30m", "1d"), or a bare number of seconds (90, "90", 2.5).
    """
    if isinstance(text, bool) or not isinstance(text, str | int | float):
        raise ValueError(f"expected a duration such as 30s, 10m, 2h or 1d, got {describe(text)}")
    seconds = _duration_text_seconds(text) if isinstance(text, str) else float(text)
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"a duration must be a finite number of seconds, at least 0, not {text}")
    return seconds


def parse_size(text: str | int) -> int:
    """Given a size, return it in bytes. Raise ValueError if it is not one.

    Units are binary, whatever their spelling: KB = KiB = K = 1024 bytes, MB = MiB = M =
    2^20, GB = GiB = G = 2^30 (case does not matter). A bare integer, or B, means bytes.
    Decimals are allowed with a unit ("1.5MB") and rounded down to whole bytes.
    """
    if isinstance(text, bool) or not isinstance(text, str | int):
        raise ValueError(f"expected a size such as 512KB or 5MB, got {describe(text)}")
    if isinstance(text, int):
        size = text
    else:
        match = _SIZE_TEXT.fullmatch(text.strip().lower())
        if match is None or match["unit"] not in _SIZE_UNITS:
            raise ValueError(f"{text!r} is not a size; write e.g. 512KB, 5MB or 1GB")
        if not match["unit"] and "." in match["number"]:
            raise ValueError(f"{text!r} is not a whole number of bytes")
        size = int(float(match["number"]) * _SIZE_UNITS[match["unit"]])
    if size < 0:
        raise ValueError(f"a size cannot be negative: {text}")
    return size


_DURATION_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_NUMBER = r"\d+(?:\.\d+)?"
_DURATION_PART = re.compile(rf"({_NUMBER})\s*([smhdw])")
_DURATION_TEXT = re.compile(rf"(?:{_NUMBER}\s*[smhdw]\s*)+")
_SIZE_TEXT = re.compile(rf"(?P<number>{_NUMBER})\s*(?P<unit>[a-z]*)")
_SIZE_UNITS = {
    "": 1,
    "b": 1,
    **{
        spelling: 1024**power
        for power, letter in enumerate("kmgt", 1)
        for spelling in (letter, f"{letter}b", f"{letter}ib")
    },
}


def _duration_text_seconds(text: str) -> float:
    cleaned = text.strip().lower()
    if re.fullmatch(_NUMBER, cleaned):
        return float(cleaned)
    if _DURATION_TEXT.fullmatch(cleaned):
        return sum(
            float(number) * _DURATION_UNITS[unit]
            for number, unit in _DURATION_PART.findall(cleaned)
        )
    raise ValueError(
        f"{text!r} is not a duration; write a number and a unit, such as 30s, 10m, 2h or 1d"
    )


# ------------------------------------------------------------ value checks for the models
# Each takes the value as YAML gave it and returns it (possibly normalised), or raises
# ValueError with a message that names what is wrong but never echoes a secret-bearing URL.


def _non_blank(text: str) -> str:
    if not text.strip():
        raise ValueError("must not be empty")
    return text


def _non_empty_list(items: list[Any]) -> list[Any]:
    if not items:
        raise ValueError("must not be an empty list (leave the key out to get the default)")
    return items


def _duration_at_least(minimum: float, reason: str) -> Callable[[Any], float]:
    def check(value: Any) -> float:
        seconds = parse_duration(value)
        if seconds < minimum:
            raise ValueError(reason)
        return seconds

    return check


def _check_count(value: Any) -> int:
    # Accepts digit strings too, so that `max_per_hour: ${ALERTS_PER_HOUR}` works.
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected a whole number, got {describe(value)}")
    if value < 1:
        raise ValueError("must be at least 1")
    return value


def _check_byte_size(value: Any) -> int:
    size = parse_size(value)
    if size < 1:
        raise ValueError("must be at least 1 byte")
    return size


def _check_timezone(name: str) -> str:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown timezone {name!r}; use an IANA name such as Asia/Shanghai"
        ) from None
    return name


def _check_fulltext(value: Any) -> str:
    if value is True:
        return FULLTEXT_IF_MISSING
    if value is False:
        return FULLTEXT_OFF
    if value == FULLTEXT_ALWAYS:
        return FULLTEXT_ALWAYS
    got = "other text" if isinstance(value, str) else describe(value)
    raise ValueError(f"expected true, false or always, got {got}")


def _check_database_url(url: str) -> str:
    if not re.match(r"[A-Za-z][A-Za-z0-9+.-]*://", url):
        raise ValueError("expected a database URL such as sqlite:///state/monitor.db")
    return url


def _check_feed_url(url: str) -> str:
    # The message shows the scheme only: a private feed's URL may carry a token.
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https", "file"):
        shown = f"{scheme}://" if scheme else "no scheme"
        raise ValueError(f"a feed URL must start with http://, https:// or file:// (got {shown})")
    if scheme != "file" and not parts.hostname:
        raise ValueError(f"a feed URL needs a host after {scheme}://")
    if scheme == "file" and not parts.path:
        raise ValueError("a file:// feed URL needs a path")
    return url


def _stage_checks(info: ValidationInfo) -> StageChecks:
    checks = (info.context or {}).get("checks")
    if not isinstance(checks, StageChecks):
        raise TypeError("validated without StageChecks in the context (monitor.config.checks)")
    return checks


def _checked(problem: str | None) -> None:
    if problem is not None:
        raise ValueError(problem)


def _check_channel_url(url: str, info: ValidationInfo) -> str:
    _checked(_stage_checks(info).check_channel_url(url))
    return url


def _one_or_many(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


def _number_as_text(value: Any) -> Any:
    # `any: [G7, 2024]`: YAML reads 2024 as a number, but the user means the word.
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _check_term(term: str, info: ValidationInfo) -> str:
    _checked(_stage_checks(info).check_term(term))
    return term


def _check_field_name(name: str, info: ValidationInfo) -> str:
    return _stage_checks(info).field_name(name)


# A rule's `feeds:` names a group of feeds as group:NAME (see normalise_group).
GROUP_PREFIX = "group:"


def normalise_group(text: str) -> str:
    """Given a group as written ("Outer / Inner", an OPML folder path), return it as the
    program keeps it ("Outer/Inner"): each folder's name stripped, "/" between them. Raise
    ValueError if it is blank or names an empty folder ("Outer//Inner")."""
    folders = [folder.strip() for folder in text.split("/")]
    if not any(folders):
        raise ValueError("a group name must not be empty")
    if not all(folders):
        raise ValueError(f"{text!r} has an empty folder name between two '/'")
    return "/".join(" ".join(folder.split()) for folder in folders)


def _check_groups(value: Any) -> tuple[str, ...]:
    # One group or a list of them: `group: Asia` or `group: [Asia, Wires]`.
    groups = [value] if isinstance(value, str) else value
    if not isinstance(groups, list) or not all(isinstance(group, str) for group in groups):
        raise ValueError(f"expected a group name or a list of them, got {describe(value)}")
    return tuple(dict.fromkeys(normalise_group(group) for group in groups))


def _check_feed_name(name: str) -> str:
    if name.startswith(GROUP_PREFIX):
        raise ValueError(f"a feed name must not start with {GROUP_PREFIX} (rules name groups so)")
    return name


def _check_feed_reference(name: str, info: ValidationInfo) -> str:
    if name.startswith(GROUP_PREFIX):
        return _check_group_reference(name, info)
    known = (info.context or {}).get("feeds")
    if known is not None and name not in known:
        raise ValueError(f"no feed is named {name!r}")
    return name


def _check_group_reference(reference: str, info: ValidationInfo) -> str:
    """`group:Outer` names the feeds of the group Outer and of every group inside it
    (Outer/Inner); return the reference with the group normalised."""
    group = normalise_group(reference.removeprefix(GROUP_PREFIX))
    known = (info.context or {}).get("groups")
    if known is not None and group not in known:
        if not known:
            raise ValueError(
                f"no feed group is named {group!r}: no feed has a group (folders of an OPML "
                "file in feeds_from:, or a feed's group:)"
            )
        shown = ", ".join(sorted(known)[:10]) + (", ..." if len(known) > 10 else "")
        raise ValueError(f"no feed group is named {group!r} (groups: {shown})")
    return GROUP_PREFIX + group


def _check_channel_reference(name: str, info: ValidationInfo) -> str:
    known = (info.context or {}).get("channels")
    if known is not None and name not in known:
        raise ValueError(f"no channel is named {name!r}; define it under channels:")
    return name


def _check_digest(value: Any, info: ValidationInfo) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise ValueError(f"expected a duration or a cron expression, got {describe(value)}")
    if len(value.split()) == 5:
        problem = _stage_checks(info).check_cron(value)
        if problem is not None:
            raise ValueError(f"invalid cron expression: {problem}")
        return value
    try:
        seconds = parse_duration(value)
    except ValueError:
        raise ValueError(
            "expected a duration such as 1h or a 5-field cron expression such as '0 9 * * *'"
        ) from None
    if seconds <= 0:
        raise ValueError("a digest period must be more than 0s")
    return value


_QUIET_HOURS = re.compile(r"(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})")


def parse_quiet_hours(text: str) -> tuple[time, time]:
    """Given a rule's `quiet_hours:` ("HH:MM-HH:MM", local times), return its start and end.
    Raise ValueError, with a message for people, if it is not one."""
    match = _QUIET_HOURS.fullmatch(text.strip())
    if match is None:
        raise ValueError('expected "HH:MM-HH:MM", such as "23:00-07:00"')
    start_hour, start_minute, end_hour, end_minute = (int(part) for part in match.groups())
    if max(start_hour, end_hour) > 23 or max(start_minute, end_minute) > 59:
        raise ValueError("hours run from 00 to 23 and minutes from 00 to 59")
    if (start_hour, start_minute) == (end_hour, end_minute):
        raise ValueError("the start and the end of quiet hours must differ")
    return time(start_hour, start_minute), time(end_hour, end_minute)


def _check_quiet_hours(text: str) -> str:
    parse_quiet_hours(text)
    return text


DEFAULT_HTTP_LISTEN = "127.0.0.1:9464"
# How long one search of the web view may run before it answers with what it found so far.
DEFAULT_SEARCH_TIMEOUT_SECONDS = 5.0
_BASE_PATH = re.compile(r"(/[A-Za-z0-9._~!$&'()*+,;=:@%-]+)+")


def _check_listen(text: str) -> str:
    if text.strip().isdigit():  # a bare port listens on the loopback address
        text = f"127.0.0.1:{text.strip()}"
    host, colon, port = text.rpartition(":")
    if not colon or not port.isdigit() or int(port) > 65535:
        raise ValueError('expected "host:port", such as "127.0.0.1:9464"')
    if host.startswith("[") != host.endswith("]"):
        raise ValueError('write an IPv6 host in brackets, such as "[::1]:9464"')
    return text


def _check_base_path(text: str) -> str:
    """A URL path prefix such as /news, returned without a trailing slash ("" for /)."""
    path = text.strip().rstrip("/")
    if not path:
        return ""
    if not _BASE_PATH.fullmatch(path) or any(part in (".", "..") for part in path.split("/")):
        raise ValueError('expected a URL path such as "/news" (starting with /)')
    return path


def _auth_or_none(value: Any) -> Any:
    # `auth: none` is a choice written down: serving without authentication on purpose.
    if value == "none":
        return NO_AUTH
    if isinstance(value, str):
        raise ValueError(
            "expected {user: NAME, password: ${SECRET}}, or none to serve without authentication"
        )
    return value


def _check_similarity(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected a number from 0 to 1, got {describe(value)}")
    if not 0 <= value <= 1:
        raise ValueError(f"must be from 0 to 1 (higher is stricter), not {value}")
    return float(value)


def _check_template(source: str, info: ValidationInfo) -> str:
    """Compile the template and render it against a sample alert and a sample digest."""
    _checked(_stage_checks(info).check_template(source))
    return source


def _check_query(query: str, info: ValidationInfo) -> str:
    """Parse the query (which compiles its regexes); a syntax error's message gets two more
    lines, the query and a caret under the column (none for a blank query)."""
    _checked(_stage_checks(info).check_query(query))
    return query


Name = Annotated[str, AfterValidator(_non_blank)]
FeedName = Annotated[str, AfterValidator(_non_blank), AfterValidator(_check_feed_name)]
Groups = Annotated[tuple[str, ...], PlainValidator(_check_groups)]
Interval = Annotated[float, PlainValidator(_duration_at_least(1, "must be at least 1s"))]
Jitter = Annotated[float, PlainValidator(parse_duration)]
ClusterLease = Annotated[
    float,
    PlainValidator(
        _duration_at_least(
            MIN_CLUSTER_LEASE_SECONDS, f"must be at least {MIN_CLUSTER_LEASE_SECONDS:g}s"
        )
    ),
]
PositiveDuration = Annotated[float, PlainValidator(_duration_at_least(1e-9, "must be above 0s"))]
ByteSize = Annotated[int, PlainValidator(_check_byte_size)]
Retention = Annotated[
    float,
    PlainValidator(
        _duration_at_least(
            MIN_RETENTION_SECONDS,
            "must be at least 1d (old articles are pruned once a day); leave the key out "
            "to keep every article",
        )
    ),
]
Count = Annotated[int, PlainValidator(_check_count)]
FullText = Annotated[str, PlainValidator(_check_fulltext)]
TimeZone = Annotated[str, AfterValidator(_check_timezone)]
DatabaseUrl = Annotated[str, AfterValidator(_check_database_url)]
FeedUrl = Annotated[str, AfterValidator(_check_feed_url)]
ChannelUrl = Annotated[str, AfterValidator(_check_channel_url)]
# One URL or a list of them; a single string becomes a one-item list.
ChannelUrls = Annotated[
    list[ChannelUrl], BeforeValidator(_one_or_many), AfterValidator(_non_empty_list)
]
Term = Annotated[str, BeforeValidator(_number_as_text), AfterValidator(_check_term)]
Query = Annotated[str, BeforeValidator(_number_as_text), AfterValidator(_check_query)]
FieldName = Annotated[str, AfterValidator(_check_field_name)]
FeedReference = Annotated[str, AfterValidator(_check_feed_reference)]
ChannelReference = Annotated[str, AfterValidator(_check_channel_reference)]
Digest = Annotated[str, PlainValidator(_check_digest)]
QuietHours = Annotated[str, AfterValidator(_check_quiet_hours)]
Listen = Annotated[str, AfterValidator(_check_listen)]
BasePath = Annotated[str, AfterValidator(_check_base_path)]
# A number is text too (`password: 123456`); a type error must not echo the value.
Password = Annotated[str, BeforeValidator(_number_as_text), AfterValidator(_non_blank)]
TemplateText = Annotated[str, AfterValidator(_check_template)]
Similarity = Annotated[float, PlainValidator(_check_similarity)]


# ------------------------------------------------------------------------- file schemas
# These mirror the YAML exactly (key names included). A key set to null counts as absent.


class StrictSchema(BaseModel):
    # strict: YAML already typed every value; "5" where a number is due is a mistake, and
    # so is a string where a list is due.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class DefaultsSchema(StrictSchema):
    interval: Interval | None = None
    jitter: Jitter | None = None
    timeout: PositiveDuration | None = None
    max_bytes: ByteSize | None = None
    max_age: PositiveDuration | None = None
    fulltext: FullText | None = None


class FeedSchema(StrictSchema):
    name: FeedName
    url: FeedUrl
    group: Groups | None = None
    interval: Interval | None = None
    jitter: Jitter | None = None
    timeout: PositiveDuration | None = None
    max_bytes: ByteSize | None = None
    max_age: PositiveDuration | None = None
    fulltext: FullText | None = None
    notify_existing: bool = False
    enabled: bool = True


# What an OPML outline gives its feed; the rest of a feed entry may be a per-file default.
FEEDS_FROM_OWN_KEYS = ("name", "url")


class _FeedsFromShortForm(StrictSchema):
    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, value: Any) -> Any:
        return {"file": value} if isinstance(value, str) else value


def _feeds_from_schema() -> type[_FeedsFromShortForm]:
    """An entry of feeds_from: `file`, and as defaults for the file's feeds any key of a
    feed entry but name and url, checked exactly as on a feed (the fields are FeedSchema's
    own, so a key added to feeds works here too)."""
    settings: dict[str, Any] = {
        name: (info.annotation, info)
        for name, info in FeedSchema.model_fields.items()
        if name not in FEEDS_FROM_OWN_KEYS
    }
    return create_model(
        "FeedsFromSchema", __base__=_FeedsFromShortForm, file=(Name, ...), **settings
    )


if TYPE_CHECKING:

    class FeedsFromSchema(_FeedsFromShortForm):
        file: str

else:
    FeedsFromSchema = _feeds_from_schema()


class RuleSchema(StrictSchema):
    name: Name
    any_terms: list[Term] | None = Field(None, alias="any")
    all_terms: list[Term] | None = Field(None, alias="all")
    none_terms: list[Term] | None = Field(None, alias="none")
    fields: Annotated[list[FieldName], AfterValidator(_non_empty_list)] | None = None
    feeds: Annotated[list[FeedReference], AfterValidator(_non_empty_list)] | None = None
    notify: Annotated[list[ChannelReference], AfterValidator(_non_empty_list)] | None = None
    enabled: bool = True
    digest: Digest | None = None
    quiet_hours: QuietHours | None = None
    max_per_hour: Count | None = None
    template: TemplateText | None = None
    query: Query | None = None
    # At most one alert per story (monitor.stories) on each channel; false: one per article.
    per_story: bool = True


class ChannelSchema(StrictSchema):
    """A channel: `urls` (one Apprise URL or a list) and an optional body `template`. The
    short forms, a URL or a list of URLs, stand for {urls: ...}."""

    urls: ChannelUrls
    template: TemplateText | None = None

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, value: Any) -> Any:
        return {"urls": value} if isinstance(value, str | list) else value


class DeliverySchema(StrictSchema):
    retry_base: PositiveDuration | None = None
    retry_cap: PositiveDuration | None = None
    attempts: Count | None = None

    @model_validator(mode="after")
    def _cap_not_below_base(self) -> DeliverySchema:
        base = self.retry_base if self.retry_base is not None else DEFAULT_RETRY_BASE_SECONDS
        cap = self.retry_cap if self.retry_cap is not None else DEFAULT_RETRY_CAP_SECONDS
        if cap < base:
            raise ValueError("retry_cap must not be below retry_base")
        return self


class HttpAuthSchema(StrictSchema):
    """HTTP Basic authentication of the web view: `{user: NAME, password: ${SECRET}}`."""

    user: Name
    password: Password


# What `auth: none` stands for once validated (building.py tells it from real credentials).
NO_AUTH = HttpAuthSchema.model_construct(user="", password="")


class StoriesSchema(StrictSchema):
    """`stories:` grouping articles that report the same news. `stories: false` is short for
    {enabled: false}, `stories: true` for the defaults. similarity None: the measure's own
    default (monitor.stories.DEFAULT_SIMILARITY, which this layer cannot import)."""

    enabled: bool = True
    window: PositiveDuration = DEFAULT_STORY_WINDOW_SECONDS
    similarity: Similarity | None = None

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, value: Any) -> Any:
        if isinstance(value, bool):
            return {"enabled": value}
        if not isinstance(value, dict):
            raise ValueError(
                "expected false, true, or a mapping such as {window: 72h, similarity: 0.5}; "
                f"got {describe(value)}"
            )
        return value


class HttpSchema(StrictSchema):
    # Local only unless the operator says otherwise: the web view, metrics and health are
    # not for the world. Listening beyond loopback needs `auth` (building.py checks).
    listen: Listen = DEFAULT_HTTP_LISTEN
    auth: Annotated[HttpAuthSchema | None, BeforeValidator(_auth_or_none)] = None
    base_path: BasePath = ""
    search_timeout: PositiveDuration | None = None


class ClusterSchema(StrictSchema):
    lease: ClusterLease | None = None


class MainFileSchema(StrictSchema):
    database: DatabaseUrl | None = None
    state_dir: Name | None = None
    timezone: TimeZone | None = None
    defaults: DefaultsSchema | None = None
    feeds: list[FeedSchema] | None = None
    feeds_from: list[FeedsFromSchema] | None = None
    channels: dict[Name, ChannelSchema] | None = None
    rules_files: list[Name] | None = None
    rules: list[RuleSchema] | None = None
    delivery: DeliverySchema | None = None
    http: HttpSchema | None = None
    retention: Retention | None = None
    cluster: ClusterSchema | None = None
    stories: StoriesSchema | None = None


class RulesFileSchema(StrictSchema):
    rules: list[RuleSchema] | None = None
