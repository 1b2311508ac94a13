"""Regional vocabulary: Taiwan and Mainland words for one thing (軟體/软件, 資訊/信息).

Traditional-to-Simplified folding (text.py) leaves the two vocabularies apart: t2s turns 軟體
into 软体, not 软件. OpenCC's phrase dictionaries know the words: tw2sp ("Taiwan to
Simplified, with phrases") writes Taiwan words as the Mainland does (軟體 -> 软件, 滑鼠 ->
鼠标) and leaves Simplified text as it is; s2twp does the reverse (软件 -> 軟體).

The text is still folded by text.normalize() alone, so every offset and every match of
before stays. Each rule term gets, at compile time, its *regional reading*: its Mainland form
and its variants, the other spellings that also find it (regional_readings). A variant found
in an article counts only if the article, read in its own vocabulary, says the term there
(ArticleVocabulary.stands_for):

- Simplified text is Mainland vocabulary: a variant counts only if it is the term's Mainland
  form (軟體 finds 软件). 软件's variant 软体 does not count in 软体动物 (a mollusc), nor
  视频's variant 影片 in 这部影片 (a film).
- Other text (Traditional, or with as few characters of one script as of the other, as in
  AI伺服器需求旺) is read as Taiwan vocabulary, with OpenCC's phrases deciding in context:
  the variant counts if tw2sp of the text around it holds the term's Mainland form.
  軟體公司 is 软件公司 there, 軟體動物 is 软体动物.

A term has a Taiwan reading when tw2sp changes it and s2twp takes the result back to it
(軟體 -> 软件 -> 軟體, 滑鼠 -> 鼠标 -> 滑鼠), unless s2twp changes the term itself: then it is
a Mainland word (程序, whose Taiwan form is 程式) and keeps its Mainland meaning. 行程
(tw2sp: 进程, but s2twp(进程) is 程序) keeps its own too. A word of both places that
OpenCC knows only as Taiwan's (智慧: wisdom on the Mainland, 智能 in Taiwan) is read both
ways: nothing in the dictionaries tells which the rule meant. A /regex/ has no variants.
"""

from __future__ import annotations

import itertools
import logging
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import opencc

from monitor.matching.query import parse_term
from monitor.matching.text import (
    is_cjk_char,
    maps_one_to_one,
    normalize,
    normalize_noting_traditional,
    normalize_with_origins,
    original_span,
    to_simplified,
)
from monitor.model import ARTICLE_FIELDS, Article

logger = logging.getLogger(__name__)

_tw2sp: opencc.OpenCC | None = None
_tw2sp_lock = threading.Lock()

# Characters of original text on each side of a variant that tw2sp sees with it: enough
# for the phrases that decide (軟體動物), few enough not to reach a neighbouring word's.
CONTEXT_CHARACTERS = 3

# How long the OpenCC command may take to convert a rule set's terms (32,000 terms of
# 10,000 rules take about 0.3 s).
CONVERT_TIMEOUT_SECONDS = 120

SIMPLIFIED, TRADITIONAL, UNKNOWN = "simplified", "traditional", "unknown"


def _taiwan_to_mainland() -> opencc.OpenCC:
    """Return the one shared tw2sp converter (about 4 MB), created on first use."""
    global _tw2sp
    if _tw2sp is None:
        with _tw2sp_lock:
            if _tw2sp is None:
                _tw2sp = opencc.OpenCC("tw2sp")
    return _tw2sp


def fold_vocabulary(text: str) -> str:
    """Given text, return it in Mainland vocabulary and Simplified script, normalised.

    軟體 and 软件 both become 软件, 資訊 becomes 信息; the length may change (記憶體 -> 内存),
    so offsets into the result do not point into text: this is for comparing texts (story
    grouping), not for showing where a term matched.
    """
    if not text:
        return ""
    try:
        mainland = _taiwan_to_mainland().convert(text)
    except UnicodeEncodeError:
        # OpenCC takes UTF-8, which cannot carry lone surrogates (broken input).
        mainland = _taiwan_to_mainland().convert(text.encode("utf-8", "replace").decode("utf-8"))
    return normalize(mainland)


def fold_article_vocabulary(text: str) -> str:
    """Given an article's text, return fold_vocabulary(text), except for text without a
    Traditional character (which t2s leaves as it is): that is only normalised.

    Such text is Simplified, Mainland vocabulary already, and tw2sp reads Taiwan words into
    it that its Traditional version does not give (显著 becomes 显着, where 顯著 gives
    显著; 埠 becomes 端口). Skipping it also saves two of the three OpenCC passes of most
    articles.
    """
    normalised, traditional = normalize_noting_traditional(text)
    return fold_vocabulary(text) if traditional else normalised


# ----------------------------------------------------------------------------- rule terms


