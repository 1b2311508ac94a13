"""Logging for operators: key=value lines or JSON on stderr, secrets masked.

Named log.py, not logging.py, so it never shadows the standard library module.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from datetime import UTC, datetime

from monitor.config import SECRETS

# key=value pairs in our own messages; values may be quoted with repr().
_FIELD = re.compile(r"""(\w+)=('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|\S+)""")


class _TextFormatter(logging.Formatter):
    def __init__(self, with_time: bool) -> None:
        prefix = "%(asctime)s " if with_time else ""
        super().__init__(f"{prefix}%(levelname)s %(name)s: %(message)s")
        self._second = -1
        self._second_text = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        # Whole seconds: the text of the last one is kept (the handler's lock serialises
        # format() calls), as a busy cycle logs hundreds of lines a second.
        second = int(record.created)
        if second != self._second:
            self._second = second
            self._second_text = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return self._second_text

    def format(self, record: logging.LogRecord) -> str:
        return SECRETS.apply(super().format(record))


class _JsonFormatter(logging.Formatter):
    def __init__(self, with_time: bool) -> None:
        super().__init__()
        self.with_time = with_time

    def format(self, record: logging.LogRecord) -> str:
        message = SECRETS.apply(record.getMessage())
        entry: dict[str, object] = {}
        if self.with_time:
            entry["time"] = datetime.fromtimestamp(record.created, UTC).isoformat()
        entry.update(level=record.levelname.lower(), logger=record.name, message=message)
        for key, value in _FIELD.findall(message):
            if key not in entry:
                entry[key] = _unquote(value)
        if record.exc_info:
            entry["exception"] = SECRETS.apply(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def configure_logging(log_format: str = "text", level: int = logging.INFO) -> None:
    """Send logs to stderr as text or JSON; no timestamps under journald, which adds its own."""
    with_time = "JOURNAL_STREAM" not in os.environ
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        _JsonFormatter(with_time) if log_format == "json" else _TextFormatter(with_time)
    )
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    # Neither format shows a record's thread or process: the logging HOWTO's "Optimization"
    # section lists these public switches, which spare every record those lookups.
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    # APScheduler logs every job run at INFO; our own poll lines say what matters.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    # Apprise's INFO lines ("Notifying 1 service(s).", "Sent JSON notification.") repeat
    # our own notify and deliver lines: they are detail, shown with --verbose (DEBUG) only.
    # Its warnings stay: they say why a service failed.
    verbose = level <= logging.DEBUG
    logging.getLogger("apprise").setLevel(logging.NOTSET if verbose else logging.WARNING)
    # trafilatura reports a page without article text as a WARNING or an ERROR ("discarding
    # data: None") with no page named; the poll logs each such page with its feed and link.
    logging.getLogger("trafilatura").setLevel(logging.NOTSET if verbose else logging.CRITICAL)
