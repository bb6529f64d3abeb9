"""ZeroBoard 4 (``zboard.php?id=notice``): class-less tables of ``tr.list0``/``tr.list1`` rows,
the title link ``view.php?id=…&no=…``, a notice image in place of the number for pinned rows,
dates like ``2006/11/20`` or ``06/11/20`` in an unnamed cell, and a ``[2]`` comment count
after the title link. Post URLs keep only ``id`` and ``no``.

Catalog: ``start_url`` only. Old boards are usually EUC-KR with CP949 bytes: handled.
"""

from __future__ import annotations

import re
from datetime import datetime

from parsel import Selector
from scrapy.http import TextResponse

from noticecrawler.extract import clean_text
from noticecrawler.spiders.engines.table import TableBoardSpider

_DATE = re.compile(r"^\d{2,4}[/.-]\d{1,2}[/.-]\d{1,2}(?:\s+\d{1,2}:\d{2}(?::\d{2})?)?$")


class ZeroboardSpider(TableBoardSpider):
    engine_name = "zeroboard"
    fingerprints = (
        r"zboard\.php\?(?:[^\"'>]*&(?:amp;)?)?id=",
        r"view\.php\?(?:[^\"'>]*&(?:amp;)?)?id=[^\"'&]+&(?:amp;)?(?:[^\"'>]*&(?:amp;)?)?no=\d+",
    )
    defaults = {
        "row": "tr[class^='list']",
        "title": "a[href*='view.php']",
        "link": "a[href*='view.php']",
        "date": "",
        "author": "",
        "id": "query:no",
        "next": "param:page",
    }
    url_params = ("id", "no")

    def row_date(self, row: Selector, response: TextResponse) -> datetime | None:
        if self.board.date:
            return super().row_date(row, response)
        for cell in row.xpath("./td"):
            text = clean_text(cell.xpath(".//text()").getall())
            if _DATE.match(text):
                return self.parse_date(self.fullest_date(cell), response)
        return None

    def lists_dates(self) -> bool:
        return True

    def row_author(self, row: Selector) -> str:
        if self.board.author:
            return super().row_author(row)
        return clean_text([row.css("span[onmousedown] ::text, font.list_han::text").get("")])
