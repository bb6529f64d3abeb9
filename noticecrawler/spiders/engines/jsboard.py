"""JS-link boards (egovframework, K2Web and the many in-house boards like them): the title
link is ``javascript:fn_view('123')``, ``onclick="fn_goDtlView('bbs', '123')"`` or
``javascript:;`` with a ``data-post_no`` attribute, so the id comes from the call (its last
argument with a digit, or ``id = "js:<n>"``) or the attribute (``id = "attr:data-post_no"``),
and the post URL from the catalog's ``detail_url`` template.

Catalog: ``start_url`` and ``detail_url`` (with ``{id}``). Detail pages reached by a form POST:
``options = { detail_form = { nttId = "{id}", bbsId = "B0001" } }`` (see spiders/details.py).
Rows: ``table tbody tr`` by default; pinned rows as in the table engine.
"""

from __future__ import annotations

from parsel import Selector

from noticecrawler.spiders.engines.table import TableBoardSpider
from noticecrawler.spiders.ids import auto_id


class JsBoardSpider(TableBoardSpider):
    defaults = {
        "row": "table tbody tr",
        "title": "td.subject a, td.title a, td.td-subject a, td.tit a, td.left a",
        "link": "td.subject a, td.title a, td.td-subject a, td.tit a, td.left a",
        "date": "td.date, td.td-date, td.reg, td.regdate",
        "author": "td.writer, td.td-write, td.author",
        "id": "",
        "next": "none",
    }
    required = ("row", "title", "link", "detail_url")

    def row_id(self, row: Selector, link: Selector, href: str) -> str | None:
        return super().row_id(row, link, href) or auto_id(href, link, row)
