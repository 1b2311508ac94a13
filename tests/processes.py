"""Run the command line as a user would: a real process, for tests."""

from __future__ import annotations

import os
import signal
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


class Daemon:
    """`news-monitor run` as a real process, its stderr in a log file.

    `instance` names it ($NEWS_MONITOR_INSTANCE); `env` adds variables."""

    def __init__(
        self,
        config: Path,
        log_path: Path,
        *,
        instance: str | None = None,
        env: dict[str, str] | None = None,
        arguments: tuple[str, ...] = (),
    ) -> None:
        environment = {k: v for k, v in os.environ.items() if k not in HIDDEN_VARIABLES}
        if instance is not None:
            environment["NEWS_MONITOR_INSTANCE"] = instance
        environment.update(env or {})
        self.instance = instance
        self.log_path = log_path
        self._log = log_path.open("w", encoding="utf-8")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "monitor", "run", "--config", str(config), *arguments],
            cwd=config.parent,
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
        )

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8")

    def started(self) -> bool:
        return "started feeds=" in self.log()

    def stop(self, signal_number: int = signal.SIGTERM) -> int:
        """Send the signal, wait for the process to end; return its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal_number)
        try:
            return self.process.wait(timeout=DEADLINE_SECONDS * 2)
        finally:
            self._log.close()

    def kill(self) -> None:
        """SIGKILL, as a crash or `kill -9` would end it."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._log.close()
