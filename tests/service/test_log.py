"""Log lines as operators read them: key=value text with UTC timestamps, secrets masked,
Apprise's own detail only with --verbose."""

from __future__ import annotations

import logging
from pathlib import Path

from feeds import Item, rss
from processes import run_cli
from receivers import WebhookReceiver

from monitor.config.secrets import SECRETS
from monitor.service.log import _TextFormatter


def record(created: float, message: str = "poll feed=%s") -> logging.LogRecord:
    entry = logging.LogRecord(
        "monitor.service.daemon", logging.INFO, "", 0, message, ("rfi-cn",), None
    )
    entry.created = created
    return entry


def test_text_formatter_stamps_each_record_with_its_own_second() -> None:
    formatter = _TextFormatter(with_time=True)

    lines = [formatter.format(record(created)) for created in (0.2, 0.9, 1.5, 86_400.0, 1.0)]

    assert lines == [
        "1970-01-01T00:00:00Z INFO monitor.service.daemon: poll feed=rfi-cn",
        "1970-01-01T00:00:00Z INFO monitor.service.daemon: poll feed=rfi-cn",
        "1970-01-01T00:00:01Z INFO monitor.service.daemon: poll feed=rfi-cn",
        "1970-01-02T00:00:00Z INFO monitor.service.daemon: poll feed=rfi-cn",
        "1970-01-01T00:00:01Z INFO monitor.service.daemon: poll feed=rfi-cn",
    ]


def test_text_formatter_masks_secrets() -> None:
    SECRETS.update(["s3cr3t-token"])
    try:
        line = _TextFormatter(with_time=False).format(record(0, "url=https://x/s3cr3t-token %s"))
    finally:
        SECRETS.update(())

    assert line == "INFO monitor.service.daemon: url=https://x/**** rfi-cn"


def test_apprise_info_lines_show_only_with_verbose(
    tmp_path: Path, write_config, hook: WebhookReceiver
) -> None:
    # Apprise's INFO lines ("Notifying 1 service(s).", "Sent JSON POST notification.")
    # repeat our own notify and deliver lines.
    config = str(write_config(feeds={}, channels={"hook": hook.json_url("/alerts")}))

    normal = run_cli("notify", "test", "hook", "--config", config, cwd=tmp_path)
    verbose = run_cli("--verbose", "notify", "test", "hook", "--config", config, cwd=tmp_path)

    assert normal.returncode == verbose.returncode == 0, (normal.stderr, verbose.stderr)
    assert len(hook.wait_for(2)) == 2
    assert "INFO monitor.delivery.notify: notify channel=hook" in normal.stderr
    assert " apprise: " not in normal.stderr
    assert "INFO apprise: Sent JSON" in verbose.stderr
    assert "DEBUG apprise: " in verbose.stderr


def test_a_page_without_article_text_is_one_line_of_ours_not_the_extractors(
    tmp_path: Path, write_config, server
) -> None:
    server.add_feed(
        "/rss",
        rss([Item("韩国公布赔偿方案", link=server.url("/app"), guid="1", description="摘要")]),
    )
    app_shell = b'<html><body><div id="app"></div><script src="/app.js"></script></body></html>'
    server.add_feed("/app", app_shell, content_type="text/html")
    feed = {"url": server.url("/rss"), "fulltext": True, "notify_existing": True}
    config = str(write_config(feeds={"cn": feed}))

    result = run_cli("run", "--once", "--config", config, cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert (
        f"INFO monitor.service.fulltext: fulltext feed=cn link={server.url('/app')} "
        "error='no article text found on the page'"
    ) in result.stderr
    assert "fulltext_pages=1 fulltext_failed=1" in result.stderr
    assert "trafilatura" not in result.stderr and "discarding" not in result.stderr
