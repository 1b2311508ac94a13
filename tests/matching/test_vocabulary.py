"""Regional vocabulary (monitor.matching.vocabulary): a term in Taiwan or Mainland vocabulary
finds the other (軟體/软件), in rules, queries and explanations, through a real RuleSet;
nothing matched before stops matching, and Simplified text matches nothing its own
vocabulary would not (软件 is not 软体动物)."""

from __future__ import annotations

import logging
import sys
from typing import Any

import opencc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.config import RuleConfig
from monitor.matching import RuleSet, fold_vocabulary, normalize
from monitor.matching.vocabulary import (
    SIMPLIFIED,
    TRADITIONAL,
    UNKNOWN,
    regional_readings,
    written_script,
)
from monitor.model import Article

# (Mainland term, Taiwan term, a /cn sentence with the first, its /tw version with the second)
PAIRS = [
    ("软件", "軟體", "这家软件公司宣布裁员一成", "這家軟體公司宣佈裁員一成"),
    ("信息", "資訊", "政府公布了更多相关信息", "政府公佈了更多相關資訊"),
    ("服务器", "伺服器", "人工智能服务器需求强劲", "人工智慧伺服器需求強勁"),
    ("网络", "網路", "黑客发动网络攻击", "駭客發動網路攻擊"),
    ("打印机", "印表機", "这台打印机又坏了", "這臺印表機又壞了"),
    ("鼠标", "滑鼠", "这款无线鼠标很便宜", "這款無線滑鼠很便宜"),
]
CASES = [
    pytest.param(term, text, id=f"{term}-in-{feed}")
    for mainland, taiwan, cn, tw in PAIRS
    for term in (mainland, taiwan)
    for feed, text in (("cn", cn), ("tw", tw))
]


def article(content: str = "", **fields: Any) -> Article:
    values: dict[str, Any] = {"title": "", "summary": "", "content": content}
    values.update(fields)
    return Article(guid=None, link=None, canonical_link=None, **values)


def rule(name: str = "rule", **options: Any) -> RuleConfig:
    for short in ("any", "all", "none"):
        if short in options:
            options[f"{short}_terms"] = tuple(options.pop(short))
    return RuleConfig(name=name, **options)


def matches(rules: RuleSet, text: str) -> list[str]:
    return [match.rule_name for match in rules.match(article(text), "rfi")]


def explained(rules: RuleSet, item: Article, name: str = "rule") -> list[tuple[str, str]]:
    """(term as written, text of the article it points at) of each hit."""
    return [
        (hit.term, item.field_text(hit.field)[hit.start : hit.end])
        for hit in rules.explain(item, name)
    ]


# ----------------------------------------------------------------------------- both ways


@pytest.mark.parametrize(("term", "text"), CASES)
def test_match_term_of_either_vocabulary_finds_both_in_cn_and_tw(term: str, text: str) -> None:
    rules = RuleSet.compile([rule(any=[term])])

    assert matches(rules, text) == ["rule"]


@pytest.mark.parametrize(("mainland", "taiwan", "cn", "tw"), PAIRS)
def test_explain_variant_points_at_the_words_as_the_article_writes_them(
    mainland: str, taiwan: str, cn: str, tw: str
) -> None:
    rules = RuleSet.compile([rule("mainland", any=[mainland]), rule("taiwan", any=[taiwan])])

    assert explained(rules, article(tw), "mainland") == [(mainland, taiwan)]
    assert explained(rules, article(cn), "taiwan") == [(taiwan, mainland)]


def test_match_variant_of_another_length_points_at_the_whole_word() -> None:
    rules = RuleSet.compile([rule("ram", any=["内存"]), rule("ram-tw", any=["記憶體"])])
    taiwan = article("記憶體價格上漲", title="…記憶體…")

    assert [match.rule_name for match in rules.match(taiwan, "tw")] == ["ram", "ram-tw"]
    assert explained(rules, taiwan, "ram") == [("内存", "記憶體"), ("内存", "記憶體")]
    assert matches(rules, "内存价格上涨") == ["ram", "ram-tw"]


