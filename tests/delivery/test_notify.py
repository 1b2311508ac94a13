"""monitor.delivery messages, services, console and notify: rendering, the console plugin,
and delivery through real Apprise plugins.

E-mail and JSON go to local servers (tests/receivers.py); Telegram and Slack are checked at
the HTTP boundary: their plugins call requests.post / requests.request, which both end in
requests.Session.request, so that is what gets replaced.
"""

from __future__ import annotations

import html
import json
import logging
import re
import time
from datetime import UTC, datetime, timedelta, timezone
from html.parser import HTMLParser
from zoneinfo import ZoneInfo

import apprise
import pytest
import regex
import requests
from apprise.conversion import markdown_to_html
from receivers import SmtpReceiver, WebhookReceiver, disable_apprise_throttle

from monitor.config import ChannelConfig
from monitor.delivery.console import register_console_plugin
from monitor.delivery.markup import escape_markdown, utf16_len
from monitor.delivery.messages import (
    Alert,
    RenderedMessage,
    render_alert,
    render_combined_alert,
    render_digest,
)
from monitor.delivery.notify import Notifier, SendResult
from monitor.delivery.services import check_apprise_url

SHANGHAI = ZoneInfo("Asia/Shanghai")
PUBLISHED = datetime(2023, 10, 5, 9, 15, tzinfo=UTC)  # 17:15 in Shanghai
LINK = "https://www.rfi.fr/cn/中国/20231005-韩日关系?xtor=RSS"
TG_TOKEN = "123456789:AAHsecretBotTokenValue_xyz"
TG_CHAT = "-1001234567890"
SLACK_TOKENS = ("T1JJ3T3L2", "A1BRTD4JD", "TIiajkdnlazkcOXrIdevi7")


def make_alert(**changes: object) -> Alert:
    fields: dict[str, object] = {
        "rule_name": "korea-japan",
        "title": "韩日关系：首脑会谈重启",
        "link": LINK,
        "feed_name": "rfi-cn",
        "published": PUBLISHED,
        "matched_terms": ("韩日", "首脑"),
        "excerpt": "……两国外长表示，韩日首脑会谈将于下月重启……",
    }
    fields.update(changes)
    return Alert(**fields)  # type: ignore[arg-type]


def message(alert: Alert | None = None) -> RenderedMessage:
    return render_alert(alert or make_alert(), SHANGHAI)


def test_render_alert_makes_the_generic_body_only_when_it_is_read() -> None:
    rendered = message()

    assert rendered.given_body is None  # a service with a rendition of its own never reads it
    body = rendered.body
    assert rendered.given_body == body
    assert "韩日" in body and "首脑会谈" in body


def test_rendered_message_without_body_or_renderer_is_refused() -> None:
    with pytest.raises(ValueError, match="body or a renderer"):
        RenderedMessage("[r] title")


