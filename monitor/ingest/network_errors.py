"""Short, URL-free messages for the ways an HTTP fetch fails on the network.

The exceptions' own text is never used: urllib3 puts the host, path and query in it, and
feed URLs may carry credentials.
"""

from __future__ import annotations

import http.client
import socket
import ssl
from collections.abc import Iterator

import requests
import urllib3

from monitor.ingest.deadline import Deadline


def network_error_message(
    error: BaseException, deadline: Deadline, connect_timeout: float | None
) -> str:
    """Given a requests/urllib3/socket error, return a short message without the URL.

    The exceptions' own text is never used: urllib3 puts the host, path and query in it.
    """
    causes = list(_exception_chain(error))

    def caused_by(*types: type[BaseException]) -> bool:
        return any(isinstance(cause, types) for cause in causes)

    if deadline.exceeded():
        return deadline.message()
    if caused_by(requests.exceptions.ConnectTimeout) and connect_timeout is not None:
        return f"timed out connecting after {connect_timeout:g}s"
    if caused_by(ConnectionRefusedError):
        return "connection refused"
    if caused_by(urllib3.exceptions.NameResolutionError, socket.gaierror):
        return "host name could not be resolved"
    for cause in causes:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"TLS certificate not accepted: {cause.verify_message}"
    if caused_by(ssl.SSLError, requests.exceptions.SSLError):
        return "TLS handshake failed"
    if caused_by(requests.exceptions.ProxyError):
        return "proxy error"
    if caused_by(http.client.RemoteDisconnected):
        return "server closed the connection without a response"
    if caused_by(http.client.IncompleteRead, urllib3.exceptions.IncompleteRead):
        return "server closed the connection before the body was complete"
    if caused_by(ConnectionResetError):
        return "connection reset by the server"
    # urllib3's NewConnectionError subclasses its TimeoutError for backward compatibility,
    # so "no route to host" would otherwise be reported as a timeout.
    if any(
        isinstance(cause, requests.exceptions.Timeout | urllib3.exceptions.TimeoutError)
        and not isinstance(cause, urllib3.exceptions.NewConnectionError)
        for cause in causes
    ) or caused_by(TimeoutError):
        return deadline.message()
    if caused_by(urllib3.exceptions.DecodeError, requests.exceptions.ContentDecodingError):
        return "could not decode the compressed body"
    for cause in causes:
        if isinstance(cause, OSError) and cause.strerror:
            return f"network error: {cause.strerror.lower()}"
    if caused_by(urllib3.exceptions.ProtocolError, http.client.HTTPException):
        return "invalid or broken response from the server"
    return f"request failed ({type(error).__name__})"


def _exception_chain(error: BaseException) -> Iterator[BaseException]:
    """Yield `error` and everything it wraps (cause, context, urllib3 `reason`, args)."""
    pending: list[BaseException] = [error]
    seen: set[int] = set()
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        wrapped = [current.__cause__, current.__context__, getattr(current, "reason", None)]
        wrapped.extend(current.args)
        pending.extend(item for item in wrapped if isinstance(item, BaseException))
