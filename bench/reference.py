"""The references that every benchmark figure is also given as a ratio to, run as processes
of their own and measured like news-monitor (wall, CPU, peak RSS from wait4).

    naive    one cycle of the naive monitor: feedparser.parse(url) fetching each URL itself
             (no conditional GET, one feed after another), a sqlite3 table of seen guids,
             an `in` loop over the rules' terms, alerts POSTed as JSON with urllib. Its first
             cycle (empty table) is a baseline, as news-monitor's is: nothing is sent.
    reader   lemon24/reader (PyPI `reader`), if installed: update_feeds() on the same feeds
             (conditional GET; feedparser too; no rules, no alerts). Skipped otherwise.
    deliver  the naive sender: N alerts POSTed as JSON, one urllib request each.
    rules    the naive backtest: an `in` loop of list-form rules over stored articles.

Each prints one summary line of key=value pairs on stderr.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import urllib.request
from pathlib import Path

from farm import rule_matches  # bench/ is on sys.path when this file runs as a script


def _post(url: str, payload: dict) -> None:
    request = urllib.request.Request(
        url,
        data=json.dumps(payload, ensure_ascii=False).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()


def naive(state: Path, urls: list[str], rules: list[dict], hook: str | None) -> str:
    import feedparser

    state.mkdir(parents=True, exist_ok=True)
    database = sqlite3.connect(state / "naive.db")
    database.execute("CREATE TABLE IF NOT EXISTS seen (guid TEXT PRIMARY KEY)")
    baseline = database.execute("SELECT COUNT(*) FROM seen").fetchone()[0] == 0
    new = matches = sent = errors = 0
    for url in urls:
        parsed = feedparser.parse(url)
        if parsed.get("status") not in (200, 301, 302) or not parsed.entries:
            errors += 1
        for entry in parsed.entries:
            guid = entry.get("id") or entry.get("link")
            if database.execute("SELECT 1 FROM seen WHERE guid = ?", (guid,)).fetchone():
                continue
            database.execute("INSERT INTO seen (guid) VALUES (?)", (guid,))
            new += 1
            text = entry.get("title", "") + "\n" + entry.get("summary", "")
            for rule in rules:
                if not rule_matches(rule, text):
                    continue
                matches += 1
                if baseline or hook is None:
                    continue
                _post(
                    hook,
                    {
                        "version": "1.0",
                        "title": f"[{rule['name']}] {entry.get('title', '')}",
                        "message": entry.get("link", ""),
                        "type": "info",
                    },
                )
                sent += 1
        database.commit()
    database.close()
    return (
        f"naive feeds={len(urls)} errors={errors} new={new} matches={matches} "
        f"sent={sent} baseline={str(baseline).lower()}"
    )


def reader_cycle(state: Path, urls: list[str]) -> str:
    from reader import make_reader

    state.mkdir(parents=True, exist_ok=True)
    reader = make_reader(str(state / "reader.sqlite"))
    try:
        for url in urls:
            reader.add_feed(url, exist_ok=True)
        new = modified = errors = 0
        for result in reader.update_feeds_iter(scheduled=False):  # all, now
            value = result.value
            if isinstance(value, Exception):
                errors += 1
            elif value is not None:
                new += value.new
                modified += value.modified
    finally:
        reader.close()
    return f"reader feeds={len(urls)} errors={errors} new={new} modified={modified}"


def deliver(hook: str, count: int) -> str:
    for index in range(count):
        _post(
            hook,
            {
                "version": "1.0",
                "title": f"[burst] 基准快讯 {index}",
                "message": f"https://www.rfi.fr/cn/20260105-burst-{index}",
                "type": "info",
            },
        )
    return f"deliver sent={count}"


def rules_backtest(database_path: Path, rules: list[dict]) -> str:
    database = sqlite3.connect(database_path)
    articles = hits = 0
    for title, summary, content in database.execute("SELECT title, summary, content FROM articles"):
        text = f"{title}\n{summary}\n{content}"
        articles += 1
        hits += sum(rule_matches(rule, text) for rule in rules)
    database.close()
    return f"rules articles={articles} rules={len(rules)} hits={hits}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=("naive", "reader", "deliver", "rules"))
    parser.add_argument("--state", type=Path, help="folder for the reference's database")
    parser.add_argument("--urls", type=Path, help="JSON list of feed URLs")
    parser.add_argument("--rules", type=Path, help="JSON list of list-form rules")
    parser.add_argument("--hook", help="http:// URL that alerts are POSTed to")
    parser.add_argument("--count", type=int, default=1_000)
    parser.add_argument("--database", type=Path, help="SQLite file with an articles table")
    arguments = parser.parse_args(argv)
    if arguments.kind == "naive":
        urls = json.loads(arguments.urls.read_text())
        rules = json.loads(arguments.rules.read_text())
        summary = naive(arguments.state, urls, rules, arguments.hook)
    elif arguments.kind == "reader":
        summary = reader_cycle(arguments.state, json.loads(arguments.urls.read_text()))
    elif arguments.kind == "deliver":
        summary = deliver(arguments.hook, arguments.count)
    else:
        summary = rules_backtest(arguments.database, json.loads(arguments.rules.read_text()))
    print(summary, file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
