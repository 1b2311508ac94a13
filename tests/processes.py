"""Run the command line as a user would: a real process, for tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# Settings of the developer's own shell that would change what a test sees.
HIDDEN_VARIABLES = ("NEWS_MONITOR_CONFIG", "STATE_DIRECTORY", "NO_COLOR")


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
