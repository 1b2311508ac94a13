"""Text normalisation for matching: NFKC, Traditional -> Simplified (OpenCC t2s), casefold.

The normalised text is a matching copy only; alerts and excerpts show the original. Offsets
reported by the matcher point into the normalised text, so this module also says how to get
back to the original:

- For Han, kana, hangul, ASCII, full-width forms (ＡＩ, ５, ，) and CJK punctuation (、。「」),
  normalisation maps every character to exactly one character, so an offset into the
  normalised text is the same offset into the original. t2s is always one-to-one: every
  entry of OpenCC's t2s dictionaries (phrases included) has the same length on both sides.
- Some characters common in Chinese news do change length: NFKC turns the ellipsis … into
  "...", ℃ into "°C", ㎡ into "m2", ⑩ into "10" and ½ into "1⁄2"; it composes e + U+0301
  into é; casefold turns ß into "ss". Use normalize_with_offsets() to map such text back.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Sequence

import opencc

_converter: opencc.OpenCC | None = None
_converter_lock = threading.Lock()

# Scripts written without spaces between words: a Latin term next to one of these characters
# is at a word boundary. Han (with radicals, 〇 々 〆 and the compatibility blocks), kana,
# hangul, bopomofo, Yi and the other East Asian ideographic scripts.
_CJK_CHARACTER = re.compile(
    "["
    "\u1100-\u11ff"  # Hangul jamo
    "\u2e80-\u2fdf"  # CJK and Kangxi radicals
    "\u3005-\u3007"  # 々 〆 〇
    "\u3021-\u3029\u3038-\u303b"  # Hangzhou numerals, 〻
    "\u3040-\u30ff"  # Hiragana, Katakana (including ー)
    "\u3100-\u312f\u3131-\u318f\u31a0-\u31bf"  # Bopomofo, Hangul compatibility jamo
    "\u31f0-\u31ff"  # Katakana phonetic extensions
    "\u3400-\u4dbf\u4e00-\u9fff"  # CJK unified ideographs, extension A
    "\ua000-\ua4cf"  # Yi
    "\ua960-\ua97f\uac00-\ud7ff"  # Hangul jamo extended, syllables
    "\uf900-\ufaff"  # CJK compatibility ideographs
    "\uff66-\uff9f\uffa0-\uffdc"  # half-width katakana and hangul
    "\U00016fe0-\U00018cff"  # Tangut, Khitan
    "\U0001aff0-\U0001b2ff"  # Kana supplement and extensions, Nushu
    "\U00020000-\U0003ffff"  # CJK extensions B and later, compatibility supplement
    "]"
)


# Full-width ASCII forms and the ideographic space: the only characters NFKC changes in most
# Chinese news text (，（）：). See _nfkc().
_FULL_WIDTH = re.compile("[\uff01-\uff5e\u3000]")
_FULL_WIDTH_TO_ASCII = {chr(code): chr(code - 0xFEE0) for code in range(0xFF01, 0xFF5F)} | {
    "\u3000": " "
}


def _t2s() -> opencc.OpenCC:
    """Return the one shared t2s converter, created on first use.

    Creation takes a few milliseconds and loads dictionaries, so it is done once; convert()
    keeps no state between calls and is safe to call from several threads at once.
    """
    global _converter
    if _converter is None:
        with _converter_lock:
            if _converter is None:
                _converter = opencc.OpenCC("t2s")
    return _converter


def to_simplified(text: str) -> str:
    """Given text, return it with Traditional characters folded to Simplified."""
    try:
        return _t2s().convert(text)
    except UnicodeEncodeError:
        # OpenCC takes UTF-8, which cannot carry lone surrogates (broken input). Replacing each
        # with "?" keeps the length, hence every offset.
        repaired = text.encode("utf-8", "replace").decode("utf-8")
        return _t2s().convert(repaired)


def _nfkc(text: str) -> str:
    """Given text, return unicodedata.normalize("NFKC", text), faster.

    CPython's NFKC is slow (about 140 µs per 1,000 characters) as soon as one character needs
    changing, and in Chinese text that is nearly always full-width punctuation (，（）).
    Replacing a character by its compatibility decomposition (here plain ASCII) leaves the
    text's NFKD, hence its NFKC, unchanged; afterwards the text is usually normalised
    already, and checking that is cheap.
    """
    if unicodedata.is_normalized("NFKC", text):
        return text
    # One str.replace() per distinct full-width character (a handful of punctuation marks
    # in Chinese text), not a Python call per occurrence: a third faster. The replacements
    # are ASCII, so no replacement makes another one match.
    folded = text
    for char in set(_FULL_WIDTH.findall(text)):
        folded = folded.replace(char, _FULL_WIDTH_TO_ASCII[char])
    if unicodedata.is_normalized("NFKC", folded):
        return folded
    return unicodedata.normalize("NFKC", folded)


def normalize(text: str) -> str:
    """Given text, return its matching copy: NFKC, then OpenCC t2s, then casefold.

    Rule terms and article text both go through this function, so ＡＩ matches AI, 韓日
    matches 韩日 (and the other way round) and Latin matching ignores case.
    """
    if not text:
        return ""
    return to_simplified(_nfkc(text)).casefold()


def normalize_noting_traditional(text: str) -> tuple[str, bool]:
    """Given text, return (normalize(text), whether t2s changed it: it holds Traditional
    characters)."""
    if not text:
        return "", False
    nfkc = _nfkc(text)
    simplified = to_simplified(nfkc)
    return simplified.casefold(), simplified != nfkc


def normalize_with_offsets(text: str) -> tuple[str, tuple[int, ...]]:
    """Given text, return (normalize(text), origins).

    origins[i] is the index in text of the character that produced normalised character i;
    it has one extra entry, len(text), so that an end offset maps too. A normalised span
    [start, end) therefore comes from text[origins[start]:origins[end]] (widen end to the
    next origin when it falls inside an expansion such as ... from …).

    Costs a few times normalize(): a Python loop runs only over the stretches of text that
    NFKC or casefold may change in length (… ℃ ß, combining marks), not over each character.
    """
    normalised, origins = normalize_with_origins(text)
    return normalised, tuple(origins)


def normalize_with_origins(text: str) -> tuple[str, Sequence[int]]:
    """Given text, return normalize_with_offsets(text), the origins as a range when they are
    the identity (the common case: each character normalised to one), else as a list."""
    nfkc, nfkc_origins = _nfkc_with_origins(text)
    simplified = to_simplified(nfkc)
    if len(simplified) != len(nfkc):  # not expected: t2s is one-to-one (see module docstring)
        simplified = nfkc
    folded = simplified.casefold()
    if len(folded) == len(simplified):
        # casefold works character by character and only ever expands, so equal lengths
        # mean every character was mapped to exactly one.
        if isinstance(nfkc_origins, range):
            return folded, range(len(text) + 1)
        return folded, [*nfkc_origins, len(text)]
    return _casefold_with_origins(simplified, nfkc_origins, len(text))


def maps_one_to_one(text: str, normalised: str) -> bool:
    """Given text and normalize(text), return whether each character of text became exactly
    one character (normalize_with_origins() would return the identity): then offsets into
    the normalised text are offsets into the original."""
    # Without unstable characters NFKC maps one to one, t2s always does, and casefold only
    # ever expands: equal lengths leave no room for any change of length.
    return len(normalised) == len(text) and _UNSTABLE_RUN.search(text) is None


def _casefold_with_origins(
    simplified: str, nfkc_origins: Sequence[int], length: int
) -> tuple[str, list[int]]:
    """Given text that casefold() lengthens, its origins, and the original length, return
    (casefolded text, origins): each character's origin repeated over its expansion."""
    # Only characters that casefold expands (ß, İ, ŉ, ligatures) need a piece of their own;
    # everything between two of them maps one to one.
    expanding = [char for char in set(simplified) if len(char.casefold()) != 1]
    pattern = re.compile("|".join(map(re.escape, expanding)))
    pieces: list[str] = []
    origins: list[int] = []
    done = 0
    for found in pattern.finditer(simplified):
        index = found.start()
        pieces.append(simplified[done:index].casefold())
        origins.extend(nfkc_origins[done:index])
        piece = found.group().casefold()
        pieces.append(piece)
        origins.extend([nfkc_origins[index]] * len(piece))
        done = index + 1
    pieces.append(simplified[done:].casefold())
    origins.extend(nfkc_origins[done:])
    origins.append(length)
    return "".join(pieces), origins


