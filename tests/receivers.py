"""Local stand-ins for notification services, for tests that deliver for real.

    from receivers import WebhookReceiver, SmtpReceiver

    with WebhookReceiver() as hooks:
        url = hooks.json_url("/alerts")          # json://127.0.0.1:PORT/alerts
        ...
        [request] = hooks.wait_for(1, timeout_seconds=5)
        assert request.json["title"] == "..."

    with SmtpReceiver() as smtp:
        url = smtp.mailto_url(to="desk@example.org")
        ...
        [mail] = smtp.wait_for(1, timeout_seconds=5)
        assert "[rule]" in mail.subject

Both bind 127.0.0.1 on a free port, record what they receive in a thread-safe list, and wait
with a deadline (a condition variable, never a fixed sleep). `WebhookReceiver.set_status(500)`
makes it answer like a failing service; `SmtpReceiver.stop()` / `.start()` take the server
down and bring it back on the same port; `SmtpReceiver.hold()` keeps every mail waiting
for the server's answer until `release()` (a slow server), and `wait_for_held(n)` waits
until n are waiting. `SmtpReceiver(logins={"user": "password"})` offers SMTP AUTH on the
plain connection and accepts only those logins; each mail records the login it was sent
with. aiosmtpd answers a refused login only after a long pause (about 15 s), so a test
should give the right credentials and assert on `ReceivedEmail.login`.

Apprise throttles some services per service object (e-mail: 5.5 s between two sends through
the same object). A test sending several mails through one Notifier can lift that with
`disable_apprise_throttle(monkeypatch)`.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Generic, TypeVar

__all__ = [
    "ReceivedEmail",
    "ReceivedRequest",
    "SmtpReceiver",
    "WebhookReceiver",
    "disable_apprise_throttle",
    "free_port",
]

T = TypeVar("T")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (for servers that need the number up front)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


class _Recorder(Generic[T]):
    """A thread-safe list that a test can wait on."""

    def __init__(self) -> None:
        self._items: list[T] = []
        self._changed = threading.Condition()

    def append(self, item: T) -> None:
        with self._changed:
            self._items.append(item)
            self._changed.notify_all()

    def snapshot(self) -> list[T]:
        with self._changed:
            return list(self._items)

    def clear(self) -> None:
        with self._changed:
            self._items.clear()

    def wait_for(self, count: int, timeout_seconds: float, what: str) -> list[T]:
        deadline = time.monotonic() + timeout_seconds
        with self._changed:
            while len(self._items) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"expected at least {count} {what} within {timeout_seconds}s, "
                        f"got {len(self._items)}"
                    )
                self._changed.wait(remaining)
            return list(self._items)


# --------------------------------------------------------------------------- webhooks


@dataclass(frozen=True)
class ReceivedRequest:
    method: str
    path: str  # as requested, query string included
    headers: dict[str, str]
    body: bytes
    json: Any  # the parsed JSON body, None when the body is not JSON
    status: int  # what the receiver answered
    received_at: float = 0.0  # time.monotonic() when its body had arrived

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


class WebhookReceiver:
    """A local HTTP endpoint that records every request (any method) and answers 200.

    `set_status(500)` makes every path fail, `set_status(500, path="/down")` only that path
    (matched without the query string); `set_status(200)` restores. `set_delay(seconds)`
    holds each answer, to play a service that does not respond in time.
    """

    def __init__(self, host: str = "127.0.0.1") -> None:
        self._recorder: _Recorder[ReceivedRequest] = _Recorder()
        self._status_lock = threading.Lock()
        self._default_status = 200
        self._status_by_path: dict[str, int] = {}
        self._delay_seconds = 0.0
        self._released = threading.Event()  # set by stop(): a delayed answer goes out now
        self._server = ThreadingHTTPServer((host, 0), self._handler_class())
        self._server.daemon_threads = True
        self.host = host
        self.port = int(self._server.server_address[1])
        self._thread: threading.Thread | None = None

    # lifecycle
    def start(self) -> WebhookReceiver:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"webhook-receiver-{self.port}",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        self._released.set()
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # addresses
    def url(self, path: str = "/") -> str:
        return f"http://{self.host}:{self.port}{_slash(path)}"

    def json_url(
        self, path: str = "/", *, user: str | None = None, password: str | None = None
    ) -> str:
        auth = ""
        if user is not None:
            auth = user if password is None else f"{user}:{password}"
            auth += "@"
        return f"json://{auth}{self.host}:{self.port}{_slash(path)}"

    # behaviour
    def set_status(self, status: int, path: str | None = None) -> None:
        with self._status_lock:
            if path is None:
                self._default_status = status
                self._status_by_path.clear()
            else:
                self._status_by_path[_slash(path)] = status

    def set_delay(self, seconds: float) -> None:
        """Hold every answer this long (a slow service); stop() releases held answers."""
        with self._status_lock:
            self._delay_seconds = float(seconds)

    def _status_for(self, path: str) -> int:
        bare = path.split("?", 1)[0]
        with self._status_lock:
            return self._status_by_path.get(bare, self._default_status)

    # what arrived
    @property
    def requests(self) -> list[ReceivedRequest]:
        return self._recorder.snapshot()

    def clear(self) -> None:
        self._recorder.clear()

    def wait_for(self, count: int, timeout_seconds: float = 10.0) -> list[ReceivedRequest]:
        """Every request so far, once there are at least `count`; AssertionError at the deadline."""
        return self._recorder.wait_for(count, timeout_seconds, "webhook requests")

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                arrived = time.monotonic()
                if len(body) < length:
                    # The sender went away mid-request (a test kills it mid-send): a server
                    # acts on no request it did not receive whole.
                    self.close_connection = True
                    return
                try:
                    parsed = json.loads(body) if body else None
                except ValueError:
                    parsed = None
                status = receiver._status_for(self.path)
                with receiver._status_lock:
                    delay = receiver._delay_seconds
                if delay > 0:
                    receiver._released.wait(delay)
                # Recorded before the answer: the sender only learns of success from the
                # answer, so once it has it, the request is already in the list.
                receiver._recorder.append(
                    ReceivedRequest(
                        method=self.command,
                        path=self.path,
                        headers=dict(self.headers.items()),
                        body=body,
                        json=parsed,
                        status=status,
                        received_at=arrived,
                    )
                )
                answer = b"ok" if 200 <= status < 300 else b"failing on purpose"
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output quiet

        return Handler


def _slash(path: str) -> str:
    return path if path.startswith("/") else "/" + path


# --------------------------------------------------------------------------- e-mail


@dataclass(frozen=True)
class ReceivedEmail:
    envelope_from: str
    envelope_to: tuple[str, ...]
    message: EmailMessage = field(repr=False)
    login: tuple[str, str] | None = None  # (user, password) of SMTP AUTH, if the client logged in

    @property
    def subject(self) -> str:
        """The Subject header, RFC 2047 decoded."""
        return str(self.message.get("Subject", ""))

    def text(self) -> str:
        """Every text part (plain and HTML), decoded, joined by newlines."""
        parts = [
            part.get_content()
            for part in self.message.walk()
            if part.get_content_maintype() == "text" and not part.is_multipart()
        ]
        return "\n".join(parts)

    def part(self, content_type: str) -> str | None:
        """The first part of that type ("text/plain", "text/html"), decoded, or None."""
        for part in self.message.walk():
            if part.get_content_type() == content_type:
                return str(part.get_content())
        return None


class _SmtpHandler:
    def __init__(self, on_message: Callable[[ReceivedEmail], None], gate: _Gate) -> None:
        self._on_message = on_message
        self._gate = gate

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await self._gate.passage()
        content = envelope.original_content or envelope.content
        if isinstance(content, str):
            content = content.encode("utf-8")
        message = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        login = session.auth_data  # aiosmtpd's LoginPassword after a successful AUTH
        self._on_message(
            ReceivedEmail(
                envelope_from=envelope.mail_from,
                envelope_to=tuple(envelope.rcpt_tos),
                message=message,
                login=(login.login.decode(), login.password.decode()) if login else None,
            )
        )
        return "250 Message accepted for delivery"


def _authenticator(logins: dict[str, str]) -> Callable[..., Any]:
    """An aiosmtpd authenticator that accepts exactly the given user -> password logins."""
    from aiosmtpd.smtp import AuthResult, LoginPassword

    def authenticate(
        server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> Any:
        if isinstance(auth_data, LoginPassword):
            user, password = auth_data.login.decode(), auth_data.password.decode()
            if logins.get(user) == password:
                return AuthResult(success=True, auth_data=auth_data)
        return AuthResult(success=False, handled=False)

    return authenticate


class _Gate:
    """Holds mails whose data has arrived until it is opened; counts those it holds."""

    def __init__(self) -> None:
        self._open = threading.Event()
        self._open.set()
        self.held: _Recorder[None] = _Recorder()  # one entry per mail that had to wait

    def close(self) -> None:
        self._open.clear()

    def open(self) -> None:
        self._open.set()

    async def passage(self) -> None:
        if self._open.is_set():
            return
        self.held.append(None)
        # The wait runs on a thread of the server's loop, so other connections go on.
        await asyncio.get_running_loop().run_in_executor(None, self._open.wait)


class SmtpReceiver:
    """An aiosmtpd server on 127.0.0.1 (plain SMTP) that keeps what it receives.

    Without `logins` it offers no AUTH; with them, AUTH on the plain connection (no TLS
    here), accepting only those user -> password pairs. `stop()` and `start()` may be called
    repeatedly; the port never changes, so URLs built before a stop work again after the
    next start. Received mail survives a restart. `hold()` makes every mail wait for the
    server's answer to its data until `release()` (or `stop()`); a mail is in `messages` once
    it is answered.
    """

    def __init__(
        self, host: str = "127.0.0.1", port: int | None = None, logins: dict[str, str] | None = None
    ) -> None:
        self.host = host
        self.port = port if port is not None else free_port(host)
        self._logins = dict(logins) if logins else None
        self._recorder: _Recorder[ReceivedEmail] = _Recorder()
        self._gate = _Gate()
        self._controller: Any = None

    @property
    def running(self) -> bool:
        return self._controller is not None

    def start(self) -> SmtpReceiver:
        from aiosmtpd.controller import Controller

        if self._controller is None:
            auth: dict[str, Any] = {}
            if self._logins is not None:
                auth = {"authenticator": _authenticator(self._logins), "auth_require_tls": False}
            controller = Controller(
                _SmtpHandler(self._recorder.append, self._gate),
                hostname=self.host,
                port=self.port,
                ready_timeout=10.0,
                **auth,
            )
            controller.start()
            self._controller = controller
        return self

    def stop(self) -> None:
        self._gate.open()  # a held mail is answered, so the server can stop
        if self._controller is not None:
            controller, self._controller = self._controller, None
            controller.stop()

    def hold(self) -> None:
        """Leave every mail from now on waiting for the server's answer (the sender with
        it) until release()."""
        self._gate.close()

    def release(self) -> None:
        """Answer the mails held, and those that come, at once."""
        self._gate.open()

    def wait_for_held(self, count: int, timeout_seconds: float = 10.0) -> None:
        """Return once `count` mails have been held (since the receiver started);
        AssertionError at the deadline."""
        self._gate.held.wait_for(count, timeout_seconds, "held e-mails")

    def __enter__(self) -> SmtpReceiver:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def mailto_url(self, to: str = "desk@example.org", sender: str = "monitor@example.org") -> str:
        return f"mailto://{self.host}:{self.port}?mode=insecure&from={sender}&to={to}"

    @property
    def messages(self) -> list[ReceivedEmail]:
        return self._recorder.snapshot()

    def clear(self) -> None:
        self._recorder.clear()

    def wait_for(self, count: int, timeout_seconds: float = 10.0) -> list[ReceivedEmail]:
        """Every mail so far, once there are at least `count`; AssertionError at the deadline."""
        return self._recorder.wait_for(count, timeout_seconds, "e-mails")


# --------------------------------------------------------------------------- Apprise


def disable_apprise_throttle(monkeypatch: Any) -> None:
    """Lift Apprise's per-service pause between two sends (`request_rate_per_sec`) for a test.

    Every plugin class that declares its own rate (NotifyBase: 5.5 s, which e-mail
    inherits; Slack 1.2 s; ...) gets 0 until the test ends. The first send through a plugin
    object never waits, so this matters only for a second send through the same Notifier.
    """
    from apprise.plugins.base import NotifyBase

    pending: list[type] = [NotifyBase]
    seen: set[type] = set()
    while pending:
        cls = pending.pop()
        if cls in seen:
            continue
        seen.add(cls)
        if "request_rate_per_sec" in vars(cls):
            monkeypatch.setattr(cls, "request_rate_per_sec", 0)
        pending.extend(cls.__subclasses__())