def all_log_text(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(record.getMessage() for record in caplog.records)


class FakeHttp:
    """Stands in for requests.Session.request: records each call, answers 200.

    Set on the class, an instance is not bound to the session: it gets (method, url, ...).
    """

    def __init__(self, content: bytes) -> None:
        self.content = content
        self.calls: list[dict[str, object]] = []

    def __call__(self, method: str, url: str, **kwargs: object) -> object:
        self.calls.append({"method": method.upper(), "url": url, **kwargs})
        response = requests.Response()
        response.status_code = 200
        response._content = self.content
        response.url = url
        response.headers["Content-Type"] = "application/json"
        return response

    def payload(self, index: int = 0) -> dict[str, object]:
        data = self.calls[index]["data"]
        assert isinstance(data, str | bytes)
        return json.loads(data)


# --------------------------------------------------------------------------- render_alert


def test_render_alert_title_has_rule_and_article_title_plain() -> None:
    rendered = message(make_alert(title="  *bold*  _x_\n[link](http://evil)  "))

    assert rendered.title == "[korea-japan] *bold* _x_ [link](http://evil)"


def test_render_combined_alert_names_every_rule_and_lists_each_rules_terms() -> None:
    alerts = [
        make_alert(),
        make_alert(rule_name="forced_labour *", matched_terms=("强征劳工", "韩日")),
    ]

    rendered = render_combined_alert(alerts, SHANGHAI)

    assert rendered.title == "[korea-japan, forced_labour *] 韩日关系：首脑会谈重启"
    lines = [line.rstrip() for line in rendered.body.splitlines()]
    assert "**Matched by korea-japan:** 韩日, 首脑" in lines
    assert "**Matched by forced_labour \\*:** 强征劳工, 韩日" in lines  # escaped
    assert "Matched:" not in rendered.body
    assert rendered.body.count("两国外长表示") == 1  # one article, one excerpt


def test_render_combined_alert_of_one_alert_is_that_alert() -> None:
    assert render_combined_alert([make_alert()], SHANGHAI).body == message().body
    assert render_combined_alert([make_alert()], SHANGHAI).title == message().title


def test_render_alert_markdown_in_article_text_is_escaped() -> None:
    hostile = "*bold* _x_ [link](http://evil) <b>tag</b> `code` ~strike~"
    rendered = message(make_alert(title=hostile, excerpt=hostile, feed_name="rfi_cn*"))

    assert r"\*bold\* \_x\_ \[link\](http://evil) \<b\>tag\</b\> \`code\` \~strike\~" in (
        rendered.body
    )
    assert "[link](http://evil)" not in rendered.body.replace(r"\[link\]", "")
    assert r"rfi_cn\*" in rendered.body  # "_" inside a word cannot emphasise
    # What the Markdown renderer Apprise uses for e-mail makes of it: the text, no markup.
    html = markdown_to_html(rendered.body)
    assert "http://evil" not in html.split('href="', 1)[-1].split('"', 1)[0]
    assert 'href="http://evil"' not in html
    assert "<em>" not in html
    assert "<b>" not in html and "<code>" not in html
    assert "*bold* _x_ [link](http://evil) &lt;b&gt;tag&lt;/b&gt; `code` ~strike~" in html


def test_render_alert_block_markers_at_excerpt_start_stay_text() -> None:
    for excerpt in ("# 标题", "- 项目", "1. 第一", "> 引用", "+ 加", "=== 线"):
        html = markdown_to_html(message(make_alert(excerpt=excerpt)).body)
        assert "<h1>" not in html and "<li>" not in html and "<blockquote>" not in html, excerpt
        assert excerpt.replace(">", "&gt;") in html, excerpt


def test_render_alert_utc_time_shows_in_asia_shanghai() -> None:
    body = message().body

    assert "2023-10-05 17:15 CST (UTC+08:00)" in body
    assert "09:15" not in body


def test_render_alert_time_in_utc_or_fixed_offset_is_labelled() -> None:
    in_utc = render_alert(make_alert(), UTC).body
    in_offset = render_alert(make_alert(), timezone(timedelta(hours=-3, minutes=-30))).body

    assert "2023-10-05 09:15 UTC" in in_utc
    assert "2023-10-05 05:45 UTC-03:30" in in_offset


def test_render_alert_body_has_feed_time_terms_excerpt_link() -> None:
    body = message().body

    assert "**Feed:** rfi-cn" in body
    assert "**Published:** 2023-10-05 17:15" in body
    assert "**Matched:** 韩日, 首脑" in body
    assert "两国外长表示，韩日首脑会谈将于下月重启" in body
    assert f"<{LINK}>" in body
    assert body.index("Feed") < body.index("Published") < body.index("两国") < body.index(LINK)


def test_render_alert_missing_time_link_and_terms_are_left_out() -> None:
    body = message(make_alert(published=None, link=None, matched_terms=(), excerpt="")).body

    assert "**Published:** unknown" in body
    assert "Matched" not in body
    assert "<" not in body


def test_render_alert_link_with_spaces_or_no_scheme_cannot_inject_markup() -> None:
    spaced = message(make_alert(link="https://example.com/a b<script>")).body
    relative = message(make_alert(link="/cn/<b>x</b>")).body

    assert "<https://example.com/a%20b%3Cscript%3E>" in spaced
    assert r"\<b\>x\</b\>" in relative
    assert "<b>" not in markdown_to_html(relative)


def test_escape_markdown_plain_text_is_unchanged() -> None:
    assert escape_markdown("韩日 relations 2023, (part 1): done!") == (
        "韩日 relations 2023, (part 1): done!"
    )


# --------------------------------------------------------------------------- console://


def test_register_console_plugin_called_twice_is_idempotent(
    caplog: pytest.LogCaptureFixture,
) -> None:
    register_console_plugin()
    with caplog.at_level(logging.WARNING, logger="apprise"):
        register_console_plugin()

    assert caplog.records == []
    assert check_apprise_url("console://") is None


def test_send_console_prints_title_then_body_then_blank_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    notifier = Notifier([ChannelConfig("console", ("console://",))])

    result = notifier.send("console", message(make_alert(excerpt="a_b *c*")))

    assert result == SendResult(ok=True, services=result.services, error="")
    out = capsys.readouterr().out
    lines = out.split("\n")
    assert lines[0] == "[korea-japan] 韩日关系：首脑会谈重启"
    assert "Feed: rfi-cn" in out
    assert "2023-10-05 17:15 CST" in out
    assert "a_b *c*" in out  # escapes resolved for a terminal
    assert LINK in out
    assert out.endswith("\n\n")


def test_send_console_output_reaches_file_descriptor(capfd: pytest.CaptureFixture[str]) -> None:
    notifier = Notifier([ChannelConfig("console", ("console://",))])

    notifier.send("console", message())

    assert "[korea-japan] 韩日关系：首脑会谈重启" in capfd.readouterr().out


def test_send_console_twice_is_not_throttled(capsys: pytest.CaptureFixture[str]) -> None:
    notifier = Notifier([ChannelConfig("console", ("console://",))])

    started = time.monotonic()
    results = [notifier.send("console", message()) for _ in range(3)]

    assert all(result.ok for result in results)
    assert time.monotonic() - started < 2.0
    assert capsys.readouterr().out.count("[korea-japan]") == 3


# --------------------------------------------------------------------------- check_apprise_url


def test_check_apprise_url_valid_urls_return_none() -> None:
    for url in (
        "console://",
        f"tgram://{TG_TOKEN}/{TG_CHAT}",
        "slack://{}/{}/{}/#news".format(*SLACK_TOKENS),
        "mailtos://user:pass@smtp.example.com?to=desk@example.com",
        "json://127.0.0.1:8080/hook",
    ):
        assert check_apprise_url(url) is None, url


def test_check_apprise_url_invalid_url_message_has_no_secret() -> None:
    problem = check_apprise_url("tgram://not-a-token-s3cr3t/")

    assert problem is not None
    assert "tgram://" in problem
    assert "s3cr3t" not in problem


def test_check_apprise_url_unknown_scheme_or_garbage_is_rejected() -> None:
    assert "nosuchservice://" in (check_apprise_url("nosuchservice://host/x") or "")
    assert check_apprise_url("just text") is not None
    assert check_apprise_url("") is not None


# --------------------------------------------------------------------------- Notifier setup


def test_notifier_init_rejected_url_raises_naming_channel_not_url() -> None:
    channels = [
        ChannelConfig("console", ("console://",)),
        ChannelConfig("me", ("console://", "tgram://s3cr3t-but-invalid")),
    ]

    with pytest.raises(ValueError) as raised:
        Notifier(channels)

    text = str(raised.value)
    assert "'me'" in text and "URL 2" in text
    assert "s3cr3t" not in text


def test_notifier_init_duplicate_or_empty_channel_raises() -> None:
    with pytest.raises(ValueError, match="twice"):
        Notifier([ChannelConfig("a", ("console://",)), ChannelConfig("a", ("console://",))])
    with pytest.raises(ValueError, match="no Apprise URL"):
        Notifier([ChannelConfig("a", ())])


def test_notifier_channel_names_in_config_order() -> None:
    notifier = Notifier(
        [ChannelConfig("team", ("console://",)), ChannelConfig("console", ("console://",))]
    )

    assert notifier.channel_names() == ("team", "console")


def test_send_unknown_channel_returns_failure() -> None:
    result = Notifier([]).send("nowhere", message())

    assert result == SendResult(ok=False, services=(), error="unknown channel 'nowhere'")


# --------------------------------------------------------------------------- e-mail


def test_send_mailto_delivers_subject_and_utf8_body() -> None:
    with SmtpReceiver() as smtp:
        notifier = Notifier([ChannelConfig("team", (smtp.mailto_url(),))])

        result = notifier.send("team", message())
        [mail] = smtp.wait_for(1, timeout_seconds=10)

    assert result.ok, result.error
    assert [s.service for s in result.services] == ["E-Mail"]
    assert mail.envelope_to == ("desk@example.org",)
    assert "[korea-japan] 韩日关系：首脑会谈重启" in mail.subject
    text = mail.part("text/plain")
    assert text is not None
    for expected in ("rfi-cn", "2023-10-05 17:15 CST", "韩日, 首脑", "两国外长表示", LINK):
        assert expected in text, expected
    html = mail.part("text/html")
    assert html is not None and "<strong>Feed:</strong>" in html
    assert mail.message["X-Application"] == "news-monitor"


def test_send_smtp_down_fails_then_succeeds_when_back(monkeypatch: pytest.MonkeyPatch) -> None:
    # One Notifier sends twice through one e-mail service object: without this, Apprise
    # sleeps 5.5 s before the second send (NotifyBase.request_rate_per_sec).
    disable_apprise_throttle(monkeypatch)
    with SmtpReceiver() as smtp:
        notifier = Notifier([ChannelConfig("team", (smtp.mailto_url(),))], timeout_seconds=10)
        smtp.stop()

        started = time.monotonic()
        down = notifier.send("team", message())
        assert time.monotonic() - started < 5

        smtp.start()
        up = notifier.send("team", message())
        smtp.wait_for(1, timeout_seconds=10)

    assert not down.ok
    assert down.error.startswith("1 of 1 services failed: E-Mail FAILURE")
    assert [s.ok for s in down.services] == [False]
    assert up.ok, up.error


# --------------------------------------------------------------------------- JSON webhooks


def test_send_json_posts_title_and_markdown_body() -> None:
    with WebhookReceiver() as hook:
        notifier = Notifier([ChannelConfig("hook", (hook.json_url("/alerts"),))])

        result = notifier.send("hook", message())
        [request] = hook.wait_for(1, timeout_seconds=10)

    assert result.ok, result.error
    assert request.method == "POST" and request.path == "/alerts"
    assert request.json["title"] == "[korea-japan] 韩日关系：首脑会谈重启"
    assert request.json["message"] == message().body
    assert request.headers["User-Agent"] == "news-monitor"


def test_send_two_urls_one_failing_reports_which_failed() -> None:
    with WebhookReceiver() as hook:
        hook.set_status(500, path="/broken")
        notifier = Notifier(
            [ChannelConfig("pair", (hook.json_url("/fine"), hook.json_url("/broken")))]
        )

        result = notifier.send("pair", message())
        hook.wait_for(2, timeout_seconds=10)

    assert not result.ok
    by_path = {s.url.split("?", 1)[0].rsplit("/", 1)[-1]: s.ok for s in result.services}
    assert by_path == {"fine": True, "broken": False}
    assert result.error.startswith("1 of 2 services failed: JSON FAILURE")
    assert "500" in result.error


def test_send_failing_service_keeps_password_out_of_logs_and_result(
    caplog: pytest.LogCaptureFixture,
) -> None:
    password = "pw-Hunter2-s3cr3t"
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="apprise")
    with WebhookReceiver() as hook:
        hook.set_status(500)
        notifier = Notifier(
            [ChannelConfig("hook", (hook.json_url("/h", user="bot", password=password),))]
        )

        result = notifier.send("hook", message())
        [request] = hook.wait_for(1, timeout_seconds=10)

    assert request.headers["Authorization"].startswith("Basic ")  # it was used...
    assert not result.ok and result.error
    assert password not in repr(result)  # ...and shown nowhere
    assert "****" in result.services[0].url
    assert caplog.records
    assert password not in all_log_text(caplog)
    [line] = [r for r in caplog.records if r.name == "monitor.delivery.notify"]
    assert line.levelno == logging.WARNING
    assert line.getMessage().startswith("notify channel=hook service=JSON url=json://bot:****@")
    assert line.getMessage().endswith(" status=FAILURE attempts=1")


