"""Generic table board: one ``<tr>`` per post, pinned rows marked by a badge, an icon or a
row class in place of the number.

Catalog fields (all optional except ``start_url``; defaults fit most Korean table boards):
    row      rows of the list            (default ``table tbody tr``)
    title    title cell                  (default ``td.title a, td.subject a``)
    link     link inside the row         (default: same as title)
    id       id rule                     (default ``query:no``; see BoardDef.id)
    pinned   selector matching inside a pinned row; when empty: a row class, a "공지" badge
             or icon, or a number cell that is not a number on a board whose rows are numbered
"""

from __future__ import annotations

import re
from typing import Any

from parsel import Selector, SelectorList
from scrapy.http import TextResponse

from noticecrawler.extract import clean_text, select
from noticecrawler.spiders.base import BoardSpider
from noticecrawler.spiders.guess import table_fields, table_rows
from noticecrawler.spiders.marks import marked_pinned

_NUMBER = re.compile(r"^\d[\d,]*$")


class TableBoardSpider(BoardSpider):
    engine_name = "table"
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
    numbered_page = False

    @classmethod
    def detect(cls, response: TextResponse) -> float:
        if cls.fingerprints:  # a specialised table engine
            return super().detect(response)
        # the generic table: any page with a table of linked rows, behind every fingerprint
        return 0.2 if table_rows(Selector(text=response.text)) else 0.0

    @classmethod
    def guess_fields(cls, response: TextResponse) -> dict[str, Any]:
        found = table_rows(Selector(text=response.text))
        if found is None:
            return {}
        fields = {"row": found[0], **table_fields(found[1])}
        return fields if cls.engine_name == "table" else {}

    def prepare_rows(self, rows: SelectorList) -> None:
        super().prepare_rows(rows)
        # a number column: at least two rows open with a number (pinned rows show a badge there)
        firsts = [clean_text(r.xpath("./td[1]//text()").getall()) for r in rows]
        self.numbered_page = sum(1 for t in firsts if _NUMBER.match(t)) >= 2

    def row_pinned(self, row: Selector) -> bool:
        if self.board.pinned:
            return bool(select(row, self.board.pinned))
        if marked_pinned(row):
            return True
        # on a numbered board, a row whose number cell is not a number ("공지", an icon)
        first = row.xpath("./td[1]")
        if not self.numbered_page or not first or first.css("a[href]"):
            return False
        return not _NUMBER.match(clean_text(first.xpath(".//text()").getall()))
