"""Text in the dialect of each kind of notification service: escaping, links, small documents.

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

Text is cut on grapheme-cluster boundaries (`\\X`: never inside a CJK character, an emoji
or a ZWJ sequence) and measured in UTF-16 code units, the larger of the two ways services
count. Fitting a message to a service's limits is monitor.delivery.render's part.
"""

from __future__ import annotations

import html
import json
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from urllib.parse import urlsplit

import regex

__all__ = [
    "Dialect",
    "Document",
    "Line",
    "Link",
    "NotifyFormat",
    "Paragraph",
    "Plain",
    "Strong",
    "cut_graphemes",
    "escape_for",
    "escape_markdown",
    "escape_slack",
    "grapheme_count",
    "graphemes",
    "link_markup",
    "log_field",
    "one_line",
    "render_document",
    "repair_edges",
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


def log_field(value: str) -> str:
    """A value for a key=value log line: as is, or double-quoted if it has spaces or quotes."""
    if value and not re.search(r"[\s\"']", value):
        return value
    return json.dumps(value, ensure_ascii=False)


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
