from __future__ import annotations

import os
import socket
from pathlib import Path

from monitor.service.sdnotify import ServiceManager


def test_service_manager_without_notify_socket_does_nothing() -> None:
    notifier = ServiceManager(environ={})

    assert not notifier.enabled
    assert notifier.ready("started") is False
    assert notifier.watchdog_interval_seconds is None


def test_service_manager_sends_ready_and_watchdog_to_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(path)
        server.settimeout(5)
        environ = {
            "NOTIFY_SOCKET": path,
            "WATCHDOG_USEC": "30000000",
            "WATCHDOG_PID": str(os.getpid()),
        }
        notifier = ServiceManager(environ=environ)

        assert notifier.ready("polling 4 feeds")
        assert server.recv(1024) == b"READY=1\nSTATUS=polling 4 feeds"
        assert notifier.watchdog()
        assert server.recv(1024) == b"WATCHDOG=1"
    assert notifier.watchdog_interval_seconds == 15.0


def test_service_manager_with_watchdog_for_another_process_does_not_ping() -> None:
    notifier = ServiceManager(environ={"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"})

    assert notifier.watchdog_interval_seconds is None