# ----------------------------------------------------------------------------- what must not match


@pytest.mark.parametrize(
    ("term", "text"),
    [
        pytest.param("软件", "这种软体动物生活在海里", id="mollusc-cn"),
        pytest.param("软件", "這種軟體動物生活在海裡", id="mollusc-tw"),
        pytest.param("信息", "这则资讯来自台湾媒体", id="zixun-in-cn-is-not-xinxi"),
        pytest.param("视频", "这部影片获得金狮奖", id="film-in-cn-is-not-video"),
        pytest.param("支持", "中国支援灾区重建", id="aid-in-cn-is-not-support"),
        pytest.param("智能", "人民的智慧是无穷的", id="wisdom-in-cn-is-not-smart"),
        pytest.param("程序", "和平进程取得进展", id="mainland-word-keeps-its-meaning"),
        pytest.param("行程", "和平进程取得进展", id="no-round-trip-no-variant"),
    ],
)
def test_match_variant_that_the_text_does_not_mean_does_not_match(term: str, text: str) -> None:
    rules = RuleSet.compile([rule(any=[term])])

    assert matches(rules, text) == []


@pytest.mark.parametrize(
    ("term", "text"),
    [
        pytest.param("视频", "這部影片獲得很高的點閱率", id="video-in-tw"),
        pytest.param("程序", "他們用這個程式編寫網頁", id="program-in-tw"),
        pytest.param("服务器", "AI伺服器需求旺", id="no-script-told-read-as-taiwan"),
    ],
)
def test_match_variant_that_the_text_means_matches(term: str, text: str) -> None:
    rules = RuleSet.compile([rule(any=[term])])

    assert matches(rules, text) == ["rule"]


def test_match_terms_of_one_text_and_two_readings_stay_apart() -> None:
    # 软体 written so (as in 软体动物) and 軟體 (software) fold to the same text.
    rules = RuleSet.compile([rule("mollusc", any=["软体"]), rule("software", any=["軟體"])])

    assert matches(rules, "这家软件公司宣布裁员") == ["software"]
    assert matches(rules, "这种软体动物生活在海里") == ["mollusc", "software"]  # as before


# ----------------------------------------------------------------------------- as before


@pytest.mark.parametrize(
    ("options", "text", "expected"),
    [
        pytest.param({"any": ["軟體"]}, "这种软体动物生活在海里", True, id="t2s-folding"),
        pytest.param({"any": ["資訊"]}, "这则资讯来自台湾媒体", True, id="t2s-of-taiwan-word"),
        pytest.param({"any": ["ＡＩ软件"]}, "新的AI軟體上市了", True, id="full-width-and-case"),
        pytest.param({"query": "/网路/"}, "駭客發動網路攻擊", True, id="regex-literal-folds"),
        pytest.param({"query": "/网路/"}, "黑客发动网络攻击", False, id="regex-gets-no-variant"),
        pytest.param({"any": ["软件"]}, "这家软件公司宣布裁员", True, id="own-text"),
    ],
)
def test_match_what_matched_before_still_matches(
    options: dict[str, Any], text: str, expected: bool
) -> None:
    rules = RuleSet.compile([rule(**options)])

    assert (matches(rules, text) == ["rule"]) is expected


# ----------------------------------------------------------------------------- queries


@pytest.mark.parametrize(
    ("query", "text", "expected"),
    [
        ("软件 AND 裁员", "這家軟體公司宣佈裁員", True),
        ("title:软件", "", True),
        ('"软件 公司"', "台灣軟體 公司", True),
        ("软件 NEAR/4 裁员", "這家軟體公司宣佈裁員", True),
        ("软件 NEAR/3 裁员", "這家軟體公司宣佈裁員", False),
        ("鼠标 NEAR/5 滑鼠", "鼠标，台灣叫滑鼠", True),
        ("裁员 -软件", "這家軟體公司宣佈裁員", False),
        ("裁员 -软件", "这种软体动物公司宣布裁员", True),
        ("軟體 OR 伺服器", "服务器和软件", True),
    ],
)
def test_query_with_regional_variant(query: str, text: str, expected: bool) -> None:
    rules = RuleSet.compile([rule(query=query)])
    item = article(text, title="這家軟體公司" if query.startswith("title:") else "")

    assert bool(rules.match(item, "rfi")) is expected, query


