"""The web view in a real browser: headless Chromium loads each page of a store with real
matches, and the tests read what it rendered (its DOM) and keep screenshots.

Without Chromium these tests skip, saying how to install it; under CI (.ci/run installs
Debian's chromium) a missing browser fails them. Screenshots of the overview and the feeds,
at a desktop's and a phone's width, are written to the test's folder, which is printed.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
from feed_server import FeedServer
from receivers import WebhookReceiver
from web_view import RunningView, record_matches, start_view, write_monitored_config

DESKTOP = (1280, 1000)
PHONE = (390, 1600)
BROWSER_TIMEOUT_SECONDS = 90


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        reason = "Chromium is not installed (Debian: apt-get install chromium; .ci/run does)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return found


@pytest.fixture(scope="module")
def browser() -> str:
    return _chromium()


@pytest.fixture(scope="module")
def view(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningView]:
    folder = tmp_path_factory.mktemp("browser")
    with FeedServer() as server, WebhookReceiver() as hook:
        config = write_monitored_config(folder, server, hook, f"sqlite:///{folder}/monitor.db")
        record_matches(config, server, hook)
    running = start_view(config)
    yield running
    running.close()


def _run_browser(browser: str, profile: Path, url: str, *options: str) -> bytes:
    profile.mkdir(parents=True, exist_ok=True)
    arguments = [
        browser,
        "--headless=new",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        *options,
        url,
    ]
    if os.geteuid() == 0:  # Chromium's sandbox refuses to run as root
        arguments.insert(1, "--no-sandbox")
    completed = subprocess.run(
        arguments, capture_output=True, timeout=BROWSER_TIMEOUT_SECONDS, check=False
    )
    assert completed.returncode == 0, completed.stderr.decode(errors="replace")[-2000:]
    return completed.stdout


def rendered_dom(browser: str, tmp_path: Path, url: str) -> str:
    """The page's DOM as Chromium built it, serialised."""
    dom = _run_browser(browser, tmp_path / "profile", url, "--dump-dom").decode("utf-8")
    assert "</html>" in dom, dom[-500:]
    return dom


def screenshot(browser: str, tmp_path: Path, url: str, name: str, size: tuple[int, int]) -> Path:
    """A PNG of the page at this window size, in tmp_path; its path is printed."""
    path = tmp_path / f"{name}-{size[0]}x{size[1]}.png"
    _run_browser(
        browser,
        tmp_path / f"profile-{name}-{size[0]}",
        url,
        f"--window-size={size[0]},{size[1]}",
        f"--screenshot={path}",
    )
    print(f"screenshot: {path}")
    return path


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is no PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _visible_text(dom: str) -> str:
    body = dom.split("<body", 1)[1]
    body = re.sub(r"<(style|title)[^>]*>.*?</\1>", " ", body, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body))


def _quoted(path: str) -> str:
    return urllib.parse.quote(path, safe="/?=&")


def test_overview_renders_its_chart_and_counts(browser, view, tmp_path: Path) -> None:
    dom = rendered_dom(browser, tmp_path, view.url("/"))

    chart = re.search(r"<svg[^>]*class=\"chart\".*?</svg>", dom, re.S)
    assert chart is not None
    assert len(re.findall(r"<rect ", chart.group())) == 3  # today: three rules stacked
    text = _visible_text(dom)
    assert "korea-japan 3" in text and "forced-labour 1" in text and "france 1" in text
    assert "feeds failing now 1" in text and "broken" in text


def test_matches_render_escaped_titles_and_run_nothing(browser, view, tmp_path: Path) -> None:
    dom = rendered_dom(browser, tmp_path, view.url("/matches"))

    text = _visible_text(dom)
    assert "<script>document.body.setAttribute('data-pwned','1')</script> 韩日峰会" in (
        text.replace("&lt;", "<").replace("&gt;", ">")
    )
    assert "data-pwned=" not in dom.split("<body", 1)[1].split(">", 1)[0]
    assert "<script" not in dom
    assert "韓日外長會談" in text and "hook: sent" in text and "held until" in text


def test_feeds_render_a_small_chart_per_feed(browser, view, tmp_path: Path) -> None:
    dom = rendered_dom(browser, tmp_path, view.url("/feeds"))

    sparks = re.findall(r'<svg[^>]*class="spark".*?</svg>', dom, re.S)
    assert len(sparks) == 3 and all(len(re.findall("<rect ", spark)) == 30 for spark in sparks)
    text = _visible_text(dom)
    assert "5 in 30 days" in text and "2 in 30 days" in text and "HTTP 500" in text


def test_search_renders_marked_results(browser, view, tmp_path: Path) -> None:
    dom = rendered_dom(browser, tmp_path, view.url(_quoted("/search?q=强征劳工")))

    assert "<mark>强征劳工</mark>" in dom
    assert "1 result, newest first." in _visible_text(dom)


def test_a_bad_query_renders_its_error(browser, view, tmp_path: Path) -> None:
    dom = rendered_dom(browser, tmp_path, view.url(_quoted("/search?q=(韩日")))

    assert 'role="alert"' in dom and "^" in _visible_text(dom)


def test_stories_render_empty(browser, view, tmp_path: Path) -> None:
    dom = rendered_dom(browser, tmp_path, view.url("/stories"))

    assert "No stories of several articles to show." in _visible_text(dom)


@pytest.mark.parametrize("page", ["/", "/feeds"])
def test_screenshots_of_overview_and_feeds(browser, view, tmp_path: Path, page: str) -> None:
    name = "overview" if page == "/" else "feeds"
    for size in (DESKTOP, PHONE):
        path = screenshot(browser, tmp_path, view.url(page), name, size)

        assert _png_size(path) == size
        assert path.stat().st_size > 20_000  # drawn, not blank
