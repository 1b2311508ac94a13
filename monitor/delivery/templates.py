"""`template:` on a rule or a channel: a Jinja2 template for the body of its messages.

The template is Jinja2 in a sandbox (jinja2.sandbox.ImmutableSandboxedEnvironment: no
access to `__class__` and other internals, no mutating lists or dicts, ranges capped, and
here also no giant `*` / `**` results) with StrictUndefined, so a misspelt name is an error
rather than an empty string. What it renders is the Markdown body of the message; the
title stays "[rule] article title" (a digest: "[rule] N new articles").

Variables:
- `rule`: the rule's name. A message that carries the alerts of several rules about one
  article (they matched it at the same moment) has their names joined by ", ", as its
  title shows them; a rule's own template is never used for such a message, only the
  channel's.
- `rules`: the names of the message's rules, as a list (a single name, except in such a message).
- `article`: the article (alerts only), with `title`, `link`, `feed` (the feed's configured
  name), `published` (formatted in the configured timezone, "unknown" if the feed gave no
  time), `excerpt`, `matched_terms` (a list: every rule's, each term once) and
  `matched_by` (a list of (rule, its matched terms) pairs, one per rule of the message) and
  `also` (the later articles of its story that the rule matched while the message waited,
  each with `feed`, `title` and `link`; empty for most).
- `articles`: every article of the message, oldest first (an alert: just `article`).
- `count`: how many articles (an alert: 1).
- `digest`: true for a digest, false for an alert.

A template that uses `article` but none of `articles`, `count` and `digest` is a
per-article template: a digest shows it once for each article, separated by blank lines.

Escaping (the choice): autoescape-like. Every `{{ ... }}` value is escaped for Markdown by
the environment's `finalize`, so article text can never add formatting or markup whatever
the template does with it. The template's own text is Markdown as written. Filters:
`e` / `escape` escape explicitly (the same escaping; applying it twice changes nothing);
`safe` / `raw` insert a value as Markdown, unescaped; `link` makes a link: `{{
article|link }}` shows the article's title, `{{ article.link|link }}` the URL, `{{
article.link|link("text") }}` that text (a link that is no http(s) URL stays text);
`truncate(n)` cuts to n characters without splitting a CJK character or an emoji. A value
turned back into plain text by another operation (`~`, a macro's output) is escaped again.
For Slack the same template is rendered with Slack's escaping (monitor.delivery.render).

Errors: check_template() compiles a template and renders it once against a sample alert
and a sample digest; config loading reports its message at the template's location. At
run time a template that still fails (or whose output cannot fit a service's length limit)
gives way to the default message, with a warning in the log: an alert is never lost to a
template.
"""

from __future__ import annotations

import traceback
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any

from monitor.delivery.markup import Dialect, cut_graphemes, escape_for, link_markup
from monitor.delivery.render import ArticleView

__all__ = [
    "TemplateProblem",
    "check_template",
    "pick_template",
    "render_template",
    "sample_articles",
]

_TEMPLATE_DIALECTS = (Dialect.MARKDOWN, Dialect.SLACK)
_MAX_OUTPUT = 100_000  # characters a `*` or `**` in a template may produce


class TemplateProblem(Exception):
    """A template that does not compile or render; str() is a message for people."""


class Safe(str):
    """Markup that finalize() leaves as it is: already escaped, or inserted with |safe."""

    __slots__ = ()


if TYPE_CHECKING:
    from jinja2 import Template, TemplateSyntaxError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

# Jinja2 is imported on first use, not with this module: messages imports this module in
# every run, but only a configuration with a `template:` ever compiles one.


