"""The daemon's signals: handlers that only set flags, acted on by the daemon's main loop."""

from __future__ import annotations

import signal
import threading


def catch_daemon_signals() -> tuple[threading.Event, threading.Event]:
    """Install SIGTERM/SIGINT/SIGHUP handlers that only set flags; return (stop, reload).

    Cheap to import: the command line installs them before the slow imports and the config,
    so that a SIGTERM sent while the daemon starts stops it (as PID 1 in a container, a
    signal without a handler is ignored)."""
    stop, reload = threading.Event(), threading.Event()
    install_daemon_signals(stop, reload)
    return stop, reload


def install_daemon_signals(stop: threading.Event, reload: threading.Event) -> None:
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGHUP, lambda *_: reload.set())
