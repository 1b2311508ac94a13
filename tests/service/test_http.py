from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from monitor.service.http import Health, HttpEndpoint, Metrics


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.fixture
def endpoint(metrics: Metrics) -> Iterator[tuple[HttpEndpoint, dict]]:
    state = {"healthy": True}
    server = HttpEndpoint(
        "127.0.0.1:0",
        health=lambda: Health(state["healthy"], {"last_successful_poll": "2026-11-26T08:00:00Z"}),
        metrics=metrics,
        before_scrape=lambda: metrics.set_deliveries({"pending": 2, "sent": 5}),
    ).start()
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

    assert _get(f"http://127.0.0.1:{server.port}/")[0] == 404
