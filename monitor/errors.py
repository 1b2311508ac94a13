"""Exceptions shared by every module; all derive from MonitorError."""

from __future__ import annotations

from dataclasses import dataclass


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
