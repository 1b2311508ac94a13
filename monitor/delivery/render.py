"""Alert and digest messages rendered for each kind of notification service.

The pieces of each dialect (escaping, links, the small documents messages are built as)
are in monitor.delivery.markup; here a message is laid out and fitted to a service.

Each service has a length limit (Apprise's body_maxlen / title_maxlen). fit_alert() and
fit_digest() shrink a message until it fits: excerpts first, cut on grapheme-cluster
boundaries (`\\X`: never inside a CJK character, an emoji or a ZWJ sequence), then the
least useful lines; a link is never cut. Lengths are counted in UTF-16 code units, the
larger of the two ways services count, after the conversion the service will apply.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, tzinfo

from monitor.delivery.markup import (
    ELLIPSIS,
    Dialect,
    Document,
    Line,
    Link,
    NotifyFormat,
    Paragraph,
    Plain,
    Strong,
    cut_graphemes,
    escape_for,
    grapheme_count,
    graphemes,
    one_line,
    render_document,
    repair_edges,
    safe_url,
    utf16_len,
)

__all__ = [
    "GENERIC_TARGET",
    "SLACK_HEADER_MAX",
    "AlsoView",
    "ArticleView",
    "Rendition",
    "Target",
    "fit_alert",
    "fit_digest",
    "format_time",
    "markdown_message",
    "markdown_to_text",
]

ALERT_EXCERPT_GRAPHEMES = 300  # the longest excerpt an alert shows
DIGEST_EXCERPT_GRAPHEMES = 160  # per article in a digest
_DIGEST_EXCERPT_STEPS = (DIGEST_EXCERPT_GRAPHEMES, 120, 80, 40, 0)
SLACK_HEADER_MAX = 150  # Slack's limit for a header block (Apprise's ?blocks=yes mode)


# --------------------------------------------------------------------------- times


def _format_offset(offset: timedelta) -> str:
    total_minutes = int(offset.total_seconds() // 60)
    sign = "+" if total_minutes >= 0 else "-"
    hours, minutes = divmod(abs(total_minutes), 60)
    return f"UTC{sign}{hours:02d}:{minutes:02d}"


def format_time(moment: datetime, timezone: tzinfo) -> str:
    """'2023-10-05 17:15 CST (UTC+08:00)'; '2023-10-05 09:15 UTC' for UTC itself."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        moment = moment.replace(tzinfo=UTC)  # contract says aware UTC; be lenient
    local = moment.astimezone(timezone)
    offset = local.utcoffset() or timedelta(0)
    offset_text = _format_offset(offset)
    name = local.tzname() or ""
    stamp = local.strftime("%Y-%m-%d %H:%M")
    if not offset and name in ("UTC", "GMT", "Z", "UTC+00:00", ""):
        return f"{stamp} UTC"
    if not name or name == offset_text:
        return f"{stamp} {offset_text}"
    return f"{stamp} {name} ({offset_text})"


# --------------------------------------------------------------------------- views


@dataclass(frozen=True)
class AlsoView:
    """A later article of the story, listed under the article that alerted: "also: FEED
    title link" (templates: `article.also`, items with `feed`, `title`, `link`)."""

    feed: str
    title: str
    link: str


