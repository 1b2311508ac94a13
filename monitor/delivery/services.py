"""What Apprise knows about a service: its URL checked, its plugin, how it takes a message.

Everything here goes through Apprise's public API: its plugin registry
(apprise.NotificationManager, a process-wide singleton) and Apprise.instantiate(url), and
the public attributes of the plugin object a URL gives (`service_name`, `title_maxlen`,
`body_maxlen`, `notify_format` through `resolve_format()`, `dialect_convert()`).

The registry's first use imports every one of Apprise's ~190 plugins: about 0.19 s and
17 MB, once per process, paid by the first channel URL checked or built. console:// URLs
are checked without it (monitor.delivery.console), so a run with console channels only
does not import Apprise at all.

Apprise facts this module relies on (apprise 2.3):
- Apprise logs through the one logger "apprise"; some plugins put tokens in DEBUG lines
  (Telegram and Slack log their POST URL). A filter on that logger masks every secret
  (monitor.config.secrets.SECRETS: the configuration's, and the secret parts of every
  channel URL a Notifier was built with), also in the entries Apprise collects for each
  result. It is installed before the registry or a plugin is first used (ensure_setup).
- Formats: a plugin lists the formats it takes (`notify_format`, a tuple for several:
  Telegram HTML+Markdown, Slack Markdown+text, e-mail HTML+text, json:// all three);
  `plugin.resolve_format(f)` gives what it will use for a body declared as f (a ?format=
  on the URL wins). A body declared in a format the plugin takes is not converted, only
  passed through the plugin's `dialect_convert()` (Telegram reduces HTML to its tag
  subset, Slack converts CommonMark to mrkdwn, keeping a backslash before `*`, `_`, `~`,
  which Slack then shows). Apprise converts Markdown to HTML and text to Markdown or HTML,
  but has no Markdown -> text converter: a text-only service would get raw Markdown.
- A plugin with `title_maxlen` 0 (Telegram, SMS...) has no title field: Apprise puts the
  title in the body, as a Markdown heading or in <b>, unescaped. So such services get the
  title in the body from us, escaped, and an empty title.
- E-mail sent as HTML goes out as multipart/alternative: the HTML and a text part Apprise
  derives from it (html_to_text keeps a link's text, not its URL).
- `body_maxlen` / `title_maxlen` are the services' limits (Telegram 4096, Discord 2000,
  Slack 35000, most others 32768 / 250); by default (overflow=upstream) Apprise does not
  enforce them, so messages are fitted to them (monitor.delivery.render).
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any

from monitor.config import MaskingFilter
from monitor.delivery.console import CONSOLE_SCHEMA, check_console_url, register_console_plugin
from monitor.delivery.markup import Dialect, NotifyFormat, utf16_len
from monitor.delivery.render import SLACK_HEADER_MAX, Target

log = logging.getLogger(__name__)

__all__ = [
    "APP_ID",
    "apprise_format",
    "check_apprise_url",
    "ensure_setup",
    "instantiate",
    "make_asset",
    "scheme_of",
    "target_for",
]

APP_ID = "news-monitor"

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]{0,31})://")


def scheme_of(url: str) -> str | None:
    """The lower-case scheme of an Apprise URL ("json" for "JSON://host"), or None."""
    match = _SCHEME.match(url.strip())
    return match.group(1).lower() if match else None


def make_asset(timeout_seconds: float) -> Any:
    """The AppriseAsset of every service: our name, no retries of Apprise's own (the outbox
    retries, with backoff), and `timeout_seconds` for each service's send."""
    from apprise import AppriseAsset

    return AppriseAsset(
        app_id=APP_ID,
        app_desc=APP_ID,
        default_service_retry=0,
        service_timeout=timeout_seconds,
    )


# --------------------------------------------------------------------------- the registry


def _registry() -> Any:
    """Apprise's plugin registry, with console:// registered and secrets masked in
    Apprise's logs. Its first use imports every plugin (see the module docstring)."""
    ensure_setup()
    register_console_plugin()
    from apprise import NotificationManager

    return NotificationManager()


def check_apprise_url(url: str) -> str | None:
    """Given an Apprise URL, return None if Apprise accepts it, else a message without secrets.

    Keeps no Apprise object. console:// URLs are checked without Apprise; any other needs
    Apprise's plugin registry.
    """
    if not isinstance(url, str) or not url.strip():
        return "empty Apprise URL"
    scheme = scheme_of(url)
    if scheme is None:
        return "not an Apprise URL (expected scheme://...)"
    if scheme == CONSOLE_SCHEMA:
        return check_console_url(url.strip())
    return _check_with_registry(scheme, url)


