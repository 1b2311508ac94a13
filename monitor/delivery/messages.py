"""What an alert or a digest says: Alert, RenderedMessage and the render_* functions.

render_alert(), render_combined_alert() (one article, several rules) and render_digest()
turn matches into a RenderedMessage: a plain-text title ("[rule] article title"), a generic
Markdown body, and the means to render itself for each kind of service
(monitor.delivery.render; a `template:` through monitor.delivery.templates). Which service
takes which dialect is monitor.delivery.services' part; sending, monitor.delivery.notify's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo

from monitor.delivery.markup import Dialect, log_field, one_line
from monitor.delivery.render import (
    GENERIC_TARGET,
    ArticleView,
    Rendition,
    Target,
    fit_alert,
    fit_digest,
    markdown_message,
)
from monitor.delivery.templates import TemplateProblem, render_template

log = logging.getLogger(__name__)

__all__ = [
    "Alert",
    "RenderedMessage",
    "render_alert",
    "render_combined_alert",
    "render_digest",
]


@dataclass(frozen=True)
class Alert:
    """Everything a message is rendered from."""

    rule_name: str
    title: str  # article title, plain text
    link: str | None
    feed_name: str  # the feed's configured name
    published: datetime | None  # aware UTC
    matched_terms: tuple[str, ...]
    excerpt: str  # plain text, already cut around the first hit
    # Later articles of the article's story that the rule matched while the alert waited:
    # (feed, title, link) each, listed under it as "also: FEED title link".
    also: tuple[tuple[str, str, str | None], ...] = ()


@dataclass(frozen=True)
class RenderedMessage:
    """A message ready to send: `title` (plain text) and `body` (CommonMark, article text
    escaped) are its generic form. Built by render_alert() / render_digest(), it also knows
    how to render itself for each kind of service (HTML for e-mail, Telegram's HTML,
    Slack's mrkdwn, plain text) within the service's length limit: see for_target()."""

    title: str
    # The generic body, or None to have `renderer` make it on first use (see body).
    given_body: str | None = None
    renderer: Callable[[Target], Rendition] | None = field(
        default=None, kw_only=True, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if self.given_body is None and self.renderer is None:
            raise ValueError("a RenderedMessage needs a body or a renderer")

    @property
    def body(self) -> str:
        """The generic form's body. Made on first use when not given: a message sent only
        to services that take their own rendition never needs it (half the CPU time of
        rendering an alert)."""
        if self.given_body is None:
            # The renderer itself, not for_target: its fallback reads this property.
            rendition = self.renderer(GENERIC_TARGET)  # type: ignore[misc]
            object.__setattr__(self, "given_body", rendition.body)
        return self.given_body  # type: ignore[return-value]

    def for_target(self, target: Target) -> Rendition:
        """The title, body and format to hand to one service."""
        if self.renderer is not None:
            try:
                return self.renderer(target)
            except Exception:
                log.exception("rendering a message for a %s service failed", target.dialect.value)
        return markdown_message(target, self.title, self.body)


def _view(alert: Alert, timezone: tzinfo, *, rules: Sequence[Alert] = ()) -> ArticleView:
    """The article of `alert` as messages show it; with `rules`, the alerts of every rule
    that the message carries about it (each rule's matched terms are listed, and the later
    articles of its story that any of them matched)."""
    rules = rules or (alert,)
    return ArticleView.create(
        title=alert.title,
        link=alert.link,
        feed=alert.feed_name,
        published=alert.published,
        excerpt=alert.excerpt,
        matched_terms=[term for each in rules for term in each.matched_terms],
        timezone=timezone,
        matched_by=[(each.rule_name, each.matched_terms) for each in rules],
        also=list(dict.fromkeys(also for each in rules for also in each.also)),
    )


def render_alert(alert: Alert, timezone: tzinfo, *, template: str | None = None) -> RenderedMessage:
    """The message for one match: title "[rule] article title" and a body with the feed,
    the published time in `timezone`, the matched terms, the excerpt and the link, then
    "also: FEED title link" for each later article of its story, article text escaped for
    each service. With `template` (monitor.delivery.templates), the template makes
    the body; if it fails, the default body is used and a warning logged."""
    view = _view(alert, timezone)
    title = f"[{one_line(alert.rule_name)}] {view.title}"

    def default(target: Target) -> Rendition:
        return fit_alert(target, title, view)

    return _message(title, default, template, rule=alert.rule_name, articles=(view,), digest=False)


def render_combined_alert(
    alerts: Sequence[Alert], timezone: tzinfo, *, template: str | None = None
) -> RenderedMessage:
    """One message for one article that several rules matched (`alerts`: one per rule, the
    same article, in the order their names are shown): title "[rule-a, rule-b] article
    title", and render_alert's body with a "Matched by RULE:" line for each rule. A
    template sees the names joined by ", " as `rule` and their list as `rules`. A single
    alert is rendered by render_alert."""
    if len(alerts) == 1:
        return render_alert(alerts[0], timezone, template=template)
    view = _view(alerts[0], timezone, rules=alerts)
    names = tuple(dict.fromkeys(one_line(alert.rule_name) for alert in alerts))
    rule = ", ".join(names)
    title = f"[{rule}] {view.title}"

    def default(target: Target) -> Rendition:
        return fit_alert(target, title, view)

    return _message(
        title, default, template, rule=rule, articles=(view,), digest=False, rules=names
    )


def render_digest(
    rule_name: str, alerts: Sequence[Alert], timezone: tzinfo, *, template: str | None = None
) -> RenderedMessage:
    """One message for several matches of a rule (`alerts` oldest first): title "[rule] N
    new articles"; the body lists each article (its title as a link, feed, time, matched
    terms, a short excerpt), shortened with "… and N more" where a service's limit needs."""
    views = tuple(_view(alert, timezone) for alert in alerts)
    count = len(views)
    title = f"[{one_line(rule_name)}] {count} new {'article' if count == 1 else 'articles'}"

    def default(target: Target) -> Rendition:
        return fit_digest(target, title, views)

    return _message(title, default, template, rule=rule_name, articles=views, digest=True)


