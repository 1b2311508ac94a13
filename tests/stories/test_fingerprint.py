"""Tests for monitor.stories.measure: what the store keeps of an article to group it.

Signatures and band keys are stored, so they must come out the same in every process, on
every machine and in every Python version: a fixed text has a fixed signature here.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import opencc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.stories import DEFAULT_SIMILARITY, StoryFingerprint, fingerprint, similarity

TITLE = "时隔9年韩日重启副外长级战略对话"
SUMMARY = "韩日两国时隔9年重启副外长战略对话会议，共商加强双边关系。"
# sha256 of fingerprint(TITLE, SUMMARY, "").signature and some of its band keys. If these
# change, every stored signature stops matching new ones: change them only together with
# the signature format or the MinHash library's algorithm version.
EXPECTED_SIGNATURE_SHA256 = "f4f12e328bf626d338ba8bad130757b8874eca0a851fc04249c7d5694a66d75d"
EXPECTED_BAND_KEYS = {
    0: -6431454595025747918,
    11: -4547760207100503827,
    12: 8133398123499356609,
    31: 1199056701321052933,
}
REPOSITORY = Path(__file__).resolve().parents[2]

CHINESE_TEXT = st.text(
    alphabet=st.sampled_from(
        "韩日重启副外长级战略对话台湾海峡关税芯片选举，。！？0123456789 軟體資訊"
    ),
    max_size=80,
)


def test_fingerprint_of_a_fixed_text_is_a_fixed_signature_and_band_keys() -> None:
    print_ = fingerprint(TITLE, SUMMARY, "")
    assert hashlib.sha256(print_.signature).hexdigest() == EXPECTED_SIGNATURE_SHA256
    assert {index: print_.band_keys[index] for index in EXPECTED_BAND_KEYS} == EXPECTED_BAND_KEYS


def test_fingerprint_is_the_same_in_another_process_with_another_hash_seed() -> None:
    program = (
        "from monitor.stories import fingerprint;"
        f"print(fingerprint({TITLE!r}, {SUMMARY!r}, '').signature.hex())"
    )
    signatures = {
        subprocess.run(
            [sys.executable, "-c", program],
            capture_output=True,
            text=True,
            check=True,
            cwd=REPOSITORY,
            env={"PYTHONHASHSEED": seed},
        ).stdout.strip()
        for seed in ("1", "2")
    }
    assert signatures == {fingerprint(TITLE, SUMMARY, "").signature.hex()}


def test_signature_is_small_and_band_keys_fit_a_signed_64_bit_integer() -> None:
    print_ = fingerprint(TITLE, SUMMARY, "据韩联社报道。" * 500)
    assert len(print_.signature) <= 1024
    assert print_.band_keys
    assert len(set(print_.band_keys)) == len(print_.band_keys)
    assert all(-(2**63) <= key < 2**63 for key in print_.band_keys)


def test_from_signature_rebuilds_the_same_fingerprint() -> None:
    print_ = fingerprint(TITLE, SUMMARY, "双方在会上就双边关系、地区及全球热点问题深入交换意见。")
    rebuilt = StoryFingerprint.from_signature(print_.signature)
    assert rebuilt == print_
    assert similarity(rebuilt, print_) == 1.0


def test_from_signature_accepts_a_memoryview_as_a_database_driver_may_return() -> None:
    print_ = fingerprint(TITLE, SUMMARY, "")
    assert StoryFingerprint.from_signature(memoryview(print_.signature)) == print_


@pytest.mark.parametrize(
    "signature", [b"", b"\x01", b"\x09" + bytes(835), b"\x01\x02\x03\x00" + bytes(100)]
)
def test_from_signature_of_bytes_that_are_not_a_signature_raises_value_error(
    signature: bytes,
) -> None:
    with pytest.raises(ValueError, match="signature"):
        StoryFingerprint.from_signature(signature)


def test_signature_of_another_minhash_algorithm_version_is_similar_to_nothing() -> None:
    print_ = fingerprint(TITLE, SUMMARY, "")
    older = bytearray(print_.signature)
    older[1] ^= 0xFF  # the MinHash algorithm version byte
    stored = StoryFingerprint.from_signature(bytes(older))
    assert stored.band_keys == ()
    assert similarity(stored, print_) == 0.0


def test_signature_of_the_earlier_format_is_accepted_and_similar_to_nothing() -> None:
    print_ = fingerprint(TITLE, SUMMARY, "")
    earlier = bytes([1]) + print_.signature[1:]  # format 1: what earlier versions stored
    stored = StoryFingerprint.from_signature(earlier)
    assert stored.band_keys == ()
    assert similarity(stored, print_) == 0.0
    assert similarity(print_, stored) == 0.0


@pytest.mark.parametrize(
    ("title", "summary", "content"), [("", "", ""), (" ", "\n", "\t"), ("，。！", "——", "……")]
)
def test_fingerprint_of_no_text_has_no_band_keys_and_is_similar_to_nothing(
    title: str, summary: str, content: str
) -> None:
    empty = fingerprint(title, summary, content)
    assert empty.band_keys == ()
    assert similarity(empty, empty) == 0.0
    assert similarity(empty, fingerprint(TITLE, SUMMARY, "")) == 0.0
    assert StoryFingerprint.from_signature(empty.signature) == empty


def test_fingerprint_of_a_title_only_or_a_one_character_text_groups_with_itself() -> None:
    for title in (TITLE, "韩", "AI"):
        print_ = fingerprint(title, "", "")
        assert print_.band_keys
        assert similarity(print_, fingerprint(title, "", "")) == 1.0


def test_fingerprint_ignores_field_separators_and_lone_surrogates_in_the_input() -> None:
    strange = fingerprint(TITLE + "\u2029", "\ud800" + SUMMARY, "\u2029")
    assert similarity(strange, fingerprint(TITLE, SUMMARY, "")) >= DEFAULT_SIMILARITY


def test_traditional_taiwan_version_is_as_similar_as_the_simplified_text() -> None:
    content = (
        "台积电表示，人工智能相关芯片需求强劲，软件和服务器订单增加，带动3纳米先进制程营收增长。"
    )
    traditional = opencc.OpenCC("s2twp").convert(content)
    assert "軟體" in traditional and "伺服器" in traditional
    one = fingerprint("台积电第二季净利润增长36%", "", content)
    other = fingerprint(
        opencc.OpenCC("s2twp").convert("台积电第二季净利润增长36%"), "", traditional
    )
    assert similarity(one, other) >= 0.8


def test_same_template_with_other_numbers_is_below_the_threshold() -> None:
    template = (
        "台湾国防部{day}日表示，24小时内在台湾周边侦测到解放军军机{planes}架次、军舰{ships}艘。"
    )
    title = "台湾国防部：侦测到{planes}架次解放军军机"
    one = fingerprint(title.format(planes=32), template.format(day=6, planes=32, ships=9), "")
    other = fingerprint(title.format(planes=18), template.format(day=7, planes=18, ships=7), "")
    again = fingerprint(title.format(planes=32), template.format(day=6, planes=32, ships=9), "")
    assert similarity(one, other) < DEFAULT_SIMILARITY
    assert similarity(one, again) == 1.0


def test_short_item_of_a_long_article_is_similar_through_its_lead() -> None:
    content = (
        "据悉，除韩美日三边合作、韩中日合作外，作为两国共同关切的韩半岛问题也被列入会议议题。" * 8
    )
    long_article = fingerprint(
        TITLE, SUMMARY + "韩国政府3月发布二战强征劳工索赔问题解法。", content
    )
    short_item = fingerprint(TITLE, SUMMARY, "")
    assert similarity(long_article, short_item) >= DEFAULT_SIMILARITY
    assert set(long_article.band_keys) & set(short_item.band_keys)


def test_unrelated_articles_are_not_similar_and_share_no_band_key() -> None:
    one = fingerprint(TITLE, SUMMARY, "")
    other = fingerprint("强台风山陀儿登陆高雄", "高雄、屏东、台南等县市连续第三天停班停课。", "")
    assert similarity(one, other) < 0.1
    assert not set(one.band_keys) & set(other.band_keys)


@settings(max_examples=60, deadline=None)
@given(CHINESE_TEXT, CHINESE_TEXT, CHINESE_TEXT, CHINESE_TEXT)
def test_similarity_is_symmetric_between_0_and_1_and_survives_from_signature(
    title: str, summary: str, other_title: str, other_summary: str
) -> None:
    one, other = fingerprint(title, summary, ""), fingerprint(other_title, other_summary, "")
    value = similarity(one, other)
    assert 0.0 <= value <= 1.0
    assert value == similarity(other, one)
    assert value == similarity(
        StoryFingerprint.from_signature(one.signature),
        StoryFingerprint.from_signature(other.signature),
    )
