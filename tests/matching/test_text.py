"""Tests for monitor.matching.text: the matching copy of a text and its offsets."""

from __future__ import annotations

import unicodedata
from concurrent.futures import ThreadPoolExecutor

import opencc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.matching import text as text_module
from monitor.matching.text import (
    is_cjk_char,
    is_latin_char,
    maps_one_to_one,
    normalize,
    normalize_with_offsets,
    original_span,
)

# Characters whose normalised form must keep the text's length, one character for one: the
# guarantee excerpts rely on for ordinary Chinese news text.
LENGTH_KEEPING_RANGES = {
    "ascii": (0x20, 0x7E),
    "cjk-unified": (0x4E00, 0x9FFF),
    "cjk-extension-a": (0x3400, 0x4DBF),
    "cjk-compatibility": (0xF900, 0xFAFF),
    "cjk-symbols-punctuation": (0x3000, 0x303F),
    "full-width-forms": (0xFF01, 0xFF5E),
    "hiragana": (0x3041, 0x3096),
    "katakana": (0x30A1, 0x30FA),
    "hangul-syllables": (0xAC00, 0xD7A3),
}
CHINESE_PUNCTUATION = "“”‘’—–·《》〈〉【】「」『』（），。、；：？！"


def characters(first: int, last: int) -> str:
    return "".join(chr(code) for code in range(first, last + 1))


def test_normalize_traditional_text_returns_simplified() -> None:
    assert normalize("時隔9年韓日重啟，二戰強徵勞工") == "时隔9年韩日重启,二战强征劳工"


def test_normalize_simplified_text_returns_unchanged() -> None:
    assert normalize("韩日强征劳工") == "韩日强征劳工"


def test_normalize_fullwidth_latin_returns_ascii_casefolded() -> None:
    # 伺服器 stays: t2s folds characters, not regional vocabulary (服务器 is another term).
    assert normalize("ＴＳＭＣ　股價上漲５％，ＡＩ伺服器（Ｎｖｉｄｉａ）") == (
        "tsmc 股价上涨5%,ai伺服器(nvidia)"
    )


def test_normalize_latin_returns_casefolded() -> None:
    assert normalize("Straße NVIDIA Σίσυφος") == "strasse nvidia σίσυφοσ"


@pytest.mark.parametrize(
    "text",
    [
        "時隔9年韓日重啟，（ＡＩ）：強徵勞工",
        "Ａ\u0301 full-width letter then a combining accent",
        "ｶﾞｷﾞ and ＡＢＣ together",
        "等等……℃㎡⑩ ﬁnance Straße",
        "plain ascii",
        "\u3000ideographic space",
    ],
)
def test_normalize_matches_reference_pipeline(text: str) -> None:
    # The fast paths in normalize() must not change the result of the plain recipe.
    reference = opencc.OpenCC("t2s").convert(unicodedata.normalize("NFKC", text)).casefold()

    assert normalize(text) == reference


def test_normalize_empty_returns_empty() -> None:
    assert normalize("") == ""


@pytest.mark.parametrize("name", LENGTH_KEEPING_RANGES)
def test_normalize_cjk_ascii_fullwidth_keeps_length(name: str) -> None:
    text = characters(*LENGTH_KEEPING_RANGES[name])

    assert len(normalize(text)) == len(text)
    # One for one, not just in total: each character alone keeps its length too.
    assert [len(normalize(char)) for char in text] == [1] * len(text)


def test_normalize_chinese_punctuation_keeps_length() -> None:
    assert len(normalize(CHINESE_PUNCTUATION)) == len(CHINESE_PUNCTUATION)


def test_normalize_with_offsets_mixed_cjk_text_returns_identity_map() -> None:
    text = "時隔9年韓日重啟「ＡＩ芯片」：用AI，ＴＳＭＣ　Ｇ２０“峰会”"

    normalised, origins = normalize_with_offsets(text)

    assert len(normalised) == len(text)
    assert origins == tuple(range(len(text) + 1))


@pytest.mark.parametrize(
    ("text", "changed"),
    [("等等……", "……"), ("气温35℃", "℃"), ("面积100㎡", "㎡"), ("第⑩条", "⑩"), ("ﬁnance", "ﬁ")],
)
def test_normalize_compatibility_characters_change_length(text: str, changed: str) -> None:
    # Documented exception to the length guarantee: these are common enough in news text
    # that excerpts must go through normalize_with_offsets().
    assert len(normalize(changed)) != 1
    assert len(normalize(text)) != len(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "韩日",
        "等等……韓日",
        "Straße AI",
        "ﬁnance ＡＩ",
        "cafe\u0301 AI",
        "ｶﾞｷﾞ韓國",
        "a\u0316\u0301b",
        "İstanbul ℃ ㎡ ⑩",
        "\u1100\u1161\u11a8 한국",
    ],
)
def test_normalize_with_offsets_returns_same_text_as_normalize(text: str) -> None:
    normalised, origins = normalize_with_offsets(text)

    assert normalised == normalize(text)
    assert len(origins) == len(normalised) + 1
    assert origins[-1] == len(text)
    assert list(origins) == sorted(origins)


