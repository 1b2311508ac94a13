"""`db copy`: the store into another database (a SQLite store moving to PostgreSQL)."""

from __future__ import annotations

import sys

from monitor.cli.common import EXIT_FAILURE, EXIT_OK
from monitor.config import SECRETS, Config
from monitor.service import copy_database
from monitor.store import CopyError


def db_copy(config: Config, target_url: str) -> int:
    try:
        report = copy_database(config, target_url)
    except CopyError as error:
        print(f"news-monitor db copy: {SECRETS.apply(str(error))}", file=sys.stderr)
        return EXIT_FAILURE
    for table, rows in report.rows.items():
        print(f"{table:<16} {rows:>9} rows")
    print(
        "copied: point `database:` at the new database (its URL may be a secret: "
        "${cred:...} or ${NAME}) and start the daemons"
    )
    return EXIT_OK
