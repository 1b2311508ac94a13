"""Tests for monitor.config.yamlpos.load_yaml: the fast path (libyaml events, positions worked out
on demand) must give exactly what the pure-Python node-tree loader gives, and a syntax
error says where to look."""

from __future__ import annotations

import pytest
import yaml

from monitor.config import yamlpos
from monitor.config.yamlpos import YamlSyntaxError, load_yaml

# The fast path needs libyaml; syntax errors always come from the pure-Python loader.
needs_libyaml = pytest.mark.skipif(
    not getattr(yaml, "__with_libyaml__", False), reason="PyYAML built without libyaml"
)


def reference_load(text: str) -> yamlpos.YamlDocument:
    return yamlpos._load_yaml_with(yaml.SafeLoader, text)


DOCUMENTS = [
    "",
    "# only a comment\n",
    "---\n",
    "a: 1\n",
    "- 1\n- two\n- 3.5\n- true\n- null\n- ~\n-\n",
    "rules:\n  - name: kj\n    any: [韩日, 日韩]\n    fields:\n      - title\n",
    "- name: a\n  any:\n    - x\n    - y\n  query: >\n    folded\n    text\n"
    "- name: b\n  all: ['q']\n",
    "key: |\n  literal\n  block\nother: 'single'\nthird: \"double\\n\"\n",
    "a: {b: 1, c: [1, 2, {d: e}]}\n",
    "a: 1\nb: 2\na: 3\n",  # duplicate key
    "- name: x\n  name: y\n  any: [a]\n  any: [b]\n",  # duplicate keys in a list item
    "1: one\ntrue: yes\n1.5: f\nnull: n\n",  # non-string keys
    "date: 2024-05-01\nwhen: 2024-05-01 10:00:00\nhex: 0x1F\noct: 0o17\ninf: .inf\n",
    "a:\n\n\n  b:\n\n    c\n",  # values below their keys
    "rules:\n- name: a\n  any: [x]\nfeeds:\n- name: f\n  url: u\n",
    "? complex\n: value\n",
    "a: !!str 123\n",  # explicit tag: left to the node-tree loader
    "base: &b {x: 1}\nuse: *b\n",  # anchor and alias: left to the node-tree loader
    "base: &b {x: 1}\nmerged:\n  <<: *b\n  y: 2\n",  # merge key
    "- &a [1]\n- *a\n",
    "a: ! 12\n",  # non-specific tag
    "--- 1\n--- 2\n",  # two documents: an error
    "a: [1, 2\n",  # unclosed flow sequence
    "a: b: c\n",
    "\tkey: tab\n",
    "a: 'unterminated\n",
    "{a: 1}: x\n",  # a mapping as a key
    "a: \x07\n",  # a control character
    "- x\n" * 50 + "- name: deep\n  any:\n    - [1, [2, [3]]]\n",
]


@needs_libyaml
@pytest.mark.parametrize("text", DOCUMENTS)
def test_load_yaml_equals_node_tree_loader(text: str) -> None:
    try:
        expected = reference_load(text)
    except YamlSyntaxError as error:
        with pytest.raises(YamlSyntaxError) as raised:
            load_yaml(text)
        assert (raised.value.message, raised.value.line) == (error.message, error.line)
        return
    document = load_yaml(text)

    assert document.data == expected.data
    assert document.duplicate_keys == expected.duplicate_keys
    assert document.positions == expected.positions
    nested, expected_nested = document.nested_under("rules"), expected.nested_under("rules")
    assert nested.positions == expected_nested.positions


def big_rules_file(count: int) -> str:
    lines = []
    for index in range(count):
        lines += [
            f"- name: rule-{index}",
            "  any:",
            f"    - 词{index}",
            "    - 另一个",
            "  fields:",
        ]
        lines += ["    - title", "    - summary"]
    return "\n".join(lines) + "\n"


