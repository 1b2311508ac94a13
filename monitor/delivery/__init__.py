"""Delivery (layer 5): when a match is sent (schedule: digests, quiet hours, rate limits),
what it says (messages, templates, render, markup), through which service (services,
console, notify: Apprise) and how sending keeps its promises (outbox, sender).

Other packages use delivery through these names only. They are loaded on first use
(PEP 562): importing the package costs nothing, and a module of a lower layer that still
names one of them at import time (monitor.store's use of Timing, until it moves down)
does not pull the outbox, which imports monitor.store, into its own import.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from monitor.delivery.markup import graphemes
    from monitor.delivery.messages import (
        Alert,
        RenderedMessage,
        render_alert,
        render_combined_alert,
        render_digest,
    )
    from monitor.delivery.notify import Notifier, SendResult, ServiceResult
    from monitor.delivery.outbox import DeliveryReport, SendSettings, template_chooser
    from monitor.delivery.schedule import DeliveryPolicy, Timing, crontab_trigger
    from monitor.delivery.sender import Sender, send_due_deliveries
    from monitor.delivery.services import check_apprise_url
    from monitor.delivery.templates import check_template

# Each exported name, and the module of this package that defines it.
_EXPORTS = {
    "Alert": "messages",
    "DeliveryPolicy": "schedule",
    "DeliveryReport": "outbox",
    "Notifier": "notify",
    "RenderedMessage": "messages",
    "SendResult": "notify",
    "SendSettings": "outbox",
    "Sender": "sender",
    "ServiceResult": "notify",
    "Timing": "schedule",
    "check_apprise_url": "services",
    "check_template": "templates",
    "crontab_trigger": "schedule",
    "graphemes": "markup",
    "render_alert": "messages",
    "render_combined_alert": "messages",
    "render_digest": "messages",
    "send_due_deliveries": "sender",
    "template_chooser": "outbox",
}

__all__ = [
    "Alert",
    "DeliveryPolicy",
    "DeliveryReport",
    "Notifier",
    "RenderedMessage",
    "SendResult",
    "SendSettings",
    "Sender",
    "ServiceResult",
    "Timing",
    "check_apprise_url",
    "check_template",
    "crontab_trigger",
    "graphemes",
    "render_alert",
    "render_combined_alert",
    "render_digest",
    "send_due_deliveries",
    "template_chooser",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
