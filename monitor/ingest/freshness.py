"""Next-poll hints a response carries: how long it stays fresh, and when to retry after 429/503.

Only reported here; the scheduler decides what to do with them (it never polls faster than
configured because of a header).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

# Which response header set how long a response stays fresh.
FRESHNESS_MAX_AGE, FRESHNESS_EXPIRES = "max_age", "expires"

_DIGITS = re.compile(r"[0-9]+")


def freshness_seconds(headers: Mapping[str, str], now: datetime | None = None) -> float | None:
    """Given response headers, return how long the response stays fresh, or None."""
    found = freshness(headers, now)
    return found[0] if found else None


def freshness(headers: Mapping[str, str], now: datetime | None = None) -> tuple[float, str] | None:
    """Given response headers, return how long the response stays fresh and which header
    says so (FRESHNESS_MAX_AGE or FRESHNESS_EXPIRES), or None.

    RFC 9111 4.2.1: Cache-Control max-age wins; otherwise Expires minus Date (the server's
    own clock, so a skewed local clock does not matter), or minus now without a Date. An
    unusable or past Expires gives None: it never makes us poll faster than configured.
    """
    max_age = _parse_max_age(headers.get("Cache-Control"))
    if max_age is not None:
        return max_age, FRESHNESS_MAX_AGE
    expires = parse_http_date(headers.get("Expires"))
    if expires is None:
        return None
    reference = parse_http_date(headers.get("Date")) or now or datetime.now(UTC)
    seconds = (expires - reference).total_seconds()
    return (seconds, FRESHNESS_EXPIRES) if seconds > 0 else None


def freshness_fields(headers: Mapping[str, str]) -> tuple[float | None, str | None]:
    """Given response headers, return FetchResult's max_age_seconds and max_age_source."""
    return freshness(headers) or (None, None)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Given a Retry-After header value, return the seconds to wait, or None if unusable.

    RFC 9110 10.2.3 allows delta-seconds or an HTTP-date; a date in the past means 0.
    """
    if value is None:
        return None
    value = value.strip()
    if _DIGITS.fullmatch(value):
        return float(int(value))
    when = parse_http_date(value)
    if when is None:
        return None
    now = now or datetime.now(UTC)
    return max(0.0, (when - now).total_seconds())


def parse_http_date(value: str | None) -> datetime | None:
    """Given an HTTP-date header value, return it as an aware datetime, or None if unusable."""
    if not value:
        return None
    try:
        when = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    # parsedate_to_datetime returns a naive datetime for "-0000"; HTTP dates are GMT.
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _parse_max_age(value: str | None) -> float | None:
    """Given a Cache-Control header value, return its max-age in seconds, or None.

    RFC 9111 5.2: directives are comma-separated and case-insensitive; the argument may be
    quoted. An unusable max-age is ignored rather than treated as 0, so a broken header
    can never make us poll faster.
    """
    if not value:
        return None
    for directive in value.split(","):
        name, _, argument = directive.strip().partition("=")
        if name.strip().lower() == "max-age":
            argument = argument.strip().strip('"')
            return float(int(argument)) if _DIGITS.fullmatch(argument) else None
    return None
