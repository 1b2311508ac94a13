"""Exit codes, and the report of a configuration's problems, shared by the commands."""

from __future__ import annotations

import sys

from monitor.config import SECRETS
from monitor.model import ConfigError

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def print_problems(error: ConfigError) -> None:
    for problem in error.problems:
        print(SECRETS.apply(str(problem)), file=sys.stderr)
    print(f"{len(error.problems)} problem(s) in the configuration", file=sys.stderr)