def original_span(origins: Sequence[int], start: int, end: int) -> tuple[int, int]:
    """Given the origins from normalize_with_offsets() and a span [start, end) of the
    normalised text, return the span of the original text it comes from.

    The span is widened to whole original characters: a match on two of the three dots
    that NFKC made of … covers the whole …. An empty span maps to an empty span.
    """
    begin = origins[start]
    if end <= start:
        return begin, begin
    last = origins[end - 1]
    index = end
    final = len(origins) - 1  # origins[final] is the length of the original text
    while index < final and origins[index] <= last:
        index += 1
    return begin, origins[index]


# Characters that NFKC maps to exactly one character whatever surrounds them, and before
# which NFKC can always cut the text: each is unchanged (or, full-width forms and the
# ideographic space, replaced by one ASCII character), and its decomposition starts with a
# starter that composes with nothing before it. ASCII, common CJK punctuation and quotes,
# kana, hangul syllables and CJK ideographs: nearly all of Chinese news text.
# tests/matching/test_text.py checks every character of this class against the Unicode data.
_STABLE_CHARACTERS = (
    "\t\n\r\x20-\x7e"
    "\u00b7\u2014\u2018-\u201d"  # · — ‘ ’ “ ”
    "\u3000-\u3003\u3008-\u3011"  # ideographic space, 、。〃, 〈〉《》「」『』【】
    "\u3041-\u3096\u30a1-\u30fa\u30fc"  # kana (voiced ones included), ー
    "\u3400-\u4dbf\u4e00-\u9fff"  # CJK unified ideographs, extension A
    "\uac00-\ud7a3"  # hangul syllables
    "\uff01-\uff5e"  # full-width ASCII forms
)
# A run of other characters: NFKC may change their length or merge them with the
# character before the run.
_UNSTABLE_RUN = re.compile(f"[^{_STABLE_CHARACTERS}]+")


