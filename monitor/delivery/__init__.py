"""Delivery (layer 5): when a match is sent (schedule: digests, quiet hours, rate limits),
what it says (messages, templates, render, markup), through which service (services,
console, notify: Apprise) and how sending keeps its promises (outbox, sender).

Other packages use delivery through these names only.
"""

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
from monitor.delivery.schedule import DeliveryPolicy, crontab_trigger
from monitor.delivery.sender import Sender, send_due_deliveries
from monitor.delivery.services import check_apprise_url
from monitor.delivery.templates import check_template

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
