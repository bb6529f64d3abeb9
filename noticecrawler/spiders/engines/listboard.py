"""Generic list board: posts as ``ul/li`` items or ``div`` cards instead of table rows.

The link may sit inside the row or wrap all of it (``<a class="card">…</a>`` as the row, or
``<li><a><span class="tit">…</span><span class="date">…</span></a></li>``); a row without any
link is skipped and counted (``noticecrawler/rows/no_link``).

Catalog: ``start_url`` and ``row`` (e.g. ``ul.notice-list > li``). ``title`` defaults to the
usual title classes inside the row, ``link`` to the first ``a[href]``, ``date`` to the usual
date classes, ``id`` to a guess (``query:…``/``path:…`` to be exact); pinned rows carry a
``notice``/``pinned``/``fixed``/``top`` class or a ``pinned`` selector match.
"""

from __future__ import annotations

from parsel import Selector

from noticecrawler.spiders.base import BoardSpider

_PINNED_CLASSES = {"notice", "pinned", "fixed", "top", "sticky", "is-notice", "noti"}


class ListBoardSpider(BoardSpider):
    defaults = {
        "row": "ul.board-list > li, ul.notice-list > li, div.board-list > div",
        "title": ".title, .subject, .tit, .txt-title, strong, h3, h4, a",
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

    def row_pinned(self, row: Selector) -> bool:
        if self.board.pinned:
            return super().row_pinned(row)
        return bool(_PINNED_CLASSES & set((row.attrib.get("class") or "").lower().split()))
