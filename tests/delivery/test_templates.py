"""monitor.delivery.templates: the sandboxed Jinja2 body templates of rules and channels."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from monitor.delivery.markup import Dialect
from monitor.delivery.messages import Alert, render_alert, render_combined_alert, render_digest
from monitor.delivery.render import ArticleView
from monitor.delivery.templates import (
    TemplateProblem,
    check_template,
    pick_template,
    render_template,
    sample_articles,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
HOSTILE = "*b* _i_ [x](http://evil) <b>t</b>"
FAMILY = "👨\u200d👩\u200d👧"


def article(**changes: object) -> ArticleView:
    fields: dict[str, object] = {
        "title": "韩日关系：首脑会谈重启",
        "link": "https://www.rfi.fr/cn/a",
        "feed": "rfi-cn",
        "published": datetime(2023, 10, 5, 9, 15, tzinfo=UTC),
        "excerpt": "两国外长表示",
        "matched_terms": ("韩日", "首脑"),
        "timezone": SHANGHAI,
    }
    fields.update(changes)
    return ArticleView.create(**fields)  # type: ignore[arg-type]


def alert(**changes: object) -> Alert:
    fields: dict[str, object] = {
        "rule_name": "korea-japan",
        "title": "韩日关系：首脑会谈重启",
        "link": "https://www.rfi.fr/cn/a",
        "feed_name": "rfi-cn",
        "published": datetime(2023, 10, 5, 9, 15, tzinfo=UTC),
        "matched_terms": ("韩日",),
        "excerpt": "两国外长表示",
    }
    fields.update(changes)
    return Alert(**fields)  # type: ignore[arg-type]


def render_one(source: str, dialect: Dialect = Dialect.MARKDOWN, **changes: object) -> str:
    return render_template(source, dialect, rule="kj", articles=[article(**changes)], digest=False)


# --------------------------------------------------------------------------- variables


def test_render_template_alert_has_rule_article_fields_and_count() -> None:
    source = (
        "{{ rule }}|{{ article.title }}|{{ article.link }}|{{ article.feed }}|"
        "{{ article.published }}|{{ article.excerpt }}|{{ article.matched_terms|join('+') }}|"
        "{{ count }}|{{ articles|length }}|{{ digest }}"
    )

    assert render_one(source) == (
        "kj|韩日关系：首脑会谈重启|https://www.rfi.fr/cn/a|rfi-cn|"
        "2023-10-05 17:15 CST (UTC+08:00)|两国外长表示|韩日+首脑|1|1|False"
    )


def test_render_template_digest_has_count_and_articles_oldest_first() -> None:
    source = "{{ count }} new:{% for a in articles %}\n- {{ a.title }} ({{ a.feed }}){% endfor %}"
    articles = [article(title="第一"), article(title="第二", feed="rfi-tw")]

    body = render_template(source, Dialect.MARKDOWN, rule="kj", articles=articles, digest=True)

    assert body == "2 new:\n- 第一 (rfi-cn)\n- 第二 (rfi-tw)"


def test_render_template_per_article_template_repeats_in_a_digest() -> None:
    articles = [article(title="第一"), article(title="第二")]

    body = render_template(
        "**{{ article.title }}**", Dialect.MARKDOWN, rule="kj", articles=articles, digest=True
    )

    assert body == "**第一**\n\n**第二**"


# --------------------------------------------------------------------------- escaping


def test_render_template_values_are_escaped_for_markdown_by_default() -> None:
    body = render_one("**{{ article.title }}**", title=HOSTILE)

    assert body == r"**\*b\* \_i\_ \[x\](http://evil) \<b\>t\</b\>**"


def test_render_template_escape_filter_twice_escapes_once() -> None:
    assert render_one("{{ article.title|e|e }}", title="*x*") == r"\*x\*"
    assert render_one("{{ article.title|escape }}", title="*x*") == r"\*x\*"


def test_render_template_safe_filter_inserts_markdown_as_is() -> None:
    assert render_one("{{ '**bold**'|safe }} {{ '**b**' }}") == r"**bold** \*\*b\*\*"


def test_render_template_slack_dialect_uses_slack_escaping() -> None:
    body = render_one("{{ article.title }}", Dialect.SLACK, title=HOSTILE + " rfi_cn")

    assert body == r"∗b∗ ˍiˍ \[x\](http://evil) \<b\>t\</b\> rfi_cn"


def test_render_template_link_filter_makes_links_from_article_or_url() -> None:
    source = "{{ article|link }} {{ article.link|link }} {{ article.link|link('原文') }}"

    body = render_one(source, title="[t]")

    assert body == (
        r"[\[t\]](<https://www.rfi.fr/cn/a>) <https://www.rfi.fr/cn/a> "
        "[原文](<https://www.rfi.fr/cn/a>)"
    )


def test_render_template_link_filter_javascript_url_stays_text() -> None:
    assert render_one("{{ article|link }}", link="javascript:alert(1)", title="t") == "t"


def test_render_template_truncate_filter_never_splits_an_emoji() -> None:
    assert render_one("{{ article.title|truncate(3) }}", title="韩" + FAMILY + "日本") == (
        "韩" + FAMILY + "…"
    )


# --------------------------------------------------------------------------- sandbox


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ article.__class__.__init__.__globals__ }}",
        "{{ articles.append(1) }}",
        "{{ 'x' * 1000000 }}",
        "{{ 2 ** 100000000 }}",
    ],
)
def test_render_template_sandbox_blocks_unsafe_access(source: str) -> None:
    with pytest.raises(TemplateProblem) as raised:
        render_one(source)

    assert "unsafe" in str(raised.value) or "too" in str(raised.value)


def test_render_template_undefined_name_raises_with_its_name() -> None:
    with pytest.raises(TemplateProblem, match="'titel'"):
        render_one("{{ article.titel }}")


# --------------------------------------------------------------------------- check_template


def test_check_template_valid_template_returns_none() -> None:
    assert check_template("{{ article|link }} ({{ article.feed }})") is None
    assert check_template("{% for a in articles %}{{ a|link }}\n{% endfor %}") is None


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{{ article.title }", "unexpected '}'"),
        ("line one\n{% if x %}", "template line 2: Unexpected end of template"),
        ("{{ article.title|nosuch }}", "No filter named 'nosuch'"),
        ("{{ artcle.title }}", "'artcle' is undefined"),
        (
            "ok\n{{ article.titel }}",
            "template line 2: an article has no attribute 'titel' (it has title, link,",
        ),
        ("{{ ''.__class__ }}", "access to attribute '__class__' of 'str' object is unsafe"),
        (
            "{{ count }} {{ article.title }}",
            "in a digest: 'article' is undefined; a digest has articles and count, not article",
        ),
        ("  ", "a template must not be empty"),
        ("{% if false %}x{% endif %}", "the template renders nothing"),
    ],
)
def test_check_template_bad_template_returns_message(source: str, message: str) -> None:
    problem = check_template(source)

    assert problem is not None
    assert problem.startswith(message), problem


def test_sample_articles_fill_every_field() -> None:
    for sample in sample_articles():
        assert all(getattr(sample, name) for name in ArticleView.__dataclass_fields__)


def test_pick_template_rule_over_channel_over_default() -> None:
    assert pick_template("rule", "channel") == "rule"
    assert pick_template(None, "channel") == "channel"
    assert pick_template(None, None) is None


# --------------------------------------------------------------------------- render_alert / digest


def test_render_alert_with_template_uses_it_for_the_body() -> None:
    message = render_alert(alert(), SHANGHAI, template="📰 {{ article|link }}")

    assert message.title == "[korea-japan] 韩日关系：首脑会谈重启"
    assert message.body == "📰 [韩日关系：首脑会谈重启](<https://www.rfi.fr/cn/a>)"


def test_render_digest_with_template_uses_count_and_articles() -> None:
    alerts = [alert(title="第一"), alert(title="第二")]
    template = "{{ count }} articles: {% for a in articles %}{{ a.title }} {% endfor %}"

    message = render_digest("korea-japan", alerts, SHANGHAI, template=template)

    assert message.title == "[korea-japan] 2 new articles"
    assert message.body == "2 articles: 第一 第二"


def test_render_combined_alert_with_template_gets_every_rule_and_its_terms() -> None:
    alerts = [alert(), alert(rule_name="forced-labour", matched_terms=("强征劳工",))]
    template = (
        "{{ rule }} | {{ rules|join(' & ') }} | {{ article.matched_terms|join('+') }} | "
        "{% for name, terms in article.matched_by %}{{ name }}={{ terms|join('+') }};{% endfor %}"
    )

    message = render_combined_alert(alerts, SHANGHAI, template=template)

    assert message.title == "[korea-japan, forced-labour] 韩日关系：首脑会谈重启"
    assert message.body == (
        "korea-japan, forced-labour | korea-japan & forced-labour | 韩日+强征劳工 | "
        "korea-japan=韩日;forced-labour=强征劳工;"
    )


def test_render_alert_with_template_has_its_one_rule_in_rules() -> None:
    message = render_alert(alert(), SHANGHAI, template="{{ rules|join(',') }}/{{ rule }}")

    assert message.body == "korea-japan/korea-japan"


def test_render_alert_template_failing_at_run_time_sends_default_and_warns(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="monitor.delivery.messages")

    message = render_alert(alert(), SHANGHAI, template="{{ article.matched_terms[5] }}")

    assert message == render_alert(alert(), SHANGHAI)
    [record] = [r for r in caplog.records if r.name == "monitor.delivery.messages"]
    assert record.levelno == logging.WARNING
    assert "template failed rule=korea-japan" in record.getMessage()
    assert "sending the default message" in record.getMessage()
