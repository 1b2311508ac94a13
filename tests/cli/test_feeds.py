"""`feeds export` and `feeds discover`: OPML out (and back in through feeds_from), and the
feeds a local web page declares, as feed entries ready to paste."""

from __future__ import annotations

import json
import socket
import textwrap
from pathlib import Path

import pytest
import yaml
from feeds import Item, rss
from processes import run_cli

import monitor
from monitor.ingest import NoFeedFound
from monitor.model import FetchError
from monitor.service import discover
from monitor.service.configuration import load_config, load_feed_list

HTML = "text/html; charset=utf-8"

SUBSCRIPTIONS = """\
<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0"><body>
  <outline text="Asia">
    <outline text="Japan">
      <outline text="NHK 中文" xmlUrl="https://nhk.example.org/cat0.xml"/>
    </outline>
    <outline text="RFI 亚洲" xmlUrl="https://www.rfi.fr/cn/亚洲/rss?a=1&amp;b=2"/>
  </outline>
  <outline text="Wires">
    <outline text="RFI again" xmlUrl="https://www.rfi.fr/cn/亚洲/rss?a=1&amp;b=2"/>
  </outline>
  <outline text="BBC 中文" xmlUrl="https://bbc.example.org/rss.xml"/>
</body></opml>
"""


def write_main(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "monitor.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def feed_set(config: Path) -> set[tuple[str, str, frozenset[str]]]:
    return {(feed.name, feed.url, frozenset(feed.groups)) for feed in load_feed_list(config, {})}


def test_feeds_export_then_feeds_from_gives_the_same_feeds_in_the_same_groups(
    tmp_path: Path,
) -> None:
    (tmp_path / "subs.opml").write_text(SUBSCRIPTIONS, encoding="utf-8")
    original = write_main(
        tmp_path,
        """
        feeds:
          - {name: rfi-cn, url: "https://www.rfi.fr/cn/rss"}
          - {name: rfi-tw, url: "https://www.rfi.fr/tw/rss", group: [Asia/Taiwan, Wires]}
          - {name: paused, url: "https://paused.example.org/rss", enabled: false}
        feeds_from: [{file: subs.opml, interval: 5m}]
        """,
    )

    exported = run_cli("feeds", "export", "--config", str(original), cwd=tmp_path)

    assert exported.returncode == 0, exported.stderr
    assert exported.stdout.startswith(
        '<?xml version="1.0" encoding="UTF-8"?>\n<opml version="2.0">'
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "exported.opml").write_text(exported.stdout, encoding="utf-8")
    imported = write_main(elsewhere, "feeds_from: [exported.opml]\n")
    assert len(feed_set(original)) == 6
    assert feed_set(imported) == feed_set(original)
    load_config(imported, environ={})  # and the daemon would run on it


def test_feeds_export_keeps_urls_as_written_and_reads_no_secret(tmp_path: Path) -> None:
    config = write_main(
        tmp_path,
        """
        feeds:
          - {name: private, url: "https://feeds.example.org/rss?key=${FEED_TOKEN}"}
        channels:
          me: tgram://${TELEGRAM_BOT_TOKEN}/1
        """,
    )

    result = run_cli("feeds", "export", "--config", str(config), cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert 'xmlUrl="https://feeds.example.org/rss?key=${FEED_TOKEN}"' in result.stdout


def test_feeds_export_of_a_broken_configuration_prints_its_problems(tmp_path: Path) -> None:
    config = write_main(tmp_path, "feeds_from: [missing.opml]\n")

    result = run_cli("feeds", "export", "--config", str(config), cwd=tmp_path)

    assert result.returncode == 2 and result.stdout == ""
    assert "monitor.yaml:1: feeds_from[0]: no such OPML file: " in result.stderr


# ------------------------------------------------------------------------------- discover

PAGE = """\
<!DOCTYPE html>
<html><head>
<meta charset="utf-8">
<title>RFI 中文</title>
<link rel="stylesheet" href="/style.css">
<link rel="alternate stylesheet" type="text/css" href="/dark.css" title="Dark">
<link rel="alternate" type="application/rss+xml" title="RFI - 中文" href="/cn/rss">
<link rel="alternate" type="application/atom+xml" href="atom.xml">
<link rel="ALTERNATE" type="application/feed+json; charset=utf-8" title="JSON" href="feed.json">
<link rel="alternate" type="application/json" href="/wp-json/wp/v2/pages/2">
<link rel="alternate" type="application/json" title="Old JSON Feed" href="/old-feed.json">
<link rel="alternate" type="application/rss+xml" title="RFI - 中文" href="http://{host}/cn/rss">
<link rel="alternate" hreflang="zh-tw" href="/tw/">
</head><body><p>Hello</p></body></html>
"""

JSON_FEED = b'{"version": "https://jsonfeed.org/version/1", "title": "Old", "items": []}'


def test_discover_prints_each_declared_feed_as_a_feed_entry_to_paste(server, tmp_path) -> None:
    page = PAGE.replace("{host}", f"127.0.0.1:{server.port}")
    server.add_feed("/news/", page.encode("utf-8"), content_type=HTML)
    server.add_redirect("/news", "/news/")
    server.add_feed("/wp-json/wp/v2/pages/2", b'{"id": 2}', content_type="application/json")
    server.add_feed("/old-feed.json", JSON_FEED, content_type="application/json")

    result = run_cli("feeds", "discover", server.url("/news"), cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert all(line.startswith("- {") for line in lines)
    # Relative links resolved against the page's address after its redirect; the same feed
    # declared twice is one entry; the WordPress API link is not a feed.
    assert yaml.safe_load(result.stdout) == [
        {"name": "RFI - 中文", "url": server.url("/cn/rss")},
        {"name": "RFI 中文", "url": server.url("/news/atom.xml")},
        {"name": "JSON", "url": server.url("/news/feed.json")},
        {"name": "Old JSON Feed", "url": server.url("/old-feed.json")},
    ]
    assert server.hits("/cn/rss") == server.hits("/news/atom.xml") == 0  # declared, not fetched
    user_agents = {headers.get("User-Agent") for _, headers in server.requests}
    assert user_agents == {f"news-monitor/{monitor.__version__}"}

    # Pasted under feeds:, the entries are a valid configuration.
    config = tmp_path / "monitor.yaml"
    config.write_text("feeds:\n" + result.stdout, encoding="utf-8")
    assert len(load_config(config, environ={}).feeds) == 4


def test_discover_resolves_links_against_the_pages_base_href(server) -> None:
    server.add_feed(
        "/a/page.html",
        b'<html><head><base href="/b/"><link rel="alternate" type="application/atom+xml"'
        b' href="feed.atom"></head></html>',
        content_type=HTML,
    )

    assert discover(server.url("/a/page.html")) == [
        f"- {{name: 127.0.0.1, url: '{server.url('/b/feed.atom')}'}}"
    ]


def test_discover_names_feeds_without_titles_apart(server) -> None:
    server.add_feed(
        "/",
        b"<html><head><title>Example</title>"
        b'<link rel="alternate" type="application/rss+xml" href="/rss">'
        b'<link rel="alternate" type="application/atom+xml" href="/atom">'
        b'<link rel="alternate" type="application/rss+xml" href="/comments/rss">'
        b"</head></html>",
        content_type="text/html",
    )

    entries = yaml.safe_load("\n".join(discover(server.url("/"))))

    assert [entry["name"] for entry in entries] == [
        "Example (RSS)",
        "Example (Atom)",
        "Example (RSS) 2",
    ]


def test_discover_reads_a_page_in_its_declared_charset(server) -> None:
    page = (
        '<html><head><meta http-equiv="Content-Type" content="text/html; charset=gbk">'
        '<link rel="alternate" type="application/rss+xml" title="法广" href="/rss">'
        "</head></html>"
    ).encode("gbk")
    server.add_feed("/", page, content_type="text/html")

    (line,) = discover(server.url("/"))

    assert yaml.safe_load(line) == [{"name": "法广", "url": server.url("/rss")}]


@pytest.mark.parametrize(
    ("body", "content_type", "name"),
    [
        (
            rss([Item("韩日", link="https://e.org/1")], title="RFI - 中文"),
            "application/rss+xml",
            "RFI - 中文",
        ),
        (JSON_FEED, "application/feed+json", "Old"),
    ],
)
def test_discover_of_a_feed_prints_the_feed_itself(
    server, body: bytes, content_type: str, name: str
) -> None:
    server.add_feed("/feed", body, content_type=content_type)

    (line,) = discover(server.url("/feed"))

    assert yaml.safe_load(line) == [{"name": name, "url": server.url("/feed")}]


def test_discover_of_a_page_without_feeds_says_so_in_one_line_and_exits_1(
    server, tmp_path: Path
) -> None:
    server.add_feed("/", b"<!doctype html><html><head><title>x</title></head></html>", HTML)

    result = run_cli("feeds", "discover", server.url("/"), cwd=tmp_path)

    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == (
        f'{server.url("/")}: the page declares no feed (no <link rel="alternate"> of an RSS, '
        "Atom or JSON Feed type)\n"
    )


def test_discover_of_something_neither_page_nor_feed_says_what_it_is(server) -> None:
    server.add_feed("/api", json.dumps({"items": []}).encode(), content_type="application/json")

    with pytest.raises(NoFeedFound) as raised:
        discover(server.url("/api"))

    assert (
        str(raised.value)
        == "neither a web page nor a feed: not a feed (JSON that is not JSON Feed)"
    )


def test_discover_of_an_unreachable_page_says_why_in_one_line_and_exits_1(
    server, tmp_path: Path
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}/"
    server.set_response("/gone", 404, b"not here")

    refused = run_cli("feeds", "discover", closed, cwd=tmp_path)
    missing = run_cli("feeds", "discover", server.url("/gone"), cwd=tmp_path)

    assert refused.returncode == missing.returncode == 1
    assert refused.stderr.startswith(f"{closed}: cannot fetch it: ")
    assert refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr
    assert missing.stderr == f"{server.url('/gone')}: cannot fetch it: HTTP 404\n"


def test_discover_of_no_web_address_is_a_usage_error(tmp_path: Path) -> None:
    result = run_cli("feeds", "discover", "example.org", cwd=tmp_path)

    assert result.returncode == 2
    assert result.stderr == "example.org: not an http://, https:// or file:// URL\n"


def test_discover_fetch_errors_reach_the_caller(server) -> None:
    server.set_response("/error", 500)

    with pytest.raises(FetchError, match="HTTP 500"):
        discover(server.url("/error"))


def test_discover_reads_a_local_xhtml_page_and_resolves_its_links_as_files(
    tmp_path: Path,
) -> None:
    page = tmp_path / "site" / "index.html"
    page.parent.mkdir()
    page.write_text(
        '<?xml version="1.0" encoding="utf-8"?>\n<!DOCTYPE html>\n'
        '<html xmlns="http://www.w3.org/1999/xhtml"><head>'
        '<link rel="alternate" type="application/atom+xml" title="本地" href="feeds/atom.xml"/>'
        "</head></html>",
        encoding="utf-8",
    )

    (line,) = discover(page.as_uri())

    assert yaml.safe_load(line) == [
        {"name": "本地", "url": (page.parent / "feeds/atom.xml").as_uri()}
    ]