@dataclass(frozen=True, slots=True)
class RegionalReading:
    """What a term stands for across the two vocabularies, normalised."""

    text: str  # the term's own text (Term.text)
    mainland: str  # its Mainland form: 软件 for 軟體 and for 软件
    variants: tuple[str, ...]  # other texts that find it, if the article agrees: 软体 for 软件

    @property
    def key(self) -> str:
        """What the matcher records the term's hits under (Term.key): its own, as terms with
        one text and different readings (软体 written so, and 軟體) find different things."""
        return "\x00".join((self.text, self.mainland, *self.variants))


# Term as written -> its reading, None when it has no variants: the terms of the rule sets
# compiled so far. Reloading the same rules then needs no OpenCC command (see
# _mainland_to_taiwan); the strings are the rules' own, so this costs the dict alone.
_readings: dict[str, RegionalReading | None] = {}
_readings_lock = threading.Lock()


def regional_readings(written_terms: Iterable[str]) -> dict[str, RegionalReading]:
    """Given terms as written in rules (Term.source: "phrase", prefix*), return the reading
    of each one that has regional variants, by the term as written."""
    written_terms = list(dict.fromkeys(written_terms))
    with _readings_lock:
        missing = [written for written in written_terms if written not in _readings]
        if missing:
            _readings.update(_work_out_readings(missing))
        found = {written: _readings[written] for written in written_terms}
    return {written: reading for written, reading in found.items() if reading is not None}


def _work_out_readings(written_terms: list[str]) -> dict[str, RegionalReading | None]:
    readings: dict[str, RegionalReading | None] = dict.fromkeys(written_terms)
    # Only Chinese can have another regional form; a term OpenCC cannot take whole (a line
    # break, a lone surrogate) keeps only its own.
    candidates = [written for written in written_terms if _may_have_variants(written)]
    if not candidates:
        return readings
    as_taiwan_read = _convert(_taiwan_to_mainland(), candidates)
    to_taiwan = list(dict.fromkeys([*candidates, *as_taiwan_read]))
    taiwan_forms = dict(zip(to_taiwan, _mainland_to_taiwan(to_taiwan), strict=True))
    # Most conversions change the script only (韩日 -> 韓日): the same Simplified characters
    # make the same term text, which t2s of all of them at once tells without parsing each.
    converted = list(dict.fromkeys([*to_taiwan, *taiwan_forms.values()]))
    simplified = dict(zip(converted, _simplified(converted), strict=True))
    for written, mainland_written in zip(candidates, as_taiwan_read, strict=True):
        taiwan_form, round_trip = taiwan_forms[written], taiwan_forms[mainland_written]
        own = simplified[written]
        if simplified[mainland_written] == simplified[taiwan_form] == simplified[round_trip] == own:
            continue  # no other word: None
        readings[written] = _reading(
            written,
            taiwan_reading=mainland_written,
            taiwan_form=taiwan_form,
            round_trip=round_trip,
        )
    return readings


def _may_have_variants(written: str) -> bool:
    if "\n" in written or "\r" in written or not any(map(is_cjk_char, written)):
        return False
    try:
        written.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _simplified(texts: list[str]) -> list[str]:
    """Given texts without line breaks, return to_simplified() of each, in one call."""
    simplified = to_simplified("\n".join(texts)).split("\n")
    if len(simplified) != len(texts):  # not expected
        return [to_simplified(text) for text in texts]
    return simplified


def _reading(
    written: str, *, taiwan_reading: str, taiwan_form: str, round_trip: str
) -> RegionalReading | None:
    """Given a term as written, tw2sp of it, s2twp of it and s2twp of its tw2sp, return its
    reading, or None if it has no variants (see the module docstring)."""
    try:
        term = parse_term(written)
    except ValueError:
        return None  # not a valid term: the rule's own check reports it

    def text_of(converted: str) -> str | None:
        try:
            parsed = parse_term(converted)
        except ValueError:
            return None
        return parsed.text if parsed.prefix == term.prefix else None

    own = term.text
    taiwan, as_taiwan, back = text_of(taiwan_reading), text_of(taiwan_form), text_of(round_trip)
    if taiwan is not None and taiwan != own and as_taiwan == own and back == own:
        return RegionalReading(own, taiwan, (taiwan,))  # a Taiwan word: 軟體 -> 软件
    # A Mainland word (软件 -> 软体, from 軟體), or neither: its Taiwan forms.
    variants = {as_taiwan, back if taiwan == own else None} - {None, own}
    if not variants:
        return None
    return RegionalReading(own, own, tuple(sorted(filter(None, variants))))


def _convert(converter: opencc.OpenCC, texts: list[str]) -> list[str]:
    """Given a converter and texts without line breaks, return each converted, in one call:
    phrases never span a line break, and one call costs far less than thousands."""
    converted = converter.convert("\n".join(texts)).split("\n")
    if len(converted) != len(texts):  # not expected
        return [converter.convert(text) for text in texts]
    return converted


