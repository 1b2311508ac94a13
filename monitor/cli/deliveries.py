"""`deliveries retry`: failed deliveries back to pending."""

from __future__ import annotations

from monitor.cli.common import EXIT_OK
from monitor.config import Config
from monitor.service import retry_failed_deliveries


def deliveries_retry(config: Config, *, rule_name: str | None) -> int:
    count = retry_failed_deliveries(config, rule_name=rule_name)
    scope = f" of rule {rule_name}" if rule_name else ""
    noun = "delivery" if count == 1 else "deliveries"
    print(f"{count} failed {noun}{scope} put back to pending")
    return EXIT_OK
