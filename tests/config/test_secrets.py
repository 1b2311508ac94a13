"""Secrets: ${...} values encoded for their place in a URL, and masked in every output.

The end-to-end tests send through real services (a local SMTP server with logins, a local
webhook receiver, a local feed server) with secrets holding each URL character, and look
for any 4-character piece of a secret in everything the commands print, Apprise's DEBUG
lines included. Their secrets share no four characters with the rest of the output.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit

import pytest
from feed_server import FeedServer
from feeds import Item, rss
from processes import run_cli
from receivers import SmtpReceiver, WebhookReceiver

from monitor.config.secrets import (
    MASK,
    MINIMUM_MASKED_LENGTH,
    SECRETS,
    MaskingFilter,
    SecretMask,
    UrlPart,
    substitute,
    url_parts_of_references,
)
from monitor.model import ConfigError
from monitor.service.configuration import load_config

# ------------------------------------------------------------------------ URL parts


def parts_of(written: str, values: dict[str, str] | None = None) -> list[UrlPart]:
    """The URL part of each ${NAME} in `written`, whose values are `values` (default "v")."""
    values = values or {}
    literals, names = [], []
    rest = written
    while "${" in rest:
        before, _, after = rest.partition("${")
        name, _, rest = after.partition("}")
        literals.append(before)
        names.append(name)
    literals.append(rest)
    return url_parts_of_references(literals, [values.get(name, "v") for name in names])


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("mailtos://${U}:${P}@smtp.example.com:465?to=${TO}", ["USERINFO", "USERINFO", "QUERY"]),
        ("mailto://${U}@smtp.example.com/${TO}", ["USERINFO", "PATH"]),
        ("tgram://${BOT_TOKEN}/${CHAT_ID}", ["HOST", "PATH"]),
        ("slack://${A}/${B}/${C}/#${CHANNEL}", ["HOST", "PATH", "PATH", "FRAGMENT"]),
        ("json://hooks.example.com:${PORT}/news", ["HOST"]),
        ("json://bot@${HOST}/a?b=1", ["HOST"]),
        ("https://example.org/feeds/${KEY}/rss?lang=${LANG}#${F}", ["PATH", "QUERY", "FRAGMENT"]),
        ("https://example.org/rss#top?x=${F}", ["FRAGMENT"]),
        ("https://example.org?token=${T}", ["QUERY"]),
        ("${APPRISE_URL}", ["WHOLE"]),
        ("${SCHEME}://${HOST}/rss", ["WHOLE", "HOST"]),
        ("no scheme ${X}", ["WHOLE"]),
    ],
)
def test_url_parts_of_references_come_from_the_url_as_written(
    written: str, expected: list[str]
) -> None:
    assert [part.name for part in parts_of(written)] == expected


def test_url_parts_of_references_after_a_whole_url_value_follow_that_value() -> None:
    values = {"BASE": "https://user@example.org/feeds", "T": "t"}

    assert parts_of("${BASE}/rss?token=${T}", values) == [UrlPart.WHOLE, UrlPart.QUERY]


def test_url_parts_of_references_ignore_delimiters_inside_values() -> None:
    # "@" and "/" inside the first value must not make the second a host or a path.
    values = {"U": "a@b/c?d#e", "P": "x"}

    assert parts_of("json://${U}:${P}@host/p", values) == [UrlPart.USERINFO, UrlPart.USERINFO]


# ------------------------------------------------------------------------- substitute

URL_CHARACTERS = "@#/?:%& +;=,[]\\'\"é中"


def test_substitute_in_url_keeps_host_and_gives_each_value_back_exactly() -> None:
    environ = {
        "USER": f"u{URL_CHARACTERS}",
        "PASSWORD": f"p{URL_CHARACTERS}%41",
        "TO": f"t{URL_CHARACTERS}",
    }

    result = substitute(
        "mailto://${USER}:${PASSWORD}@127.0.0.1:8025/x?to=${TO}&mode=insecure",
        Path("."),
        environ,
        url=True,
    )

    assert result.problems == ()
    assert set(result.values) == set(environ.values())
    parts = urlsplit(result.text)
    assert (parts.hostname, parts.port, parts.path) == ("127.0.0.1", 8025, "/x")
    assert unquote(parts.username) == environ["USER"]
    assert unquote(parts.password) == environ["PASSWORD"]
    query = parse_qs(parts.query)
    assert query == {"to": [environ["TO"]], "mode": ["insecure"]}


def test_substitute_in_url_keeps_a_value_in_its_path_segment() -> None:
    result = substitute("slack://${A}/${B}/x", Path("."), {"A": "T0/1?2", "B": "b#c"}, url=True)

    assert result.text == "slack://T0%2F1%3F2/b%23c/x"


def test_substitute_in_url_host_keeps_port_and_telegram_token_colon() -> None:
    environ = {"TOKEN": "123456789:AAH-x_y", "HOST": "hooks.example.com:8443"}

    assert substitute("tgram://${TOKEN}/-100", Path("."), environ, url=True).text == (
        "tgram://123456789:AAH-x_y/-100"
    )
    assert substitute("json://${HOST}/news", Path("."), environ, url=True).text == (
        "json://hooks.example.com:8443/news"
    )


def test_substitute_whole_url_value_is_used_as_written() -> None:
    environ = {"APPRISE_URL": "mailto://u:p%40ss@smtp.example.com?to=a@example.com"}

    result = substitute("${APPRISE_URL}", Path("."), environ, url=True)

    assert result.text == environ["APPRISE_URL"]


def test_substitute_outside_urls_inserts_values_as_they_are() -> None:
    result = substitute("Hello ${NAME} & co", Path("."), {"NAME": "a@b /c"})

    assert result.text == "Hello a@b /c & co"


def test_substitute_missing_reference_is_left_as_written_with_a_problem() -> None:
    result = substitute("json://${A}:${B}@h/x", Path("."), {"A": "a@b"}, url=True)

    assert result.text == "json://a%40b:${B}@h/x"
    assert result.problems == ("environment variable B is not set",)
    assert result.values == ("a@b",)


# ------------------------------------------------------------------------- load_config


def write_main(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "monitor.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_load_config_secret_with_at_sign_never_changes_the_channel_host(tmp_path: Path) -> None:
    path = write_main(
        tmp_path,
        "channels:\n"
        "  mail: mailto://${SMTP_USER}:${SMTP_PASSWORD}@127.0.0.1:8025?mode=insecure"
        "&from=monitor@example.org&to=desk@example.org\n",
    )

    config = load_config(path, {"SMTP_USER": "bob", "SMTP_PASSWORD": "hunter2@corp.example"})

    [url] = config.channel("mail").urls
    parts = urlsplit(url)
    assert parts.hostname == "127.0.0.1"
    assert (unquote(parts.username), unquote(parts.password)) == ("bob", "hunter2@corp.example")
    assert config.secrets == frozenset({"bob", "hunter2@corp.example"})


def test_load_config_encodes_values_in_every_form_of_channel_and_feed_urls(
    tmp_path: Path,
) -> None:
    path = write_main(
        tmp_path,
        "feeds:\n"
        "  - name: wire\n"
        "    url: https://example.org/rss?token=${T}\n"
        "channels:\n"
        "  one: json://${T}@example.org/a\n"
        "  list: ['json://${T}@example.org/b', 'json://${T}@example.org/c']\n"
        "  full:\n"
        "    urls: json://${T}@example.org/d\n"
        "    template: 'token ${T}'\n"
        "  full-list:\n"
        "    urls: ['json://${T}@example.org/e']\n",
    )

    config = load_config(path, {"T": "a&b#c"})

    assert config.feed("wire").url == "https://example.org/rss?token=a%26b%23c"
    urls = [url for channel in config.channels for url in channel.urls if "example" in url]
    assert urls == [f"json://a%26b%23c@example.org/{path}" for path in "abcde"]
    # A template is no URL: the value goes in as it is.
    assert config.channel("full").template == "token a&b#c"


def test_load_config_whole_channel_url_from_a_secret_is_used_as_written(tmp_path: Path) -> None:
    path = write_main(tmp_path, "channels:\n  me: ${APPRISE_URL}\n")
    url = "json://bot:p%40ss@hooks.example.com/news"

    config = load_config(path, {"APPRISE_URL": url})

    assert config.channel("me").urls == (url,)


def test_load_config_problem_never_shows_a_secret_in_any_form(tmp_path: Path) -> None:
    # An unknown scheme is an error; its message must show neither the value nor its
    # encoded form.
    path = write_main(tmp_path, "channels:\n  me: nosuch://${TOKEN}/x\nfeeds: 3\n")
    secret = "Tq/Wz@Kv#Rb"

    with pytest.raises(ConfigError) as caught:
        load_config(path, {"TOKEN": secret})

    text = str(caught.value)
    assert "channels.me" in text
    assert not pieces_in(text, secret)


# ----------------------------------------------------------------------------- masking


@pytest.mark.parametrize(
    "written",
    [
        "p@ss/w#rd?x y",  # as it is
        "P@SS/W#RD?X Y",  # another case
        "p%40ss%2Fw%23rd%3Fx%20y",  # percent-encoded
        "p%40ss%2fw%23rd%3fx+y",  # lower-case hex, a space as "+"
        "p@ss%2Fw#rd%3fx y",  # partly encoded
        json.dumps("p@ss/w#rd?x y"),  # JSON
    ],
)
def test_secret_mask_masks_every_form_of_a_secret(written: str) -> None:
    mask = SecretMask(["p@ss/w#rd?x y"])

    assert mask.apply(f"before {written} after") in (
        f"before {MASK} after",
        f'before "{MASK}" after',
    )


def test_secret_mask_masks_escaped_quotes_and_backslashes() -> None:
    secret = 'it\'s "a\\b"'
    mask = SecretMask([secret])

    assert mask.apply(repr(secret)) == f"'{MASK}'"
    assert mask.apply(json.dumps(secret)) == f'"{MASK}"'


def test_secret_mask_masks_non_ascii_secret_encoded_or_escaped() -> None:
    secret = "mot-de-passé-中文"
    mask = SecretMask([secret])

    for written in (secret, quote(secret), quote(secret).lower(), json.dumps(secret)[1:-1]):
        assert mask.apply(f"<{written}>") == f"<{MASK}>", written


def test_secret_mask_masks_what_apprise_makes_of_a_user_name() -> None:
    mask = SecretMask(["alice.w@corp.example", "  padded-value  ", "tail-of-a-key-WXYZ"])

    # The e-mail plugin's sender address from the user name; a stripped query value;
    # the "..." form some plugins print for keys.
    text = "From: news-monitor <alice.w@127.0.0.1> x=padded-value key=...WXYZ"

    assert mask.apply(text) == f"From: news-monitor <{MASK}@127.0.0.1> x={MASK} key={MASK}"


def test_secret_mask_leaves_values_shorter_than_the_minimum() -> None:
    short = "x" * (MINIMUM_MASKED_LENGTH - 1)
    mask = SecretMask([short, "abcd"])

    assert mask.apply(f"{short} abcd") == f"{short} {MASK}"


def test_secret_mask_masks_a_longer_secret_whole() -> None:
    mask = SecretMask(["abcd", "abcdefgh"])

    assert mask.apply("abcdefgh abcd") == f"{MASK} {MASK}"


def test_secret_mask_update_replaces_configured_add_keeps_found() -> None:
    mask = SecretMask(["first-secret"])
    mask.add(["found-in-url"])

    mask.update(["second-secret"])

    assert mask.apply("first-secret second-secret found-in-url") == f"first-secret {MASK} {MASK}"


def test_secrets_including_masks_only_inside_the_block_and_this_thread() -> None:
    seen: list[str] = []
    with SECRETS.including(["loading-secret"]):
        inside = SECRETS.apply("x loading-secret")
        other = threading.Thread(target=lambda: seen.append(SECRETS.apply("loading-secret")))
        other.start()
        other.join()
    after = SECRETS.apply("loading-secret")

    assert inside == f"x {MASK}"
    assert seen == ["loading-secret"] and after == "loading-secret"


def test_masking_filter_masks_message_and_arguments() -> None:
    record = logging.LogRecord(
        "apprise", logging.DEBUG, "", 0, "POST %s failed: %r", ("u:s3cret-v@h", "s3cret-v"), None
    )

    MaskingFilter(SecretMask(["s3cret-v"]).apply).filter(record)

    assert record.getMessage() == f"POST u:{MASK}@h failed: '{MASK}'"


# ------------------------------------------------------------------ through the CLI


def pieces_in(text: str, secret: str, size: int = 4) -> list[str]:
    """The `size`-character pieces of `secret` found in `text`, case-insensitively."""
    folded = text.casefold()
    pieces = {secret[index : index + size] for index in range(len(secret) - size + 1)}
    return sorted(piece for piece in pieces if piece.casefold() in folded)


def credentials(character: str) -> dict[str, str]:
    """Secrets holding `character` (twice), no four characters of which occur elsewhere in
    the output. HTTP Basic auth cannot carry ":" in a user name: that one gets "@"."""
    if character == "%":  # a "%" alone, and one that looks like an escape, decoded never
        return {
            "SMTP_USER": "Yk%Wq%2FZb",
            "SMTP_PASSWORD": "Jq%Vx%41Rm",
            "HOOK_USER": "Gd%Lp%40Xc",
            "HOOK_PASSWORD": "Nf%Bt%25Hv",
            "HOOK_TOKEN": "Tz%Hw%3FPn",
            "FEED_TOKEN": "Ej%Mk%26Uy",
        }
    if character == " ":  # spaces inside, and around
        return {
            "SMTP_USER": "Yk Wq Zb",
            "SMTP_PASSWORD": " Jq Vx Rm ",
            "HOOK_USER": "Gd Lp Xc",
            "HOOK_PASSWORD": " Nf Bt Hv ",
            "HOOK_TOKEN": "Tz Hw Pn",
            "FEED_TOKEN": " Ej Mk Uy ",
        }
    hook_user_character = "@" if character == ":" else character
    return {
        "SMTP_USER": f"Yk{character}Wq{character}Zb",
        "SMTP_PASSWORD": f"Jq{character}Vx{character}Rm",
        "HOOK_USER": f"Gd{hook_user_character}Lp{hook_user_character}Xc",
        "HOOK_PASSWORD": f"Nf{character}Bt{character}Hv",
        "HOOK_TOKEN": f"Tz{character}Hw{character}Pn",
        "FEED_TOKEN": f"Ej{character}Mk{character}Uy=+;",
    }


def secret_config(
    write_config, server: FeedServer, smtp: SmtpReceiver, hook: WebhookReceiver
) -> Path:
    server.add_feed("/wire", rss([Item("韩日外长会谈", link="https://example.org/wire/1")]))
    return write_config(
        feeds={
            "wire": {"url": server.url("/wire") + "?token=${FEED_TOKEN}", "notify_existing": True}
        },
        channels={
            "both": [
                f"mailto://${{SMTP_USER}}:${{SMTP_PASSWORD}}@127.0.0.1:{smtp.port}"
                "?mode=insecure&from=monitor@example.org&to=desk@example.org",
                f"json://${{HOOK_USER}}:${{HOOK_PASSWORD}}@127.0.0.1:{hook.port}"
                "/hooks/${HOOK_TOKEN}",
            ]
        },
        rules=[{"name": "watch", "any": ["韩日"], "notify": ["both"]}],
    )


def assert_delivered_exactly(
    secrets: dict[str, str], smtp: SmtpReceiver, hook: WebhookReceiver, count: int
) -> None:
    mail = smtp.wait_for(count)[count - 1]
    assert mail.login == (secrets["SMTP_USER"], secrets["SMTP_PASSWORD"])
    assert mail.envelope_to == ("desk@example.org",)
    request = hook.wait_for(count)[count - 1]
    scheme, _, encoded = request.headers["Authorization"].partition(" ")
    assert scheme == "Basic"
    assert base64.b64decode(encoded).decode() == (
        f"{secrets['HOOK_USER']}:{secrets['HOOK_PASSWORD']}"
    )
    assert unquote(urlsplit(request.path).path) == f"/hooks/{secrets['HOOK_TOKEN']}"


@pytest.mark.parametrize("character", ["@", "#", "/", "?", ":", "%", "&", " "])
def test_secrets_with_url_characters_reach_services_exactly_and_never_an_output(
    character: str, tmp_path: Path, write_config, server: FeedServer, hook: WebhookReceiver
) -> None:
    secrets = credentials(character)
    with SmtpReceiver(logins={secrets["SMTP_USER"]: secrets["SMTP_PASSWORD"]}) as smtp:
        config = str(secret_config(write_config, server, smtp, hook))

        run = run_cli("--verbose", "run", "--once", "--config", config, cwd=tmp_path, env=secrets)
        assert run.returncode == 0, run.stderr
        assert_delivered_exactly(secrets, smtp, hook, count=1)
        [target] = server.targets
        assert parse_qs(urlsplit(target).query) == {"token": [secrets["FEED_TOKEN"]]}

        test = run_cli("--verbose", "notify", "test", "both", "--config", config, cwd=tmp_path,
                       env=secrets)  # fmt: skip
        assert test.returncode == 0, test.stderr
        assert_delivered_exactly(secrets, smtp, hook, count=2)

    status = run_cli("status", "--config", config, cwd=tmp_path, env=secrets)
    status_json = run_cli("status", "--json", "--config", config, cwd=tmp_path, env=secrets)
    # The check below covers Apprise's own lines: they are there.
    assert "DEBUG apprise: " in run.stderr and "DEBUG apprise: " in test.stderr
    outputs = {
        "run": run.stdout + run.stderr,
        "notify test": test.stdout + test.stderr,
        "status": status.stdout + status.stderr,
        "status --json": status_json.stdout + status_json.stderr,
    }
    for name, secret in secrets.items():
        for command, output in outputs.items():
            assert not pieces_in(output, secret), (name, command, pieces_in(output, secret))


def test_feed_token_in_redirects_and_errors_never_reaches_an_output(
    tmp_path: Path, write_config, server: FeedServer
) -> None:
    token = "Ej&Mk#Uy/Qo?Ws"
    encoded = quote(token, safe="").lower()  # the server writes its own form of the token
    server.add_redirect("/old", f"/moved?token={encoded}", status=301)
    server.add_feed("/moved", rss([Item("韩日", link="https://example.org/1")]))
    server.set_response("/down", 500, b"token " + token.encode())
    config = str(
        write_config(
            feeds={
                "moved": server.url("/old") + "?token=${FEED_TOKEN}",
                "down": server.url("/down") + "?key=${FEED_TOKEN}",
            },
        )
    )
    env = {"FEED_TOKEN": token}

    run = run_cli("--verbose", "run", "--once", "--config", config, cwd=tmp_path, env=env)
    status = run_cli("status", "--json", "--config", config, cwd=tmp_path, env=env)

    assert run.returncode == 0, run.stderr
    feeds = {feed["name"]: feed for feed in json.loads(status.stdout)["feeds"]}
    assert feeds["moved"]["redirected_to"] and feeds["down"]["error"]
    assert "moved_permanently_to" in run.stderr
    for output in (run.stdout, run.stderr, status.stdout, status.stderr):
        assert not pieces_in(output, token), pieces_in(output, token)
        assert not pieces_in(output, encoded), pieces_in(output, encoded)