@cache
def _sandbox_class() -> type[ImmutableSandboxedEnvironment]:
    from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

    class _Sandbox(ImmutableSandboxedEnvironment):
        intercepted_binops = frozenset(["*", "**"])

        def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
            if operator == "**" and isinstance(right, int) and abs(right) > 64:
                raise SecurityError("exponent too large in a template")
            if operator == "*":
                for text, times in ((left, right), (right, left)):
                    sized = isinstance(text, str | list | tuple) and isinstance(times, int)
                    if sized and len(text) * times > _MAX_OUTPUT:
                        raise SecurityError("repetition too long in a template")
            return super().call_binop(context, operator, left, right)

    return _Sandbox


@cache
def _environment(dialect: Dialect) -> ImmutableSandboxedEnvironment:
    from jinja2 import StrictUndefined

    def escape(value: Any) -> Safe:
        if isinstance(value, Safe):
            return value
        if value is None:
            return Safe("")
        return Safe(escape_for(dialect, str(value)))

    def finalize(value: Any) -> str:
        return escape(value)

    def safe(value: Any) -> Safe:
        return value if isinstance(value, Safe) else Safe("" if value is None else str(value))

    def link(value: Any, text: Any = None) -> Safe:
        if isinstance(value, ArticleView):  # {{ article|link }}: its title, linked
            value, text = value.link, value.title if text is None else text
        return Safe(link_markup(dialect, str(value or ""), None if text is None else str(text)))

    def truncate(value: Any, length: int = 255, end: str = "…") -> str:
        return cut_graphemes(str(value), int(length), end)

    environment = _sandbox_class()(
        undefined=StrictUndefined,
        autoescape=False,
        finalize=finalize,
        keep_trailing_newline=False,
    )
    environment.filters.update(
        {"e": escape, "escape": escape, "safe": safe, "raw": safe, "link": link}
    )
    environment.filters["truncate"] = truncate
    return environment


@lru_cache(maxsize=256)
def _compiled(source: str, dialect: Dialect) -> Template:
    return _environment(dialect).from_string(source)


_DIGEST_NAMES = frozenset({"articles", "count", "digest"})


@lru_cache(maxsize=256)
def _per_article(source: str) -> bool:
    """Whether a template only knows `article`: a digest then repeats it for each article."""
    from jinja2 import meta

    environment = _environment(Dialect.MARKDOWN)
    names = meta.find_undeclared_variables(environment.parse(source))
    return "article" in names and not (names & _DIGEST_NAMES)


def pick_template(rule_template: str | None, channel_template: str | None) -> str | None:
    """The template a message uses: the rule's, else the channel's, else None (the default)."""
    return rule_template if rule_template is not None else channel_template


def _context(
    rule: str, rules: Sequence[str], articles: Sequence[ArticleView], digest: bool
) -> dict[str, Any]:
    context: dict[str, Any] = {
        "rule": rule,
        "rules": list(rules),
        "articles": list(articles),
        "count": len(articles),
        "digest": digest,
    }
    if not digest and articles:
        context["article"] = articles[0]
    return context


def render_template(
    source: str,
    dialect: Dialect,
    *,
    rule: str,
    articles: Sequence[ArticleView],
    digest: bool,
    rules: Sequence[str] | None = None,
) -> str:
    """Render a template's Markdown body (Slack's escaping for Dialect.SLACK, else
    CommonMark's). `rules`: the message's rules when it has several (`rule` then names
    them all). Raise TemplateProblem if it fails."""
    from jinja2 import TemplateError, TemplateSyntaxError

    dialect = dialect if dialect in _TEMPLATE_DIALECTS else Dialect.MARKDOWN
    names = list(rules) if rules else [rule]
    try:
        template = _compiled(source, dialect)
        if digest and _per_article(source):
            pieces = (
                template.render(_context(rule, names, [one], False)).strip() for one in articles
            )
            return "\n\n".join(piece for piece in pieces if piece)
        return template.render(_context(rule, names, articles, digest)).strip()
    except TemplateSyntaxError as error:
        raise TemplateProblem(_syntax_message(error)) from None
    except TemplateError as error:  # UndefinedError, SecurityError, ...
        raise TemplateProblem(_runtime_message(error, source)) from None
    except Exception as error:  # noqa: BLE001 - any failure in a template is its problem
        raise TemplateProblem(_runtime_message(error, source)) from None