def test_normalize_with_offsets_after_ellipsis_maps_back_to_original() -> None:
    text = "据悉……韓日副外長"
    normalised, origins = normalize_with_offsets(text)
    start = normalised.index("韩日")

    assert start == 8  # four characters later than in the original: …… became ......
    assert text[origins[start] : origins[start + 2]] == "韓日"


def test_normalize_with_offsets_expansion_maps_to_its_source_character() -> None:
    normalised, origins = normalize_with_offsets("aß℃b")

    assert normalised == "ass°cb"
    assert origins == (0, 1, 1, 2, 2, 3, 4)


def test_normalize_with_offsets_composition_maps_to_first_character() -> None:
    normalised, origins = normalize_with_offsets("xｶﾞy")

    assert normalised == "xガy"
    assert origins == (0, 1, 3, 4)


def test_normalize_lone_surrogate_keeps_length() -> None:
    text = "韓\ud800日"

    assert len(normalize(text)) == 3
    assert normalize(text)[::2] == "韩日"


def test_normalize_from_many_threads_returns_same_as_serial() -> None:
    texts = [f"第{i}則：時隔9年韓日重啟，ＡＩ與強徵勞工" * 20 for i in range(400)]
    serial = [normalize(text) for text in texts]

    with ThreadPoolExecutor(max_workers=8) as pool:
        parallel = list(pool.map(normalize, texts))

    assert parallel == serial


@pytest.mark.parametrize("char", ["a", "Z", "0", "9", "é", "ß", "Ж", "α", "５", "Ａ", "²"])
def test_is_latin_char_letter_or_digit_returns_true(char: str) -> None:
    assert is_latin_char(char) is True


@pytest.mark.parametrize(
    "char",
    [
        "韩",
        "韓",
        "〇",
        "々",
        "か",
        "カ",
        "ー",
        "한",
        "ㄅ",
        "\U00020000",
        " ",
        ".",
        "，",
        "_",
        "-",
        "%",
    ],
)
def test_is_latin_char_cjk_punctuation_space_returns_false(char: str) -> None:
    assert is_latin_char(char) is False


@pytest.mark.parametrize("char", ["韩", "〇", "か", "カ", "한", "ㄅ", "ｶ", "\U0002a6a5", "\uf900"])
def test_is_cjk_char_east_asian_script_returns_true(char: str) -> None:
    assert is_cjk_char(char) is True


@pytest.mark.parametrize("char", ["a", "é", "5", "Ａ", "，", " "])
def test_is_cjk_char_latin_or_punctuation_returns_false(char: str) -> None:
    assert is_cjk_char(char) is False


# ----------------------------------------------------------------------------- original_span


@pytest.mark.parametrize(
    ("text", "normalised_part", "original_part"),
    [
        ("時隔9年韓日重啟", "韩日", "韓日"),
        ("ＡＩ伺服器", "ai", "ＡＩ"),
        ("等等……韓日", "韩日", "韓日"),
        ("等等……韓日", "......", "……"),
        ("Die Straße ist", "strasse", "Straße"),
    ],
)
def test_original_span_maps_normalised_span_back(
    text: str, normalised_part: str, original_part: str
) -> None:
    normalised, origins = normalize_with_offsets(text)
    start = normalised.index(normalised_part)

    begin, end = original_span(origins, start, start + len(normalised_part))

    assert text[begin:end] == original_part


def test_original_span_inside_expansion_widens_to_whole_character() -> None:
    normalised, origins = normalize_with_offsets("等…了")

    # Two of the three dots NFKC made of the ellipsis: the ellipsis as a whole.
    assert normalised == "等...了"
    assert original_span(origins, 2, 4) == (1, 2)
    assert original_span(origins, 1, 2) == (1, 2)


def test_original_span_sharp_s_half_covers_it() -> None:
    _, origins = normalize_with_offsets("aßb")

    assert original_span(origins, 2, 3) == (1, 2)  # the second s of "ss"


def test_original_span_empty_span_maps_to_empty_span() -> None:
    _, origins = normalize_with_offsets("韩日")

    assert original_span(origins, 1, 1) == (1, 1)
    assert original_span(origins, 2, 2) == (2, 2)


# ------------------------------------------------------- normalize_with_offsets fast path
# normalize_with_offsets() loops in Python only over the runs of characters outside
# monitor.matching.text._STABLE_CHARACTERS. The reference below is the character-by-character
# algorithm it replaced; the two must agree on every text.


def _reference_starts_cluster(previous: str, char: str) -> bool:
    decomposed = unicodedata.normalize("NFKD", char)
    if decomposed and unicodedata.combining(decomposed[0]):
        return False
    together = unicodedata.normalize("NFKC", previous + char)
    apart = unicodedata.normalize("NFKC", previous) + unicodedata.normalize("NFKC", char)
    return together == apart


