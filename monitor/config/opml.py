"""OPML subscription lists: reading one safely (feeds_from:), writing one (feeds export).

An OPML file comes from elsewhere (a feed reader's export, a colleague, a download), so it is
read as untrusted input. defusedxml's SAX parser refuses entity declarations and external
references before expat acts on them: no entity expansion ("billion laughs"), no external
entity or DTD read from a path or fetched from a URL (XXE). The file is read up to
MAX_OPML_BYTES and no further, outlines may nest MAX_OPML_DEPTH deep, and at most
MAX_OPML_FEEDS feeds are taken from one file, so a hostile file costs bounded time and memory.
Nothing in an OPML file is substituted: a `${...}` there could otherwise read a local
file into a URL chosen by whoever wrote the file.

Reading keeps the line of every outline (SAX has a locator; ElementTree has none), so a
problem with a feed names the file and the line as problems in YAML do.
"""

from __future__ import annotations

import xml.sax
import xml.sax.handler
import xml.sax.xmlreader
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

import defusedxml
import defusedxml.sax

MAX_OPML_BYTES = 10 * 1024 * 1024
MAX_OPML_DEPTH = 50
# Ten times the largest configuration the daemon is measured with (bench/), and far more
# than a feed reader's export holds; past it, a file is more likely a mistake or an attack.
MAX_OPML_FEEDS = 10_000


@dataclass(frozen=True)
class OpmlFeed:
    """An outline with an xmlUrl, as the file gives it."""

    name: str | None  # its text (or title) attribute, whitespace collapsed; None if neither
    url: str  # its xmlUrl, stripped, otherwise as written
    group: str | None  # its folders, outermost first, as "Outer/Inner"; None at the top
    line: int


class OpmlError(Exception):
    """The file cannot be read as OPML; `line` and `column` (1-based) when known."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column


def read_opml(path: Path) -> list[OpmlFeed]:
    """Given an OPML file, return its feeds in document order. Raise OpmlError (a message for
    people, with the line where it is known) if the file cannot be read, is too large, is
    not well-formed XML, declares entities or refers to external resources, is no OPML, or
    exceeds the nesting or feed limits."""
    try:
        with path.open("rb") as handle:
            body = handle.read(MAX_OPML_BYTES + 1)
    except OSError as error:
        raise OpmlError(f"cannot read the file: {(error.strerror or str(error)).lower()}") from None
    if len(body) > MAX_OPML_BYTES:
        raise OpmlError(
            f"the file is larger than {MAX_OPML_BYTES // (1024 * 1024)} MB: not read (an OPML "
            "subscription list is rarely more than a few hundred KB)"
        )
    return parse_opml(body)


def parse_opml(body: bytes) -> list[OpmlFeed]:
    """Given the bytes of an OPML document, return its feeds (see read_opml)."""
    handler = _OutlineHandler()
    try:
        defusedxml.sax.parseString(
            body, handler, forbid_dtd=False, forbid_entities=True, forbid_external=True
        )
    except defusedxml.EntitiesForbidden as error:
        raise OpmlError(
            f"the file declares an entity ({error.name}): refused, an OPML file needs none and "
            "entities are how XML bombs and file-reading attacks work",
            handler.line(),
        ) from None
    except defusedxml.DefusedXmlException:
        raise OpmlError(
            "the file refers to an external DTD or entity: refused, nothing outside the file "
            "is read or fetched",
            handler.line(),
        ) from None
    except xml.sax.SAXParseException as error:
        column = error.getColumnNumber()  # 0-based
        raise OpmlError(
            f"not well-formed XML: {error.getMessage()}",
            error.getLineNumber(),
            column + 1 if column is not None else None,
        ) from None
    except ValueError as error:
        # expat reads UTF-8, UTF-16, ISO-8859-1 and US-ASCII only: "multi-byte encodings
        # are not supported" for GBK, Big5, Shift_JIS.
        raise OpmlError(f"cannot read the file's encoding ({error}): save it as UTF-8") from None
    if not handler.seen_root:
        raise OpmlError("not an OPML file: no <opml> element")
    return handler.feeds


class _OutlineHandler(xml.sax.handler.ContentHandler):
    """Collects the feeds of <body>'s outlines, with the folders around each."""

    def __init__(self) -> None:
        super().__init__()
        self.feeds: list[OpmlFeed] = []
        self.seen_root = False
        self._locator: xml.sax.xmlreader.Locator | None = None
        self._in_body = 0
        # One entry per open <outline>: its folder name, or None for an outline that adds
        # no folder (a feed, or a folder without a name).
        self._open: list[str | None] = []

    def setDocumentLocator(self, locator: xml.sax.xmlreader.Locator) -> None:
        self._locator = locator

    def line(self) -> int | None:
        return self._locator.getLineNumber() if self._locator is not None else None

    def startElement(self, name: str, attrs: xml.sax.xmlreader.AttributesImpl) -> None:
        if not self.seen_root:
            if name != "opml":
                raise OpmlError(
                    f"not an OPML file: its root element is <{name[:40]}>, not <opml>", self.line()
                )
            self.seen_root = True
        if name == "body":
            self._in_body += 1
        if name != "outline" or not self._in_body:
            return
        if len(self._open) >= MAX_OPML_DEPTH:
            raise OpmlError(f"outlines nested more than {MAX_OPML_DEPTH} deep", self.line())
        attributes = _attributes(attrs)
        label = _label(attributes)
        url = attributes.get("xmlurl", "").strip()
        if url:
            if len(self.feeds) >= MAX_OPML_FEEDS:
                raise OpmlError(f"more than {MAX_OPML_FEEDS} feeds in one file", self.line())
            # A folder named "A/B" is two nested folders: "/" separates them in a group.
            folders = [
                piece.strip() for folder in self._open if folder for piece in folder.split("/")
            ]
            group = "/".join(folder for folder in folders if folder) or None
            self.feeds.append(OpmlFeed(label, url, group, self.line() or 0))
            self._open.append(None)
        else:
            self._open.append(label)

    def endElement(self, name: str) -> None:
        if name == "body" and self._in_body:
            self._in_body -= 1
        elif name == "outline" and self._in_body and self._open:
            self._open.pop()


