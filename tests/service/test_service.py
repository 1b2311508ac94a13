"""The daemon as a long-running service: a real process against misbehaving local servers,
observed through its HTTP endpoints, the systemd notify socket, the database and its log."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from feed_server import FeedServer
from feeds import Item, rss
from processes import DEADLINE_SECONDS, run_cli, wait_until
from receivers import free_port


def http_get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except OSError:
        return 0, ""


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[socket.socket]:
    """A stand-in for systemd's notify socket."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(tmp_path / "notify.sock"))
        sock.settimeout(0.2)
        yield sock


def received(sock: socket.socket) -> list[str]:
    messages = []
    while True:
        try:
            messages.append(sock.recv(4096).decode())
        except TimeoutError:
            return messages


def test_run_as_a_service_is_polite_observable_reloadable_and_stops_cleanly(
    server: FeedServer, tmp_path: Path, notify_socket: socket.socket
) -> None:
    server.add_feed("/good", rss([Item("法国新闻", link="https://e.org/1", guid="1")]))
    server.add_drip("/drip")  # a body that never ends, one byte at a time
    server.add_endless("/endless")  # a body as large as the client will read
    server.set_response("/limited", 429, b"slow down", {"Retry-After": "3600"})
    server.add_redirect("/loop", "/loop")
    server.set_response("/gone", 410, b"gone")
    server.add_feed("/new-home", rss([]))
    server.add_feed("/extra", rss([]))
    server.add_redirect("/moved", "/new-home", status=301)
    port = free_port()
    quick = {"interval": "1s", "jitter": "0s"}
    feeds = {
        "good": server.url("/good"),
        "drip": {"url": server.url("/drip"), "timeout": "3s"},
        "endless": {"url": server.url("/endless"), "max_bytes": "1MB"},
        "limited": server.url("/limited"),
        "loop": server.url("/loop"),
        "gone": server.url("/gone"),
        "moved": server.url("/moved"),
    }
    document = {
        "database": "sqlite:///state/monitor.db",
        "defaults": {**quick, "timeout": "5s"},
        "feeds": [{"name": name, **(spec if isinstance(spec, dict) else {"url": spec})}
                  for name, spec in feeds.items()],
        "http": {"listen": f"127.0.0.1:{port}"},
        "rules": [{"name": "korea-japan", "any": ["韩日"]}],
    }  # fmt: skip
    config = tmp_path / "monitor.yaml"
    config.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    log_path = tmp_path / "daemon.log"
    environment = {
        **os.environ,
        "NOTIFY_SOCKET": str(tmp_path / "notify.sock"),
        "WATCHDOG_USEC": "2000000",
    }
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "monitor", "run", "--config", str(config)],
            cwd=tmp_path,
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        # Ready, healthy, and the watchdog pinged only once the heartbeat ran.
        wait_until(lambda: http_get(f"{base}/healthz")[0] == 200, "a healthy /healthz")
        status, body = http_get(f"{base}/healthz")
        assert json.loads(body)["healthy"] is True

        # The good feed keeps its schedule while slow and broken servers are being polled.
        wait_until(lambda: server.hits("/good") >= 4, "four polls of the good feed")
        assert server.hits("/limited") == 1  # 429 with Retry-After: 3600 is honoured
        assert server.hits("/gone") == 1  # 410 stops polling for good
        messages = received(notify_socket)
        assert any(message.startswith("READY=1") for message in messages)
        assert "WATCHDOG=1" in messages

        metrics = http_get(f"{base}/metrics")[1]
        assert 'news_monitor_polls_total{feed="good",outcome=' in metrics
        assert 'news_monitor_polls_total{feed="loop",outcome="error"}' in metrics
        assert "news_monitor_poll_duration_seconds_count" in metrics

        # A feed added to the config file is polled without a restart; a removed one stops.
        document["feeds"] = [feed for feed in document["feeds"] if feed["name"] != "limited"]
        document["feeds"].append({"name": "extra", "url": server.url("/extra")})
        config.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
        process.send_signal(signal.SIGHUP)
        wait_until(lambda: server.hits("/extra") >= 1, "the added feed to be polled")
        assert "reload status=applied" in log_path.read_text()

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=DEADLINE_SECONDS) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    assert "STOPPING=1" in received(notify_socket)
    log = log_path.read_text()
    assert "poll feed=gone status=gone" in log and "polling=stopped" in log
    assert "moved_permanently_to=" in log
    assert "Traceback" not in log
    status = json.loads(run_cli("status", "--json", "--config", str(config), cwd=tmp_path).stdout)
    by_name = {feed["name"]: feed for feed in status["feeds"]}
    assert by_name["moved"]["redirected_to"] == server.url("/new-home")
    assert by_name["gone"]["next_poll"] is None and by_name["gone"]["http_status"] == 410
    assert "timed out" in by_name["drip"]["error"]
    assert by_name["endless"]["error"] and by_name["loop"]["error"]
    assert by_name["good"]["error"] is None and by_name["good"]["articles"] == 1
