"""Run the command line as a user would: a real process, for tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

DEADLINE_SECONDS = 30.0

# Settings of the developer's own shell that would change what a test sees.
HIDDEN_VARIABLES = ("NEWS_MONITOR_CONFIG", "NEWS_MONITOR_INSTANCE", "STATE_DIRECTORY", "NO_COLOR")


def run_cli(
    *arguments: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run `python -m monitor ARGUMENTS` in cwd and return its exit code and output."""
    environment = {key: value for key, value in os.environ.items() if key not in HIDDEN_VARIABLES}
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "monitor", *arguments],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = DEADLINE_SECONDS) -> None:
    """Poll `predicate` until it holds; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