def _attributes(attrs: xml.sax.xmlreader.AttributesImpl) -> dict[str, str]:
    """An element's attributes, names lower-cased: exporters write xmlUrl, xmlurl, XMLURL."""
    return {str(key).lower(): str(value) for key, value in attrs.items()}


def _label(attributes: dict[str, str]) -> str | None:
    for key in ("text", "title"):
        text = " ".join(attributes.get(key, "").split())
        if text:
            return text
    return None


# --------------------------------------------------------------------------- writing


@dataclass(frozen=True)
class OutlineEntry:
    """A feed to write: its name, its URL as written, the groups it is in."""

    name: str
    url: str
    groups: tuple[str, ...] = ()


def opml_text(feeds: Iterable[OutlineEntry], title: str = "news-monitor feeds") -> str:
    """Given feeds, return an OPML 2.0 document: each group a nested folder (Outer/Inner is
    Inner inside Outer), a feed in several groups under each of them, a feed in none at the
    top. Folders and feeds keep the order of the feeds' first appearance."""
    root = ElementTree.Element("opml", version="2.0")
    head = ElementTree.SubElement(root, "head")
    ElementTree.SubElement(head, "title").text = title
    body = ElementTree.SubElement(root, "body")
    folders: dict[str, ElementTree.Element] = {}

    def folder(path: str) -> ElementTree.Element:
        if path not in folders:
            parent_path, _, name = path.rpartition("/")
            parent = folder(parent_path) if parent_path else body
            folders[path] = ElementTree.SubElement(parent, "outline", text=name, title=name)
        return folders[path]

    for feed in feeds:
        for parent in [folder(group) for group in feed.groups] or [body]:
            # type="rss" for every feed, Atom and JSON Feed too: that is what OPML 2.0 and
            # the feed readers that read it expect.
            ElementTree.SubElement(
                parent, "outline", type="rss", text=feed.name, title=feed.name, xmlUrl=feed.url
            )
    ElementTree.indent(root)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        + ElementTree.tostring(root, encoding="unicode")
        + "\n"
    )