def test_send_success_logs_one_info_line_per_service(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="monitor.delivery.notify")
    with WebhookReceiver() as hook:
        notifier = Notifier(
            [ChannelConfig("both", (hook.json_url("/a"), "console://"))],
        )
        notifier.send("both", message())

    lines = sorted(r.getMessage() for r in caplog.records if r.name == "monitor.delivery.notify")
    assert len(lines) == 2
    assert (
        lines[0] == "notify channel=both service=Console url=console:// status=SUCCESS attempts=1"
    )
    assert lines[1].startswith(f"notify channel=both service=JSON url=json://127.0.0.1:{hook.port}")
    assert lines[1].endswith(" status=SUCCESS attempts=1")
    assert all(
        r.levelno == logging.INFO for r in caplog.records if r.name == "monitor.delivery.notify"
    )


def test_send_channel_name_with_space_is_quoted_in_log(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.INFO, logger="monitor.delivery.notify")
    Notifier([ChannelConfig("night desk", ("console://",))]).send("night desk", message())

    [line] = [r.getMessage() for r in caplog.records if r.name == "monitor.delivery.notify"]
    assert line.startswith('notify channel="night desk" service=Console url=console://')


def test_send_service_not_answering_times_out_within_bound() -> None:
    with WebhookReceiver() as hook:
        hook.set_delay(10)
        notifier = Notifier([ChannelConfig("slow", (hook.json_url("/slow"),))], timeout_seconds=1)

        started = time.monotonic()
        result = notifier.send("slow", message())
        elapsed = time.monotonic() - started

    assert elapsed < 3
    assert not result.ok
    assert "JSON TIMEOUT" in result.error