@dataclass(frozen=True)
class ArticleView:
    """One article as messages and templates show it: plain text, times already formatted."""

    title: str
    link: str
    feed: str
    published: str  # in the configured timezone, "unknown" when the feed gave none
    excerpt: str
    matched_terms: tuple[str, ...]  # of every rule of the message, each term once
    # (rule, its matched terms) for each rule of the message: several when one message
    # carries the alerts of several rules about this article.
    matched_by: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # Later articles of its story that the rule matched while this message waited.
    also: tuple[AlsoView, ...] = ()

    @classmethod
    def create(
        cls,
        *,
        title: str,
        link: str | None,
        feed: str,
        published: datetime | None,
        excerpt: str,
        matched_terms: Sequence[str],
        timezone: tzinfo,
        matched_by: Sequence[tuple[str, Sequence[str]]] = (),
        also: Sequence[tuple[str, str, str | None]] = (),
    ) -> ArticleView:
        """`also`: (feed, title, link) of each later article of the story to list."""
        return cls(
            title=one_line(title) or "(untitled)",
            link=(link or "").strip(),
            feed=one_line(feed),
            published=format_time(published, timezone) if published is not None else "unknown",
            excerpt=repair_edges(one_line(excerpt)),
            matched_terms=_terms(matched_terms),
            matched_by=tuple((one_line(rule), _terms(terms)) for rule, terms in matched_by),
            also=tuple(
                AlsoView(one_line(feed), one_line(title) or "(untitled)", (link or "").strip())
                for feed, title, link in also
            ),
        )

    def with_excerpt(self, limit: int) -> ArticleView:
        return replace(self, excerpt=cut_graphemes(self.excerpt, limit))

    def with_also(self, count: int) -> ArticleView:
        """The same article listing only the first `count` later articles of its story."""
        return replace(self, also=self.also[:count])


def _terms(terms: Sequence[str]) -> tuple[str, ...]:
    """Terms on one line each, empty ones dropped, each once, in order."""
    return tuple(dict.fromkeys(one_line(term) for term in terms if one_line(term)))


# --------------------------------------------------------------------------- targets


@dataclass(frozen=True)
class Target:
    """How one service takes a message.

    `measure(body, body_format)` gives the length the service counts for a body declared
    in that format (after Apprise's conversion); `body_limit` / `title_limit` are in its
    units. `title_in_body`: the service has no title field, the title leads the body.
    """

    dialect: Dialect
    title_in_body: bool = False
    body_limit: int | None = None
    title_limit: int | None = None
    measure: Callable[[str, NotifyFormat], int] = lambda body, _format: utf16_len(body)

    def fits(self, body: str, body_format: NotifyFormat) -> bool:
        return self.body_limit is None or self.measure(body, body_format) <= self.body_limit

    def cut_title(self, title: str) -> str:
        if self.title_limit is None or utf16_len(title) <= self.title_limit:
            return title
        kept: list[str] = []
        used = utf16_len(ELLIPSIS)
        for cluster in graphemes(title):
            used += utf16_len(cluster)
            if used > self.title_limit:
                break
            kept.append(cluster)
        return "".join(kept).rstrip() + ELLIPSIS


GENERIC_TARGET = Target(Dialect.MARKDOWN)


def body_format_for(dialect: Dialect) -> NotifyFormat:
    if dialect in (Dialect.HTML, Dialect.TELEGRAM):
        return NotifyFormat.HTML
    if dialect == Dialect.TEXT:
        return NotifyFormat.TEXT
    return NotifyFormat.MARKDOWN


@dataclass(frozen=True)
class Rendition:
    """What goes to one service: title (plain text, "" when it leads the body) and body."""

    title: str
    body: str
    body_format: NotifyFormat


def _heading(target: Target, title: str) -> Paragraph:
    return ((Strong(title),),) if target.title_in_body else ()


def _largest(low: int, high: int, fits: Callable[[int], bool]) -> int | None:
    """The largest k in [low, high] with fits(k), fits being monotone; None if none fits."""
    if high < low or not fits(low):
        return None
    while low < high:
        middle = (low + high + 1) // 2
        if fits(middle):
            low = middle
        else:
            high = middle - 1
    return low


def _finish(target: Target, title: str, document: Document) -> Rendition:
    return _rendition(target, title, render_document(document, target.dialect))


def _rendition(target: Target, title: str, body: str) -> Rendition:
    return Rendition(
        title="" if target.title_in_body else target.cut_title(title),
        body=body,
        body_format=body_format_for(target.dialect),
    )


# --------------------------------------------------------------------------- alerts


