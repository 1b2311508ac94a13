"""The `http:` section: where the web view listens, its authentication and its sub-path."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from monitor.config import HttpConfig
from monitor.model import ConfigError
from monitor.service.configuration import load_config


def main_file(folder: Path, http: str) -> Path:
    """A valid main file with one feed (lines 1-3), then the `http:` section at line 4."""
    path = folder / "monitor.yaml"
    text = "feeds:\n  - name: rfi-cn\n    url: https://www.rfi.fr/cn/rss\n"
    path.write_text(text + textwrap.dedent(http).lstrip("\n"), encoding="utf-8")
    return path


def problems_of(path: Path, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ=environ or {})
    # Each problem as it reads after the file's folder: "monitor.yaml:5: http.listen: ..."
    return [str(problem).removeprefix(f"{path.parent}/") for problem in caught.value.problems]


def test_load_config_http_with_auth_base_path_and_timeout_returns_them(tmp_path: Path) -> None:
    path = main_file(
        tmp_path,
        """
        http:
          listen: "0.0.0.0:8080"
          auth: {user: desk, password: "${WEB_PASSWORD}"}
          base_path: /news/
          search_timeout: 2s
        """,
    )

    config = load_config(path, environ={"WEB_PASSWORD": "s3cret-Web-pw"})

    assert config.http == HttpConfig(
        listen="0.0.0.0:8080",
        auth_user="desk",
        auth_password="s3cret-Web-pw",
        base_path="/news",
        search_timeout_seconds=2.0,
    )
    assert "s3cret-Web-pw" in config.secrets
    assert "s3cret-Web-pw" not in repr(config.http)


def test_load_config_http_defaults_serve_loopback_at_the_root_without_auth(
    tmp_path: Path,
) -> None:
    config = load_config(main_file(tmp_path, "http: {}\n"), environ={})

    assert config.http == HttpConfig(listen="127.0.0.1:9464", base_path="")
    assert config.http.search_timeout_seconds == 5.0


@pytest.mark.parametrize("listen", ["0.0.0.0:9464", "[::]:9464", "192.168.1.20:80", "myhost:80"])
def test_load_config_listen_beyond_loopback_without_auth_is_an_error(
    tmp_path: Path, listen: str
) -> None:
    path = main_file(tmp_path, f'http:\n  listen: "{listen}"\n')

    (problem,) = problems_of(path)

    assert problem.startswith("monitor.yaml:5: http.listen: ")
    assert "reachable from other machines" in problem and "auth: none" in problem


@pytest.mark.parametrize("listen", ["127.0.0.1:9464", "127.8.0.1:1", "[::1]:9464", "9464"])
def test_load_config_listen_on_loopback_needs_no_auth(tmp_path: Path, listen: str) -> None:
    config = load_config(main_file(tmp_path, f'http:\n  listen: "{listen}"\n'), environ={})

    assert config.http is not None and config.http.auth_user is None


def test_load_config_auth_none_serves_beyond_loopback_without_authentication(
    tmp_path: Path,
) -> None:
    path = main_file(tmp_path, 'http:\n  listen: "0.0.0.0:9464"\n  auth: none\n')

    config = load_config(path, environ={})

    assert config.http is not None
    assert (config.http.auth_user, config.http.auth_password) == (None, None)


@pytest.mark.parametrize(
    ("http", "where", "message"),
    [
        ("  auth: nobody\n", "monitor.yaml:5: http.auth", "or none to serve without"),
        ("  auth: {user: desk}\n", "monitor.yaml:5: http.auth.password", "required"),
        ("  auth: {user: desk, password: ''}\n", "monitor.yaml:5: http.auth.password", "empty"),
        ("  auth: {user: a, password: b, realm: x}\n", "monitor.yaml:5: http.auth.realm", "key"),
        ("  base_path: news\n", "monitor.yaml:5: http.base_path", "starting with /"),
        ("  base_path: /a/../b\n", "monitor.yaml:5: http.base_path", "URL path"),
        ("  base_path: /a b\n", "monitor.yaml:5: http.base_path", "URL path"),
        ("  search_timeout: 0s\n", "monitor.yaml:5: http.search_timeout", "above 0s"),
    ],
)
def test_load_config_bad_http_value_names_file_line_and_key(
    tmp_path: Path, http: str, where: str, message: str
) -> None:
    (problem,) = problems_of(main_file(tmp_path, "http:\n" + http))

    assert problem.startswith(where + ": ") and message in problem


def test_load_config_numeric_password_is_text_and_never_echoed(tmp_path: Path) -> None:
    path = main_file(tmp_path, "http:\n  auth: {user: desk, password: 918273645}\n")

    config = load_config(path, environ={})

    assert config.http is not None and config.http.auth_password == "918273645"


def test_load_config_missing_password_variable_names_it_not_a_value(tmp_path: Path) -> None:
    path = main_file(tmp_path, "http:\n  auth: {user: desk, password: '${WEB_PASSWORD}'}\n")

    (problem,) = problems_of(path)

    assert "WEB_PASSWORD" in problem and problem.startswith("monitor.yaml:5: http.auth.password")
