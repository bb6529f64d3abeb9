"""XpressEngine 1.x and Rhymix boards (``index.php?mid=notice``, or rewritten ``/notice``):
rows of the list table (default, xedition and sketchbook skins), pinned rows ``tr.notice``,
id ``document_srl`` (or the last numeric path segment of ``/notice/1234``).

The comment count next to a title (``<a class="replyNum">[3]</a>`` after the title link, or
``<span class="comment">[3]</span>`` inside it) never reaches the title; a title's own ``[2]``
stays.

Catalog: ``start_url`` only; paging uses ``page``.
"""

from __future__ import annotations

from parsel import Selector

from noticecrawler.spiders.engines.table import TableBoardSpider
from noticecrawler.spiders.ids import auto_id

# inside a title link: what is not title (comment counts, icons, screen-reader labels)
_NOISE = (
    "contains(@class, 'replyNum') or contains(@class, 'comment') or contains(@class, 'cmt')"
    " or contains(@class, 'sound_only') or contains(@class, 'blind')"
)


class XeBoardSpider(TableBoardSpider):
    engine_name = "xe"
    fingerprints = (
        r"document_srl[=/]",
        r"[?&](?:amp;)?mid=\w",
        r"xpressengine|rhymix|xe_content|class=[\"'][^\"']*\bbd_lst\b",
    )
    defaults = {
        "row": "table.bd_lst tbody tr, div.board_list table tbody tr, table.board_list tbody tr",
        "title": "td.title a:not(.replyNum):not(.comment)",
        "link": "td.title a:not(.replyNum):not(.comment)",
        "date": "td.time, td.date, td.regdate",
        "author": "td.author, td.writer",
        "category": "td.cate, td.category",
        "id": "query:document_srl",
        "next": "param:page",
    }
    title_noise = _NOISE
    url_params = ("mid", "document_srl")

    def row_id(self, row: Selector, link: Selector, href: str) -> str | None:
        return super().row_id(row, link, href) or auto_id(href, link, row)
