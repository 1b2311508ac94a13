"""Delivery: schedule (digests, quiet hours), outbox, claims, rendering, Apprise.

What other packages use of it is exported here.
"""

from monitor.delivery.notify import check_apprise_url
from monitor.delivery.schedule import crontab_trigger
from monitor.delivery.templates import check_template

__all__ = ["check_apprise_url", "check_template", "crontab_trigger"]
