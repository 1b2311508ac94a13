"""A local feed farm: N deterministic RFI-style Chinese feeds of M items each, with ETag,
Last-Modified and 304 answers, served by a threaded HTTP server on 127.0.0.1:0."""

from __future__ import annotations

import hashlib
import random
import threading
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from xml.sax.saxutils import escape

# Sentences in the register of RFI's Chinese service, recombined per item.
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


def item_xml(feed_index: int, item_index: int, published: datetime) -> str:
    generator = random.Random(feed_index * 100_003 + item_index)
    paragraphs = "".join(
        f"<p>{escape(''.join(generator.choices(SENTENCES, k=4)))}</p>" for _ in range(6)
    )
    title = generator.choice(SENTENCES)[:24]
    link = f"https://www.rfi.fr/cn/bench/{feed_index}-{item_index}"
    return (
        f"<item><title>{escape(title)} {feed_index}-{item_index}</title>"
        f"<link>{link}</link>"
        f'<guid isPermaLink="false">bench-{feed_index}-{item_index}</guid>'
        f"<pubDate>{format_datetime(published, usegmt=True)}</pubDate>"
        f"<category>亚洲</category>"
        f"<description>{escape(paragraphs)}</description></item>"
    )


def feed_xml(feed_index: int, items: int, first_item: int, now: datetime) -> bytes:
    body = "".join(
        item_xml(feed_index, index, now - timedelta(minutes=index))
        for index in range(first_item, first_item + items)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
        f"<title>RFI bench {feed_index}</title><link>https://www.rfi.fr/cn/</link>"
        f"<description>bench</description>{body}</channel></rss>"
    ).encode()


class FeedFarm:
    """`with FeedFarm(feeds=100, items=30) as farm: farm.url(i)`; farm.publish(fraction, n)
    adds n new items to that fraction of the feeds."""

    def __init__(self, feeds: int, items: int) -> None:
        self.feed_count = feeds
        self.items = items
        self.now = datetime.now(UTC)
        self._first_item = [0] * feeds
        self._bodies: list[tuple[bytes, str]] = []
        self._lock = threading.Lock()
        for index in range(feeds):
            self._bodies.append(self._render(index))
        farm = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                index = int(self.path.strip("/").split("/")[-1])
                with farm._lock:
                    body, etag = farm._bodies[index]
                if self.headers.get("If-None-Match") == etag:
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
                self.send_header("ETag", etag)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _render(self, index: int) -> tuple[bytes, str]:
        body = feed_xml(index, self.items, self._first_item[index], self.now)
        return body, '"' + hashlib.sha256(body).hexdigest()[:16] + '"'

    def publish(self, fraction: float, new_items: int) -> None:
        for index in range(int(self.feed_count * fraction)):
            self._first_item[index] -= new_items
            rendered = self._render(index)
            with self._lock:
                self._bodies[index] = rendered

    def url(self, index: int) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/feed/{index}"

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
