"""The story measure: an article's fingerprint (MinHash sketches of its folded text, and the
numbers it quotes) and how similar two fingerprints are.

Two articles are one story when they carry the same text, in either script or vocabulary,
with light edits. The measure (docs/architecture.md, "Stories", has the figures):

- Text is folded with matching.fold_article_vocabulary (Traditional and Taiwan vocabulary
  become Simplified and Mainland: 軟體 -> 软件, 北韓 stays; Simplified text is only
  normalised), punctuation and spaces dropped, and cut into overlapping 3-character
  shingles. Chinese has no spaces, so characters, not words, are the unit; 3 characters
  separate texts better than 2 (fewer shingles shared by unrelated news, such as 表示 or
  中国) and forgive edits better than 4 or 5.
- Two sketches: the whole text (title, summary, content) and the lead (the title and the
  first sentence of the summary, or of the content). The text similarity is the larger of
  the two Jaccard estimates: the whole text for edited reprints and script versions, the
  lead for a feed that gives only a title and one sentence of an article that another feed
  gives in full (their whole texts share too little for Jaccard to see it).
- Numbers: reports made from one template (daily aircraft counts, quarterly results,
  earthquakes) share most of their shingles and differ in their numbers and dates. The
  similarity is multiplied by the share of the numbers of the article that quotes fewer that
  the other also quotes (1 when either quotes none).

MinHash comes from rensa (R-MinHash, Rust, no dependencies). A shingle is given to it as a
64-bit number, its three code points side by side (21 bits each: distinct shingles, distinct
numbers), all of a text's shingles made at once with a few big-integer shifts: a Python
string per shingle cost more than everything else in the fingerprint. rensa's digests change
when its algorithm version changes, so the signature records that version and a fingerprint
made by another one is never similar to anything (its article simply starts a new story;
the window bounds the effect of an upgrade to its length). So does a signature of another
format (format 1: shingles hashed by rensa as strings, Simplified text through tw2sp, 64
bands). Everything else is stable by construction: fixed seeds, blake2b and crc32,
little-endian packing; no Python hash().
"""

from __future__ import annotations

import functools
import hashlib
import operator
import re
import struct
import sys
import zlib
from array import array
from dataclasses import dataclass
from typing import NamedTuple

from rensa import RMinHash

from monitor.matching import fold_article_vocabulary

# Chosen on the tune half of tests/data/story_pairs.yaml (bench/stories_quality.py sweeps it).
DEFAULT_SIMILARITY = 0.45

SIGNATURE_FORMAT = 2
_ALGORITHM_VERSION: int = RMinHash.ALGORITHM_VERSION
_SHINGLE_CHARACTERS = 3
# Every band key is a row of story_band, written with the article and looked up for each
# new article: the bands are as few as finding the labelled set's same-story pairs allows
# (their larger Jaccard index, of text or lead, is 0.56 or more), and use the first slots;
# the rest only sharpen the similarity estimate.
# Text: 120 slots, the first 36 in 12 bands of 3 rows; a pair whose text Jaccard is 0.6
# shares a band with probability 1 - (1 - 0.6**3)**12 = 94.6%, at 0.7 99.5%; at 0.05
# (unrelated news) 0.15%.
_TEXT_SLOTS = 120
_TEXT_BANDS = 12
_TEXT_ROWS_PER_BAND = 3
# Lead (title and first sentence, a few dozen shingles): 72 slots, the first 60 in 20 bands
# of 3 rows. It finds a short item of a long article, whose leads are alike (Jaccard 0.56 to
# 1 in the labelled set: shares a band with probability 97.9% at 0.56, 99.4% at 0.65); short
# items also meet through the text bands, which hold the same text for them (a pair of short
# items at 0.58 shares a text or a lead band with probability 99.9%). With 2 rows, 1% of
# unrelated articles in the labelled set shared a lead band (short titles share common
# trigrams such as 国防部); with 3 rows 0.12%, which keeps the store's candidates few.
_LEAD_SLOTS = 72
_LEAD_BANDS = 20
_LEAD_ROWS_PER_BAND = 3
_NUMBER_BITS = 512
_TEXT_SEED = 1_151_462_019
_LEAD_SEED = 1_151_462_020
_EMPTY_SLOT = 0xFFFFFFFF
_LEAD_MAXIMUM_CHARACTERS = 200
_ODD_MULTIPLIER = 0x9E3779B97F4A7C15
_MASK_64_BITS = (1 << 64) - 1

_HEADER = struct.Struct("<BBBB")  # format, MinHash algorithm version, flags, reserved
_SLOTS = struct.Struct(f"<{_TEXT_SLOTS + _LEAD_SLOTS}I")
_NUMBER_BYTES = _NUMBER_BITS // 8
SIGNATURE_BYTES = _HEADER.size + _SLOTS.size + _NUMBER_BYTES
# Stored by earlier versions: accepted, similar to nothing (see the module docstring).
_EARLIER_FORMATS = frozenset({1})
_HAS_TEXT = 1
_HAS_LEAD = 2
_TEXT_BAND = 1
_LEAD_BAND = 2

