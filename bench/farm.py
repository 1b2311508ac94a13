"""A local feed farm: N deterministic RFI-style Chinese feeds of M items each, served over
HTTP/1.1 on 127.0.0.1 with ETag, Last-Modified, 304 answers and gzip; plus a webhook
receiver that counts alerts (none lost, none twice) and notes when each arrived, a
`/burst/N` feed of N items that one rule matches (the delivery scenario), and probe items
published into one feed at a known moment (the alert-latency scenario).

In a process of its own, so that the benchmark's measuring process stays small (a child's
peak RSS as wait4 reports it includes its parent's at the time of the fork):

    with FarmProcess(feeds=1000, items=30) as farm:
        farm.url(0)                      # http://127.0.0.1:PORT/feed/0
        farm.publish(0.1, 3)             # 10% of the feeds gain 3 new items
        farm.reset_feeds()               # back to the initial documents, bit for bit
        farm.stats()                     # requests by status since reset_stats()
        farm.hook_url("ours")            # json://127.0.0.1:PORT/hook/ours (Apprise)
        farm.hook("ours")                # {"keys": [...], "first": t, "last": t,
                                         #  "times": {key: first arrival (Unix time)}}
        farm.publish_probe(7)            # feed 7 gains a probe item now: its id and the
                                         # moment it began to be served (Unix time)
        farm.probes()                    # {id: {"feed", "published", "first_served"}}

    .venv/bin/python bench/farm.py --serve --feeds 100   # standalone, prints its port

Every item carries one of 200 made-up names (corpus().entities) and, now and then, a topic sentence
(SENTENCES); `farm_rules()` gives 20 list-form rules over them that a naive `in` loop
evaluates exactly as news-monitor does, so both must alert the same (rule, item) pairs.
The text uses only characters that NFKC and OpenCC t2s leave alone, for the same reason.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gzip
import hashlib
import json
import random
import re
import subprocess
import sys
import threading
import time
import unicodedata
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from urllib.parse import parse_qs, quote, urlsplit
from xml.sax.saxutils import escape

# Sentences in the register of RFI's Chinese service (bench/rules.py uses them too).
SENTENCES = (
    "韩日两国时隔9年重启副外长战略对话会议，共商加强双边关系、地区及全球问题合作方案。",
    "韩国政府3月发布二战强征劳工索赔问题解法推动韩日关系恢复正常。",
    "美中竞争加剧、乌克兰战争等地区及国际局势巨变促使两国合作的必要性增大。",
    "据韩联社今天报道称，韩国外交部第一次官和日本外务省事务次官在首尔举行会议。",
    "法国总统马克龙周四前往西班牙格拉纳达出席欧洲政治共同体峰会。",
    "欧盟委员会表示将对中国电动汽车展开反补贴调查，北京对此表示强烈不满。",
    "台湾海峡局势持续紧张，解放军军机多次进入台湾防空识别区。",
    "香港法院就国安法案件作出判决，多名民主派人士被判入狱。",
    "联合国人权理事会讨论新疆人权状况，多国发表联合声明。",
    "中国国家统计局公布最新经济数据，第三季度国内生产总值同比增长4.9%。",
    "半导体出口管制措施升级，荷兰与日本相继收紧对华芯片设备出口。",
    "俄罗斯与乌克兰冲突进入第三年，欧洲各国继续向基辅提供军事援助。",
)
TOPIC_SHARE = 0.3  # share of items whose body carries one of SENTENCES
ENTITY_COUNT = 200  # each item names one of them
BURST_WORD = "基准快讯"  # in every /burst/ item's title, and in no other item
PROBE_WORD = "时延探针"  # in every probe item's title (publish_probe), and in no other item
SECTION = quote("亚洲")  # RFI links carry the section, percent-encoded
IMAGE = "https://s.rfi.fr/media/display/{0}/w:1280/p:16x9/{0}.jpg"
SHARE = (
    '<div><div>分享 :</div><div><a href="https://www.facebook.com/dialog/share?app_id='
    '113191652055439&amp;href={0}&amp;locale=zh_CN" target="_blank" rel="noopener nofollow">'
    '<span></span></a><a href="whatsapp://send?text={0}" target="_blank" rel="noopener '
    'nofollow"><span></span></a><a href="https://web.whatsapp.com/send?text={0}" '
    'target="_blank" rel="noopener nofollow"><span></span></a><a href="https://x.com/intent/'
    'tweet?url={0}&amp;via=RFI_Cn&amp;related=RFI_Cn&amp;lang=zh-cn" target="_blank" '
    'rel="noopener nofollow"><span></span></a></div></div>'
)


def _invariant(char: str) -> bool:
    return unicodedata.normalize("NFKC", char) == char and char.casefold() == char


def _common_characters() -> str:
    """GB2312 level 1 (the 3,755 most common hanzi), less those OpenCC t2s would change."""
    level_one = "".join(
        bytes((row, cell)).decode("gb2312")
        for row in range(0xB0, 0xD8)
        for cell in range(0xA1, 0xFF)
        if (row, cell) < (0xD7, 0xFA)
    )
    try:
        import opencc

        folded = opencc.OpenCC("t2s").convert(level_one)
    except (ImportError, RuntimeError):  # no OpenCC: keep them all (rare mismatches)
        folded = level_one
    if len(folded) != len(level_one):
        return level_one
    return "".join(a for a, b in zip(level_one, folded, strict=True) if a == b and _invariant(a))


@dataclass(frozen=True)
class Corpus:
    common: str  # characters that filler text and names are made of
    frequent: str  # those of SENTENCES: 65% of filler characters
    clauses: tuple[str, ...]  # filler clauses, 8-24 characters each
    entities: tuple[str, ...]  # made-up names of 3 characters; each item names one


@functools.cache
def corpus() -> Corpus:
    """The generated text, made on first use (it loads OpenCC: the measuring process, which
    only drives the farm, never needs it and stays small)."""
    common = _common_characters()
    frequent = "".join(
        sorted({c for s in SENTENCES for c in s if "\u4e00" <= c <= "\u9fff" and c in common})
    )
    entities = tuple(
        "".join(random.Random(1_000 + index).choices(common, k=3)) for index in range(ENTITY_COUNT)
    )
    return Corpus(common, frequent, _make_clauses(common, frequent, 4_000), entities)


def _make_clauses(common: str, frequent: str, count: int, seed: int = 5) -> tuple[str, ...]:
    """Filler clauses: 65% of characters from the frequent ones, the rest from the common."""
    generator = random.Random(seed)
    clauses = []
    for _ in range(count):
        chars = [
            generator.choice(frequent) if generator.random() < 0.65 else generator.choice(common)
            for _ in range(generator.randint(8, 24))
        ]
        clauses.append("".join(chars) + generator.choice("，，，。"))
    return tuple(clauses)


def farm_rules() -> list[dict]:
    """The 20 rules of the farm scenarios, YAML-ready (without `notify`). List form only,
    CJK only, so a naive `in` loop evaluates them exactly as news-monitor does. About one
    new item in five matches one of them."""
    entities = corpus().entities
    rules: list[dict] = [{"name": f"entity-{k}", "any": [entities[k]]} for k in range(15)]
    rules += [
        {"name": "korea-japan", "any": ["韩日", "日韩"]},
        {"name": "forced-labour", "any": ["强征劳工", "强制劳动"], "none": ["体育"]},
        {"name": "taiwan-pla", "all": ["台湾", "解放军"]},
        {"name": "chips", "any": ["半导体", "芯片"], "none": ["体育"]},
        {"name": "ukraine-war", "any": ["乌克兰"], "all": ["战争"]},
    ]
    return rules


def rule_matches(rule: dict, text: str) -> bool:
    """The naive evaluation of one list-form rule: `in` over the text."""
    return (
        (not rule.get("any") or any(term in text for term in rule["any"]))
        and all(term in text for term in rule.get("all", ()))
        and not any(term in text for term in rule.get("none", ()))
    )


def item_link(feed_index: int, item_index: int) -> str:
    return f"https://www.rfi.fr/cn/{SECTION}/20260105-bench-{feed_index}-{item_index}"


def item_xml(feed_index: int, item_index: int, published: datetime) -> str:
    """One RSS item in the shape of RFI's: an HTML description with a date, an image, a
    bold lead, four paragraphs and a block of share links (about 4 KB escaped)."""
    generator = random.Random(feed_index * 100_003 + item_index)
    clauses = corpus().clauses
    entity = corpus().entities[generator.randrange(ENTITY_COUNT)]
    paragraphs = [generator.choices(clauses, k=10) for _ in range(4)]
    paragraphs[generator.randrange(4)].insert(generator.randrange(10), entity + "表示，")
    if generator.random() < TOPIC_SHARE:
        topic = generator.choice(SENTENCES)
        paragraphs[generator.randrange(4)].insert(generator.randrange(10), topic)
    lead = "".join(generator.choices(clauses, k=3))
    title = lead[:18].rstrip("，。")
    link = item_link(feed_index, item_index)
    image = IMAGE.format(f"{generator.getrandbits(128):032x}")
    html = (
        f'<div>{published:%d/%m/%Y - %H:%M}</div><img src="{image}">'
        f"<p><strong>{lead}</strong></p><div>"
        + "".join(f"<p>{''.join(paragraph)}</p>" for paragraph in paragraphs)
        + "<div data-selfpromo-newsletter></div></div>"
        + SHARE.format(quote(link, safe=""))
    )
    return (
        f"<item><title>{escape(title)}</title><link>{link}</link>"
        f'<guid isPermaLink="false">https://www.rfi.fr/cn/bench-{feed_index}-{item_index}</guid>'
        f"<pubDate>{format_datetime(published, usegmt=True)}</pubDate>"
        f"<category>亚洲</category><description>{escape(html)}</description></item>"
    )


def _channel(title: str, body: str, now: datetime) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel>'
        f"<title>{title}</title><link>https://www.rfi.fr/cn/</link>"
        f"<description>{title}</description><language>zh</language>"
        f"<lastBuildDate>{format_datetime(now, usegmt=True)}</lastBuildDate>"
        f"{body}</channel></rss>"
    ).encode()


def feed_xml(
    feed_index: int, items: int, first_item: int, now: datetime, probes: tuple[str, ...] = ()
) -> bytes:
    """Items first_item .. first_item + items - 1, the newest first (item i was published
    i minutes before `now`; publish() adds items of negative index), after the feed's probe
    items (probe_xml), the newest first."""
    body = "".join(probes) + "".join(
        item_xml(feed_index, index, now - timedelta(minutes=index))
        for index in range(first_item, first_item + items)
    )
    return _channel(f"RFI - 中文 bench {feed_index}", body, now)


def probe_xml(probe_id: str, published: datetime) -> str:
    """A short item with PROBE_WORD in its title, which one rule matches."""
    return (
        f"<item><title>{PROBE_WORD} {probe_id}</title>"
        f"<link>https://www.rfi.fr/cn/{SECTION}/20260105-{probe_id}</link>"
        f'<guid isPermaLink="false">{probe_id}</guid>'
        f"<pubDate>{format_datetime(published, usegmt=True)}</pubDate>"
        f"<description>{escape('<p>韩日两国外长会谈。</p>')}</description></item>"
    )


def burst_xml(count: int, now: datetime) -> bytes:
    """A feed of `count` short items, each with BURST_WORD in its title."""
    items = []
    for index in range(count):
        generator = random.Random(7_000_000 + index)
        text = "".join(generator.choices(corpus().clauses, k=6))
        published = now - timedelta(seconds=index)
        items.append(
            f"<item><title>{BURST_WORD} {index}</title>"
            f"<link>https://www.rfi.fr/cn/{SECTION}/20260105-burst-{index}</link>"
            f'<guid isPermaLink="false">burst-{index}</guid>'
            f"<pubDate>{format_datetime(published, usegmt=True)}</pubDate>"
            f"<description>{escape(f'<p>{text}</p>')}</description></item>"
        )
    return _channel("RFI bench burst", "".join(items), now)


_KEY_ID = re.compile(r"(bench-\d+--?\d+|burst-\d+|probe-\d+)")  # publish() adds items -1, -2...
_KEY_RULE = re.compile(r"^\[([^\]]*)\]")


def alert_keys(title: str, message: str) -> list[str]:
    """`rule|item id` of each rule an alert names: from the title "[rule] ..." (several
    rules' alerts about one article come as one message, "[rule-a, rule-b] ...") and the
    link in the body."""
    rules = match.group(1).split(", ") if (match := _KEY_RULE.match(title or "")) else ["?"]
    found = _KEY_ID.search(message or "") or _KEY_ID.search(title or "")
    return [f"{rule}|{found.group(1) if found else '?'}" for rule in rules]


class _Document:
    __slots__ = ("body", "etag", "gzipped", "last_modified", "probes")

    def __init__(self, body: bytes, last_modified: datetime, probes: tuple[str, ...] = ()) -> None:
        self.body = body
        self.probes = probes  # ids of the probe items it holds
        self.gzipped = gzip.compress(body, compresslevel=6, mtime=0)
        self.etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        self.last_modified = last_modified


class FeedFarm:
    """The server itself, in this process: `with FeedFarm(100, 30) as farm: farm.url(0)`."""

    def __init__(self, feeds: int, items: int, *, use_gzip: bool = True, port: int = 0) -> None:
        self.feed_count = feeds
        self.items = items
        self.use_gzip = use_gzip
        # Whole seconds: HTTP dates have no fraction, and If-Modified-Since compares them.
        self.now = datetime.now(UTC).replace(microsecond=0)
        self._lock = threading.Lock()
        self._first_item = [0] * feeds
        # Each feed's probe items, the newest first: (id, probe_xml).
        self._probe_items: list[tuple[tuple[str, str], ...]] = [()] * feeds
        self._initial = [self._render(index, 0, self.now) for index in range(feeds)]
        self._documents = list(self._initial)
        self._bursts: dict[int, _Document] = {}
        self._last_publish = self.now
        self._probes: dict[str, dict] = {}  # id -> feed, published, first_served
        self._stats: dict[str, int] = {}
        self._hooks: dict[str, dict] = {}
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler_class())
        self._server.daemon_threads = True
        self._server.request_queue_size = 128
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def _render(self, index: int, first_item: int, modified: datetime) -> _Document:
        probes = self._probe_items[index]
        body = feed_xml(index, self.items, first_item, self.now, tuple(xml for _, xml in probes))
        return _Document(body, modified, tuple(probe_id for probe_id, _ in probes))

    # --- state changes ----------------------------------------------------------------

    def publish(self, fraction: float, new_items: int) -> int:
        """Give the first `fraction` of the feeds `new_items` new items each (the oldest
        fall out of the window); return how many feeds changed."""
        changed = round(self.feed_count * fraction)
        with self._lock:
            modified = max(
                datetime.now(UTC).replace(microsecond=0), self._last_publish + timedelta(seconds=1)
            )
            self._last_publish = modified
        for index in range(changed):
            self._first_item[index] -= new_items
            document = self._render(index, self._first_item[index], modified)
            with self._lock:
                self._documents[index] = document
        return changed

    def publish_probe(self, index: int) -> dict:
        """Feed `index` gains a probe item (PROBE_WORD in its title) from now on; return its
        id and the moment (Unix time) the new document replaced the old, after which every
        request for the feed gets it."""
        with self._lock:
            probe_id = f"probe-{len(self._probes)}"
            self._probes[probe_id] = {"feed": index, "published": None, "first_served": None}
            previous = self._documents[index]
        now = datetime.now(UTC)
        # Whole seconds, later than the document's: If-Modified-Since compares them.
        modified = max(now.replace(microsecond=0), previous.last_modified + timedelta(seconds=1))
        self._probe_items[index] = ((probe_id, probe_xml(probe_id, now)), *self._probe_items[index])
        document = self._render(index, self._first_item[index], modified)
        with self._lock:
            self._documents[index] = document
            published = time.time()
            self._probes[probe_id]["published"] = published
        return {"id": probe_id, "published": published}

    def probes(self) -> dict[str, dict]:
        with self._lock:
            return {key: dict(value) for key, value in self._probes.items()}

    def _served(self, document: _Document) -> None:
        """Note when each probe item was first sent in a 200 answer."""
        if document.probes:
            moment = time.time()
            with self._lock:
                for probe_id in document.probes:
                    record = self._probes[probe_id]
                    record["first_served"] = record["first_served"] or moment

    def reset_feeds(self) -> None:
        """Serve the initial documents again (same bytes, ETags and Last-Modified), without
        probe items."""
        with self._lock:
            self._first_item = [0] * self.feed_count
            self._probe_items = [()] * self.feed_count
            self._documents = list(self._initial)

    def reset_stats(self) -> None:
        with self._lock:
            self._stats = {}

    def stats(self) -> dict[str, int]:
        with self._lock:
            return dict(self._stats)

    def hook(self, label: str) -> dict:
        with self._lock:
            record = self._hooks.get(label, {"keys": [], "first": None, "last": None, "times": {}})
            return {
                "keys": list(record["keys"]),
                "first": record["first"],
                "last": record["last"],
                "times": dict(record["times"]),
            }

    def _count(self, key: str, amount: int = 1) -> None:
        with self._lock:
            self._stats[key] = self._stats.get(key, 0) + amount

    def _burst(self, count: int) -> _Document:
        with self._lock:
            document = self._bursts.get(count)
        if document is None:
            document = _Document(burst_xml(count, self.now), self.now)
            with self._lock:
                self._bursts[count] = document
        return document

    def _record_alert(self, label: str, body: bytes) -> None:
        try:
            payload = json.loads(body)
            keys = alert_keys(str(payload.get("title", "")), str(payload.get("message", "")))
        except (ValueError, AttributeError):
            keys = ["?|unparsable"]
        moment = time.time()
        with self._lock:
            record = self._hooks.setdefault(
                label, {"keys": [], "first": None, "last": None, "times": {}}
            )
            record["keys"].extend(keys)
            for key in keys:
                record["times"].setdefault(key, moment)
            record["first"] = record["first"] or moment
            record["last"] = moment

    # --- HTTP ---------------------------------------------------------------------------

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        farm = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            counted = False  # this connection has been counted (admin calls are not)

            def _count_connection(self) -> None:
                # Feed and hook requests per TCP connection: a client that reuses its
                # connections opens few.
                if not self.counted:
                    self.counted = True
                    farm._count("connections")

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                segments = parts.path.strip("/").split("/")
                try:
                    if segments[0] == "feed":
                        document = farm._documents[int(segments[1])]
                    elif segments[0] == "burst":
                        document = farm._burst(int(segments[1]))
                    elif segments[0] == "_admin" and segments[1] == "stats":
                        return self._json(farm.stats())
                    elif segments[0] == "_admin" and segments[1] == "rules":
                        return self._json(farm_rules())
                    elif segments[0] == "_admin" and segments[1] == "hook":
                        return self._json(farm.hook(segments[2]))
                    elif segments[0] == "_admin" and segments[1] == "probes":
                        return self._json(farm.probes())
                    else:
                        raise LookupError(self.path)
                except (LookupError, ValueError):
                    return self._plain(404, b"not found")
                self._count_connection()
                self._serve(document)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                segments = parts.path.strip("/").split("/")
                query = {key: values[0] for key, values in parse_qs(parts.query).items()}
                if segments[0] == "hook":
                    self._count_connection()
                    farm._record_alert(segments[1] if len(segments) > 1 else "", body)
                    farm._count("hook")
                    return self._plain(200, b"ok")
                if segments[0] == "_admin":
                    action = segments[1]
                    if action == "publish":
                        changed = farm.publish(float(query["fraction"]), int(query["items"]))
                        return self._json({"changed": changed})
                    if action == "probe":
                        return self._json(farm.publish_probe(int(query["feed"])))
                    if action == "reset_feeds":
                        farm.reset_feeds()
                        return self._json({})
                    if action == "reset_stats":
                        farm.reset_stats()
                        return self._json({})
                return self._plain(404, b"not found")

            def _serve(self, document: _Document) -> None:
                if_none_match = self.headers.get("If-None-Match")
                if_modified_since = self.headers.get("If-Modified-Since")
                not_modified = False
                if if_none_match is not None:  # RFC 9110 13.1.3: ETag wins when both come
                    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
                    not_modified = document.etag in tags or "*" in tags
                elif if_modified_since:
                    try:
                        since = parsedate_to_datetime(if_modified_since)
                        not_modified = document.last_modified <= since
                    except (TypeError, ValueError):
                        not_modified = False
                if not_modified:
                    farm._count("304")
                    self.send_response(304)
                    self._validators(document)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                accepts_gzip = "gzip" in (self.headers.get("Accept-Encoding") or "")
                body = document.body
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
                self._validators(document)
                self.send_header("Vary", "Accept-Encoding")
                if farm.use_gzip and accepts_gzip:
                    body = document.gzipped
                    self.send_header("Content-Encoding", "gzip")
                    farm._count("gzip")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                farm._served(document)
                farm._count("200")
                farm._count("bytes", len(body))

            def _validators(self, document: _Document) -> None:
                self.send_header("ETag", document.etag)
                self.send_header(
                    "Last-Modified", format_datetime(document.last_modified, usegmt=True)
                )

            def _json(self, value: object) -> None:
                body = json.dumps(value).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _plain(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler

    def url(self, index: int) -> str:
        return f"http://127.0.0.1:{self.port}/feed/{index}"

    def __enter__(self) -> FeedFarm:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()


class FarmProcess:
    """A FeedFarm in a child process, driven over its /_admin/ endpoints."""

    def __init__(self, feeds: int, items: int, *, use_gzip: bool = True) -> None:
        self.feed_count = feeds
        self.items = items
        command = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--serve",
            "--feeds",
            str(feeds),
            "--items",
            str(items),
        ]
        if not use_gzip:
            command.append("--no-gzip")
        self._process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line.startswith("ready "):
            self._process.kill()
            raise RuntimeError(f"the feed farm did not start: {line!r}")
        self.port = int(line.split()[1])
        self.base = f"http://127.0.0.1:{self.port}"

    def _call(self, method: str, path: str) -> dict:
        data = b"" if method == "POST" else None
        request = urllib.request.Request(self.base + path, method=method, data=data)
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())

    def url(self, index: int) -> str:
        return f"{self.base}/feed/{index}"

    def burst_url(self, count: int) -> str:
        return f"{self.base}/burst/{count}"

    def warm_burst(self, count: int) -> None:
        """Make the farm render /burst/count now, so that no measured request waits for it."""
        with urllib.request.urlopen(self.burst_url(count), timeout=120) as response:
            response.read()

    def hook_url(self, label: str, scheme: str = "json") -> str:
        return f"{scheme}://127.0.0.1:{self.port}/hook/{label}"

    def publish(self, fraction: float, new_items: int) -> int:
        answer = self._call("POST", f"/_admin/publish?fraction={fraction}&items={new_items}")
        return int(answer["changed"])

    def publish_probe(self, index: int) -> dict:
        """See FeedFarm.publish_probe: {"id": ..., "published": Unix time}."""
        return self._call("POST", f"/_admin/probe?feed={index}")

    def probes(self) -> dict[str, dict]:
        return self._call("GET", "/_admin/probes")

    def reset_feeds(self) -> None:
        self._call("POST", "/_admin/reset_feeds")

    def reset_stats(self) -> None:
        self._call("POST", "/_admin/reset_stats")

    def stats(self) -> dict[str, int]:
        return self._call("GET", "/_admin/stats")

    def hook(self, label: str) -> dict:
        return self._call("GET", f"/_admin/hook/{label}")

    def rules(self) -> list[dict]:
        """farm_rules(), computed in the farm's process (see corpus())."""
        return self._call("GET", "/_admin/rules")  # type: ignore[return-value]

    def close(self) -> None:
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    def __enter__(self) -> FarmProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="serve the bench feed farm")
    parser.add_argument("--serve", action="store_true", required=True)
    parser.add_argument("--feeds", type=int, default=100)
    parser.add_argument("--items", type=int, default=30)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--no-gzip", action="store_true")
    arguments = parser.parse_args(argv)
    farm = FeedFarm(
        arguments.feeds, arguments.items, use_gzip=not arguments.no_gzip, port=arguments.port
    )
    with farm:
        print(f"ready {farm.port}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
