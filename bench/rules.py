"""Benchmark: articles per second of RuleSet.match for 10, 1,000 and 10,000 rules, on one core.

    make bench                                  # bench/run.py runs this at its end (not --quick)
    .venv/bin/python bench/rules.py --quick     # fewer articles, shorter timing
    .venv/bin/python bench/rules.py --no-backtest

Articles are synthetic RFI-style Chinese texts of 2-5 KB (title, summary, content,
categories; a few Latin words), deterministic; a last table matches them again in Taiwan
script and vocabulary (OpenCC s2twp), where regional variants of the rules' terms hit.
Rules mix `any`, `all` and `none` lists, and `query:` strings when RuleConfig has a
`query` field (the query language). Most terms are words that no article contains, some are
words that many do, as in a real rule set where a few rules are about today's news and most
are not.

10,000 rules should cost about as much as 10 (monitor/matching/ruleset.py says why).
Targets: at 10,000 rules at least 2,000 articles/s, and at most 3x slower than at 10 rules.

Before that, unless --no-backtest: `news-monitor rules test --json` end to end (100 rules)
over a store of 30,000 articles (3,000 with --quick), measured from outside: wall, CPU
and peak RSS.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml
from farm import SENTENCES  # bench/ is on sys.path when this file runs as a script

from monitor.config import RuleConfig
from monitor.matching import RuleSet
from monitor.model import Article

RULE_COUNTS = (10, 1_000, 10_000)
TARGET_ARTICLES_PER_SECOND = 2_000
TARGET_SLOWDOWN = 3.0
HAS_QUERY = hasattr(RuleConfig, "query") or "query" in {
    field.name for field in dataclasses.fields(RuleConfig)
}

# More sentences, with the Latin words and Traditional text that real feeds carry.
EXTRA_SENTENCES = (
    "据路透社（Reuters）报道，NATO秘书长表示将加强与亚太伙伴的合作。",
    "美国商务部宣布新的AI芯片出口限制，Nvidia股价应声下跌。",
    "韓日兩國外長在東京會晤，就強徵勞工問題交換意見。",
    "巴黎奥运会（Jeux olympiques）筹备工作进入最后阶段，体育场馆陆续完工。",
    "世界卫生组织（WHO）发布报告称，全球疫苗接种率有所回升。",
    "欧洲央行（ECB）宣布维持利率不变，欧元兑美元汇率小幅上涨。",
)
ALL_SENTENCES = SENTENCES + EXTRA_SENTENCES
# Chinese text is Zipfian: a few hundred characters make up most of it, and names use a
# wider range. FREQUENT_CHARACTERS are those of the sentences above (about 300); GB2312
# level 1 is the 3,755 most common hanzi. Filler text takes FREQUENT_SHARE of its
# characters from the first, the rest from the second; rule words and names come from the
# second, so the automaton meets the near misses that real text gives it.
FREQUENT_CHARACTERS = "".join(
    sorted(
        {char for sentence in ALL_SENTENCES for char in sentence if "\u4e00" <= char <= "\u9fff"}
    )
)
COMMON_CHARACTERS = "".join(
    bytes((row, cell)).decode("gb2312")
    for row in range(0xB0, 0xD8)
    for cell in range(0xA1, 0xFF)
    if (row, cell) < (0xD7, 0xFA)  # level 1 ends at D7F9
)
FREQUENT_SHARE = 0.65
# Topic words that the sentences contain: an article carries a few topics.
TOPIC_WORDS = (
    "韩日", "日韩", "强征劳工", "台湾海峡", "半导体", "新疆", "香港", "欧盟", "乌克兰", "马克龙",
    "出口管制", "人权", "国安法", "电动汽车", "反补贴", "军机", "外长", "战略对话", "芯片",
    "AI", "NATO", "Reuters", "WHO", "ECB", "Nvidia", "export*", "体育", "疫苗", "利率", "奥运",
    "峰会", "联合国", "统计局", "经济数据",
)  # fmt: skip
LATIN_WORDS = ("sanction", "tariff", "election", "summit", "protest", "embargo", "drone")
ENTITY_COUNT = 2_000  # names (people, places, companies): each article mentions a few
ENTITIES_PER_ARTICLE = 5
TOPIC_SENTENCES_PER_ARTICLE = 3
# Shares of rule terms: entity names, topic words, Latin words that never occur; the rest
# are 3-4 character words of common characters that (almost) never occur. With these, an
# article matches about one rule in a thousand: ten rules of 10,000.
ENTITY_TERM_SHARE = 0.10
TOPIC_TERM_SHARE = 0.001
LATIN_TERM_SHARE = 0.05
# A rule set about today's news: hundreds of rules match each article at 10,000 rules.
BUSY_TOPIC_TERM_SHARE = 0.03


def _word(generator: random.Random, length: int) -> str:
    return "".join(generator.choice(COMMON_CHARACTERS) for _ in range(length))


ENTITIES = tuple(_word(random.Random(index), 3) for index in range(ENTITY_COUNT))


# Weights for drawing filler characters: FREQUENT_SHARE spread over the frequent ones.
_FILLER_CHARACTERS = FREQUENT_CHARACTERS + COMMON_CHARACTERS
_FILLER_CUMULATIVE_WEIGHTS = list(
    itertools.accumulate(
        [FREQUENT_SHARE / len(FREQUENT_CHARACTERS)] * len(FREQUENT_CHARACTERS)
        + [(1 - FREQUENT_SHARE) / len(COMMON_CHARACTERS)] * len(COMMON_CHARACTERS)
    )
)


def _filler(generator: random.Random) -> str:
    """A clause of Chinese characters, frequent ones more often (see FREQUENT_SHARE)."""
    length = generator.randint(8, 24)
    clause = generator.choices(_FILLER_CHARACTERS, cum_weights=_FILLER_CUMULATIVE_WEIGHTS, k=length)
    return "".join(clause) + generator.choice("，，，。")


def make_articles(count: int, seed: int = 7) -> list[Article]:
    """Return `count` deterministic articles whose text fields total 2-5 KB of UTF-8: a few
    topic sentences, a few entity names, a Latin word now and then, filler around them."""
    generator = random.Random(seed)
    articles = []
    for index in range(count):
        target_bytes = generator.randint(2_000, 5_000)
        parts = generator.choices(ALL_SENTENCES, k=TOPIC_SENTENCES_PER_ARTICLE)
        parts += [generator.choice(ENTITIES) + "表示，" for _ in range(ENTITIES_PER_ARTICLE)]
        parts.append(f"（{generator.choice(LATIN_WORDS)}）")
        size = sum(len(part.encode()) for part in parts)
        while size < target_bytes:
            clause = _filler(generator)
            parts.append(clause)
            size += len(clause.encode())
        generator.shuffle(parts)
        split = max(1, len(parts) // 3)
        title = generator.choice(ALL_SENTENCES)[:24]
        articles.append(
            Article(
                guid=f"bench-{index}",
                link=f"https://www.rfi.fr/cn/bench/{index}",
                canonical_link=f"https://www.rfi.fr/cn/bench/{index}",
                title=f"{title} {index}",
                summary="".join(parts[:split]),
                content="".join(parts[split:]),
                categories=("亚洲", "国际"),
                published=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=index),
            )
        )
    return articles


def _term(generator: random.Random, topic_share: float) -> str:
    roll = generator.random()
    if roll < ENTITY_TERM_SHARE:
        return generator.choice(ENTITIES)
    roll -= ENTITY_TERM_SHARE
    if roll < topic_share:
        return generator.choice(TOPIC_WORDS)
    roll -= topic_share
    if roll < LATIN_TERM_SHARE:
        return f"{generator.choice(LATIN_WORDS)}{generator.randint(1, 99_999)}"
    return _word(generator, generator.randint(2, 4))


def make_rules(
    count: int, *, with_queries: bool, topic_share: float = TOPIC_TERM_SHARE, seed: int = 11
) -> list[RuleConfig]:
    """Return `count` deterministic rules: any / any+all / any+none lists, and a fifth as
    queries when the query language exists. See ENTITY_TERM_SHARE for the terms."""
    generator = random.Random(seed)
    rules = []
    for index in range(count):
        shape = index % 5

        def terms(number: int) -> tuple[str, ...]:
            return tuple(_term(generator, topic_share) for _ in range(number))

        name = f"rule-{index}"
        if shape == 4 and with_queries:
            first, second, third, excluded = terms(4)
            query = f"({first} OR {second}) {third} -{excluded}"
            rules.append(RuleConfig(name=name, query=query))  # type: ignore[call-arg]
        elif shape in (1, 4):
            rules.append(RuleConfig(name=name, any_terms=terms(3), all_terms=terms(1)))
        elif shape == 2:
            rules.append(RuleConfig(name=name, any_terms=terms(2), none_terms=terms(2)))
        elif shape == 3:
            rules.append(RuleConfig(name=name, any_terms=terms(2), fields=("title", "summary")))
        else:
            rules.append(RuleConfig(name=name, any_terms=terms(generator.randint(1, 5))))
    return rules


def compile_rules(count: int, topic_share: float) -> tuple[RuleSet, float, bool]:
    """Return (compiled rules, compile seconds, whether query rules are included)."""
    with_queries = HAS_QUERY
    started = time.perf_counter()
    try:
        matcher = RuleSet.compile(
            make_rules(count, with_queries=with_queries, topic_share=topic_share)
        )
    except Exception as error:  # a query language still being written: any failure
        if not with_queries:
            raise
        print(f"query rules do not compile ({error}); measuring list rules only")
        with_queries = False
        started = time.perf_counter()
        matcher = RuleSet.compile(make_rules(count, with_queries=False, topic_share=topic_share))
    # A rule set finishes compiling (its terms' regional readings, the automaton) when it
    # first matches: the compile time includes that.
    matcher.match(Article(None, None, None, title="", summary="", content=""), "bench")
    return matcher, time.perf_counter() - started, with_queries


def articles_per_second(
    matcher: RuleSet, articles: list[Article], minimum_seconds: float
) -> tuple[float, float]:
    """Return (best articles/s over repeated passes, mean matches per article)."""
    matches = sum(len(matcher.match(article, "bench")) for article in articles)  # warm up
    best = 0.0
    spent = 0.0
    passes = 0
    while spent < minimum_seconds or passes < 3:
        started = time.perf_counter()
        for article in articles:
            matcher.match(article, "bench")
        elapsed = time.perf_counter() - started
        spent += elapsed
        passes += 1
        best = max(best, len(articles) / elapsed)
    return best, matches / len(articles)


def match_table(
    articles: list[Article], topic_share: float, minimum_seconds: float
) -> dict[int, float]:
    """Print one row per rule count; return articles/s per rule count."""
    print(f"{'rules':>7} {'compile s':>10} {'articles/s':>11} {'ms/article':>11} "
          f"{'vs 10':>6} {'hits/article':>13} {'queries':>8}")  # fmt: skip
    rates: dict[int, float] = {}
    for count in RULE_COUNTS:
        matcher, compile_seconds, with_queries = compile_rules(count, topic_share)
        rate, hits = articles_per_second(matcher, articles, minimum_seconds)
        rates[count] = rate
        print(
            f"{count:>7} {compile_seconds:>10.2f} {rate:>11.0f} {1000 / rate:>11.3f} "
            f"{rates[RULE_COUNTS[0]] / rate:>5.2f}x {hits:>13.2f} "
            f"{'yes' if with_queries else 'no':>8}"
        )
    return rates


def bench_match(article_count: int, minimum_seconds: float) -> bool:
    """Print the match tables; return whether both targets are met (typical rule set)."""
    _pin_to_one_core()
    articles = make_articles(article_count)
    sizes = [sum(len(article.field_text(f).encode()) for f in ("title", "summary", "content"))
             for article in articles]  # fmt: skip
    print(
        f"RuleSet.match: {len(articles)} synthetic articles of {min(sizes) / 1000:.1f}-"
        f"{max(sizes) / 1000:.1f} KB (mean {sum(sizes) / len(sizes) / 1000:.1f} KB), one core"
    )
    print(
        f"typical rule set: {TOPIC_TERM_SHARE:.1%} of terms are topic words, "
        f"{ENTITY_TERM_SHARE:.0%} entity names (about 1 rule in 1,000 matches an article)"
    )
    rates = match_table(articles, TOPIC_TERM_SHARE, minimum_seconds)
    largest = rates[RULE_COUNTS[-1]]
    slowdown = rates[RULE_COUNTS[0]] / largest
    fast_enough = largest >= TARGET_ARTICLES_PER_SECOND
    flat_enough = slowdown <= TARGET_SLOWDOWN
    print(
        f"target {RULE_COUNTS[-1]:,} rules >= {TARGET_ARTICLES_PER_SECOND:,} articles/s: "
        f"{'met' if fast_enough else 'NOT met'} ({largest:,.0f}); "
        f"<= {TARGET_SLOWDOWN:g}x slower than {RULE_COUNTS[0]} rules: "
        f"{'met' if flat_enough else 'NOT met'} ({slowdown:.2f}x)"
    )
    print()
    print(
        f"busy rule set (for information): {BUSY_TOPIC_TERM_SHARE:.0%} of terms are topic "
        "words, so matches grow with the rules; each match has a cost of its own"
    )
    match_table(articles, BUSY_TOPIC_TERM_SHARE, minimum_seconds)
    print()
    print(
        "Taiwan articles, typical rule set (for information): the same articles through "
        "OpenCC s2twp, where the rules' Mainland words hit as regional variants, each "
        "confirmed in its article"
    )
    match_table(taiwan_articles(articles), TOPIC_TERM_SHARE, minimum_seconds)
    return fast_enough and flat_enough


def taiwan_articles(articles: list[Article]) -> list[Article]:
    """Given articles, return them in Taiwan script and vocabulary (OpenCC s2twp)."""
    import opencc  # here: only this table needs it (and the converter costs 45 MB)

    s2twp = opencc.OpenCC("s2twp")
    return [
        dataclasses.replace(
            article,
            title=s2twp.convert(article.title),
            summary=s2twp.convert(article.summary),
            content=s2twp.convert(article.content),
        )
        for article in articles
    ]


def _pin_to_one_core() -> None:
    if hasattr(os, "sched_setaffinity"):
        cores = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cores[0]})


def fill_store(database_url: str, count: int, naive_database: str | None = None) -> None:
    """Store `count` synthetic articles, in three feeds, first seen over the last 30 days;
    with naive_database, also write them to a plain SQLite table for the naive reference."""
    from monitor.store.database import Store

    store = Store(database_url)
    store.create_schema()
    articles = make_articles(count, seed=3)
    now = datetime.now(UTC)
    batch = 500
    try:
        for start in range(0, count, batch):
            seen_at = now - timedelta(days=30) + timedelta(days=30 * start / count)
            with store.transaction() as transaction:
                transaction.upsert_articles(
                    f"feed-{start // batch % 3}",
                    articles[start : start + batch],
                    baseline=True,
                    now=seen_at,
                )
    finally:
        store.close()
    if naive_database:
        import sqlite3

        database = sqlite3.connect(naive_database)
        database.execute("CREATE TABLE articles (title TEXT, summary TEXT, content TEXT)")
        database.executemany(
            "INSERT INTO articles VALUES (?, ?, ?)",
            ((article.title, article.summary, article.content) for article in articles),
        )
        database.commit()
        database.close()


def rules_yaml(count: int, *, with_queries: bool) -> list[dict]:
    """make_rules(count) as the dicts of a rules file."""
    rules = []
    for rule in make_rules(count, with_queries=with_queries):
        query = getattr(rule, "query", None)
        entry: dict = {"name": rule.name}
        if query:
            entry["query"] = str(query)
        for key, terms in (("any", rule.any_terms), ("all", rule.all_terms),
                           ("none", rule.none_terms)):  # fmt: skip
            if terms:
                entry[key] = list(terms)
        if tuple(rule.fields) != ("title", "summary", "content"):
            entry["fields"] = list(rule.fields)
        rules.append(entry)
    return rules


def write_rules(folder: str, count: int) -> None:
    """Write rules-COUNT.yaml (make_rules, with queries when the language has them) and
    rules-COUNT.json (list form only, for the naive reference) into folder."""
    import json

    path = Path(folder)
    (path / f"rules-{count}.yaml").write_text(
        yaml.safe_dump(rules_yaml(count, with_queries=HAS_QUERY), allow_unicode=True),
        encoding="utf-8",
    )
    (path / f"rules-{count}.json").write_text(
        json.dumps(rules_yaml(count, with_queries=False), ensure_ascii=False), encoding="utf-8"
    )


def bench_backtest(article_count: int, rule_count: int = 100) -> None:
    """Print wall, CPU and peak RSS of `rules test --json` over a store of articles."""
    workspace = Path(tempfile.mkdtemp(prefix="news-monitor-bench-rules-"))
    try:
        rules = [
            {"name": rule.name, "any": list(rule.any_terms), "all": list(rule.all_terms),
             "none": list(rule.none_terms), "fields": list(rule.fields)}
            for rule in make_rules(rule_count, with_queries=False)
        ]  # fmt: skip
        (workspace / "rules.yaml").write_text(
            yaml.safe_dump(rules, allow_unicode=True), encoding="utf-8"
        )
        config = {
            "database": "sqlite:///state/monitor.db",
            "feeds": [{"name": f"feed-{index}", "url": "file:///dev/null"} for index in range(3)],
            "rules_files": ["rules.yaml"],
        }
        (workspace / "monitor.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
        started = time.perf_counter()
        # In a child process: this one stays small, and a child's peak RSS as wait4 reports
        # it can include the parent's pages (it starts as a copy of the parent).
        subprocess.run(
            [sys.executable, __file__, "--fill-store", f"sqlite:///{workspace}/state/monitor.db",
             "--articles", str(article_count)],
            check=True,
        )  # fmt: skip
        fill_seconds = time.perf_counter() - started
        for label, extra in (("all", ()), ("--since 7d", ("--since", "7d"))):
            print(run_backtest(workspace, extra, f"{article_count:,} stored articles, {label}"))
        print(f"(filling the store took {fill_seconds:.1f} s)")
    finally:
        shutil.rmtree(workspace, ignore_errors=True)


def run_backtest(workspace: Path, extra: tuple[str, ...], label: str) -> str:
    """Run `rules test --json` once in workspace; return a line with what it cost."""
    stdout_path, stderr_path = workspace / "stdout", workspace / "stderr"
    started = time.perf_counter()
    with stdout_path.open("wb") as stdout, stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "monitor", "rules", "test", "--json",
             "--config", str(workspace / "monitor.yaml"), *extra],
            cwd=workspace, stdout=stdout, stderr=stderr,
        )  # fmt: skip
        _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    errors = stderr_path.read_text(encoding="utf-8", errors="replace")
    if process.returncode != 0:
        sys.stderr.write(errors)
        raise SystemExit(f"rules test exited {process.returncode}")
    with stdout_path.open("rb") as output:
        hits = sum(1 for _ in output)
    summary = errors.strip().splitlines()[-1] if errors.strip() else ""
    checked = summary[summary.rfind("(") :] if "(" in summary else ""
    return (
        f"rules test --json ({label}): {wall:.2f} s wall, "
        f"{usage.ru_utime + usage.ru_stime:.2f} s CPU, peak {usage.ru_maxrss / 1024:.0f} MB, "
        f"{hits:,} hits {checked}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer articles, shorter timing")
    parser.add_argument("--articles", type=int, default=None, help="articles matched per pass")
    parser.add_argument("--no-backtest", action="store_true", help="skip the rules test run")
    parser.add_argument("--fill-store", metavar="DATABASE_URL", help=argparse.SUPPRESS)
    parser.add_argument("--naive-database", metavar="PATH", help=argparse.SUPPRESS)
    parser.add_argument("--write-rules", metavar="FOLDER", help=argparse.SUPPRESS)
    parser.add_argument("--rules", type=int, default=10, help=argparse.SUPPRESS)
    # bench/run.py may pass options of its own: ignore those.
    arguments, _ = parser.parse_known_args(argv)
    if arguments.fill_store:
        fill_store(arguments.fill_store, arguments.articles, arguments.naive_database)
        return 0
    if arguments.write_rules:
        write_rules(arguments.write_rules, arguments.rules)
        return 0
    if not arguments.no_backtest:
        # First, while this process is small (see bench_backtest).
        bench_backtest(3_000 if arguments.quick else 30_000)
        print()
    article_count = arguments.articles or (200 if arguments.quick else 1_000)
    bench_match(article_count, minimum_seconds=0.5 if arguments.quick else 2.0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