_NOT_TEXT = re.compile(r"[\W_]+")
# Survives NFKC, OpenCC and casefolding unchanged; never left in the text measured.
_FIELD_SEPARATOR = "\u2029"
# After folding, full-width digits and separators are ASCII: "2,478" "36.3" "1.5".
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_SENTENCE = re.compile(r".+?(?:[。!?]|$)", re.DOTALL)


@dataclass(frozen=True)
class StoryFingerprint:
    """What the store keeps of an article to group it: its signature (bytes, stored as is),
    and the band keys that come from it (signed 64-bit integers; articles sharing one are
    candidates of one story)."""

    signature: bytes

    @classmethod
    def from_signature(cls, signature: bytes) -> StoryFingerprint:
        """Given a stored signature, return its fingerprint.

        A signature made by another MinHash algorithm version, or of an earlier format, is
        accepted, has no band keys and is similar to nothing. Raise ValueError if the bytes
        are not a signature.
        """
        stored = cls(bytes(signature))
        _ = stored.sketch  # read now, so that bytes that are no signature fail here
        return stored

    @functools.cached_property
    def band_keys(self) -> tuple[int, ...]:
        # Worked out when first asked: a stored candidate is only compared with a new
        # article, which needs its signature alone.
        return _band_keys(self.sketch) if self.sketch.comparable else ()

    @functools.cached_property
    def sketch(self) -> _Sketch:
        """The signature read (every comparison of a new article with a candidate needs it)."""
        return _read(self.signature)


class _Sketch(NamedTuple):
    comparable: bool
    has_text: bool
    has_lead: bool
    text_slots: tuple[int, ...]
    lead_slots: tuple[int, ...]
    numbers: int  # a bitmap of _NUMBER_BITS bits, one set per number quoted


_NOT_COMPARABLE = _Sketch(False, False, False, (), (), 0)


def fingerprint(title: str, summary: str, content: str) -> StoryFingerprint:
    """Given an article's title, summary and content as stored (plain text), return its
    fingerprint."""
    # One fold for the three fields (each OpenCC call has a fixed cost), split again after.
    joined = _FIELD_SEPARATOR.join(
        field.replace(_FIELD_SEPARATOR, "\n") for field in (title, summary, content)
    )
    folded_title, folded_summary, folded_content = fold_article_vocabulary(joined).split(
        _FIELD_SEPARATOR
    )
    text = _NOT_TEXT.sub("", f"{folded_title}{folded_summary}{folded_content}")
    lead = _NOT_TEXT.sub(
        "", folded_title + _first_sentence(folded_summary.strip() or folded_content)
    )
    text_slots = _minhash(text, _TEXT_SLOTS, _TEXT_SEED)
    lead_slots = _minhash(lead, _LEAD_SLOTS, _LEAD_SEED)
    numbers = 0
    for number in _NUMBER.findall(f"{folded_title}\n{folded_summary}\n{folded_content}"):
        numbers |= 1 << (zlib.crc32(number.replace(",", "").encode()) % _NUMBER_BITS)
    sketch = _Sketch(True, bool(text), bool(lead), text_slots, lead_slots, numbers)
    flags = (_HAS_TEXT if sketch.has_text else 0) | (_HAS_LEAD if sketch.has_lead else 0)
    signature = (
        _HEADER.pack(SIGNATURE_FORMAT, _ALGORITHM_VERSION, flags, 0)
        + _SLOTS.pack(*text_slots, *lead_slots)
        + numbers.to_bytes(_NUMBER_BYTES, "little")
    )
    return StoryFingerprint(signature)


def similarity(one: StoryFingerprint, other: StoryFingerprint) -> float:
    """Given two fingerprints, return how alike their articles are, 0 (unrelated) to 1.

    The larger of the whole-text and lead Jaccard estimates, times the share of the numbers
    of the article that quotes fewer that the other also quotes. Articles without text (or
    fingerprints made by another MinHash algorithm version) are similar to nothing.
    """
    left, right = one.sketch, other.sketch
    if not (left.comparable and right.comparable and left.has_text and right.has_text):
        return 0.0
    text = _agreement(left.text_slots, right.text_slots)
    if left.has_lead and right.has_lead:
        text = max(text, _agreement(left.lead_slots, right.lead_slots))
    fewer = min(left.numbers.bit_count(), right.numbers.bit_count())
    numbers = (left.numbers & right.numbers).bit_count() / fewer if fewer else 1.0
    return text * numbers


def _first_sentence(text: str) -> str:
    found = _SENTENCE.match(text.strip())
    return found.group(0)[:_LEAD_MAXIMUM_CHARACTERS] if found else ""


def _minhash(text: str, slots: int, seed: int) -> tuple[int, ...]:
    if not text:
        return (_EMPTY_SLOT,) * slots
    shingles = _shingles(text)
    digests = RMinHash.digest_matrix_from_flat_token_hashes(
        shingles, (0, len(shingles)), slots, seed
    )
    return tuple(digests.to_rows()[0])


