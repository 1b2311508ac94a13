"""The values that travel between the stages: articles, rule matches, delivery timing,
and the errors every stage raises. Imports nothing of ours."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

# The text fields a rule may look at, in the order they are shown to people.
ARTICLE_FIELDS: tuple[str, ...] = ("title", "summary", "content", "link", "author", "categories")
DEFAULT_MATCH_FIELDS: tuple[str, ...] = ("title", "summary", "content")


@dataclass(frozen=True)
class Article:
    """One feed item as parsed: plain text for matching and display, plus identity keys."""

    guid: str | None  # the item's own id, meaningful only within its feed
    link: str | None  # as the feed gave it (absolute), for display
    canonical_link: str | None  # identity across feeds; see parse.canonical_link
    title: str
    summary: str  # plain text (HTML removed)
    content: str  # plain text of content:encoded, "" when absent
    author: str = ""
    categories: tuple[str, ...] = ()
    published: datetime | None = None  # aware UTC
    fallback_key: str = ""  # hash of title + published, used when guid and link are missing
    content_hash: str = ""  # hash of the text fields, to notice edits
    # The fallback key as it was when a plain-text title was read as HTML, where that
    # differs: stores made then hold it (see monitor.ingest.identity).
    legacy_fallback_key: str = ""

    def field_text(self, name: str) -> str:
        """Given a field name from ARTICLE_FIELDS, return that field as one string."""
        if name == "categories":
            return "\n".join(self.categories)
        value = getattr(self, name)
        return value or ""

    def texts(self, names: tuple[str, ...] = ARTICLE_FIELDS) -> dict[str, str]:
        return {name: self.field_text(name) for name in names}


@dataclass(frozen=True)
class RuleMatch:
    """A rule that matched an article, and why."""

    rule_name: str
    # field name -> the rule terms (as the user wrote them) found in that field
    terms_by_field: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # (field, character offset) of the earliest hit. The offset counts characters of the
    # normalised text, which can differ in length from the original (NFKC turns …… into six
    # dots). Alert excerpts use RuleSet.explain() instead, whose offsets are the original's.
    first_hit: tuple[str, int] | None = None

    @property
    def matched_terms(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for terms in self.terms_by_field.values():
            for term in terms:
                seen.setdefault(term, None)
        return tuple(seen)


@dataclass(frozen=True)
class RuleFailure:
    """A rule that could not be evaluated on an article (a regex that ran out of time)."""

    rule_name: str
    message: str


@dataclass(frozen=True)
class RateLimit:
    """At most `limit` immediate alerts of a rule per channel in [window_start, window_end);
    the excess waits in a batch released at `release_at` (the window end, or later when
    that falls within quiet hours)."""

    limit: int
    window_start: datetime
    window_end: datetime
    release_at: datetime


@dataclass(frozen=True)
class Timing:
    """When one match's deliveries go out. The default: now, each on its own."""

    # Collect into the rule's batch for the channel released at this time.
    hold_until: datetime | None = None
    # The batch is a digest whatever its size; otherwise a batch of one is a plain alert.
    digest: bool = False
    # Immediate, unless the channel already had `limit` alerts of the rule this hour.
    rate_limit: RateLimit | None = None

    @property
    def immediate(self) -> bool:
        return self.hold_until is None and self.rate_limit is None


class MonitorError(Exception):
    """Base of every error news-monitor raises on purpose."""


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong with the configuration, located as precisely as we can."""

    file: str
    line: int | None
    key_path: str
    message: str
    column: int | None = None  # 1-based; known for YAML syntax errors

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        if self.line is not None and self.column is not None:
            where += f":{self.column}"
        if self.key_path:
            return f"{where}: {self.key_path}: {self.message}"
        return f"{where}: {self.message}"


class ConfigError(MonitorError):
    """The configuration is invalid; carries every problem found, not just the first."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(problem) for problem in self.problems))


class FetchError(MonitorError):
    """A feed could not be fetched. `status` is the HTTP status when there was one."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retry_after_seconds: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after_seconds = retry_after_seconds


class ParseError(MonitorError):
    """A feed body could not be parsed into any item."""


class StoreError(MonitorError):
    """The database could not be reached or used."""
