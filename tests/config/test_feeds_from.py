"""feeds_from: OPML subscription lists as feeds, their folders as groups, rules naming groups,
and OPML read as untrusted input: every refusal a `check` problem naming the file."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from feed_server import FeedServer

from monitor.config import ListedFeed
from monitor.config.opml import MAX_OPML_BYTES, MAX_OPML_DEPTH
from monitor.config.schema import FeedSchema, FeedsFromSchema
from monitor.model import ConfigError
from monitor.service.configuration import load_config, load_database_settings

SUBSCRIPTIONS = """\
<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0">
  <head><title>Subscriptions</title></head>
  <body>
    <outline text="Asia" title="Asia">
      <outline text="Japan">
        <outline type="rss" text="NHK 中文" xmlUrl="https://www3.nhk.or.jp/rss/news/cat0.xml"/>
      </outline>
      <outline type="rss" title="RFI 亚洲" xmlUrl="https://www.rfi.fr/cn/亚洲/rss"/>
    </outline>
    <outline text="Wires">
      <outline type="rss" text="RFI 亚洲 (wire)" xmlUrl="https://www.rfi.fr/cn/亚洲/rss"/>
    </outline>
    <outline type="rss" text="BBC 中文" xmlUrl="https://feeds.bbci.co.uk/zhongwen/simp/rss.xml"/>
  </body>
