"""How well articles group into stories, on the labelled pairs of tests/data/story_pairs.yaml.

    .venv/bin/python bench/stories_quality.py            # both halves, the sweep, the costs
    .venv/bin/python bench/stories_quality.py --pairs    # and every pair's similarity

A pair groups when its similarity is at least the threshold AND the two fingerprints share a
band key (the store only compares articles that do). Prints precision and recall of
same-story pairs on each half at DEFAULT_SIMILARITY, the threshold sweep on the tune half
(the one the default was chosen on), and the cost of fingerprint() and similarity().
"""

from __future__ import annotations

import argparse
import functools
import itertools
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from monitor.stories import DEFAULT_SIMILARITY, StoryFingerprint, fingerprint, similarity

PAIRS_PATH = Path(__file__).resolve().parents[1] / "tests" / "data" / "story_pairs.yaml"


@dataclass(frozen=True)
class ScoredPair:
    a: str
    b: str
    label: str
    kind: str
    half: str
    similarity: float
    shares_band: bool

    def groups(self, threshold: float) -> bool:
        return self.shares_band and self.similarity >= threshold


def scored_pairs(path: Path = PAIRS_PATH) -> list[ScoredPair]:
    """Given the labelled set's path, return every pair with its similarity and band sharing."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    prints: dict[str, StoryFingerprint] = {
        key: fingerprint(article["title"], article["summary"], article["content"])
        for key, article in data["articles"].items()
    }
    scored = []
    for pair in data["pairs"]:
        one, other = prints[pair["a"]], prints[pair["b"]]
        scored.append(
            ScoredPair(
                pair["a"],
                pair["b"],
                pair["label"],
                pair["kind"],
                pair["half"],
                similarity(one, other),
                bool(set(one.band_keys) & set(other.band_keys)),
            )
        )
    return scored


def precision_recall(pairs: list[ScoredPair], threshold: float) -> tuple[float, float, int, int]:
    """Given scored pairs and a threshold, return (precision, recall, false groupings, misses)."""
    grouped = [pair for pair in pairs if pair.groups(threshold)]
    right = sum(pair.label == "same" for pair in grouped)
    same = sum(pair.label == "same" for pair in pairs)
    precision = right / len(grouped) if grouped else 1.0
    return precision, right / same if same else 1.0, len(grouped) - right, same - right


def _cost_microseconds(call: Callable[[], object], repeats: int) -> float:
    # CPU time, not wall time: the machine is shared, and waiting for a core is not cost.
    timings = []
    for _ in range(5):
        started = time.process_time()
        for _ in range(repeats):
            call()
        timings.append((time.process_time() - started) / repeats)
    return statistics.median(timings) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", action="store_true", help="print every pair's similarity")
    arguments = parser.parse_args()
    pairs = scored_pairs()
    if arguments.pairs:
        for pair in sorted(pairs, key=lambda pair: (pair.half, pair.label, pair.similarity)):
            print(
                f"{pair.half:6} {pair.label:9} {pair.kind:20} {pair.similarity:.3f}"
                f" {'band' if pair.shares_band else 'NO BAND':7} {pair.a} / {pair.b}"
            )
    print(f"DEFAULT_SIMILARITY = {DEFAULT_SIMILARITY}")
    print("half    pairs  same  different  precision  recall  false groupings  misses")
    for half in ("tune", "report"):
        subset = [pair for pair in pairs if pair.half == half]
        same = sum(pair.label == "same" for pair in subset)
        precision, recall, false_groupings, misses = precision_recall(subset, DEFAULT_SIMILARITY)
        print(
            f"{half:6} {len(subset):6} {same:5} {len(subset) - same:10}"
            f" {precision:10.1%} {recall:7.1%} {false_groupings:16} {misses:7}"
        )
    for half in ("tune", "report"):
        subset = [pair for pair in pairs if pair.half == half]
        same_scores = [pair.similarity for pair in subset if pair.label == "same"]
        different_scores = [pair.similarity for pair in subset if pair.label == "different"]
        print(
            f"{half} half: lowest same-story similarity {min(same_scores):.3f},"
            f" highest different-story {max(different_scores):.3f}"
        )
    tune = [pair for pair in pairs if pair.half == "tune"]
    print("threshold sweep on the tune half: threshold  precision  recall")
    for step in range(1, 20):
        threshold = step / 20
        precision, recall, _, _ = precision_recall(tune, threshold)
        print(f"  {threshold:.2f}  {precision:7.1%}  {recall:7.1%}")
    _print_candidates()
    _print_costs()


def _print_candidates() -> None:
    # The store compares a new article with every article sharing a band key: how many
    # unrelated articles (other topics) would it fetch for nothing?
    data = yaml.safe_load(PAIRS_PATH.read_text(encoding="utf-8"))
    articles = data["articles"]
    keys = {
        key: set(fingerprint(article["title"], article["summary"], article["content"]).band_keys)
        for key, article in articles.items()
    }
    unrelated = [
        (one, other)
        for one, other in itertools.combinations(sorted(articles), 2)
        if articles[one]["cluster"] != articles[other]["cluster"]
    ]
    sharing = sum(bool(keys[one] & keys[other]) for one, other in unrelated)
    print(
        f"articles of different topics sharing a band key: {sharing} of {len(unrelated)}"
        f" pairs ({sharing / len(unrelated):.2%})"
    )


def _print_costs() -> None:
    data = yaml.safe_load(PAIRS_PATH.read_text(encoding="utf-8"))
    articles = data["articles"]
    short = articles["pla-day1-cn"]
    typical = articles["kj-dialogue-cn"]
    # About 3,000 characters: the longest articles of the set, one after the other.
    longest = sorted(articles.values(), key=lambda article: -len(article["content"]))
    long_content = "\n".join(article["content"] for article in longest)[:3000]
    cases = {
        "short (title + one sentence)": (short["title"], short["summary"], ""),
        "typical RFI article": (typical["title"], typical["summary"], typical["content"]),
        "long (3,000 characters)": (typical["title"], typical["summary"], long_content),
    }
    print("cost per call (median of 5 runs):")
    for name, fields in cases.items():
        characters = sum(len(field) for field in fields)
        microseconds = _cost_microseconds(functools.partial(fingerprint, *fields), 200)
        print(f"  fingerprint, {name}, {characters} characters: {microseconds:.0f} µs")
    one = fingerprint(typical["title"], typical["summary"], typical["content"])
    other = StoryFingerprint.from_signature(
        fingerprint(short["title"], short["summary"], "").signature
    )
    print(f"  similarity: {_cost_microseconds(lambda: similarity(one, other), 2000):.1f} µs")
    rebuild = _cost_microseconds(lambda: StoryFingerprint.from_signature(one.signature), 2000)
    print(f"  from_signature: {rebuild:.1f} µs")
    print(f"  signature: {len(one.signature)} bytes, {len(one.band_keys)} band keys")


if __name__ == "__main__":
    main()
