"""Generic table board: one ``<tr>`` per post, pinned rows marked by a badge, an icon or a
row class in place of the number.

Catalog fields (all optional except ``start_url``; defaults fit most Korean table boards):
    row      rows of the list            (default ``table tbody tr``)
    title    title cell                  (default ``td.title a, td.subject a``)
    link     link inside the row         (default: same as title)
    id       id rule                     (default ``query:no``; see BoardDef.id)
    pinned   selector matching inside a pinned row; when empty a row whose first cell is not
             a number is pinned ("공지", an icon)
"""

from __future__ import annotations

import re

from parsel import Selector

from noticecrawler.extract import clean_text
from noticecrawler.spiders.base import BoardSpider

_NUMBER = re.compile(r"^\d[\d,]*$")


class TableBoardSpider(BoardSpider):
    defaults = {
        "row": "table tbody tr",
        "title": "td.title a, td.subject a",
        "link": "td.title a, td.subject a",
        "date": "td.date",
        "author": "td.author, td.writer",
        "category": "td.category",
        "id": "query:no",
        "next": "param:page",
    }

    def row_pinned(self, row: Selector) -> bool:
        if self.board.pinned:
            return bool(
                row.css(self.board.pinned)
                if not self.board.pinned.startswith("/")
                else row.xpath(self.board.pinned)
            )
        classes = (row.attrib.get("class") or "").lower().split()
        if {"notice", "pinned", "fixed", "noti", "top"} & set(classes):
            return True
        first = row.xpath("./td[1]")
        if not first:
            return False
        text = clean_text(first.xpath(".//text()").getall())
        return not _NUMBER.match(text)
