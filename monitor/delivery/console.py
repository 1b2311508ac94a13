"""The console:// service: messages printed to standard output, an Apprise @notify plugin.

A console:// URL is checked here without importing Apprise (check_console_url): a run
whose only channel is the console never needs Apprise's registry. The plugin is
registered with Apprise when a console URL is first built or looked up in the registry.
"""

from __future__ import annotations

import sys
import threading
from typing import Any
from urllib.parse import urlsplit

from monitor.delivery.markup import NotifyFormat
from monitor.delivery.render import markdown_to_text

__all__ = ["CONSOLE_SCHEMA", "check_console_url", "register_console_plugin"]

CONSOLE_SCHEMA = "console"

_console_lock = threading.Lock()


def _console_send(
    body: str, title: str, notify_type: Any, *args: Any, meta: Any = None, **kwargs: Any
) -> bool:
    """Print the alert to stdout (as it is at call time): title, body, blank line."""
    text = body
    # Apprise's NotifyFormat.MARKDOWN equals ours (both str enums of "markdown").
    if kwargs.get("body_format") == NotifyFormat.MARKDOWN:
        text = markdown_to_text(body)
    out = sys.stdout
    if out is None:  # no stdout at all (pythonw, closed descriptor)
        return False
    with _console_lock:
        if title:
            out.write(f"{title}\n")
        out.write(f"{text}\n\n")
        out.flush()
    return True


def register_console_plugin() -> None:
    """Register the console:// schema with Apprise (process-wide; safe to call again)."""
    from apprise import NotificationManager
    from apprise.decorators import notify

    manager = NotificationManager()
    with _console_lock:
        if CONSOLE_SCHEMA not in manager:
            # Apprise's @notify plugins never call throttle(): no pause between two prints.
            notify(on=CONSOLE_SCHEMA, name="Console")(_console_send)


def check_console_url(url: str) -> str | None:
    """Given a console:// URL, return what check_apprise_url would get from Apprise.

    Our @notify plugin takes any console:// URL that Apprise can split: its parser only
    fails where urlparse() does on the part before the query (an unmatched '[').
    """
    rest = url.split("://", 1)[1].split("?", 1)[0]
    try:
        urlsplit(f"http://{rest}")
    except ValueError:
        return f"not a valid Console URL ({CONSOLE_SCHEMA}://)"
    return None