def _nfkc_with_origins(text: str) -> tuple[str, list[int] | range]:
    """Given text, return (NFKC(text), for each output character the input index it came
    from).

    Equivalent to _nfkc_with_origins_slowly(text), cheaper: only the runs of characters
    outside _STABLE_CHARACTERS, each with the stable character before it (which may compose
    with the run), go through the cluster loop; the stable characters in between map one to
    one.
    """
    runs = [found.span() for found in _UNSTABLE_RUN.finditer(text)]
    folded = _fold_full_width(text)
    if not runs:
        if unicodedata.is_normalized("NFKC", folded):
            return folded, range(len(text))
        # Not expected (the class above is checked): take the exact, slow way.
        return _nfkc_with_origins_slowly(text)
    if unicodedata.is_normalized("NFKC", text):
        # Unchanged as a whole: the identity, even where a cluster normalised apart would
        # differ (0 followed by U+0301 stays two characters).
        return text, range(len(text))
    pieces: list[str] = []
    origins: list[int] = []
    done = 0
    for start, end in runs:
        # NFKC can cut the text before a stable character, so it normalises each run with
        # the stable character before it (which may compose with the run) on its own, and
        # the cluster loop makes the same clusters there as over the whole text.
        begin = max(start - 1, done)
        pieces.append(folded[done:begin])
        origins.extend(range(done, begin))
        segment = text[begin:end]
        segment_pieces: list[str] = []
        for offset, cluster in _clusters(segment):
            piece = unicodedata.normalize("NFKC", cluster)
            segment_pieces.append(piece)
            origins.extend([begin + offset] * len(piece))
        normalised = "".join(segment_pieces)
        if normalised != unicodedata.normalize("NFKC", segment):
            # Clusters normalised apart differ from the whole (exotic reordering across
            # clusters): the slow way gives the same text, and its fallback map.
            return _nfkc_with_origins_slowly(text)
        pieces.append(normalised)
        done = end
    pieces.append(folded[done:])
    origins.extend(range(done, len(text)))
    return "".join(pieces), origins


