"""Articles for tests of stories: one piece of news in several versions, and other news on
the same topic, clearly apart.

- DIALOGUE_CN / DIALOGUE_TW: RFI's article on the Korea-Japan vice-ministerial dialogue
  (tests/data/feeds/rfi-cn-rss.xml, the real seed article) and its /tw version
  (rfi-tw-rss.xml: Traditional characters): one story.
- DIALOGUE_REPRINT: the /cn text reprinted by a wire service with another headline and a
  sentence dropped: the same story.
- MINISTERS_MEETING: another Korea-Japan meeting (foreign ministers, in Tokyo), sharing
  韩日, 外长, 会谈, 合作: another story.
- FINANCE_FOLLOW_UP: the day after, the two finance ministries resume their talks: a
  follow-up with new facts, another story.

Each is a (title, description HTML) pair; `item()` makes a feed item of one, `article()`
a parsed Article.
"""

from __future__ import annotations

from datetime import datetime
from html import escape

from feeds import Item, fixture, rss

from monitor.ingest import parse_feed
from monitor.model import Article

_CN = parse_feed(fixture("rfi-cn-rss.xml")).articles[0]
_TW = parse_feed(fixture("rfi-tw-rss.xml")).articles[0]

Text = tuple[str, str]

DIALOGUE_CN: Text = (_CN.title, f"<p>{escape(_CN.summary)}</p>")
DIALOGUE_TW: Text = (_TW.title, f"<p>{escape(_TW.summary)}</p>")
_SENTENCES = _CN.summary.split("。")
DIALOGUE_REPRINT: Text = (
    "韩日时隔九年再度举行副外长战略对话",
    "<p>" + escape("。".join(_SENTENCES[:2] + _SENTENCES[3:])) + "</p>",
)
MINISTERS_MEETING: Text = (
    "韩日外长在东京举行会谈 同意加强安全合作",
    "<p>韩国外交部长官朴振与日本外务大臣林芳正今天在东京举行会谈，双方就朝鲜近期连续发射"
    "弹道导弹交换意见，同意加强韩美日三边安全合作。林芳正表示，日方愿与韩方共同应对地区"
    "安全挑战，并推动两国人员往来全面恢复。朴振则强调，两国应在正视历史的基础上推动关系"
    "向前发展，双方还商定年内举行首脑会谈。</p>",
)
FINANCE_FOLLOW_UP: Text = (
    "韩日副外长战略对话次日 两国宣布重启财长会议",
    "<p>继昨天的副外长战略对话之后，韩日两国财政部今天宣布将于下月在东京重启中断七年的财长"
    "会议，讨论货币互换协议和供应链合作。韩国企划财政部表示，这是两国关系改善的又一具体"
    "成果。分析人士指出，韩日经济合作的恢复有助于应对美中竞争带来的不确定性。</p>",
)


def item(text: Text, key: str, published: datetime, *, site: str = "cn") -> Item:
    """A feed item of `text`, with its own link and guid made from `key`."""
    title, description = text
    return Item(
        title,
        link=f"https://www.rfi.fr/{site}/news/{key}",
        guid=f"{site}-{key}",
        description=description,
        published=published,
    )


def article(text: Text, key: str, published: datetime, *, site: str = "cn") -> Article:
    """`text` as the store is given it: parsed from a feed item."""
    (parsed,) = parse_feed(rss([item(text, key, published, site=site)])).articles
    return parsed