def _fact_lines(article: ArticleView) -> list[Line]:
    """Feed, published time and matched terms; a line per rule when several rules share
    the message."""
    lines: list[Line] = [
        (Strong("Feed:"), Plain(" " + article.feed)),
        (Strong("Published:"), Plain(" " + article.published)),
    ]
    if len(article.matched_by) > 1:
        for rule, terms in article.matched_by:
            lines.append((Strong(f"Matched by {rule}:"), Plain(" " + ", ".join(terms))))
    elif article.matched_terms:
        lines.append((Strong("Matched:"), Plain(" " + ", ".join(article.matched_terms))))
    return lines


def _alert_document(
    target: Target, title: str, article: ArticleView, facts: int | None = None
) -> Document:
    """The alert's paragraphs, with the first `facts` fact lines (all when None)."""
    fact_lines = _fact_lines(article)
    lead: Paragraph = ()
    if target.dialect == Dialect.HTML and safe_url(article.link):
        lead = ((Link(article.link, article.title, strong=True),),)  # e-mail: the title, linked
    paragraphs: list[Paragraph] = [
        _heading(target, title),
        lead,
        tuple(fact_lines if facts is None else fact_lines[:facts]),
        ((Plain(article.excerpt),),) if article.excerpt else (),
        ((Link(article.link),),) if article.link else (),
        _also_lines(article),
    ]
    return tuple(paragraph for paragraph in paragraphs if paragraph)


def _also_lines(article: ArticleView) -> Paragraph:
    """ "also: FEED title link" for each later article of the story."""
    return tuple(
        (Plain(f"also: {also.feed} {also.title} "), Link(also.link))
        if also.link
        else (Plain(f"also: {also.feed} {also.title}"),)
        for also in article.also
    )


def fit_alert(target: Target, title: str, article: ArticleView) -> Rendition:
    """The default alert for `target`, shrunk to its length limit: the excerpt first, then
    the later articles of its story ("also"), then the fact lines (matched, published,
    feed), then the title when it leads the body."""
    body_format = body_format_for(target.dialect)

    def body(article_: ArticleView, facts: int | None = None, title_: str = title) -> Document:
        return _alert_document(target, title_, article_, facts)

    def fits(document: Document) -> bool:
        return target.fits(render_document(document, target.dialect), body_format)

    full = article.with_excerpt(ALERT_EXCERPT_GRAPHEMES)
    # Most alerts fit whole: render them once, for the test and the message both.
    rendered = render_document(body(full), target.dialect)
    if target.fits(rendered, body_format):
        return _rendition(target, title, rendered)
    limit = _largest(0, grapheme_count(full.excerpt), lambda n: fits(body(article.with_excerpt(n))))
    if limit is not None:
        return _finish(target, title, body(article.with_excerpt(limit)))
    bare = article.with_excerpt(0)
    if bare.also:
        kept_also = _largest(0, len(bare.also) - 1, lambda n: fits(body(bare.with_also(n))))
        if kept_also is not None:
            return _finish(target, title, body(bare.with_also(kept_also)))
        bare = bare.with_also(0)
    for facts in range(len(_fact_lines(article)) - 1, -1, -1):
        if fits(body(bare, facts)):
            return _finish(target, title, body(bare, facts))
    clusters = grapheme_count(title)
    kept = _largest(1, clusters, lambda n: fits(body(bare, 0, cut_graphemes(title, n))))
    return _finish(target, title, body(bare, 0, cut_graphemes(title, kept or 1)))


# --------------------------------------------------------------------------- digests


def _digest_article(target: Target, article: ArticleView) -> Paragraph:
    head: Line = (
        (Link(article.link, article.title, strong=True),)
        if safe_url(article.link)
        else (Strong(article.title),)
    )
    meta = [article.feed, article.published]
    if article.matched_terms:
        meta.append("matched " + ", ".join(article.matched_terms))
    lines: list[Line] = [head, (Plain(" · ".join(meta)),)]
    if article.excerpt:
        lines.append((Plain(article.excerpt),))
    if target.dialect == Dialect.HTML and safe_url(article.link):
        # E-mail's plain-text part (derived from this HTML) keeps only a link's text.
        lines.append((Link(article.link),))
    lines.extend(_also_lines(article))
    return tuple(lines)


