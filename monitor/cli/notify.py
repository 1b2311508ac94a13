"""`notify test`: a test alert through one channel."""

from __future__ import annotations

import sys

from monitor.cli.common import EXIT_FAILURE, EXIT_OK, EXIT_USAGE
from monitor.config import SECRETS, Config
from monitor.service import send_test_alert


def notify_test(config: Config, channel_name: str) -> int:
    if config.channel(channel_name) is None:
        known = ", ".join(channel.name for channel in config.channels)
        print(f"unknown channel {channel_name!r} (known: {known})", file=sys.stderr)
        return EXIT_USAGE
    result = send_test_alert(config, channel_name)
    for service in result.services:
        outcome = "ok" if service.ok else "FAILED"
        print(f"{service.service}  {SECRETS.apply(service.url)}  {outcome}")
    if not result.ok:
        print(f"channel {channel_name}: {SECRETS.apply(result.error)}", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK
