"""Alert and digest messages rendered for each kind of notification service.

A message is built once as a small document (paragraphs of lines of inline pieces: plain
text, strong text, links) and rendered in the dialect of each service it goes to, with the
article's own text escaped for that dialect:

- MARKDOWN: CommonMark with backslash escapes, for services that take Markdown (Discord,
  Matrix, JSON webhooks, ...). Apprise converts it further where a service needs it.
- SLACK: CommonMark shaped for Apprise's Slack converter, which turns `**b**` into `*b*`,
  `[t](<u>)` into `<u|t>`, `\\<` into `&lt;` and `&` into `&amp;`, but keeps a backslash
  before `*`, `_`, `~` and backquotes (Slack has no escape, so people would see `rfi\\_cn`).
  So article text keeps `_` and `~` inside words and `*`, `_`, `~` between spaces, where
  Slack never formats them; elsewhere they become look-alikes (∗ ˍ ∼), and backquotes ˋ,
  as the jsx-slack project does. `<`, `>`, `&` end up as entities; `[`, `]` plain.
- HTML: an HTML fragment (e-mail: Apprise adds the plain-text part it derives from it).
- TELEGRAM: Telegram's HTML subset (`<b>`, `<a>`, newlines), where only `&`, `<`, `>` need
  escaping; sent as HTML, so Telegram's Markdown v1 (which has no escape inside an entity)
  never sees article text.
- TEXT: plain text, control characters removed.

Each service also has a length limit (Apprise's body_maxlen / title_maxlen). fit_alert()
and fit_digest() shrink a message until it fits: excerpts first, cut on grapheme-cluster
boundaries (`\\X`: never inside a CJK character, an emoji or a ZWJ sequence), then the
least useful lines; a link is never cut. Lengths are counted in UTF-16 code units, the
larger of the two ways services count, after the conversion the service will apply.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, tzinfo
from enum import Enum
from urllib.parse import urlsplit

import regex

__all__ = [
    "ArticleView",
    "Dialect",
    "Rendition",
    "Target",
    "cut_graphemes",
    "escape_for",
    "escape_markdown",
    "escape_slack",
    "fit_alert",
    "fit_digest",
    "format_time",
    "graphemes",
    "link_markup",
    "markdown_message",
    "safe_url",
    "utf16_len",
]


class NotifyFormat(str, Enum):  # noqa: UP042 - the same kind of enum as Apprise
    """A body's format, as Apprise names them.

    Apprise's own `apprise.NotifyFormat` has the same values and, both being str enums,
    compares and hashes equal to these. It is not imported here because importing Apprise
    costs a tenth of a second and 7 MB, and most runs render nothing for a service.
    """

    TEXT = "text"
    HTML = "html"
    MARKDOWN = "markdown"


ELLIPSIS = "…"
ALERT_EXCERPT_GRAPHEMES = 300  # the longest excerpt an alert shows
DIGEST_EXCERPT_GRAPHEMES = 160  # per article in a digest
_DIGEST_EXCERPT_STEPS = (DIGEST_EXCERPT_GRAPHEMES, 120, 80, 40, 0)
SLACK_HEADER_MAX = 150  # Slack's limit for a header block (Apprise's ?blocks=yes mode)


class Dialect(Enum):
    MARKDOWN = "markdown"
    SLACK = "slack"
    HTML = "html"
    TELEGRAM = "telegram"
    TEXT = "text"


# --------------------------------------------------------------------------- text helpers

_WHITESPACE = re.compile(r"\s+")
_GRAPHEME = regex.compile(r"\X")


def _clean(text: str) -> str:
    """Whitespace (newlines included) collapsed to single spaces; control characters removed."""
    text = _WHITESPACE.sub(" ", text)
    if any(unicodedata.category(char) == "Cc" for char in text):
        text = "".join(char for char in text if unicodedata.category(char) != "Cc")
    return text


def one_line(text: str) -> str:
    """Text on one line: whitespace collapsed, control characters removed, ends stripped."""
    return _clean(text).strip()


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units (an emoji outside the BMP counts 2), as Telegram counts."""
    return len(text) + sum(1 for char in text if ord(char) > 0xFFFF)


def graphemes(text: str) -> list[str]:
    """Given text, return its grapheme clusters: what a reader sees as single characters
    (a CJK character, an emoji with its modifiers, a letter with its accents)."""
    return _GRAPHEME.findall(text)


def _is_dangling(cluster: str) -> bool:
    """A grapheme cluster that is only a remainder of a cut one: it starts with a combining
    mark, a zero-width joiner, a variation selector or an emoji skin-tone modifier."""
    first = cluster[0]
    return (
        unicodedata.category(first) in ("Mn", "Me", "Mc")
        or first == "\u200d"
        or 0xFE00 <= ord(first) <= 0xFE0F
        or 0x1F3FB <= ord(first) <= 0x1F3FF
    )


def repair_edges(text: str) -> str:
    """Drop what an earlier cut by code points left broken at either end of `text` (a
    combining mark without its base, a ZWJ sequence cut after its joiner)."""
    lead = ELLIPSIS if text.startswith(ELLIPSIS) else ""
    trail = ELLIPSIS if text.endswith(ELLIPSIS) and len(text) > len(lead) else ""
    core = text[len(lead) : len(text) - len(trail)]
    clusters = graphemes(core)
    while clusters and _is_dangling(clusters[0]):
        clusters.pop(0)
    if clusters and clusters[-1].endswith("\u200d"):
        clusters[-1] = clusters[-1].rstrip("\u200d")
        if not clusters[-1]:
            clusters.pop()
    return lead + "".join(clusters) + trail


def cut_graphemes(text: str, limit: int, ellipsis: str = ELLIPSIS) -> str:
    """`text` if it has at most `limit` grapheme clusters, else its first clusters and
    `ellipsis`, `limit` clusters in all. Never splits a cluster; "" for a limit below 1."""
    if limit < 1:
        return ""
    clusters = graphemes(text)
    if len(clusters) <= limit:
        return text
    kept = "".join(clusters[: max(limit - 1, 0)]).rstrip()
    return kept + ellipsis if kept else ellipsis


def grapheme_count(text: str) -> int:
    return len(graphemes(text))


# --------------------------------------------------------------------------- escaping

# Characters that can start or end Markdown structure anywhere in a line (CommonMark, GFM
# and the chat dialects Apprise converts to). `_` is handled apart: inside a word it is text.
_MD_INLINE = re.compile(r"[\\`*\[\]<>~|]")
# A line start that would open a heading, list, quote, thematic break or setext underline.
_MD_BLOCK_START = re.compile(r"^(\d{1,9})([.)])|^([#>+=-])")


def _neighbours(text: str, index: int) -> tuple[str, str]:
    before = text[index - 1] if index > 0 else ""
    after = text[index + 1] if index + 1 < len(text) else ""
    return before, after


def _inside_word(text: str, index: int) -> bool:
    before, after = _neighbours(text, index)
    return before.isalnum() and after.isalnum()


def _between_spaces(text: str, index: int) -> bool:
    before, after = _neighbours(text, index)
    return before.isspace() and after.isspace()


def escape_markdown(text: str, *, line_start: bool = True) -> str:
    """Plain text -> one line of CommonMark that shows exactly that text.

    Whitespace (newlines included) collapses to single spaces. Inline markup characters
    are backslash-escaped everywhere (`_` only outside words: `rfi_cn` cannot emphasise);
    with `line_start`, a character that would open a block (`#`, `-`, `1.`, ...) at the
    start. `&` stays: an entity in Markdown is only ever a character, never markup (and
    Python-Markdown, which Apprise uses, turns `\\&amp;` into "&" anyway).
    """
    text = _clean(text)
    out: list[str] = []
    for index, char in enumerate(text):
        if _MD_INLINE.match(char) or (char == "_" and not _inside_word(text, index)):
            out.append("\\" + char)
        else:
            out.append(char)
    escaped = "".join(out)
    if not line_start:
        return escaped
    return _MD_BLOCK_START.sub(
        lambda m: f"{m.group(1)}\\{m.group(2)}" if m.group(1) else f"\\{m.group(3)}",
        escaped,
        count=1,
    )