def _reference_nfkc_with_origins(text: str) -> tuple[str, list[int]]:
    whole = unicodedata.normalize("NFKC", text)
    if whole == text:
        return whole, list(range(len(text)))
    clusters: list[tuple[int, str]] = []
    for index, char in enumerate(text):
        if clusters and not _reference_starts_cluster(clusters[-1][1], char):
            start, cluster = clusters[-1]
            clusters[-1] = (start, cluster + char)
        else:
            clusters.append((index, char))
    pieces: list[str] = []
    origins: list[int] = []
    for start, cluster in clusters:
        piece = unicodedata.normalize("NFKC", cluster)
        pieces.append(piece)
        origins.extend([start] * len(piece))
    if "".join(pieces) != whole:
        return whole, [min(index, len(text) - 1) for index in range(len(whole))]
    return whole, origins


def reference_normalize_with_offsets(text: str) -> tuple[str, tuple[int, ...]]:
    converter = opencc.OpenCC("t2s")
    nfkc, nfkc_origins = _reference_nfkc_with_origins(text)
    simplified = converter.convert(nfkc.encode("utf-8", "replace").decode("utf-8"))
    if len(simplified) != len(nfkc):
        simplified = nfkc
    pieces: list[str] = []
    origins: list[int] = []
    for char, origin in zip(simplified, nfkc_origins, strict=True):
        piece = char.casefold()
        pieces.append(piece)
        origins.extend([origin] * len(piece))
    return "".join(pieces), (*origins, len(text))


# Characters that news text mixes, and those that change length or compose: every branch
# of the fast path (stable stretches, runs, runs at the start and end, casefold expansion).
MIXED_ALPHABET = (
    "韩日韓國強徵勞工台灣臺灣發展说話"  # Simplified and Traditional
    "，。、「」《》（）：；！？　"  # CJK and full-width punctuation, ideographic space
    "ＡＢａｂ０１Ｔ"  # full-width Latin and digits
    "aAbBsSiIzZ09 -.\n"  # ASCII
    "…℃㎡⑩½ﬁ™"  # NFKC expands these
    "ßİŉ"  # casefold expands these
    "\u0301\u0316\u0327"  # combining marks
    "ｶﾞﾊﾟｷﾞ"  # half-width kana with voicing marks, which compose
    "\u1100\u1161\u11a8가"  # Hangul jamo, which compose, and a syllable
    "éÉ·—“”"  # precomposed and stable
)


@given(st.text(alphabet=MIXED_ALPHABET, max_size=60))
@settings(max_examples=400, deadline=None, database=None)
def test_normalize_with_offsets_equals_reference_on_mixed_text(text: str) -> None:
    assert normalize_with_offsets(text) == reference_normalize_with_offsets(text)


@given(st.text(max_size=40))
@settings(max_examples=300, deadline=None, database=None)
def test_normalize_with_offsets_equals_reference_on_any_text(text: str) -> None:
    assert normalize_with_offsets(text) == reference_normalize_with_offsets(text)


@pytest.mark.parametrize(
    "text",
    [
        "…韓日",  # a run at the very start
        "韓日…",  # a run at the very end
        "…",
        "ａ\u0301b",  # a full-width letter composing with the mark after it
        "Ｅ\u0301……ß",
        "x\u0301\u0316y\u0327",
        "한\u11a8국",  # a syllable composing with the jamo after it
    ],
)
def test_normalize_with_offsets_runs_at_edges_equal_reference(text: str) -> None:
    assert normalize_with_offsets(text) == reference_normalize_with_offsets(text)


def _composition_second_characters() -> set[str]:
    """Every character that canonically composes with a character before it."""
    seconds = {chr(code) for code in range(0x1161, 0x1176)}  # Hangul vowel jamo
    seconds |= {chr(code) for code in range(0x11A8, 0x11C3)}  # Hangul trailing jamo
    for code in range(0x110000):
        decomposition = unicodedata.decomposition(chr(code))
        if decomposition and not decomposition.startswith("<"):
            parts = decomposition.split()
            if len(parts) == 2:
                seconds.add(chr(int(parts[1], 16)))
    return seconds


def test_stable_characters_are_boundaries_that_map_to_one_character() -> None:
    # What _nfkc_with_origins() relies on: for each stable character NFKC gives one
    # character, and can cut the text before it (its decomposition starts with a starter
    # that composes with nothing before it).
    seconds = _composition_second_characters()
    stable = [
        chr(code) for code in range(0x110000) if text_module._UNSTABLE_RUN.match(chr(code)) is None
    ]
    assert len(stable) > 30_000  # the class is what it says: CJK, kana, hangul, ASCII...
    for char in stable:
        assert len(unicodedata.normalize("NFKC", char)) == 1, hex(ord(char))
        first = unicodedata.normalize("NFKD", char)[0]
        assert unicodedata.combining(first) == 0, hex(ord(char))
        assert first not in seconds, hex(ord(char))


@given(st.text(alphabet=MIXED_ALPHABET, max_size=40))
@settings(max_examples=300, deadline=None, database=None)
def test_maps_one_to_one_means_identity_origins(text: str) -> None:
    normalised, origins = normalize_with_offsets(text)
    if maps_one_to_one(text, normalize(text)):
        assert origins == tuple(range(len(text) + 1))
    if origins == tuple(range(len(text) + 1)) and not text_module._UNSTABLE_RUN.search(text):
        assert maps_one_to_one(text, normalised)
