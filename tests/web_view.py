"""A store holding real matches, made by the pipeline from feeds on a local server, and the
web view serving it on a free port: what the web view tests look at."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from feed_server import FeedServer
from feeds import Item, rss
from receivers import WebhookReceiver

from monitor.config import SECRETS
from monitor.service import Monitor, load_config
from monitor.service.http import Health, Metrics
from monitor.service.web import WebServer, WebSources
from monitor.store import Store

SCRIPT_TITLE = "<script>document.body.setAttribute('data-pwned','1')</script> 韩日峰会"
JAVASCRIPT_LINK = "javascript:document.body.setAttribute('data-clicked','1')"


def _item(number: int, title: str, *, link: str | None = None, hours_ago: float = 1) -> Item:
    return Item(
        title,
        link=link or f"https://www.rfi.fr/cn/{number}",
        guid=str(number),
        description=f"{title}。据报道,双方将继续会谈。",
        published=datetime.now(UTC) - timedelta(hours=hours_ago),
    )


RULES = [
    {"name": "korea-japan", "any": ["韩日", "日韩"], "notify": ["hook", "down"]},
    {"name": "forced-labour", "query": "强征劳工 OR 强制劳动", "notify": ["hook"]},
    {"name": "france", "any": ["法国"], "notify": ["hook"], "digest": "1d"},
    {"name": "tariffs", "any": ["关税"], "notify": ["hook"]},
]


def write_monitored_config(
    folder: Path, server: FeedServer, hook: WebhookReceiver, database: str, **http: Any
) -> Path:
    """Write a configuration of three feeds (rfi-cn, rfi-tw, and broken, which answers
    500), four rules and two channels (hook, and down, which answers 500), on `database`,
    serving `http:` on a free port of 127.0.0.1 with `http` as its other keys."""
    folder.mkdir(parents=True, exist_ok=True)
    document = {
        "database": database,
        "timezone": "Asia/Shanghai",
        "defaults": {"interval": "1s", "jitter": "0s", "timeout": "5s"},
        "feeds": [
            {"name": "rfi-cn", "url": server.url("/cn")},
            {"name": "rfi-tw", "url": server.url("/tw")},
            {"name": "broken", "url": server.url("/broken")},
        ],
        "channels": {"hook": hook.json_url("/alerts"), "down": hook.json_url("/down")},
        "rules": RULES,
        "http": {"listen": "127.0.0.1:0", **http},
    }
    path = folder / "monitor.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    return path


def publish_first_items(server: FeedServer, hook: WebhookReceiver) -> None:
    """The feeds before the baseline; broken answers 500, and so does the down channel."""
    server.add_feed("/cn", rss([_item(1, "法国新闻:巴黎天气", hours_ago=30)]))
    server.add_feed("/tw", rss([_item(101, "台灣新聞", hours_ago=30)]))
    server.set_response("/broken", 500, b"internal error")
    hook.set_status(500, "/down")


def record_matches(config_path: Path, server: FeedServer, hook: WebhookReceiver) -> None:
    """Poll every feed three times with the real pipeline: a baseline, then new articles
    of rfi-cn, then one of rfi-tw (one feed at a time, so their order is known), and send
    what is due each time (the hook takes alerts, down refuses them). broken fails thrice.
    """
    monitor = Monitor(load_config(config_path))
    try:
        publish_first_items(server, hook)
        monitor.run_once()  # the baseline: stored, not alerted
        server.add_feed(
            "/cn",
            rss(
                [
                    _item(2, "韩日重启战略对话", hours_ago=2),
                    _item(3, SCRIPT_TITLE, link=JAVASCRIPT_LINK, hours_ago=1.5),
                    _item(4, "法国总统访华", hours_ago=1),
                    _item(5, "日本企业回应强征劳工判决", hours_ago=0.5),
                    _item(1, "法国新闻:巴黎天气", hours_ago=30),
                ]
            ),
        )
        monitor.run_once()
        server.add_feed(
            "/tw",
            rss([_item(102, "韓日外長會談", hours_ago=1), _item(101, "台灣新聞", hours_ago=30)]),
        )
        monitor.run_once()
    finally:
        monitor.close()


@dataclass
class RunningView:
    """A web view listening on a port of 127.0.0.1: in this process (`server`) or in a
    daemon's."""

    port: int
    base_path: str = ""
    user: str | None = None
    password: str | None = None
    server: WebServer | None = None

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{self.base_path}{path}"

    def close(self) -> None:
        if self.server is not None:
            self.server.close()

    def get(
        self, path: str, *, credentials: tuple[str, str] | None = None, method: str = "GET"
    ) -> tuple[int, dict[str, str], bytes]:
        """GET (or `method`) a path under the base path; return status, headers, body.
        The view's own credentials are sent unless others are given."""
        request = urllib.request.Request(self.url(path), method=method)
        given = credentials or ((self.user, self.password) if self.user and self.password else None)
        if given is not None:
            token = base64.b64encode(f"{given[0]}:{given[1]}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()

    def json(self, path: str) -> Any:
        status, _, body = self.get(path)
        assert status == 200, body
        return json.loads(body)

    def text(self, path: str) -> str:
        status, _, body = self.get(path)
        assert status == 200, body
        return body.decode("utf-8")


def start_view(
    config_path: Path,
    *,
    health: Health | None = None,
    metrics: Metrics | None = None,
) -> RunningView:
    """Serve the web view of this configuration's store on a free port (the configured
    `http:` settings, read-only store), as the daemon does."""
    config = load_config(config_path)
    assert config.http is not None
    SECRETS.update(config.secrets)  # as the daemon does: masked wherever they would show
    settings = config.http
    sources = WebSources(config=lambda: config, store=Store(config.database_url, read_only=True))
    server = WebServer(
        settings,
        sources,
        health=lambda: health or Health(True, {"instance": "test"}),
        metrics=metrics or Metrics(),
    ).start()
    return RunningView(
        server.port, settings.base_path, settings.auth_user, settings.auth_password, server
    )
