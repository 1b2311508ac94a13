"""Feeds that are local files (file:// URLs): read with the same size cap as HTTP bodies.

Local feeds have no validators, so there is no conditional GET; the caller wraps the bytes
in a FetchResult with status None.
"""

from __future__ import annotations

import os
from urllib.parse import unquote_to_bytes, urlsplit

from monitor.model import FetchError


def read_file_feed(url: str, *, max_bytes: int) -> bytes:
    """Given a file:// URL, return the file's bytes.

    Raise FetchError if the URL names a remote host, or the file cannot be read or is
    larger than `max_bytes`.
    """
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise FetchError("file URL must not name a remote host")
    # Percent-decode to bytes, then to a filesystem path, so any file name round-trips.
    path = os.fsdecode(unquote_to_bytes(parts.path))
    try:
        with open(path, "rb") as handle:
            body = handle.read(max_bytes + 1)
    except FileNotFoundError:
        raise FetchError("file not found") from None
    except IsADirectoryError:
        raise FetchError("file URL names a directory") from None
    except PermissionError:
        raise FetchError("permission denied reading the file") from None
    except OSError as error:
        raise FetchError(f"could not read the file: {(error.strerror or '').lower()}") from None
    if len(body) > max_bytes:
        raise FetchError(f"body larger than {max_bytes} bytes")
    return body