def _shingles(text: str) -> memoryview:
    """Given text, return its 3-character shingles as 64-bit numbers: shingle i is
    code(text[i]) << 42 | code(text[i + 1]) << 21 | code(text[i + 2]) (a code point has 21
    bits at most). A text shorter than a shingle is one shingle, its missing codes 0 (which
    no text measured holds: NUL is not a word character); repeated shingles do not change a
    digest.

    Made without a Python object per shingle: the code points, each in a 64-bit lane of one
    big integer (little-endian bytes), are shifted by one and two lanes and combined, every
    lane at once.
    """
    utf32 = text.encode("utf-32-le")
    lanes = bytearray(2 * len(utf32))
    for byte in range(3):  # a code point's fourth byte is 0
        lanes[byte::8] = utf32[byte::4]
    codes = int.from_bytes(lanes, "little")
    shingles = codes << 42 | codes >> 64 << 21 | codes >> 128
    packed = array("Q")
    packed.frombytes(shingles.to_bytes(8 * (len(text) + 1), "little"))
    if sys.byteorder != "little":
        packed.byteswap()
    return memoryview(packed)[: max(1, len(text) - _SHINGLE_CHARACTERS + 1)]


def _agreement(left: tuple[int, ...], right: tuple[int, ...]) -> float:
    """The share of MinHash slots that agree: an estimate of the two sets' Jaccard index."""
    return sum(map(operator.eq, left, right)) / len(left)


def _read(signature: bytes) -> _Sketch:
    if len(signature) < _HEADER.size:
        raise ValueError(f"not a story signature: {len(signature)} bytes")
    format_version, algorithm, flags, _ = _HEADER.unpack_from(signature)
    if format_version != SIGNATURE_FORMAT and format_version not in _EARLIER_FORMATS:
        raise ValueError(f"not a story signature: format {format_version}")
    # Format 1 had this layout too (other shingles and bands).
    if len(signature) != SIGNATURE_BYTES:
        raise ValueError(f"story signature of {len(signature)} bytes, expected {SIGNATURE_BYTES}")
    if format_version in _EARLIER_FORMATS:
        return _NOT_COMPARABLE
    slots = _SLOTS.unpack_from(signature, _HEADER.size)
    return _Sketch(
        comparable=algorithm == _ALGORITHM_VERSION,
        has_text=bool(flags & _HAS_TEXT),
        has_lead=bool(flags & _HAS_LEAD),
        text_slots=slots[:_TEXT_SLOTS],
        lead_slots=slots[_TEXT_SLOTS:],
        numbers=int.from_bytes(signature[_HEADER.size + _SLOTS.size :], "little"),
    )


def _band_keys(sketch: _Sketch) -> tuple[int, ...]:
    keys: list[int] = []
    if sketch.has_text:
        text_slots = sketch.text_slots[: _TEXT_BANDS * _TEXT_ROWS_PER_BAND]
        keys += _bands(_TEXT_BAND, text_slots, _TEXT_ROWS_PER_BAND)
    if sketch.has_lead:
        lead_slots = sketch.lead_slots[: _LEAD_BANDS * _LEAD_ROWS_PER_BAND]
        keys += _bands(_LEAD_BAND, lead_slots, _LEAD_ROWS_PER_BAND)
    return tuple(keys)


def _bands(kind: int, slots: tuple[int, ...], rows_per_band: int) -> list[int]:
    """One key per band of rows_per_band (2 or 3) slots, as a signed 64-bit integer (an SQL
    BIGINT): the rows packed into 64 bits (a third row multiplied in by an odd constant), XOR
    a salt per sketch and band, so equal rows in one band give one key and anything else
    collides only by chance (2**-64). Slots are MinHash values, already random: no hashing
    needed, which keeps from_signature cheap for the store's candidates."""
    salts = _BAND_SALTS[kind]
    firsts, seconds = slots[0::rows_per_band], slots[1::rows_per_band]
    if rows_per_band == 2:
        packed = [first << 32 | second for first, second in zip(firsts, seconds, strict=True)]
    else:
        packed = [
            (first << 32 | second) ^ (third * _ODD_MULTIPLIER & _MASK_64_BITS)
            for first, second, third in zip(firsts, seconds, slots[2::3], strict=True)
        ]
    keys = []
    for value, salt in zip(packed, salts, strict=False):
        key = value ^ salt
        keys.append(key - (1 << 64) if key >= 1 << 63 else key)
    return keys


def _salts(kind: int, bands: int) -> tuple[int, ...]:
    """Fixed random 64-bit numbers, one per band (blake2b of a label: stable everywhere)."""
    return tuple(
        int.from_bytes(
            hashlib.blake2b(
                f"story band {SIGNATURE_FORMAT} {_ALGORITHM_VERSION} {kind} {band}".encode(),
                digest_size=8,
            ).digest(),
            "little",
        )
        for band in range(bands)
    )


_BAND_SALTS = {
    _TEXT_BAND: _salts(_TEXT_BAND, _TEXT_BANDS),
    _LEAD_BAND: _salts(_LEAD_BAND, _LEAD_BANDS),
}