def test_explain_near_with_variant_points_at_both_operands() -> None:
    rules = RuleSet.compile([rule(query="软件 NEAR/4 裁员")])
    item = article("這家軟體公司宣佈裁員")

    assert explained(rules, item) == [("软件", "軟體"), ("裁员", "裁員")]


def test_explain_variant_in_text_that_normalising_lengthens_points_at_original() -> None:
    rules = RuleSet.compile([rule(any=["软件"])])
    item = article("※①台灣……軟體公司")

    assert explained(rules, item) == [("软件", "軟體")]


# ----------------------------------------------------------------------------- readings


def test_regional_readings_give_mainland_form_and_variants() -> None:
    readings = regional_readings(["软件", "軟體", "程序", "行程", "韩日", "sanction*"])

    assert (readings["软件"].mainland, readings["软件"].variants) == ("软件", ("软体",))
    assert (readings["軟體"].mainland, readings["軟體"].variants) == ("软件", ("软件",))
    assert (readings["程序"].mainland, readings["程序"].variants) == ("程序", ("程式",))
    assert set(readings) == {"软件", "軟體", "程序"}


def test_regional_readings_come_from_opencc_command_without_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    mainland_terms = ["激光打印机", "出租车", "方便面"]
    s2twp = opencc.OpenCC("s2twp")  # what the command runs, here for comparison

    with caplog.at_level(logging.WARNING):
        readings = regional_readings([*mainland_terms, "計程車"])

    assert not caplog.records
    for term in mainland_terms:
        assert readings[term].variants == (normalize(s2twp.convert(term)),)
    assert readings["計程車"].mainland == "出租车" == fold_vocabulary("計程車")