_SLACK_LOOKALIKE = {"*": "∗", "_": "ˍ", "~": "∼", "`": "ˋ"}
_ASCII_PUNCTUATION = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")


def escape_slack(text: str, *, line_start: bool = True) -> str:
    """Plain text -> CommonMark that Apprise's Slack converter turns into Slack mrkdwn
    showing exactly that text (see the module docstring)."""
    text = _clean(text)
    out: list[str] = []
    for index, char in enumerate(text):
        if char in "<>[]":
            out.append("\\" + char)
        elif char == "`":
            out.append(_SLACK_LOOKALIKE[char])
        elif char == "*":
            out.append(char if _between_spaces(text, index) else _SLACK_LOOKALIKE[char])
        elif char in "_~":
            safe = _inside_word(text, index) or _between_spaces(text, index)
            out.append(char if safe else _SLACK_LOOKALIKE[char])
        elif char == "\\":
            # Before punctuation (or our own markup) a backslash would escape it.
            after = text[index + 1] if index + 1 < len(text) else "*"
            out.append("⧵" if after in _ASCII_PUNCTUATION else char)
        else:
            out.append(char)
    escaped = "".join(out)
    if line_start and escaped.startswith("#"):
        escaped = "\\" + escaped  # the converter makes "# x" a bold heading
    elif line_start and escaped.startswith("\\>"):
        escaped = "\u00ad" + escaped  # "&gt;" at a line start is a quote in Slack
    return escaped


def _escape_html(text: str, *, line_start: bool = True) -> str:
    return html.escape(_clean(text), quote=True)


def _escape_telegram(text: str, *, line_start: bool = True) -> str:
    return html.escape(_clean(text), quote=False)


def _escape_text(text: str, *, line_start: bool = True) -> str:
    return _clean(text)


_ESCAPERS: dict[Dialect, Callable[..., str]] = {
    Dialect.MARKDOWN: escape_markdown,
    Dialect.SLACK: escape_slack,
    Dialect.HTML: _escape_html,
    Dialect.TELEGRAM: _escape_telegram,
    Dialect.TEXT: _escape_text,
}


def escape_for(dialect: Dialect, text: str, *, line_start: bool = True) -> str:
    """Plain text escaped for `dialect`, on one line."""
    return _ESCAPERS[dialect](text, line_start=line_start)


# --------------------------------------------------------------------------- links

# Characters a link may not carry as they are in any of the dialects: percent-encoded.
_URL_UNSAFE = frozenset(' <>"\\`|{}^')


def safe_url(url: str | None) -> str | None:
    """An http(s) URL made safe to put in any dialect's link, or None if it is not one
    (a relative path, javascript:, ...: shown as text, never as a link)."""
    if not url:
        return None
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return "".join(
        f"%{ord(char):02X}"
        if char in _URL_UNSAFE or unicodedata.category(char) in ("Cc", "Zs", "Zl", "Zp")
        else char
        for char in url
    )


def link_markup(dialect: Dialect, url: str | None, text: str | None = None) -> str:
    """A link in `dialect`: the URL itself when `text` is None; escaped text if `url` is no
    http(s) URL."""
    safe = safe_url(url)
    escape = _ESCAPERS[dialect]
    if safe is None:
        return escape(text if text else (url or ""), line_start=False)
    if dialect in (Dialect.MARKDOWN, Dialect.SLACK):
        return f"<{safe}>" if text is None else f"[{escape(text, line_start=False)}](<{safe}>)"
    if dialect in (Dialect.HTML, Dialect.TELEGRAM):
        shown = escape(text if text is not None else safe, line_start=False)
        return f'<a href="{html.escape(safe, quote=True)}">{shown}</a>'
    return safe if text is None else f"{one_line(text)}\n{safe}"


# --------------------------------------------------------------------------- documents


@dataclass(frozen=True)
class Plain:
    text: str


@dataclass(frozen=True)
class Strong:
    text: str


@dataclass(frozen=True)
class Link:
    url: str | None
    text: str | None = None  # None: show the URL
    strong: bool = False


Inline = Plain | Strong | Link
Line = tuple[Inline, ...]
Paragraph = tuple[Line, ...]
Document = tuple[Paragraph, ...]