def _fold_full_width(text: str) -> str:
    """Given text, return it with full-width ASCII forms and the ideographic space replaced by
    their ASCII characters, as NFKC does (one character for one)."""
    for char in set(_FULL_WIDTH.findall(text)):
        text = text.replace(char, _FULL_WIDTH_TO_ASCII[char])
    return text


def _nfkc_with_origins_slowly(text: str) -> tuple[str, list[int]]:
    """Given text, return (NFKC(text), for each output character the input index it came
    from), cluster by cluster over the whole text: the reference for _nfkc_with_origins()."""
    whole = unicodedata.normalize("NFKC", text)
    if whole == text:
        return whole, list(range(len(text)))
    pieces: list[str] = []
    origins: list[int] = []
    for start, cluster in _clusters(text):
        piece = unicodedata.normalize("NFKC", cluster)
        pieces.append(piece)
        origins.extend([start] * len(piece))
    if "".join(pieces) != whole:
        # Normalising cluster by cluster differed from normalising the whole (exotic reordering
        # across clusters): fall back to an approximate map that at least stays in range.
        return whole, [min(index, len(text) - 1) for index in range(len(whole))]
    return whole, origins


def _clusters(text: str) -> list[tuple[int, str]]:
    """Given text, split it into (start index, substring) pieces that NFKC can treat separately.

    A piece is a character plus whatever composes with it: combining marks, and starters such
    as a half-width voicing mark or a Hangul vowel jamo that merge with the previous character.
    """
    clusters: list[tuple[int, str]] = []
    for index, char in enumerate(text):
        if clusters and not _starts_cluster(clusters[-1][1], char):
            start, cluster = clusters[-1]
            clusters[-1] = (start, cluster + char)
        else:
            clusters.append((index, char))
    return clusters


def _starts_cluster(previous: str, char: str) -> bool:
    """Given the cluster so far and the next character, return whether NFKC can treat the
    character apart from the cluster."""
    decomposed = unicodedata.normalize("NFKD", char)
    if decomposed and unicodedata.combining(decomposed[0]):
        return False  # a combining mark: belongs to its base, and may be reordered with it
    together = unicodedata.normalize("NFKC", previous + char)
    apart = unicodedata.normalize("NFKC", previous) + unicodedata.normalize("NFKC", char)
    return together == apart


def is_cjk_char(char: str) -> bool:
    """Given one character, return whether it belongs to a script written without spaces
    (Han, kana, hangul, bopomofo, Yi, ...): such a character is always a word boundary."""
    return _CJK_CHARACTER.match(char) is not None


def is_latin_char(char: str) -> bool:
    """Given one character, return whether it is "Latin" in the sense of the boundary rule:
    any letter or digit that is not CJK, so é, ß, Ж and ５ count, 韩 and か don't.

    A Latin term may not touch a Latin character on either side; anything else (CJK,
    punctuation, spaces, symbols) is a boundary.
    """
    category = unicodedata.category(char)
    return category[0] in "LN" and not is_cjk_char(char)
