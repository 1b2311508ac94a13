"""Reading an HTTP response: the body within the size cap and the deadline, and what a
status that is not a success means.
"""

from __future__ import annotations

import re

import requests
import urllib3

from monitor.ingest.deadline import Deadline
from monitor.ingest.freshness import parse_retry_after
from monitor.ingest.network_errors import network_error_message
from monitor.model import FetchError

# read1() returns as soon as some bytes are available, at most this many decoded bytes, so
# the deadline and the size cap are checked at least once per 64 KiB.
READ_CHUNK_BYTES = 64 * 1024

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# RFC 9110 10.2.3 defines Retry-After for 503 and RFC 6585 4 for 429.
_RETRY_AFTER_STATUSES = frozenset({429, 503})
_DIGITS = re.compile(r"[0-9]+")


def read_body(response: requests.Response, deadline: Deadline, max_bytes: int) -> bytes:
    """Return the decoded body, reading it in chunks so the deadline and cap always hold.

    Raise FetchError if the body is larger than `max_bytes` once decoded (a gzip bomb is
    stopped after `max_bytes`, not after inflating), or the deadline passes.
    """
    too_large = f"body larger than {max_bytes} bytes"
    declared = response.headers.get("Content-Length", "").strip()
    if _DIGITS.fullmatch(declared) and int(declared) > max_bytes:
        raise FetchError(too_large)

    raw = response.raw
    connection = getattr(raw, "connection", None)
    if connection is not None and getattr(connection, "sock", None) is not None:
        # Normally already watched since getresponse(); this covers connection classes we
        # do not control (SOCKS proxies).
        deadline.watch(connection.sock)

    body = bytearray()
    try:
        while True:
            if deadline.exceeded():
                raise FetchError(deadline.message())
            # read1, unlike iter_content(n), returns as soon as some bytes arrive, so a
            # server dripping one byte a second cannot hold us past the deadline; with
            # decode_content it returns at most READ_CHUNK_BYTES of *decoded* data.
            chunk = raw.read1(READ_CHUNK_BYTES, decode_content=True)
            if not chunk:
                break
            body += chunk
            if len(body) > max_bytes:
                raise FetchError(too_large)
        # A body delimited by the connection closing looks complete when the watchdog
        # shuts the socket down; it is a truncated body, not a feed.
        if deadline.fired():
            raise FetchError(deadline.message())
    except (urllib3.exceptions.HTTPError, OSError) as error:
        raise FetchError(network_error_message(error, deadline, None)) from None
    except ValueError:
        # A read on a TLS socket the watchdog shut down can raise ValueError.
        if deadline.exceeded():
            raise FetchError(deadline.message()) from None
        raise
    return bytes(body)


def release_connection(response: requests.Response) -> None:
    """Hand the connection of a bodiless answer (304) back to the pool.

    Closing an unread response closes its socket, so every 304 would cost a new TCP (and
    TLS) connection on the next poll. A 304 has no body: draining reads nothing.
    """
    try:
        response.raw.drain_conn()
        response.raw.release_conn()
    except (urllib3.exceptions.HTTPError, OSError):
        pass  # the connection is closed instead: correct, only slower


def status_error(response: requests.Response) -> FetchError:
    """Given a non-2xx, non-304 response, return the FetchError that describes it."""
    status = response.status_code
    if status in REDIRECT_STATUSES:
        return FetchError(f"HTTP {status} without a Location header", status=status)
    retry_after = None
    if status in _RETRY_AFTER_STATUSES:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
    return FetchError(f"HTTP {status}", status=status, retry_after_seconds=retry_after)