def _message(
    title: str,
    default: Callable[[Target], Rendition],
    template: str | None,
    *,
    rule: str,
    articles: tuple[ArticleView, ...],
    digest: bool,
    rules: tuple[str, ...] = (),
) -> RenderedMessage:
    if template is None:
        return RenderedMessage(title, renderer=default)
    try:
        bodies = {
            dialect: render_template(
                template, dialect, rule=rule, articles=articles, digest=digest, rules=rules
            )
            for dialect in (Dialect.MARKDOWN, Dialect.SLACK)
        }
    except TemplateProblem as problem:
        log.warning(
            "template failed rule=%s error=%s; sending the default message",
            log_field(rule),
            log_field(str(problem)),
        )
        return RenderedMessage(title, renderer=default)

    def templated(target: Target) -> Rendition:
        return _fit_templated(
            target, title, bodies, template, default, rule, articles, digest, rules
        )

    return RenderedMessage(title, bodies[Dialect.MARKDOWN], renderer=templated)


def _fit_templated(
    target: Target,
    title: str,
    bodies: dict[Dialect, str],
    template: str,
    default: Callable[[Target], Rendition],
    rule: str,
    articles: tuple[ArticleView, ...],
    digest: bool,
    rules: tuple[str, ...],
) -> Rendition:
    """A template's output for `target`; with shorter excerpts if it is too long there, or
    the default message if even that does not fit."""

    def rendition(markdown: str, slack: str) -> Rendition:
        return markdown_message(target, title, markdown, slack_body=slack)

    first = rendition(bodies[Dialect.MARKDOWN], bodies[Dialect.SLACK])
    if target.fits(first.body, first.body_format):
        return first
    for limit in (160, 80, 0):
        shorter = tuple(article.with_excerpt(limit) for article in articles)
        try:
            markdown, slack = (
                render_template(
                    template, dialect, rule=rule, articles=shorter, digest=digest, rules=rules
                )
                for dialect in (Dialect.MARKDOWN, Dialect.SLACK)
            )
        except TemplateProblem:
            break
        candidate = rendition(markdown, slack)
        if target.fits(candidate.body, candidate.body_format):
            return candidate
    log.warning(
        "template output too long rule=%s dialect=%s limit=%s; sending the default message",
        log_field(rule),
        target.dialect.value,
        target.body_limit,
    )
    return default(target)
