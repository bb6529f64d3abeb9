"""Generic list board: posts as ``ul/li`` items or ``div`` cards instead of table rows.

The link may sit inside the row or wrap all of it (``<a class="card">…</a>`` as the row, or
``<li><a><span class="tit">…</span><span class="date">…</span></a></li>``); a row without any
link is a post when it shows a title and a date (an agenda line), else skipped and counted
(``noticecrawler/rows/no_link``).

Catalog: ``start_url`` and ``row`` (e.g. ``ul.notice-list > li``). ``title`` defaults to the
usual title classes inside the row, ``link`` to the first ``a[href]``, ``date`` to the usual
date classes, ``id`` to a guess (``query:…``/``path:…`` to be exact); pinned rows carry a
``notice``/``pinned``/``fixed``/``top``/``sticky`` class, a 공지/Notice badge, or a ``pinned``
selector match. Without ``row`` matching, the generic guess finds the list (``guess.py``).
"""

from __future__ import annotations

from typing import Any

from parsel import Selector
from scrapy.http import TextResponse

from noticecrawler.spiders.base import BoardSpider
from noticecrawler.spiders.guess import list_rows


class ListBoardSpider(BoardSpider):
    engine_name = "list"
    defaults = {
        "row": "ul.board-list > li, ul.notice-list > li, div.board-list > div",
        "title": ".title, .subject, .tit, .txt-title, h2, h3, h4, h5, [class*=title], strong, a",
        "link": "a[href]",
        "date": ".date, .day, time, .reg, .regdate",
        "author": ".writer, .author, .name",
        "category": ".category, .cate",
        "id": "",
        "next": "param:page",
    }
    required = ("row", "title")

    def row_link(self, row: Selector) -> Selector | None:
        if getattr(row.root, "tag", None) == "a" and row.attrib.get("href"):
            return row
        return super().row_link(row)

    @classmethod
    def detect(cls, response: TextResponse) -> float:
        # the generic list: any page with a list of linked or dated items
        return 0.1 if list_rows(Selector(text=response.text)) else 0.0

    @classmethod
    def guess_fields(cls, response: TextResponse) -> dict[str, Any]:
        sel = Selector(text=response.text)
        if len(sel.css(cls.defaults["row"])) >= 2:
            return {}
        row = list_rows(sel)
        return {"row": row} if row else {}
