"""Apprise wrapper, message rendering and the console:// plugin."""

from __future__ import annotations


def check_apprise_url(url: str) -> str | None:
    """Given an Apprise URL, return None if Apprise accepts it, else a message without secrets."""
    import apprise

    if apprise.Apprise.instantiate(url) is None:
        scheme = url.split("://", 1)[0] if "://" in url else "?"
        return f"not a valid Apprise URL (scheme {scheme}://)"
    return None