def test_regional_readings_without_opencc_command_are_worked_out_here(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    regional_readings(["短信"])  # known from now on: needs no conversion again
    monkeypatch.setattr(sys, "executable", "/nonexistent/python")
    monkeypatch.setenv("PATH", "")

    with caplog.at_level(logging.WARNING):
        known = regional_readings(["短信"])
    assert not caplog.records
    with caplog.at_level(logging.WARNING):
        new = regional_readings(["簡訊"])

    assert known["短信"].variants == ("简讯",) and new["簡訊"].mainland == "短信"
    assert "computed in this process" in caplog.text


@pytest.mark.parametrize("term", ["软件\ud800", '"软件\n公司"', "  "])
def test_regional_readings_of_terms_opencc_cannot_take_are_none(term: str) -> None:
    assert regional_readings([term]) == {}


@pytest.mark.parametrize(
    ("texts", "script"),
    [
        (["这家软件公司宣布裁员"], SIMPLIFIED),
        (["這家軟體公司宣佈裁員"], TRADITIONAL),
        (["AI伺服器需求旺", "台灣廠商"], TRADITIONAL),  # the title alone tells nothing
        (["AI伺服器需求旺"], UNKNOWN),
        (["台积电的产品", "皇后"], SIMPLIFIED),  # 后 台 are in both scripts
        ([""], UNKNOWN),
    ],
)
def test_written_script_counts_characters_of_each_script(texts: list[str], script: str) -> None:
    assert written_script(texts) == script


# ----------------------------------------------------------------------------- properties

# Words of both vocabularies and both scripts, words that only look alike (软体动物), and
# words that tell the script (这 and 這).
CN_WORDS = ("软件", "软体", "动物", "信息", "资讯", "影片", "视频", "鼠标", "内存", "这", "，")
TW_WORDS = ("軟體", "動物", "資訊", "影片", "滑鼠", "記憶體", "這", "，")
VOCABULARY_TERMS = (
    "软件", "軟體", "软体", "信息", "資訊", "资讯", "视频", "影片", "鼠标", "滑鼠", "内存",
    "記憶體", "动物",
)  # fmt: skip


def old_match(terms: list[str], item: Article) -> bool:
    """What a rule of plain Chinese terms matched before regional vocabulary."""
    texts = [normalize(item.field_text(field)) for field in ("title", "content")]
    return any(normalize(term) in text for term in terms for text in texts)


@settings(max_examples=150, deadline=None, database=None)
@given(
    words=st.sampled_from([CN_WORDS, TW_WORDS]).flatmap(
        lambda words: st.tuples(
            st.lists(st.sampled_from(words), max_size=6),
            st.lists(st.sampled_from(words), max_size=20),
        )
    ),
    rule_terms=st.lists(
        st.lists(st.sampled_from(VOCABULARY_TERMS), min_size=1, max_size=3), min_size=1, max_size=4
    ),
)
def test_match_keeps_old_matches_adds_none_in_simplified_and_explains_each(
    words: tuple[list[str], list[str]], rule_terms: list[list[str]]
) -> None:
    title, content = ("".join(part) for part in words)
    item = article(content, title=title)
    rules = [rule(f"r{index}", any=terms) for index, terms in enumerate(rule_terms)]
    rule_set = RuleSet.compile(rules)
    readings = regional_readings(term for terms in rule_terms for term in terms)
    simplified = written_script([title, content]) == SIMPLIFIED

    names, _, explainer = rule_set.explaining_match(item, "rfi")

    assert names == [match.rule_name for match in rule_set.match(item, "rfi")]
    for one in rules:
        terms = list(one.any_terms)
        matched = one.name in names
        if old_match(terms, item):
            assert matched, terms  # nothing that matched before stops matching
        if matched and simplified and not old_match(terms, item):
            # New in Simplified text: only a Taiwan term's Mainland form, as written.
            texts = [normalize(title), normalize(content)]
            assert any(
                term in readings and readings[term].mainland in text
                for term in terms
                for text in texts
            ), terms
        hits = explainer.explain(one.name)
        assert bool(hits) is matched
        summary = explainer.summary(one.name).terms_by_field if matched else {}
        explained_terms: dict[str, set[str]] = {}
        for hit in hits:
            explained_terms.setdefault(hit.field, set()).add(hit.term)
        assert {field: set(found) for field, found in summary.items()} == explained_terms
        in_order = explainer.terms_in_order(one.name) if matched else None
        assert (
            in_order is None
            or {field: set(found) for field, found in in_order.items()} == explained_terms
        )


def test_compile_works_out_readings_only_when_first_article_is_matched(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Without the OpenCC command, working readings out logs a warning: when it happens shows.
    monkeypatch.setattr(sys, "executable", "/nonexistent/python")
    monkeypatch.setenv("PATH", "")

    with caplog.at_level(logging.WARNING):
        rules = RuleSet.compile([rule(any=["视频会议"])])
    assert not caplog.records and rules.rule_names() == ("rule",)
    with caplog.at_level(logging.WARNING):
        found = matches(rules, "這場視訊會議的畫面")

    assert found == ["rule"] and "computed in this process" in caplog.text


def test_match_without_opencc_phrases_still_matches_as_written(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    converter = opencc.OpenCC

    def failing(config: str) -> opencc.OpenCC:
        if config.startswith("s2twp"):
            raise RuntimeError(f"{config}: dictionary missing")
        return converter(config)

    monkeypatch.setattr(sys, "executable", "/nonexistent/python")
    monkeypatch.setenv("PATH", "")
    monkeypatch.setattr(opencc, "OpenCC", failing)
    rules = RuleSet.compile([rule(any=["视频通话"])])

    with caplog.at_level(logging.ERROR):
        assert matches(rules, "視頻通話") == ["rule"]  # Traditional script, as before
        assert matches(rules, "視訊通話") == []  # no variant without s2twp

    assert "regional vocabulary unavailable" in caplog.text
