"""Chinese text for test articles that must be different stories.

Articles that report the same news group into one story, and a rule alerts once per story;
tests that serve many articles to count their alerts give each its own text:

    Item(f"韩日对话 第{n}轮", description=f"<p>{distinct_text(n)}</p>")

The text is made of common Simplified characters drawn at random from a seed, so two seeds
share almost no run of three characters (the grouping measure compares such runs), and
the same seed gives the same text on every run. It holds no word a test rule looks for.
"""

from __future__ import annotations

import functools
import random

# Rules in the tests look for these; filler text must never contain them.
_AVOIDED = ("韩日", "日韩", "强征", "劳工", "体育", "对话", "软件", "信息")


@functools.cache
def _characters() -> str:
    """GB2312's first level: the 3,755 most common Simplified characters."""
    return "".join(
        bytes((row, cell)).decode("gb2312")
        for row in range(0xB0, 0xD8)
        for cell in range(0xA1, 0xFF)
        if (row, cell) < (0xD7, 0xFA)
    )


def distinct_text(seed: object, characters: int = 90) -> str:
    """Given a seed (a number, or text such as "cn-3"), return about `characters`
    characters of sentences no other seed gives."""
    generator = random.Random(str(seed))
    pool = _characters()
    sentences = []
    length = 0
    while length < characters:
        sentence = "".join(generator.choice(pool) for _ in range(generator.randint(12, 20)))
        for word in _AVOIDED:
            sentence = sentence.replace(word, word[0])
        sentences.append(sentence + "。")
        length += len(sentence) + 1
    return "".join(sentences)
