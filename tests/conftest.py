"""Shared fixtures: config files written to tmp_path, a real SQLite file per test."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from feed_server import FeedServer
from receivers import WebhookReceiver
from sqlalchemy import text
from sqlmodel import SQLModel

from monitor.config.secrets import SECRETS
from monitor.store.database import Store

ConfigWriter = Callable[..., Path]


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # A developer's own settings must never leak into a test.
    for name in (
        "NEWS_MONITOR_CONFIG",
        "NEWS_MONITOR_INSTANCE",
        "STATE_DIRECTORY",
        "CREDENTIALS_DIRECTORY",
    ):
        monkeypatch.delenv(name, raising=False)
    yield
    SECRETS.update(())


# The local PostgreSQL server (trust auth); the same models must work there.
POSTGRES_URL = os.environ.get(
    "NEWS_MONITOR_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A fresh store, once on a SQLite file and once on the local PostgreSQL."""
    if request.param == "sqlite":
        store = Store(f"sqlite:///{tmp_path}/state/monitor.db")
    else:
        store = Store(POSTGRES_URL)
        _drop_tables(store)  # a clean database for every test
    store.create_schema()
    yield store
    if request.param == "postgresql":
        _drop_tables(store)
    store.close()


def _drop_tables(store: Store) -> None:
    """Drop every table of the schema: the models', and the search index, which is made by
    its own statement (monitor.store.search)."""
    SQLModel.metadata.drop_all(store.engine)
    with store.engine.begin() as connection:
        connection.execute(text("DROP TABLE IF EXISTS article_search"))


@pytest.fixture
def server() -> Iterator[FeedServer]:
    """A local HTTP server serving feeds (see feed_server.py)."""
    with FeedServer() as feed_server:
        yield feed_server


@pytest.fixture
def hook() -> Iterator[WebhookReceiver]:
    """A local webhook receiver; hook.json_url(path) is its json:// Apprise URL."""
    with WebhookReceiver() as receiver:
        yield receiver


@pytest.fixture
def write_config(tmp_path: Path) -> ConfigWriter:
    """Return a function that writes monitor.yaml (+ rules.yaml) and returns its path.

    feeds: {name: url or dict of feed keys}; channels: {name: url or list}; rules: list of
    rule dicts; anything else becomes a top-level key.
    """

    def write(
        *,
        feeds: dict[str, Any],
        channels: dict[str, Any] | None = None,
        rules: list[dict[str, Any]] | None = None,
        directory: Path = tmp_path,
        **top_level: Any,
    ) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        feed_list = []
        for name, spec in feeds.items():
            entry = {"name": name, **(spec if isinstance(spec, dict) else {"url": spec})}
            feed_list.append(entry)
        document: dict[str, Any] = {
            "database": "sqlite:///state/monitor.db",
            "timezone": "Asia/Shanghai",
            "defaults": {"interval": "1s", "jitter": "0s", "timeout": "5s"},
            "feeds": feed_list,
            "channels": channels or {},
            "rules_files": ["rules.yaml"],
        }
        document.update(top_level)
        (directory / "rules.yaml").write_text(
            yaml.safe_dump(rules or [], allow_unicode=True, sort_keys=False), encoding="utf-8"
        )
        path = directory / "monitor.yaml"
        path.write_text(
            yaml.safe_dump(document, allow_unicode=True, sort_keys=False), encoding="utf-8"
        )
        return path

    return write


@pytest.fixture
def postgres_database() -> Iterator[str]:
    """The URL of a PostgreSQL database of its own, created on the local server for this
    test and dropped after it (whatever connections its daemons left open)."""
    import uuid

    import psycopg
    from sqlalchemy.engine import make_url

    server = make_url(POSTGRES_URL)
    name = f"nm_test_{uuid.uuid4().hex[:12]}"
    admin = dict(
        host=server.host or "127.0.0.1",
        port=server.port or 5432,
        user=server.username or "postgres",
        dbname="postgres",
        autocommit=True,
    )
    if server.password:
        admin["password"] = server.password
    with psycopg.connect(**admin) as connection:  # type: ignore[arg-type]
        connection.execute(f'CREATE DATABASE "{name}"')
    yield server.set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(**admin) as connection:  # type: ignore[arg-type]
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