def test_send_url_with_retry_parameter_is_tried_once() -> None:
    with WebhookReceiver() as hook:
        hook.set_status(500)
        notifier = Notifier([ChannelConfig("hook", (hook.json_url("/r") + "?retry=3&wait=0",))])

        result = notifier.send("hook", message())
        hook.wait_for(1, timeout_seconds=10)

    assert not result.ok
    assert len(hook.requests) == 1


# --------------------------------------------------------------------------- Telegram, Slack


def test_send_telegram_posts_chat_id_and_text_to_bot_api(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeHttp(b'{"ok": true, "result": {"message_id": 7}}')
    monkeypatch.setattr(requests.Session, "request", fake)
    notifier = Notifier([ChannelConfig("me", (f"tgram://{TG_TOKEN}/{TG_CHAT}",))])

    result = notifier.send("me", message())

    assert result.ok, result.error
    [call] = fake.calls
    parsed = requests.utils.urlparse(str(call["url"]))
    assert parsed.scheme == "https" and parsed.hostname == "api.telegram.org"
    assert parsed.path == f"/bot{TG_TOKEN}/sendMessage"
    payload = fake.payload()
    assert str(payload["chat_id"]) == TG_CHAT
    assert "[korea-japan] 韩日关系：首脑会谈重启" in str(payload["text"])
    assert "两国外长表示" in str(payload["text"]) and "rfi-cn" in str(payload["text"])
    [service] = result.services
    assert service.service == "Telegram"
    assert "AAHsecret" not in service.url


def test_send_telegram_token_not_in_debug_logs(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(requests.Session, "request", FakeHttp(b'{"ok": true}'))
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="apprise")
    notifier = Notifier([ChannelConfig("me", (f"tgram://{TG_TOKEN}/{TG_CHAT}",))])

    notifier.send("me", message())

    text = all_log_text(caplog)
    assert "Telegram POST URL" in text  # Apprise does log its request URL at DEBUG...
    assert "AAHsecretBotTokenValue" not in text  # ...but not the token
    assert "bot123456789" not in text


def test_send_slack_posts_channel_and_text_to_webhook(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeHttp(b"ok")
    monkeypatch.setattr(requests.Session, "request", fake)
    url = "slack://{}/{}/{}/#news".format(*SLACK_TOKENS)
    notifier = Notifier([ChannelConfig("desk-slack", (url,))])

    result = notifier.send("desk-slack", message())

    assert result.ok, result.error
    [call] = fake.calls
    parsed = requests.utils.urlparse(str(call["url"]))
    assert parsed.hostname == "hooks.slack.com"
    assert parsed.path == "/services/{}/{}/{}".format(*SLACK_TOKENS)
    payload = fake.payload()
    assert payload["channel"] == "#news"
    posted = json.dumps(payload, ensure_ascii=False)
    assert "[korea-japan] 韩日关系：首脑会谈重启" in posted
    assert "两国外长表示" in posted
    assert result.services[0].service == "Slack"
    assert SLACK_TOKENS[2] not in result.services[0].url


# --------------------------------------------------------------------------- several services


def test_send_skip_services_sends_only_to_the_others() -> None:
    with WebhookReceiver() as hook:
        notifier = Notifier([ChannelConfig("pair", (hook.json_url("/a"), hook.json_url("/b")))])

        result = notifier.send("pair", message(), skip_services=frozenset({0}))
        [request] = hook.wait_for(1, timeout_seconds=10)

    assert request.path == "/b"
    assert result.ok, result.error
    assert [(s.index, s.ok) for s in result.services] == [(1, True)]


def test_send_every_service_skipped_sends_nothing_and_is_ok() -> None:
    with WebhookReceiver() as hook:
        notifier = Notifier([ChannelConfig("one", (hook.json_url("/a"),))])

        result = notifier.send("one", message(), skip_services=frozenset({0}))

        assert hook.requests == []
    assert result == SendResult(ok=True, services=(), error="")


def test_send_results_carry_the_index_of_their_url() -> None:
    with WebhookReceiver() as hook:
        hook.set_status(500, path="/broken")
        urls = (hook.json_url("/broken"), "console://", hook.json_url("/fine"))
        notifier = Notifier([ChannelConfig("three", urls)])

        result = notifier.send("three", message())

    assert [(s.index, s.service, s.ok) for s in result.services] == [
        (0, "JSON", False),
        (1, "Console", True),
        (2, "JSON", True),
    ]
    assert result.error.startswith("1 of 3 services failed: JSON FAILURE")


def test_send_service_raising_does_not_stop_the_others(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    original = apprise.Apprise.notify

    def notify(self: apprise.Apprise, *args: object, **kwargs: object) -> object:
        if "json://" in str(self.urls()):
            raise RuntimeError("plugin exploded")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(apprise.Apprise, "notify", notify)
    with WebhookReceiver() as hook:
        notifier = Notifier([ChannelConfig("two", (hook.json_url("/a"), "console://"))])

        result = notifier.send("two", message())

    assert [(s.index, s.ok) for s in result.services] == [(0, False), (1, True)]
    assert result.error == ("1 of 2 services failed: JSON ERROR (RuntimeError: plugin exploded)")
    assert "status=ERROR" in all_log_text(caplog)


# ------------------------------------------------------------------------ hostile text per target

HOSTILE_TITLE = "[r] 5 * 3 = 15 <b>x</b> & _y_ *z* `c` ~s~ [evil](http://evil) <!channel>"
HOSTILE_EXCERPT = "# 标题 > 引用 rfi_cn **粗** <i>i</i> &amp; [a](javascript:x) ~10~20~"


class _Html(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self.tags: list[str] = []
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.hrefs += [value or "" for name, value in attrs if name == "href"]

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse_html(fragment: str) -> _Html:
    parser = _Html()
    parser.feed(fragment)
    parser.close()
    return parser


def hostile_alert(**changes: object) -> Alert:
    return make_alert(title=HOSTILE_TITLE, excerpt=HOSTILE_EXCERPT, feed_name="rfi_cn", **changes)


def telegram_send(
    monkeypatch: pytest.MonkeyPatch, rendered: RenderedMessage, url_suffix: str = ""
) -> dict[str, object]:
    fake = FakeHttp(b'{"ok": true, "result": {"message_id": 7}}')
    monkeypatch.setattr(requests.Session, "request", fake)
    notifier = Notifier([ChannelConfig("me", (f"tgram://{TG_TOKEN}/{TG_CHAT}{url_suffix}",))])

    result = notifier.send("me", rendered)

    assert result.ok, result.error
    [_call] = fake.calls
    return fake.payload()


def slack_send(monkeypatch: pytest.MonkeyPatch, rendered: RenderedMessage) -> dict[str, object]:
    fake = FakeHttp(b"ok")
    monkeypatch.setattr(requests.Session, "request", fake)
    url = "slack://{}/{}/{}/#news".format(*SLACK_TOKENS)
    notifier = Notifier([ChannelConfig("desk-slack", (url,))])

    result = notifier.send("desk-slack", rendered)

    assert result.ok, result.error
    return fake.payload()


def test_send_telegram_hostile_title_and_excerpt_arrive_as_escaped_html(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    payload = telegram_send(monkeypatch, message(hostile_alert()))

    assert payload["parse_mode"] == "HTML"
    text = str(payload["text"])
    # Telegram has no title field: the title leads the body, in bold, escaped.
    assert text.startswith("<b>[korea-japan] [r] 5 * 3 = 15 &lt;b&gt;x&lt;/b&gt; &amp; _y_")
    parsed = parse_html(text)
    assert set(parsed.tags) <= {"b", "a"}
    assert parsed.hrefs == [LINK.replace(" ", "%20")]
    visible = "".join(parsed.text)
    assert f"[korea-japan] {HOSTILE_TITLE}" in visible
    assert HOSTILE_EXCERPT in visible
    assert "Feed: rfi_cn" in visible


def test_send_telegram_digest_titles_are_links_and_escaped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    alerts = [hostile_alert(), make_alert(link="https://www.rfi.fr/cn/second")]

    payload = telegram_send(monkeypatch, render_digest("korea-japan", alerts, SHANGHAI))

    parsed = parse_html(str(payload["text"]))
    assert set(parsed.tags) <= {"b", "a"}
    assert parsed.hrefs == [LINK, "https://www.rfi.fr/cn/second"]
    visible = "".join(parsed.text)
    assert visible.startswith("[korea-japan] 2 new articles")
    assert HOSTILE_TITLE in visible and "韩日关系：首脑会谈重启" in visible
    assert "rfi_cn · 2023-10-05 17:15 CST (UTC+08:00) · matched 韩日, 首脑" in visible


def test_send_telegram_markdown_format_override_is_honoured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    payload = telegram_send(monkeypatch, message(), url_suffix="?format=markdown")

    assert str(payload["parse_mode"]).lower() == "markdown"
    assert "韩日关系：首脑会谈重启" in str(payload["text"])


def test_send_telegram_long_excerpt_fits_4096_with_link_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    family = "👨\u200d👩\u200d👧"
    # The title leads the body in Telegram: so long that the excerpt must be cut to fit.
    long_alert = make_alert(title="标题" * 1800, excerpt=("韩日首脑会谈" + family) * 2000)

    payload = telegram_send(monkeypatch, message(long_alert))

    text = str(payload["text"])
    assert utf16_len(text) <= 4096
    parsed = parse_html(text)
    assert parsed.hrefs == [LINK]
    excerpt = next(line for line in "".join(parsed.text).splitlines() if family in line)
    assert excerpt.endswith("…")
    clusters = regex.findall(r"\X", excerpt)
    assert 10 < len(clusters) < 300  # cut for the limit, not just at the usual length
    assert set(clusters) <= {*"韩日首脑会谈", family, "…"}


def test_send_telegram_big_digest_fits_and_counts_what_is_left_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    alerts = [make_alert(link=f"https://www.rfi.fr/cn/{n}", title="韩日" * 30) for n in range(150)]

    payload = telegram_send(monkeypatch, render_digest("korea-japan", alerts, SHANGHAI))

    text = str(payload["text"])
    assert utf16_len(text) <= 4096
    shown = parse_html(text).hrefs
    assert shown == [f"https://www.rfi.fr/cn/{n}" for n in range(len(shown))]
    assert f"… and {150 - len(shown)} more articles" in text


def test_send_slack_hostile_title_and_excerpt_show_as_typed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    payload = slack_send(monkeypatch, message(hostile_alert()))

    assert payload["mrkdwn"] is True
    [attachment] = payload["attachments"]  # type: ignore[misc]
    # The title is Slack plain text: only &, <, > are entities there.
    assert attachment["title"] == html.escape(f"[korea-japan] {HOSTILE_TITLE}", quote=False)
    text = attachment["text"]
    assert "\\" not in text  # Slack has no backslash escapes: people would see them
    assert "*Feed:* rfi_cn" in text
    excerpt = text.split("\n\n")[1]
    assert excerpt == (
        "# 标题 &gt; 引用 rfi_cn ∗∗粗∗∗ &lt;i&gt;i&lt;/i&gt; &amp;amp; [a](javascript:x) ∼10~20∼"
    )
    # Every "<" opens our one link; none comes from the article.
    assert re.findall(r"<[^>]*>", text) == [f"<{LINK.replace('&', '&amp;')}>"]


def test_send_slack_digest_titles_become_slack_links(monkeypatch: pytest.MonkeyPatch) -> None:
    rendered = render_digest("korea-japan", [hostile_alert()], SHANGHAI)

    payload = slack_send(monkeypatch, rendered)

    [attachment] = payload["attachments"]  # type: ignore[misc]
    assert attachment["title"] == "[korea-japan] 1 new article"
    first_line = attachment["text"].split("\n")[0]
    assert first_line == (
        f"*<{LINK.replace('&', '&amp;')}|[r] 5 * 3 = 15 &lt;b&gt;x&lt;/b&gt; &amp; ˍyˍ ∗z∗ ˋcˋ "
        "∼s∼ [evil](http://evil) &lt;!channel&gt;>*"
    )


def test_send_mailto_hostile_text_gives_plain_subject_escaped_html_and_text_part() -> None:
    with SmtpReceiver() as smtp:
        notifier = Notifier([ChannelConfig("team", (smtp.mailto_url(),))])

        result = notifier.send("team", message(hostile_alert()))
        [mail] = smtp.wait_for(1, timeout_seconds=10)

    assert result.ok, result.error
    assert mail.subject == f"[korea-japan] {HOSTILE_TITLE}"
    assert mail.message.get_content_type() == "multipart/alternative"
    html_part = mail.part("text/html")
    assert html_part is not None
    parsed = parse_html(html_part)
    assert set(parsed.tags) <= {"p", "br", "strong", "a"}
    assert parsed.hrefs == [LINK, LINK]  # the title, linked, and the link itself
    visible = "".join(parsed.text)
    assert HOSTILE_TITLE in visible and HOSTILE_EXCERPT in visible
    text = mail.part("text/plain")
    assert text is not None
    assert HOSTILE_TITLE in text and HOSTILE_EXCERPT in text and LINK in text
    assert "Published: 2023-10-05 17:15 CST (UTC+08:00)" in text


def test_send_mailto_digest_text_part_keeps_every_link() -> None:
    alerts = [make_alert(link=f"https://www.rfi.fr/cn/{n}", title=f"第{n}篇") for n in range(3)]
    with SmtpReceiver() as smtp:
        notifier = Notifier([ChannelConfig("team", (smtp.mailto_url(),))])

        result = notifier.send("team", render_digest("korea-japan", alerts, SHANGHAI))
        [mail] = smtp.wait_for(1, timeout_seconds=10)

    assert result.ok, result.error
    assert mail.subject == "[korea-japan] 3 new articles"
    text = mail.part("text/plain") or ""
    for n in range(3):
        assert f"第{n}篇" in text and f"https://www.rfi.fr/cn/{n}" in text
    assert text.index("第0篇") < text.index("第1篇") < text.index("第2篇")


def test_send_json_hostile_text_is_markdown_that_renders_as_typed() -> None:
    with WebhookReceiver() as hook:
        notifier = Notifier([ChannelConfig("hook", (hook.json_url("/alerts"),))])

        result = notifier.send("hook", message(hostile_alert()))
        [request] = hook.wait_for(1, timeout_seconds=10)

    assert result.ok, result.error
    assert request.json["title"] == f"[korea-japan] {HOSTILE_TITLE}"
    parsed = parse_html(markdown_to_html(request.json["message"]))
    assert set(parsed.tags) <= {"p", "br", "strong", "a"}
    assert parsed.hrefs == [LINK]
    assert HOSTILE_EXCERPT.replace("&amp;", "&") in "".join(parsed.text)


def test_send_console_digest_prints_titles_links_and_meta(
    capsys: pytest.CaptureFixture[str],
) -> None:
    alerts = [make_alert(title="第一"), make_alert(title="第二", link="https://x.example/2")]
    notifier = Notifier([ChannelConfig("console", ("console://",))])

    notifier.send("console", render_digest("korea-japan", alerts, SHANGHAI))

    out = capsys.readouterr().out
    assert out.startswith("[korea-japan] 2 new articles\n第一\n" + LINK + "\n")
    assert "第二\nhttps://x.example/2\nrfi-cn · 2023-10-05 17:15 CST" in out


# --------------------------------------------------------------------------- templates per target


def test_send_telegram_with_template_escapes_values_and_leads_with_title(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    template = "📰 **{{ article|link }}**\n_{{ article.feed }}_\n\n{{ article.excerpt }}"
    rendered = render_alert(hostile_alert(), SHANGHAI, template=template)

    payload = telegram_send(monkeypatch, rendered)

    assert payload["parse_mode"] == "HTML"
    parsed = parse_html(str(payload["text"]))
    assert set(parsed.tags) <= {"b", "a", "i"}
    assert parsed.hrefs == [LINK]
    visible = "".join(parsed.text)
    assert visible.startswith(f"[korea-japan] {HOSTILE_TITLE}")
    assert f"📰 {HOSTILE_TITLE}" in visible
    assert HOSTILE_EXCERPT.replace("&amp;", "&") in visible


def test_send_slack_with_template_uses_slack_escaping(monkeypatch: pytest.MonkeyPatch) -> None:
    rendered = render_alert(hostile_alert(), SHANGHAI, template="**{{ article.feed }}** {{ rule }}")

    payload = slack_send(monkeypatch, rendered)

    [attachment] = payload["attachments"]  # type: ignore[misc]
    assert attachment["text"] == "*rfi_cn* korea-japan"


def test_send_telegram_template_too_long_is_shortened_to_fit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rendered = render_alert(
        make_alert(excerpt="韩日" * 5000), SHANGHAI, template="{{ article.excerpt }}"
    )

    payload = telegram_send(monkeypatch, rendered)

    assert utf16_len(str(payload["text"])) <= 4096
    assert "韩日韩日" in str(payload["text"])


# --------------------------------------------------------------- checks and the registry

_URLS_TO_CHECK = [
    "json://localhost",
    "json://127.0.0.1:9/hook",
    "jsons://user:pass@example.org/path?x=1",
    "json://",
    "json://[bad",
    "form://example.org",
    "tgram://123456789:abcdefg_hijklmnop/12345",
    "tgram://s3cr3t-but-invalid",
    "tgram://",
    "mailto://user:pass@gmail.com",
    "mailto://",
    "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#general",
    "slack://nothing",
    "discord://4174216298/JHMHI8qBe7bk2ZwO5U711o3dV_js",
    "discord://",
    "ntfy://topic",
    "bsky://user@example.org/app-password",
    "nosuchservice://x",
]


@pytest.mark.parametrize("url", _URLS_TO_CHECK)
def test_check_apprise_url_agrees_with_apprise_registry(url: str) -> None:
    from monitor.delivery.services import _check_with_registry

    scheme = url.split("://", 1)[0]

    assert check_apprise_url(url) == _check_with_registry(scheme, url)


@pytest.mark.parametrize(
    "url",
    [
        "console://",
        "console://x",
        "CONSOLE://a/b?format=markdown",
        "console://[bad",
        "console://host:99999",
        "console://a b",
        "console://h/#frag",
        " console:// ",
    ],
)
def test_check_console_url_without_apprise_agrees_with_apprise(url: str) -> None:
    from monitor.delivery.services import _check_with_registry

    assert check_apprise_url(url) == _check_with_registry("console", url)


def test_notifier_builds_apprise_objects_only_on_first_send(capsys) -> None:
    notifier = Notifier([ChannelConfig("out", ("console://",))])
    assert notifier.channel_names() == ("out",)
    assert notifier._channels == {}  # nothing built yet

    result = notifier.send("out", RenderedMessage("[r] title", "body"))

    assert result.ok and [service.service for service in result.services] == ["Console"]
    assert "[r] title" in capsys.readouterr().out
