"""ASGI middleware around the web view: HTTP Basic authentication, and the headers that keep
a browser from running anything a stored text might smuggle in.

HTTP Basic is the scheme every browser, curl and Prometheus speak; a reverse proxy adds
TLS in front (`http.base_path`). The credentials are compared in constant time, and
neither the given nor the configured ones are ever logged.
"""

from __future__ import annotations

import base64
import binascii
import hmac

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REALM = "news-monitor"

# No scripts, frames, forms elsewhere or remote content: the pages are HTML and inline CSS
# and SVG. Even a stored text that escaped escaping could not run. Article links leave
# without a Referer, so sites never learn the web view's address.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


class BasicAuthentication:
    """Require HTTP Basic credentials on every path but `open_paths` (/healthz, /metrics:
    supervisors and Prometheus scrape them without credentials)."""

    def __init__(
        self, app: ASGIApp, *, user: str, password: str, open_paths: frozenset[str]
    ) -> None:
        self.app = app
        self._user = user.encode("utf-8")
        self._password = password.encode("utf-8")
        self._open_paths = open_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["path"] not in self._open_paths
            and not self._authorized(Headers(scope=scope).get("authorization", ""))
        ):
            response = PlainTextResponse(
                "authentication required\n",
                status_code=401,
                headers={"WWW-Authenticate": f'Basic realm="{REALM}", charset="UTF-8"'},
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _authorized(self, header: str) -> bool:
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        user, colon, password = decoded.partition(b":")
        # Both are always compared, each in constant time: the answer tells neither which
        # one was wrong nor how much of it was right.
        user_matches = hmac.compare_digest(user, self._user)
        password_matches = hmac.compare_digest(password, self._password)
        return bool(colon) and user_matches and password_matches


class SecurityHeaders:
    """Add SECURITY_HEADERS to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)