def _lines_note(source: str, line: int | None) -> str:
    return f"template line {line}: " if line is not None and "\n" in source.strip() else ""


def _syntax_message(error: TemplateSyntaxError) -> str:
    line = error.lineno if error.source is not None and "\n" in error.source.strip() else None
    return f"{_lines_note(error.source or '', line)}{error.message or 'syntax error'}".rstrip(".")


_ARTICLE_TYPE = f"'{ArticleView.__module__}.{ArticleView.__qualname__} object'"
_ARTICLE_FIELDS = "title, link, feed, published, excerpt, matched_terms, matched_by, also"


def _runtime_message(error: Exception, source: str) -> str:
    from jinja2 import TemplateError

    frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename == "<template>"]
    line = frames[-1].lineno if frames else None
    message = str(error) if isinstance(error, TemplateError) else f"{type(error).__name__}: {error}"
    if _ARTICLE_TYPE in message:
        message = message.replace(_ARTICLE_TYPE, "an article").rstrip(".")
        message += f" (it has {_ARTICLE_FIELDS})"
    return f"{_lines_note(source, line)}{message}".rstrip(".")


def sample_articles() -> tuple[ArticleView, ...]:
    """Two articles with every field filled, for checking templates."""
    from zoneinfo import ZoneInfo

    shanghai = ZoneInfo("Asia/Shanghai")
    return (
        ArticleView.create(
            title="韩日关系：首脑会谈重启",
            link="https://www.rfi.fr/cn/20231005-example",
            feed="rfi-cn",
            published=datetime(2023, 10, 5, 9, 15, tzinfo=UTC),
            excerpt="两国外长表示，韩日首脑会谈将于下月重启",
            matched_terms=("韩日", "首脑"),
            timezone=shanghai,
            matched_by=(("sample-rule", ("韩日", "首脑")),),
            also=(("rfi-tw", "韓日關係：首腦會談重啓", "https://www.rfi.fr/tw/20231005-example"),),
        ),
        ArticleView.create(
            title="强征劳工案：索赔诉讼 *再起* [更新]",
            link="https://www.rfi.fr/tw/20231006-example",
            feed="rfi-tw",
            published=datetime(2023, 10, 6, 1, 0, tzinfo=UTC),
            excerpt="二战时期强征劳工的受害者家属再次提出索赔",
            matched_terms=("强征劳工",),
            timezone=shanghai,
            matched_by=(("sample-rule", ("强征劳工",)),),
            also=(("wire", "强征劳工案再起索赔诉讼", "https://example.org/wire/20231006"),),
        ),
    )


_DIGEST_HINT = "; a digest has articles and count, not article"


def check_template(source: str) -> str | None:
    """Compile a template and render it against a sample alert and a sample digest, in
    both escaping dialects. Return None if all went well, else a message for people."""
    if not source.strip():
        return "a template must not be empty (leave the key out for the default message)"
    from jinja2 import TemplateSyntaxError

    try:
        _compiled(source, Dialect.MARKDOWN)
    except TemplateSyntaxError as error:
        return _syntax_message(error)
    articles = sample_articles()
    for digest in (False, True):
        for dialect in _TEMPLATE_DIALECTS:
            try:
                body = render_template(
                    source,
                    dialect,
                    rule="sample-rule",
                    articles=articles if digest else articles[:1],
                    digest=digest,
                )
            except TemplateProblem as problem:
                if not digest:
                    return str(problem)
                hint = _DIGEST_HINT if "'article' is undefined" in str(problem) else ""
                return f"in a digest: {problem}{hint}"
            if not body:
                return "the template renders nothing" + (" for a digest" if digest else "")
    return None
