"""An article's story fingerprint: a MinHash signature of its text's character n-grams.

PROVISIONAL: the measure, the n-gram size, the signature and the default threshold are to be
chosen on labelled pairs; the interface (StoryFingerprint, fingerprint, similarity,
DEFAULT_SIMILARITY) is what the store relies on.
"""

from __future__ import annotations

import re
import struct
import zlib
from dataclasses import dataclass

from monitor.matching import fold_vocabulary

DEFAULT_SIMILARITY = 0.5
_SHINGLE_CHARACTERS = 3
_BINS = 128
_ROWS_PER_BAND = 4
_EMPTY_BIN = 0xFFFFFFFF
_NOT_TEXT = re.compile(r"[\W_]+")


@dataclass(frozen=True)
class StoryFingerprint:
    """What the store keeps of an article to group it: signature (bytes, stored as is) and
    band_keys (signed 64-bit integers; articles sharing one are candidates of one story)."""

    signature: bytes
    band_keys: tuple[int, ...]

    @classmethod
    def from_signature(cls, signature: bytes) -> StoryFingerprint:
        """Given a stored signature, return its fingerprint."""
        return cls(signature, _band_keys(struct.unpack(f"<{_BINS}I", signature)))


def fingerprint(title: str, summary: str, content: str) -> StoryFingerprint:
    """Given an article's title, summary and content as stored, return its fingerprint."""
    text = _NOT_TEXT.sub("", fold_vocabulary(" ".join((title, summary, content))))
    bins = [_EMPTY_BIN] * _BINS
    for start in range(max(len(text) - _SHINGLE_CHARACTERS + 1, 0)):
        value = zlib.crc32(text[start : start + _SHINGLE_CHARACTERS].encode())
        index = value % _BINS
        bins[index] = min(bins[index], value // _BINS)
    return StoryFingerprint(struct.pack(f"<{_BINS}I", *bins), _band_keys(bins))


def similarity(one: StoryFingerprint, other: StoryFingerprint) -> float:
    """Given two fingerprints, return an estimate of their texts' similarity, 0 to 1."""
    left = struct.unpack(f"<{_BINS}I", one.signature)
    right = struct.unpack(f"<{_BINS}I", other.signature)
    filled = [
        (a, b) for a, b in zip(left, right, strict=True) if a != _EMPTY_BIN or b != _EMPTY_BIN
    ]
    if not filled:
        return 0.0
    return sum(a == b for a, b in filled) / len(filled)


def _band_keys(bins: list[int] | tuple[int, ...]) -> tuple[int, ...]:
    keys = []
    for band in range(0, _BINS, _ROWS_PER_BAND):
        rows = tuple(bins[band : band + _ROWS_PER_BAND])
        if all(row == _EMPTY_BIN for row in rows):
            continue
        digest = zlib.crc32(struct.pack(f"<I{_ROWS_PER_BAND}I", band, *rows))
        keys.append(band << 32 | digest)
    return tuple(keys)