</opml>
"""


@pytest.fixture(autouse=True)
def _in_the_config_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Files are named as given, relative to here: messages read "monitor.yaml:3: ...".
    monkeypatch.chdir(tmp_path)


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def main_file(folder: Path, text: str) -> Path:
    """Write the main file; return its path relative to the working directory."""
    return write(folder, "monitor.yaml", text).relative_to(Path.cwd())


def problems(path: Path, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ=environ or {})
    return [str(problem) for problem in caught.value.problems]


def only_problem(path: Path, environ: dict[str, str] | None = None) -> str:
    found = problems(path, environ)
    assert len(found) == 1, found
    return found[0]


def test_feeds_from_adds_each_outline_with_its_folders_as_groups(tmp_path: Path) -> None:
    write(tmp_path, "subscriptions.opml", SUBSCRIPTIONS)
    config = load_config(
        main_file(
            tmp_path,
            """
            feeds:
              - name: rfi-cn
                url: https://www.rfi.fr/cn/rss
            feeds_from: [subscriptions.opml]
            """,
        ),
        environ={},
    )

    assert [(feed.name, feed.url, feed.groups) for feed in config.feeds] == [
        ("rfi-cn", "https://www.rfi.fr/cn/rss", ()),
        ("NHK 中文", "https://www3.nhk.or.jp/rss/news/cat0.xml", ("Asia/Japan",)),
        # The same xmlUrl under two folders: one feed, in both groups, named where first seen.
        ("RFI 亚洲", "https://www.rfi.fr/cn/亚洲/rss", ("Asia", "Wires")),
        ("BBC 中文", "https://feeds.bbci.co.uk/zhongwen/simp/rss.xml", ()),
    ]
    assert config.feeds[1].interval_seconds == 600  # the built-in default, as for YAML feeds
    assert (tmp_path / "subscriptions.opml").resolve() in config.source_files


def test_feeds_from_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "lists").mkdir()
    write(tmp_path / "lists", "subs.opml", SUBSCRIPTIONS)
    config_folder = tmp_path / "config"
    config_folder.mkdir()
    config = load_config(main_file(config_folder, "feeds_from: [../lists/subs.opml]\n"), environ={})

    assert len(config.feeds) == 3


def test_per_file_defaults_apply_to_every_feed_of_the_file_over_the_main_defaults(
    tmp_path: Path,
) -> None:
    write(tmp_path, "subs.opml", SUBSCRIPTIONS)
    write(
        tmp_path,
        "quiet.opml",
        '<opml version="2.0"><body><outline text="q" xmlUrl="https://q.example.org/rss"/>'
        "</body></opml>",
    )
    config = load_config(
        main_file(
            tmp_path,
            """
            defaults: {interval: 20m, timeout: 7s}
            feeds_from:
              - {file: subs.opml, interval: 5m, max_bytes: 1MB, notify_existing: true}
              - {file: quiet.opml, enabled: false, group: Quiet}
            """,
        ),
        environ={},
    )

    nhk, rfi, bbc, quiet = config.feeds
    assert {feed.interval_seconds for feed in (nhk, rfi, bbc)} == {300}
    assert {feed.timeout_seconds for feed in config.feeds} == {7}  # from defaults:
    assert nhk.max_bytes == 1024 * 1024 and nhk.notify_existing and nhk.enabled
    assert (quiet.enabled, quiet.interval_seconds, quiet.groups) == (False, 1200, ("Quiet",))


def test_per_file_defaults_accept_every_key_of_a_feed_entry_but_name_and_url() -> None:
    feed_keys = set(FeedSchema.model_fields) - {"name", "url"}
    assert set(FeedsFromSchema.model_fields) == feed_keys | {"file"}


def test_a_bad_per_file_default_is_one_problem_at_its_entry(tmp_path: Path) -> None:
    write(tmp_path, "subs.opml", SUBSCRIPTIONS)
    config = main_file(
        tmp_path,
        """
        feeds_from:
          - file: subs.opml
            interval: 0s
            intervall: 5m
        """,
    )

    assert problems(config) == [
        "monitor.yaml:3: feeds_from[0].interval: must be at least 1s",
        "monitor.yaml:4: feeds_from[0].intervall: unknown key (did you mean interval?)",
    ]


def test_a_name_given_to_two_urls_is_a_problem_naming_both_places(tmp_path: Path) -> None:
    write(
        tmp_path,
        "subs.opml",
        """
        <opml version="2.0"><body>
          <outline text="rfi-cn" xmlUrl="https://www.rfi.fr/tw/rss"/>
          <outline text="NHK" xmlUrl="https://nhk.example.org/a.xml"/>
          <outline text="NHK" xmlUrl="https://nhk.example.org/b.xml"/>
        </body></opml>
        """,
    )
    config = main_file(
        tmp_path,
        """
        feeds:
          - name: rfi-cn
            url: https://www.rfi.fr/cn/rss
        feeds_from: [subs.opml]
        """,
    )

    assert problems(config) == [
        "subs.opml:2: outline (rfi-cn): another feed is already named 'rfi-cn', with another "
        "URL (monitor.yaml:2)",
        "subs.opml:4: outline (NHK): another feed is already named 'NHK', with another URL "
        "(subs.opml:3)",
    ]


def test_an_outline_with_the_url_of_a_yaml_feed_is_that_feed_in_the_outlines_group(
    tmp_path: Path,
) -> None:
    write(
        tmp_path,
        "subs.opml",
        '<opml version="2.0"><body><outline text="Asia"><outline text="RFI"'
        ' xmlUrl="https://www.rfi.fr/cn/rss"/></outline></body></opml>',
    )
    config = load_config(
        main_file(
            tmp_path,
            """
            feeds:
              - {name: rfi-cn, url: "https://www.rfi.fr/cn/rss", group: News}
            feeds_from: [subs.opml]
            """,
        ),
        environ={},
    )

    assert [(feed.name, feed.groups) for feed in config.feeds] == [("rfi-cn", ("News", "Asia"))]


def test_a_rule_names_a_group_and_gets_its_feeds_and_those_of_the_groups_inside(
    tmp_path: Path,
) -> None:
    write(tmp_path, "subs.opml", SUBSCRIPTIONS)
    config = load_config(
        main_file(
            tmp_path,
            """
            feeds:
              - {name: rfi-tw, url: "https://www.rfi.fr/tw/rss", group: " Asia / Taiwan "}
            feeds_from: [subs.opml]
            rules:
              - {name: asia, any: [韩日], feeds: ["group:Asia"]}
              - {name: japan, any: [韩日], feeds: ["group:Asia/Japan", BBC 中文]}
              - {name: wires, any: [韩日], feeds: ["group: Wires "]}
            """,
        ),
        environ={},
    )

    feeds_of = {rule.name: rule.feeds for rule in config.rules}
    assert feeds_of == {
        "asia": ("rfi-tw", "NHK 中文", "RFI 亚洲"),
        "japan": ("NHK 中文", "BBC 中文"),
        "wires": ("RFI 亚洲",),
    }
    assert config.feeds[0].groups == ("Asia/Taiwan",)


def test_a_rule_naming_an_unknown_group_lists_the_groups(tmp_path: Path) -> None:
    write(tmp_path, "subs.opml", SUBSCRIPTIONS)
    config = main_file(
        tmp_path,
        """
        feeds_from: [subs.opml]
        rules:
          - {name: europe, any: [韩日], feeds: ["group:Europe"]}
        """,
    )

    assert only_problem(config) == (
        "monitor.yaml:3: rules[0] (europe).feeds[0]: no feed group is named 'Europe' "
        "(groups: Asia, Asia/Japan, Wires)"
    )


def test_a_feed_name_may_not_look_like_a_group_reference(tmp_path: Path) -> None:
    config = main_file(tmp_path, "feeds:\n  - {name: 'group:x', url: 'https://e.org/rss'}\n")

    assert "feeds[0].name: a feed name must not start with group:" in only_problem(config)


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("[missing.opml]", "monitor.yaml:1: feeds_from[0]: no such OPML file: missing.opml"),
        (
            "[subs.opml, ./subs.opml]",
            "monitor.yaml:1: feeds_from[1]: this OPML file is already listed",
        ),
        ("[{interval: 5m}]", "monitor.yaml:1: feeds_from[0].file: required, but missing"),
    ],
)
def test_feeds_from_entries_that_name_no_usable_file(
    tmp_path: Path, entry: str, expected: str
) -> None:
    write(tmp_path, "subs.opml", SUBSCRIPTIONS)

    assert only_problem(main_file(tmp_path, f"feeds_from: {entry}\n")) == expected


def test_load_database_settings_lists_the_opml_feeds_with_their_groups(tmp_path: Path) -> None:
    write(tmp_path, "subs.opml", SUBSCRIPTIONS)
    settings = load_database_settings(
        main_file(tmp_path, "feeds_from: [{file: subs.opml, enabled: false}]\n"), environ={}
    )

    assert settings.feeds[0] == ListedFeed(
        "NHK 中文", "https://www3.nhk.or.jp/rss/news/cat0.xml", False, ("Asia/Japan",)
    )
    assert len(settings.feeds) == 3 and settings.problems == ()


# ----------------------------------------------------------------- outlines that do not do


@pytest.mark.parametrize(
    ("outline", "expected"),
    [
        (
            '<outline xmlUrl="https://e.org/rss"/>',
            "subs.opml:2: outline: an outline with an xmlUrl needs a text (or title) "
            "attribute: it names the feed",
        ),
        (
            '<outline text="ftp" xmlUrl="ftp://e.org/rss"/>',
            "subs.opml:2: outline (ftp).xmlUrl: a feed URL must start with http://, https:// "
            "or file:// (got ftp://)",
        ),
        (
            '<outline text="local" xmlUrl="file:///etc/passwd"/>',
            "subs.opml:2: outline (local): xmlUrl names a local file (file://), which an OPML "
            "file may not (the file may come from anywhere): give this feed in monitor.yaml "
            "instead",
        ),
        (
            '<outline text="token" xmlUrl="https://e.org/rss?key=${FEED_TOKEN}"/>',
            "subs.opml:2: outline (token): xmlUrl holds ${...}, which is not substituted in an "
            "OPML file (the file may come from anywhere): give this feed in monitor.yaml instead",
        ),
    ],
)
def test_outlines_that_cannot_be_feeds_are_problems_at_their_line(
    tmp_path: Path, outline: str, expected: str
) -> None:
    write(tmp_path, "subs.opml", f'<opml version="2.0"><body>\n{outline}\n</body></opml>\n')

    # The variable exists: an OPML file is never substituted all the same.
    found = only_problem(
        main_file(tmp_path, "feeds_from: [subs.opml]\n"), {"FEED_TOKEN": "s3cret-token"}
    )

    assert found == expected


# ---------------------------------------------------------------------- hostile OPML files


def _opml_problem(tmp_path: Path, body: bytes | str) -> str:
    path = tmp_path / "subs.opml"
    path.write_bytes(body.encode("utf-8") if isinstance(body, str) else body)
    return only_problem(main_file(tmp_path, "feeds_from: [subs.opml]\n"))


def test_a_billion_laughs_file_is_refused_at_its_entity_declaration(tmp_path: Path) -> None:
    entities = "".join(
        f'<!ENTITY lol{number} "{f"&lol{number - 1};" * 10}">' for number in range(1, 10)
    )
    body = (
        '<?xml version="1.0"?>\n'
        f'<!DOCTYPE opml [<!ENTITY lol0 "lol">{entities}]>\n'
        '<opml version="2.0"><body><outline text="&lol9;" xmlUrl="https://e.org/rss"/>'
        "</body></opml>"
    )

    assert _opml_problem(tmp_path, body) == (
        "subs.opml:2: the file declares an entity (lol0): refused, an OPML file needs none "
        "and entities are how XML bombs and file-reading attacks work"
    )


def test_an_external_entity_is_refused_and_the_file_it_names_never_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("the-secret-content", encoding="utf-8")
    body = (
        '<?xml version="1.0"?>\n'
        f'<!DOCTYPE opml [<!ENTITY xxe SYSTEM "file://{secret}">]>\n'
        '<opml version="2.0"><body><outline text="&xxe;" xmlUrl="https://e.org/rss"/>'
        "</body></opml>"
    )

    found = _opml_problem(tmp_path, body)

    assert found.startswith("subs.opml:2: the file declares an entity (xxe): refused")
    assert "the-secret-content" not in found


@pytest.mark.parametrize(
    "doctype",
    [
        '<!DOCTYPE opml SYSTEM "{url}">',
        '<!DOCTYPE opml [<!ENTITY % remote SYSTEM "{url}"> %remote;]>',
    ],
)
def test_an_external_dtd_is_refused_and_never_fetched(tmp_path: Path, doctype: str) -> None:
    with FeedServer() as server:
        server.set_response("/evil.dtd", 200, b'<!ENTITY x "x">')
        body = (
            f'<?xml version="1.0"?>\n{doctype.format(url=server.url("/evil.dtd"))}\n'
            '<opml version="2.0"><body/></opml>'
        )
        found = _opml_problem(tmp_path, body)

        assert found.startswith("subs.opml:2: the file ")
        assert "refused" in found
        assert server.hits("/evil.dtd") == 0


def test_a_file_over_the_size_limit_is_not_read(tmp_path: Path) -> None:
    head = b'<opml version="2.0"><body>'
    outline = b'<outline text="x" xmlUrl="https://e.org/rss"/>\n'
    body = head + outline * (MAX_OPML_BYTES // len(outline) + 1) + b"</body></opml>"

    assert _opml_problem(tmp_path, body) == (
        "subs.opml: the file is larger than 10 MB: not read (an OPML subscription list is "
        "rarely more than a few hundred KB)"
    )


def test_outlines_nested_past_the_limit_are_refused(tmp_path: Path) -> None:
    depth = MAX_OPML_DEPTH + 1
    body = (
        '<opml version="2.0"><body>\n'
        + '<outline text="f">\n' * depth
        + "</outline>" * depth
        + "</body></opml>"
    )

    expected = f"subs.opml:{depth + 1}: outlines nested more than {MAX_OPML_DEPTH} deep"
    assert _opml_problem(tmp_path, body) == expected


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            '<opml version="2.0"><body>\n<outline text="a" xmlUrl="https://e.org/rss">\n'
            "</body></opml>",
            "subs.opml:3:3: not well-formed XML: mismatched tag",
        ),
        ("", "subs.opml:1:1: not well-formed XML: no element found"),
        (
            '<?xml version="1.0"?>\n<rss version="2.0"><channel/></rss>',
            "subs.opml:2: not an OPML file: its root element is <rss>, not <opml>",
        ),
        (
            '<?xml version="1.0" encoding="GBK"?><opml><body/></opml>'.encode("gbk"),
            "subs.opml: cannot read the file's encoding (multi-byte encodings are not "
            "supported): save it as UTF-8",
        ),
    ],
)
def test_a_file_that_is_no_opml_gets_a_problem_saying_why(
    tmp_path: Path, body: str | bytes, expected: str
) -> None:
    assert _opml_problem(tmp_path, body) == expected
