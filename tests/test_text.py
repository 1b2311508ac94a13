"""Tests for monitor.text: the matching copy of a text and its offsets."""

from __future__ import annotations

import unicodedata
from concurrent.futures import ThreadPoolExecutor

import opencc
import pytest

from monitor.text import (
    is_cjk_char,
    is_latin_char,
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