@needs_libyaml
def test_load_yaml_answers_every_path_as_node_tree_loader_on_a_large_file() -> None:
    text = big_rules_file(300)
    document = load_yaml(text).nested_under("rules")
    expected = reference_load(text).nested_under("rules")
    paths = [("rules", 7), ("rules", 7, "name"), ("rules", 299, "name"), ("rules",), ()]
    paths += [("rules", 7, "any", 1), ("rules", 7, "fields"), ("rules", 7, "missing"), ("x",)]
    paths += [("rules", 400), ("rules", 7, "any", 9)]

    for path in paths:
        for key in (False, True):
            assert document.line_for(path, key=key) == expected.line_for(path, key=key), path
    assert document.positions == expected.positions


@needs_libyaml
def test_load_yaml_keeps_few_positions_until_a_deep_one_is_asked_for() -> None:
    text = big_rules_file(300)
    document = load_yaml(text)
    # The items and their names, not every key and term: a quarter of the 300 * 8 values.
    shallow = dict.__len__(document.positions)
    assert shallow <= 2 * 300 + 1

    nested = document.nested_under("rules")
    assert nested.line_for(("rules", 3, "name")) == 4 * 1 + 3 * 7 - 3
    assert dict.__len__(nested.positions) <= shallow + 1
    assert nested.line_for(("rules", 3, "any", 0)) == 3 * 7 + 3
    assert dict.__len__(nested.positions) == 300 * 8 + 2  # every value, and the root twice


def test_load_yaml_with_control_character_reports_its_line() -> None:
    with pytest.raises(YamlSyntaxError) as raised:
        load_yaml("a: 1\nb: \x07\n")

    assert raised.value.line == 2
    assert "#x0007" in raised.value.message


# A syntax error is located where a person should look (1-based line and column), which
# for several common mistakes is not where PyYAML stopped reading.
SYNTAX_MISTAKES = [
    pytest.param(
        "feeds:\n  - name: a\n    url: https://e.org/rss\n   interval: 5m\n",
        (4, 4),
        "is this line indented like the ones it belongs with?",
        id="line-indented-less",
    ),
    pytest.param(
        "defaults:\n  interval: 5m\n    jitter: 1s\n",
        (3, 5),
        "this line is indented too far",
        id="line-indented-more",
    ),
    pytest.param(
        'feeds:\n  - name: "rfi-cn\n    url: https://e.org/rss\nchannels: {}\n',
        (2, 11),
        "this quote is not closed",
        id="unclosed-quote",
    ),
    pytest.param(
        "feeds:\n\t- name: a\n",
        (2, 1),
        "YAML indents with spaces, never tabs",
        id="tab",
    ),
    pytest.param(
        "feeds:\n  - name: a\n    url https://e.org/rss\n    interval: 5m\n",
        (3, 5),
        "could not find expected ':'",
        id="missing-colon",
    ),
    pytest.param(
        "timezone UTC\nfeeds: []\n",
        (1, 1),
        "this key has no ':' after it",
        id="missing-colon-then-key",
    ),
    pytest.param(
        "rules:\n  - name korea-japan\n    any: [韩日]\n",
        (2, 5),
        "this key has no ':' after it",
        id="missing-colon-in-list-item",
    ),
    pytest.param(
        "rules_files: [rules.yaml\nchannels: {}\n",
        (1, 14),
        "this [ is not closed",
        id="unclosed-bracket",
    ),
    pytest.param(
        "feeds: []\nchannels: {me: console://\n",
        (2, 11),
        "this { is not closed",
        id="unclosed-brace-at-end",
    ),
    pytest.param("a: b: c\n", (1, 5), "mapping values are not allowed here", id="colon-in-value"),
    pytest.param("a: 1\nb: \x07\n", (2, 4), "#x0007 is not allowed", id="control-character"),
]


@pytest.mark.parametrize(("text", "place", "message"), SYNTAX_MISTAKES)
def test_load_yaml_syntax_error_is_located_where_to_look(
    text: str, place: tuple[int, int], message: str
) -> None:
    with pytest.raises(YamlSyntaxError) as raised:
        load_yaml(text)

    assert (raised.value.line, raised.value.column) == place, raised.value.message
    assert raised.value.message.startswith("YAML syntax error: ")
    assert message in raised.value.message