def _digest_document(
    target: Target,
    title: str,
    articles: Sequence[ArticleView],
    shown: int,
    excerpt: int,
    also: bool = True,
) -> Document:
    """The digest's paragraphs: the first `shown` articles with excerpts cut to `excerpt`
    graphemes, and the later articles of their stories unless `also` is False."""
    paragraphs = [_heading(target, title)]
    paragraphs += [
        _digest_article(
            target, a.with_excerpt(excerpt) if also else a.with_excerpt(excerpt).with_also(0)
        )
        for a in articles[:shown]
    ]
    hidden = len(articles) - shown
    if hidden > 0:
        noun = "article" if hidden == 1 else "articles"
        paragraphs.append(((Plain(f"{ELLIPSIS} and {hidden} more {noun}"),),))
    return tuple(paragraph for paragraph in paragraphs if paragraph)


def fit_digest(target: Target, title: str, articles: Sequence[ArticleView]) -> Rendition:
    """The default digest for `target`, shrunk to its limit: shorter excerpts for every
    article first, then without the later articles of their stories ("also"), then fewer
    articles ("… and N more")."""
    body_format = body_format_for(target.dialect)
    total = len(articles)

    def fits(shown: int, excerpt: int, also: bool = True) -> bool:
        document = _digest_document(target, title, articles, shown, excerpt, also)
        return target.fits(render_document(document, target.dialect), body_format)

    for excerpt in _DIGEST_EXCERPT_STEPS:
        if fits(total, excerpt):
            return _finish(target, title, _digest_document(target, title, articles, total, excerpt))
    if any(article.also for article in articles) and fits(total, 0, also=False):
        return _finish(target, title, _digest_document(target, title, articles, total, 0, False))
    shown = _largest(1, total - 1, lambda n: fits(n, 0, also=False)) or min(total, 1)
    return _finish(target, title, _digest_document(target, title, articles, shown, 0, False))


# --------------------------------------------------------------------------- Markdown bodies


def markdown_to_text(body: str) -> str:
    """A CommonMark body as plain text (what a terminal or an SMS shows)."""
    from apprise.conversion import html_to_text, markdown_to_html

    try:
        text = html_to_text(markdown_to_html(body))
    except Exception:  # noqa: BLE001 - the Markdown itself is still readable
        return body
    text = "\n".join(line.strip() for line in text.splitlines()).strip()
    return re.sub(r"^>\n", "> ", text, flags=re.MULTILINE)  # a quote's first line


def markdown_message(target: Target, title: str, body: str, *, slack_body: str = "") -> Rendition:
    """A message whose body is already CommonMark (a template's output, or a message built
    elsewhere) for `target`: HTML for HTML services and Telegram (converted here, so that
    Telegram's Markdown v1 never sees it), plain text for text services, Markdown for the
    rest (Apprise converts it to their dialect; `slack_body`, the same body with Slack's
    escaping, goes to Slack). The title leads the body, escaped, when the service has no
    title field."""
    shown_title = "" if target.title_in_body else target.cut_title(title)
    if target.dialect == Dialect.TEXT:
        text = markdown_to_text(body)
        if target.title_in_body:
            text = f"{one_line(title)}\n\n{text}"
        return Rendition(shown_title, text, NotifyFormat.TEXT)
    if target.dialect in (Dialect.HTML, Dialect.TELEGRAM):
        from apprise.conversion import markdown_to_html

        html_body = markdown_to_html(body)
        if target.title_in_body:
            heading = render_document(((((Strong(title),),),)), target.dialect)
            html_body = f"{heading}\n{html_body}"
        return Rendition(shown_title, html_body, NotifyFormat.HTML)
    dialect = Dialect.SLACK if target.dialect == Dialect.SLACK else Dialect.MARKDOWN
    if dialect == Dialect.SLACK and slack_body:
        body = slack_body
    if target.title_in_body:
        body = f"**{escape_for(dialect, title, line_start=False)}**\n\n{body}"
    return Rendition(shown_title, body, NotifyFormat.MARKDOWN)
