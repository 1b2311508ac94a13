"""`feeds export` and `feeds discover`: bring feeds in and take them out."""

from __future__ import annotations

import sys
from pathlib import Path
from urllib.parse import urlsplit

from monitor.cli.common import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, print_problems
from monitor.model import ConfigError, FetchError, MonitorError
from monitor.service import discover, export_feeds


def feeds_export(config_path: Path) -> int:
    try:
        document = export_feeds(config_path)
    except ConfigError as error:
        print_problems(error)
        return EXIT_USAGE
    sys.stdout.write(document)
    return EXIT_OK


def feeds_discover(url: str) -> int:
    """Print a feed entry per feed the page declares; exit 1, with one line saying why, when
    it cannot be fetched or declares none; 2 for a URL that is no http(s) or file URL."""
    if urlsplit(url).scheme.lower() not in ("http", "https", "file"):
        print(f"{url}: not an http://, https:// or file:// URL", file=sys.stderr)
        return EXIT_USAGE
    try:
        lines = discover(url)
    except FetchError as error:
        print(f"{url}: cannot fetch it: {error}", file=sys.stderr)
        return EXIT_FAILURE
    except MonitorError as error:  # NoFeedFound
        print(f"{url}: {error}", file=sys.stderr)
        return EXIT_FAILURE
    print("\n".join(lines))
    return EXIT_OK
