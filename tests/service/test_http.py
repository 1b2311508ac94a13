"""/healthz and /metrics, served by the web view's server."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.config import Config, HttpConfig
from monitor.service.http import Health, Metrics
from monitor.service.web import WebServer, WebSources
from monitor.store import Store


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


def _get(url: str, credentials: tuple[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url)
    if credentials is not None:
        token = base64.b64encode(":".join(credentials).encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _serve(
    tmp_path: Path, settings: HttpConfig, metrics: Metrics, state: dict[str, bool]
) -> WebServer:
    database_url = f"sqlite:///{tmp_path}/monitor.db"
    Store(database_url).create_schema()
    config = Config(path=tmp_path / "monitor.yaml", database_url=database_url, state_dir=tmp_path)
    sources = WebSources(config=lambda: config, store=Store(database_url, read_only=True))
    return WebServer(
        settings,
        sources,
        health=lambda: Health(state["healthy"], {"last_successful_poll": "2026-11-26T08:00:00Z"}),
        metrics=metrics,
        before_scrape=lambda: metrics.set_deliveries({"pending": 2, "sent": 5}),
    ).start()


@pytest.fixture
def endpoint(tmp_path: Path, metrics: Metrics) -> Iterator[tuple[WebServer, dict]]:
    state = {"healthy": True}
    server = _serve(tmp_path, HttpConfig(listen="127.0.0.1:0"), metrics, state)
    yield server, state
    server.close()


def test_healthz_when_healthy_answers_200_with_details(endpoint) -> None:
    server, _ = endpoint

    status, body = _get(f"http://127.0.0.1:{server.port}/healthz")

    assert status == 200
    assert json.loads(body) == {"healthy": True, "last_successful_poll": "2026-11-26T08:00:00Z"}


def test_healthz_when_unhealthy_answers_503(endpoint) -> None:
    server, state = endpoint
    state["healthy"] = False

    status, body = _get(f"http://127.0.0.1:{server.port}/healthz")

    assert status == 503 and json.loads(body)["healthy"] is False


def test_metrics_exposes_polls_latency_and_deliveries(endpoint, metrics: Metrics) -> None:
    server, _ = endpoint
    metrics.record_poll("rfi-cn", outcome="ok", new_articles=3, matches=1, elapsed_seconds=0.2)
    metrics.record_poll("rfi-tw", outcome="error", new_articles=0, matches=0, elapsed_seconds=5)

    status, body = _get(f"http://127.0.0.1:{server.port}/metrics")

    text = body.decode()
    assert status == 200
    assert 'news_monitor_polls_total{feed="rfi-cn",outcome="ok"} 1.0' in text
    assert 'news_monitor_polls_total{feed="rfi-tw",outcome="error"} 1.0' in text
    assert 'news_monitor_new_articles_total{feed="rfi-cn"} 3.0' in text
    assert "news_monitor_matches_total 1.0" in text
    assert 'news_monitor_poll_duration_seconds_bucket{le="0.25"} 1.0' in text
    assert 'news_monitor_deliveries{status="pending"} 2.0' in text


def test_unknown_path_answers_404(endpoint) -> None:
    server, _ = endpoint

    assert _get(f"http://127.0.0.1:{server.port}/nothing-here")[0] == 404


def test_healthz_and_metrics_need_no_credentials_when_the_view_does(
    tmp_path: Path, metrics: Metrics
) -> None:
    settings = HttpConfig(
        listen="127.0.0.1:0", auth_user="desk", auth_password="pw-9f3k", base_path="/news"
    )
    server = _serve(tmp_path, settings, metrics, {"healthy": True})
    base = f"http://127.0.0.1:{server.port}/news"
    try:
        assert _get(f"{base}/healthz")[0] == 200
        assert _get(f"{base}/metrics")[0] == 200
        assert _get(f"{base}/")[0] == 401
        assert _get(f"{base}/", ("desk", "pw-9f3k"))[0] == 200
    finally:
        server.close()


def test_a_port_in_use_is_an_error_at_start(endpoint, tmp_path: Path, metrics: Metrics) -> None:
    server, _ = endpoint

    with pytest.raises(OSError):
        _serve(tmp_path, HttpConfig(listen=f"127.0.0.1:{server.port}"), metrics, {"healthy": True})
