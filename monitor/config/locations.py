"""Where the main configuration file is when no --config is given.

In this order: $NEWS_MONITOR_CONFIG if it is set (and then only there: a variable naming a
file that is not there is a mistake to report, not to paper over with another file), else
./config/monitor.yaml in the working directory, else /etc/news-monitor/monitor.yaml.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from monitor.model import MonitorError

LOCAL_CONFIG_PATH = Path("config/monitor.yaml")
SYSTEM_CONFIG_PATH = Path("/etc/news-monitor/monitor.yaml")
DEFAULT_CONFIG_PATHS = (LOCAL_CONFIG_PATH, SYSTEM_CONFIG_PATH)
CONFIG_PATH_VARIABLE = "NEWS_MONITOR_CONFIG"


class ConfigNotFoundError(MonitorError):
    """No --config was given and no default place holds a readable configuration file.

    The message lists every place looked at, one per line, with what was found there."""

    def __init__(self, places: list[str]) -> None:
        self.places = places
        lines = ["no configuration file found; looked at:", *(f"  {place}" for place in places)]
        lines.append(f"give the file with --config PATH or ${CONFIG_PATH_VARIABLE}")
        super().__init__("\n".join(lines))

    def one_line(self) -> str:
        return "no configuration file found; looked at: " + "; ".join(self.places)


def default_config_path(environ: Mapping[str, str] | None = None) -> Path:
    """Return the configuration file to use when --config is not given.

    $NEWS_MONITOR_CONFIG if set, else ./config/monitor.yaml if it exists, else
    /etc/news-monitor/monitor.yaml (whether or not it exists: the caller reports that).
    """
    environ = os.environ if environ is None else environ
    if environ.get(CONFIG_PATH_VARIABLE):
        return Path(environ[CONFIG_PATH_VARIABLE])
    return LOCAL_CONFIG_PATH if LOCAL_CONFIG_PATH.is_file() else SYSTEM_CONFIG_PATH


def find_config_file(environ: Mapping[str, str] | None = None) -> Path:
    """Return the configuration file to use when --config is not given (see
    default_config_path). Raise ConfigNotFoundError, naming every place looked at and why
    each would not do, if that file cannot be read."""
    environ = os.environ if environ is None else environ
    chosen = default_config_path(environ)
    if _problem(chosen) is None:
        return chosen
    variable = environ.get(CONFIG_PATH_VARIABLE)
    if variable:
        places = [
            f"${CONFIG_PATH_VARIABLE}={variable}: {_problem(chosen)}",
            f"({LOCAL_CONFIG_PATH} and {SYSTEM_CONFIG_PATH} are not looked at while "
            f"${CONFIG_PATH_VARIABLE} is set)",
        ]
    else:
        local = Path(os.path.abspath(LOCAL_CONFIG_PATH))
        places = [
            f"${CONFIG_PATH_VARIABLE}: not set",
            f"./{LOCAL_CONFIG_PATH} ({local}): {_problem(LOCAL_CONFIG_PATH)}",
            f"{SYSTEM_CONFIG_PATH}: {_problem(SYSTEM_CONFIG_PATH)}",
        ]
    raise ConfigNotFoundError(places)


def _problem(path: Path) -> str | None:
    """Given a path, return why it cannot be read as a configuration file, or None."""
    try:
        with path.open("rb"):
            pass
    except FileNotFoundError:
        return "no such file"
    except IsADirectoryError:
        return "a directory, not a file"
    except OSError as error:
        return (error.strerror or str(error)).lower()
    return None