_LINE_BREAK = {
    Dialect.MARKDOWN: "  \n",  # a hard line break in CommonMark, Python-Markdown, Telegram
    Dialect.SLACK: "\n",
    Dialect.TELEGRAM: "\n",
    Dialect.TEXT: "\n",
}


def _strong(dialect: Dialect, inner: str) -> str:
    if not inner:
        return ""
    if dialect in (Dialect.MARKDOWN, Dialect.SLACK):
        return f"**{inner}**"
    if dialect == Dialect.HTML:
        return f"<strong>{inner}</strong>"
    if dialect == Dialect.TELEGRAM:
        return f"<b>{inner}</b>"
    return inner


def _render_inline(node: Inline, dialect: Dialect, line_start: bool) -> str:
    if isinstance(node, Plain):
        return _ESCAPERS[dialect](node.text, line_start=line_start)
    if isinstance(node, Strong):
        return _strong(dialect, _ESCAPERS[dialect](node.text, line_start=False))
    markup = link_markup(dialect, node.url, node.text)
    if node.strong and dialect != Dialect.TEXT:
        return _strong(dialect, markup)
    return markup


def _render_line(line: Line, dialect: Dialect) -> str:
    return "".join(
        _render_inline(node, dialect, line_start=index == 0) for index, node in enumerate(line)
    ).rstrip()


def render_document(document: Document, dialect: Dialect) -> str:
    paragraphs = []
    for paragraph in document:
        lines = [text for text in (_render_line(line, dialect) for line in paragraph) if text]
        if not lines:
            continue
        if dialect == Dialect.HTML:
            paragraphs.append("<p>" + "<br>".join(lines) + "</p>")
        else:
            paragraphs.append(_LINE_BREAK[dialect].join(lines))
    return ("\n" if dialect == Dialect.HTML else "\n\n").join(paragraphs)


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
    ) -> ArticleView:
        return cls(
            title=one_line(title) or "(untitled)",
            link=(link or "").strip(),
            feed=one_line(feed),
            published=format_time(published, timezone) if published is not None else "unknown",
            excerpt=repair_edges(one_line(excerpt)),
            matched_terms=_terms(matched_terms),
            matched_by=tuple((one_line(rule), _terms(terms)) for rule, terms in matched_by),
        )

    def with_excerpt(self, limit: int) -> ArticleView:
        return replace(self, excerpt=cut_graphemes(self.excerpt, limit))


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
    ]
    return tuple(paragraph for paragraph in paragraphs if paragraph)


def fit_alert(target: Target, title: str, article: ArticleView) -> Rendition:
    """The default alert for `target`, shrunk to its length limit: the excerpt first, then
    the fact lines (matched, published, feed), then the title when it leads the body."""
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
    return tuple(lines)


def _digest_document(
    target: Target, title: str, articles: Sequence[ArticleView], shown: int, excerpt: int
) -> Document:
    paragraphs = [_heading(target, title)]
    paragraphs += [_digest_article(target, a.with_excerpt(excerpt)) for a in articles[:shown]]
    hidden = len(articles) - shown
    if hidden > 0:
        noun = "article" if hidden == 1 else "articles"
        paragraphs.append(((Plain(f"{ELLIPSIS} and {hidden} more {noun}"),),))
    return tuple(paragraph for paragraph in paragraphs if paragraph)


def fit_digest(target: Target, title: str, articles: Sequence[ArticleView]) -> Rendition:
    """The default digest for `target`, shrunk to its limit: shorter excerpts for every
    article first, then fewer articles ("… and N more")."""
    body_format = body_format_for(target.dialect)
    total = len(articles)

    def fits(shown: int, excerpt: int) -> bool:
        document = _digest_document(target, title, articles, shown, excerpt)
        return target.fits(render_document(document, target.dialect), body_format)

    for excerpt in _DIGEST_EXCERPT_STEPS:
        if fits(total, excerpt):
            return _finish(target, title, _digest_document(target, title, articles, total, excerpt))
    shown = _largest(1, total - 1, lambda n: fits(n, 0)) or min(total, 1)
    return _finish(target, title, _digest_document(target, title, articles, shown, 0))


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