def _mainland_to_taiwan(texts: list[str]) -> list[str]:
    """Given texts without line breaks, return s2twp of each.

    A converter for s2twp costs about 45 MB, and glibc keeps that memory after the converter
    is released: a daemon that compiled its rules once would carry it for months. So the
    conversion runs in a short-lived process, OpenCC's own command-line tool (about 0.3 s
    for 10,000 rules); only if that fails does it run here.
    """
    command = _opencc_command()
    if command is not None:
        try:
            completed = subprocess.run(
                [command, "-c", "s2twp"],
                input=("\n".join(texts) + "\n").encode("utf-8"),
                capture_output=True,
                check=True,
                timeout=CONVERT_TIMEOUT_SECONDS,
                env={**os.environ, "PYTHONIOENCODING": "utf-8", "PYTHONUTF8": "1"},
            )
            converted = completed.stdout.decode("utf-8").split("\n")
            if len(converted) == len(texts) + 1 and converted[-1] == "":
                return converted[:-1]
            problem = f"{len(converted) - 1} lines back for {len(texts)}"
        except (OSError, subprocess.SubprocessError, UnicodeDecodeError) as error:
            problem = str(error)
    else:
        problem = "no opencc command beside the Python interpreter or on PATH"
    logger.warning(
        "regional variants of rule terms computed in this process (%s): about 45 MB more",
        problem,
    )
    return _convert(opencc.OpenCC("s2twp"), texts)


def _opencc_command() -> str | None:
    """Return the path of OpenCC's command-line tool, which its package installs beside the
    interpreter (a virtual environment's bin/), or None."""
    folders = [os.path.dirname(sys.executable), os.environ.get("PATH", "")]
    return shutil.which("opencc", path=os.pathsep.join(filter(None, folders)))


# ----------------------------------------------------------------------------- articles


# How much of an article tells its script: a few hundred characters do, and counting them
# all in a long article would cost more than the rest of matching it.
SCRIPT_SAMPLE_CHARACTERS = 300

_script_weights: dict[str, int] | None = None
_script_lock = threading.Lock()


def _script_characters() -> dict[str, int]:
    """Return 1 for each Traditional character that t2s changes, -1 for each Simplified
    character it changes one into (a few, such as 后 台 只, are Traditional too)."""
    global _script_weights
    if _script_weights is None:
        with _script_lock:
            if _script_weights is None:
                traditional: set[str] = set()
                simplified: set[str] = set()
                # A block at a time, one character a line (no phrase spans two): what the
                # whole range would hold at once stays in the process's heap (about 4 MB).
                for first in range(0x3400, 0xA000, 1024):
                    block = "\n".join(map(chr, range(first, min(first + 1024, 0xA000))))
                    folded = to_simplified(block).split("\n")
                    for char, simple in zip(block.split("\n"), folded, strict=False):
                        if simple != char and len(simple) == 1:
                            traditional.add(char)
                            simplified.add(simple)
                simplified -= traditional
                _script_weights = dict.fromkeys(traditional, 1) | dict.fromkeys(simplified, -1)
    return _script_weights


def written_script(texts: Iterable[str]) -> str:
    """Given the texts of an article, return SIMPLIFIED or TRADITIONAL, whichever script's
    own characters its first SCRIPT_SAMPLE_CHARACTERS have more of, or UNKNOWN (as many of
    each: none, in AI伺服器需求旺)."""
    weights = _script_characters()
    score = 0
    remaining = SCRIPT_SAMPLE_CHARACTERS
    for text in texts:
        sample = text[:remaining]
        # One call over the characters, in C: map() with a default for the others.
        score += sum(map(weights.get, sample, itertools.repeat(0)))
        remaining -= len(sample)
        if remaining <= 0:
            break
    if score < 0:
        return SIMPLIFIED
    return TRADITIONAL if score > 0 else UNKNOWN


class ArticleVocabulary:
    """Whether a regional variant found in one article stands for its term there (see the
    module docstring); the article's script, from all its fields, is worked out when first
    needed."""

    def __init__(self, article: Article) -> None:
        self._article = article
        self._script: str | None = None
        # field -> the original offset of each normalised character (None: the same)
        self._origins: dict[str, Sequence[int] | None] = {}
        self._folded: dict[tuple[str, int, int], str] = {}  # (field, window) -> folded

    def script(self) -> str:
        if self._script is None:
            self._script = written_script(map(self._article.field_text, ARTICLE_FIELDS))
        return self._script

    def stands_for(self, field: str, normalised: str, mainland: str, start: int, end: int) -> bool:
        """Given a field, its normalised text, a term's Mainland form and the span of one of
        its variants in the normalised text, return whether the variant stands for the
        term there."""
        if self.script() == SIMPLIFIED:
            return normalised[start:end] == mainland
        original = self._article.field_text(field)
        if field not in self._origins:
            identity = maps_one_to_one(original, normalised)
            self._origins[field] = None if identity else normalize_with_origins(original)[1]
        origins = self._origins[field]
        begin, finish = (start, end) if origins is None else original_span(origins, start, end)
        window = (field, max(0, begin - CONTEXT_CHARACTERS), finish + CONTEXT_CHARACTERS)
        folded = self._folded.get(window)
        if folded is None:
            folded = self._folded[window] = fold_vocabulary(original[window[1] : window[2]])
        return mainland in folded
