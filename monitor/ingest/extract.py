"""Article page bytes -> the article's main text: trafilatura, without the page's navigation,
share buttons, related links, footer or comments.

trafilatura (its own heuristics, with readability and jusText as fallbacks) is imported on
first use: it costs about 0.16 s and 28 MB, which a configuration without `fulltext:` never
pays. Extraction is CPU work; the parser processes run it beside feed parsing (PageRequest,
see parse_pool).
"""

from __future__ import annotations

import codecs
import functools
import logging
from configparser import ConfigParser
from dataclasses import dataclass

from monitor.model import ParseError

logger = logging.getLogger(__name__)

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
# A page with more elements than this is refused rather than walked. trafilatura spends some
# 0.1 ms per element (10,000 empty divs: 1.2 s, 400,000: 38 s, on the 2-core machine of
# bench/RESULTS.md) and its own MAX_TREE_SIZE does not stop that; a news article page has a
# few thousand elements.
MAX_PAGE_ELEMENTS = 20_000
# The most text kept of one page: a long article is some 20,000 characters. The cap keeps a
# page that is one huge text (a book, a log) from growing the store and every match over it.
MAX_TEXT_CHARACTERS = 100_000


@dataclass(frozen=True)
class PageRequest:
    """extract_main_text's arguments, as sent to a parser process."""

    body: bytes
    content_type: str = ""
    url: str = ""

    def parse(self) -> str:
        return extract_main_text(self.body, content_type=self.content_type, url=self.url)


def extract_main_text(body: bytes, *, content_type: str = "", url: str = "") -> str:
    """Given an article page and its response headers, return its main text, whitespace
    collapsed to single spaces. Raise ParseError if the page is not HTML, or holds no text
    that reads as an article."""
    media_type = content_type.partition(";")[0].strip().lower()
    if media_type and media_type not in HTML_TYPES:
        raise ParseError(f"not an HTML page ({media_type[:60]})")
    if not body.strip():
        raise ParseError("an empty page")
    import trafilatura

    try:
        tree = trafilatura.load_html(_decoded(body, content_type))
        if tree is None:
            raise ParseError("could not read the page as HTML")
        elements = sum(1 for _ in tree.iter())
        if elements > MAX_PAGE_ELEMENTS:
            raise ParseError(
                f"the page has too many elements ({elements}, at most {MAX_PAGE_ELEMENTS})"
            )
        text = trafilatura.extract(
            tree,
            url=url or None,
            include_comments=False,
            include_tables=True,
            deduplicate=False,
            with_metadata=False,
            config=_settings(),
        )
    except ParseError:
        raise
    # trafilatura runs heuristics over whatever markup a server sends; whatever it raises,
    # the page has no usable text and the item keeps what its feed gave.
    except Exception as error:  # noqa: BLE001
        logger.debug("extract error=%s", type(error).__name__)
        raise ParseError(f"could not read the page ({type(error).__name__})") from None
    if not text or not text.strip():
        raise ParseError("no article text found on the page")
    return " ".join(text.split())[:MAX_TEXT_CHARACTERS]


@functools.cache
def _settings() -> ConfigParser:
    """trafilatura's settings, as its documentation changes them (`use_config`)."""
    from trafilatura.settings import use_config

    settings = use_config()
    # Its timeout is a SIGALRM, which only the main thread may set: pages are extracted in
    # poll threads and parser processes, bounded by the size cap and MAX_PAGE_ELEMENTS.
    settings.set("DEFAULT", "EXTRACTION_TIMEOUT", "0")
    return settings


def _decoded(body: bytes, content_type: str) -> str | bytes:
    """The page as text when the server named its charset; otherwise the bytes, for
    trafilatura to decode by the page's own <meta charset> or by detection."""
    for parameter in content_type.split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() != "charset":
            continue
        charset = value.strip().strip("\"'")
        try:
            codecs.lookup(charset)
        except LookupError:
            return body
        return body.decode(charset, errors="replace")
    return body
