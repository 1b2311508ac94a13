"""Regional vocabulary: Taiwan and Mainland words for one thing (軟體/软件, 資訊/信息).

Traditional-to-Simplified folding (text.py) leaves the two vocabularies apart: t2s turns 軟體
into 软体, not 软件. OpenCC's tw2sp ("Taiwan to Simplified, with phrases") knows the Taiwan
words and writes them as the Mainland does, and leaves Simplified text as it is.
"""

from __future__ import annotations

import threading

import opencc

from monitor.matching.text import normalize

_tw2sp: opencc.OpenCC | None = None
_tw2sp_lock = threading.Lock()


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