def _check_with_registry(scheme: str, url: str) -> str | None:
    """check_apprise_url as Apprise's registry of every plugin settles it."""
    registry = _registry()
    if scheme not in registry:
        return f"unknown Apprise service {scheme}://"
    try:
        instance = instantiate(url.strip(), make_asset(60.0))
    except Exception:  # noqa: BLE001 - Apprise is asked to suppress these already
        instance = None
    if instance is None:
        return f"not a valid {registry[scheme].service_name} URL ({scheme}://)"
    return None


def instantiate(url: str, asset: Any) -> Any:
    """Apprise.instantiate(url, asset=asset): the URL's plugin object, None if rejected."""
    _registry()
    import apprise

    return apprise.Apprise.instantiate(url, asset=asset)


def _is_service(plugin: Any, scheme: str) -> bool:
    """Whether `plugin` is an object of the plugin class the registry has for `scheme`."""
    registry = _registry()
    return scheme in registry and isinstance(plugin, registry[scheme])


# --------------------------------------------------------------------------- formats


def target_for(plugin: Any) -> Target:
    """How a service takes a message (see monitor.delivery.render): Telegram gets its
    HTML, Slack its mrkdwn, console:// plain text; others Markdown if they take it, else
    HTML, else text. A ?format= on the URL wins. A service without a title field gets it in
    the body."""
    from apprise import NotifyFormat as AppriseFormat
    from apprise.conversion import convert_between

    slack = _is_service(plugin, "slack")
    telegram = _is_service(plugin, "tgram")
    if slack:
        preferred = AppriseFormat.MARKDOWN
    elif telegram:
        preferred = AppriseFormat.HTML
    elif getattr(plugin, "secure_protocol", None) == CONSOLE_SCHEMA:
        preferred = AppriseFormat.TEXT
    elif plugin.resolve_format(AppriseFormat.MARKDOWN) == AppriseFormat.MARKDOWN:
        preferred = AppriseFormat.MARKDOWN
    elif plugin.resolve_format(AppriseFormat.HTML) == AppriseFormat.HTML:
        preferred = AppriseFormat.HTML
    else:
        preferred = AppriseFormat.TEXT
    chosen = plugin.resolve_format(preferred)
    if chosen == AppriseFormat.HTML:
        dialect = Dialect.TELEGRAM if telegram else Dialect.HTML
    elif chosen == AppriseFormat.MARKDOWN:
        dialect = Dialect.SLACK if slack else Dialect.MARKDOWN
    else:
        dialect = Dialect.TEXT

    title_limit = int(plugin.title_maxlen) if plugin.title_maxlen > 0 else None
    if slack and getattr(plugin, "use_blocks", False) and title_limit:
        title_limit = min(title_limit, SLACK_HEADER_MAX)

    def measure(body: str, body_format: NotifyFormat) -> int:
        """The body's length once Apprise has converted it for this service."""
        declared = apprise_format(body_format)
        resolved = plugin.resolve_format(declared)
        converted = convert_between(declared, resolved, body)
        try:
            converted = plugin.dialect_convert(converted, resolved)
        except Exception:  # noqa: BLE001 - measure what we have; Apprise reports failures
            log.debug("dialect_convert failed for %s", plugin.service_name)
        return utf16_len(converted)

    return Target(
        dialect=dialect,
        title_in_body=plugin.title_maxlen <= 0,
        body_limit=int(plugin.body_maxlen) if plugin.body_maxlen > 0 else None,
        title_limit=title_limit,
        measure=measure,
    )


def apprise_format(body_format: str) -> Any:
    """Given a body format (ours or Apprise's), return Apprise's NotifyFormat member."""
    from apprise import NotifyFormat as AppriseFormat

    return AppriseFormat(getattr(body_format, "value", body_format))


# --------------------------------------------------------------------------- set-up

_setup_lock = threading.Lock()
_setup_done = False


def ensure_setup() -> None:
    """Install the secrets filter on Apprise's logger, once per process."""
    global _setup_done
    with _setup_lock:
        if not _setup_done:
            logging.getLogger("apprise").addFilter(MaskingFilter())
            _setup_done = True
