"""systemd's notify protocol (sd_notify): READY, WATCHDOG, STATUS, STOPPING.

A few lines of socket code instead of a dependency. Outside systemd ($NOTIFY_SOCKET unset)
every call does nothing, so the daemon runs the same under Docker or a terminal.
"""

from __future__ import annotations

import logging
import os
import socket

logger = logging.getLogger(__name__)


class ServiceManager:
    """Sends state changes to the service manager, if there is one listening."""

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        environment = os.environ if environ is None else environ
        address = environment.get("NOTIFY_SOCKET", "")
        # An address starting with "@" is in the abstract namespace (a leading NUL byte).
        self._address = "\0" + address[1:] if address.startswith("@") else address
        watchdog_usec = environment.get("WATCHDOG_USEC", "")
        watchdog_pid = environment.get("WATCHDOG_PID", "")
        watchdog_is_ours = not watchdog_pid or watchdog_pid == str(os.getpid())
        self.watchdog_interval_seconds: float | None = (
            int(watchdog_usec) / 1_000_000 / 2
            if watchdog_usec.isdigit() and int(watchdog_usec) > 0 and watchdog_is_ours
            else None
        )  # systemd's advice: ping at half the timeout

    @property
    def enabled(self) -> bool:
        return bool(self._address)

    def send(self, *fields: str) -> bool:
        """Send "KEY=value" fields; return True if a service manager received them."""
        if not self._address:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.connect(self._address)
                sock.sendall("\n".join(fields).encode("utf-8"))
        except OSError as error:
            logger.debug("sd_notify failed: %s", error)
            return False
        return True

    def ready(self, status: str = "") -> bool:
        return self.send("READY=1", *([f"STATUS={status}"] if status else []))

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")

    def status(self, text: str) -> bool:
        return self.send(f"STATUS={text}")

    def stopping(self) -> bool:
        return self.send("STOPPING=1")
