"""Gnuboard 5 (``/bbs/board.php?bo_table=…``, basic list skin): ``#bo_list`` table rows,
pinned rows ``tr.bo_notice``, id ``wr_id`` (or the last path segment of short URLs
``/notice/120``), the list date ``td.td_datetime`` as ``15:04`` today and ``11-20`` before.

Catalog: ``start_url`` only (``…/bbs/board.php?bo_table=notice``). Titles leave out the
category link (``a.bo_cate_link``), screen-reader text (``.sound_only``), the ``N``/hot icons
and the comment count (``span.cnt_cmt``).
"""

from __future__ import annotations

from parsel import Selector

from noticecrawler.spiders.engines.table import TableBoardSpider
from noticecrawler.spiders.ids import auto_id

# inside a title link: what is not title (comment counts, icons, screen-reader labels)
_NOISE = (
    "contains(concat(' ', normalize-space(@class), ' '), ' sound_only ')"
    " or contains(@class, 'new_icon') or contains(@class, 'hot_icon')"
    " or contains(@class, 'cnt_cmt') or contains(@class, 'bo_cate_link')"
)


# the title link: list skins (basic, with or without .bo_tit), gallery skins (bo_img_list, gall_li)
_TITLE = (
    "td.td_subject .bo_tit a:not(.bo_cate_link), td.td_subject > a:not(.bo_cate_link),"
    " .bo_img_text_href a:not(.bo_cate_link), .gall_text_href a:not(.bo_cate_link),"
    " .bo_tit a:not(.bo_cate_link)"
)


class GnuboardSpider(TableBoardSpider):
    engine_name = "gnuboard"
    fingerprints = (r"bo_table=", r"wr_id=", r"id=[\"']?(?:bo_list|fboardlist)")
    defaults = {
        "row": "#bo_list tbody tr, #fboardlist tbody tr, #bo_img_list > li, #bo_gall li.gall_li",
        "title": _TITLE,
        "link": _TITLE,
        "date": "td.td_datetime, td.td_date, .gall_date",
        "author": "td.td_name .sv_member, td.td_name",
        "category": "a.bo_cate_link",
        "pinned": "",
        "id": "query:wr_id",
        "next": "param:page",
    }
    title_noise = _NOISE
    url_params = ("bo_table", "wr_id")

    def row_id(self, row: Selector, link: Selector, href: str) -> str | None:
        return super().row_id(row, link, href) or auto_id(href, link, row)

    def row_pinned(self, row: Selector) -> bool:
        if "bo_notice" in (row.attrib.get("class") or "").split():
            return True
        return super().row_pinned(row)
