"""RSS 0.92/2.0, RDF (RSS 1.0) and Atom feeds. One ``item``/``entry`` per post; the id is the
``guid``/``<id>`` reduced to the board's own id when its link carries one (``?no=123``,
``/123``), else the whole guid or link; the time comes from ``pubDate``, ``dc:date``,
``published`` or ``updated`` (none: first-seen time); enclosures are attachments.

The feed is always parsed as XML, whatever the Content-Type says, and a feed that declares
EUC-KR but holds CP949 bytes reads right (``encoding.fix_encoding``).

Catalog: ``start_url`` only (``engine = "feed"``). A feed has one page: ``next`` is ``none``.
"""

from __future__ import annotations

import re
from datetime import datetime
from posixpath import basename
from urllib.parse import unquote, urlsplit

from parsel import Selector, SelectorList
from scrapy.http import TextResponse

from noticecrawler.extract import clean_text
from noticecrawler.items import Attachment
from noticecrawler.spiders.base import BoardSpider
from noticecrawler.spiders.ids import auto_id


def _x(name: str) -> str:
    return f"*[local-name()='{name}']"


_ITEMS = f"//{_x('item')} | //{_x('entry')}"
_LINK = (
    f"./{_x('link')}[@rel='alternate' or not(@rel)]/@href | ./{_x('link')}[not(@href)]/text()"
    f" | ./{_x('guid')}[not(@isPermaLink='false')]/text()"
)
_DATES = ("pubDate", "date", "published", "updated", "issued", "modified")


class FeedSpider(BoardSpider):
    engine_name = "feed"
    falls_back = False
    defaults = {
        "row": "xpath:" + _ITEMS,
        "title": f"xpath:./{_x('title')}",
        "link": f"xpath:./{_x('link')}",
        "date": f"xpath:./{_x('pubDate')}",
        "author": "",
        "id": "",
        "next": "none",
    }
    required = ("row",)

    @classmethod
    def detect(cls, response: TextResponse) -> float:
        head = response.text[:3000].lower()
        return 1.0 if re.search(r"<(rss|feed|rdf:rdf)\b", head) and "<html" not in head else 0.0

    def rows(self, response: TextResponse) -> SelectorList:
        # an HtmlResponse would read <link> as a void element: always parse the feed as XML
        xml = Selector(text=response.text, type="xml")
        return xml.xpath(self.board.row.removeprefix("xpath:"))

    def row_link(self, row: Selector) -> Selector | None:
        return row  # the item itself; its link is read in link_of

    def row_href(self, row: Selector, link: Selector) -> str:
        for href in row.xpath(_LINK).getall():
            if href.strip():
                return href.strip()
        return ""

    def row_id(self, row: Selector, link: Selector, href: str) -> str | None:
        if self.board.id:
            return super().row_id(row, link, href)
        guid = clean_text(row.xpath(f"./{_x('guid')}/text() | ./{_x('id')}/text()").getall())
        for candidate in (href, guid if "://" in guid else ""):
            if candidate and (found := auto_id(candidate, Selector(text="<a/>"), row)):
                return found
        return guid or href or None

    def row_title(self, row: Selector) -> str:
        title = row.xpath(f"./{_x('title')}")
        text = clean_text(title.xpath(".//text()").getall())
        if title.attrib.get("type") in ("html", "xhtml") or "&" in text or "<" in text:
            # escaped HTML (Atom type="html", many RSS titles): tags out, entities decoded
            text = clean_text(Selector(text=f"<p>{text}</p>").xpath("//p//text()").getall())
        return text

    def lists_dates(self) -> bool:
        return False

    def row_date(self, row: Selector, response: TextResponse) -> datetime | None:
        for name in _DATES:
            text = clean_text(row.xpath(f"./{_x(name)}//text()").getall())
            if text:
                return self.parse_date(text, response)
        return None

    def row_author(self, row: Selector) -> str:
        names = row.xpath(
            f"./{_x('author')}/{_x('name')}//text() | ./{_x('creator')}//text()"
            f" | ./{_x('author')}[not(*)]//text()"
        ).getall()
        return clean_text(names[:1])

    def row_category(self, row: Selector) -> str:
        terms = row.xpath(f"./{_x('category')}/@term | ./{_x('category')}//text()").getall()
        return clean_text(terms[:1])

    def row_attachments(self, row: Selector, response: TextResponse) -> list[Attachment]:
        found = []
        for url in row.xpath(
            f"./{_x('enclosure')}/@url | ./{_x('link')}[@rel='enclosure']/@href"
        ).getall():
            name = unquote(basename(urlsplit(url).path)) or url
            found.append(Attachment(name=name, url=response.urljoin(url)))
        return found
