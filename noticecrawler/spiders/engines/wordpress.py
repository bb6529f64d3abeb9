"""WordPress post listings (category/archive pages of classic themes and block themes):
``article[id^=post-]`` or ``li.wp-block-post`` rows, the title link in ``.entry-title`` /
``.wp-block-post-title``, the id from ``post-123`` (or ``?p=123``), the time from
``<time datetime>``; sticky posts (class ``sticky``) are pinned. Paging follows the theme's
"next" link.

Catalog: ``start_url`` only (``https://site/category/notice/``).
"""

from __future__ import annotations

import re
from datetime import datetime

from parsel import Selector
from scrapy.http import TextResponse

from noticecrawler.extract import first_text
from noticecrawler.spiders.base import BoardSpider
from noticecrawler.spiders.ids import auto_id

_POST_ID = re.compile(r"(?:^|\s)post-(\d+)(?:\s|$)")


class WordpressSpider(BoardSpider):
    engine_name = "wordpress"
    fingerprints = (
        r"wp-content/|wp-includes/|content=[\"']WordPress",
        r"<article[^>]+id=[\"']post-\d+|wp-block-post\b",
    )
    defaults = {
        "row": "article[id^='post-'], li.wp-block-post",
        "title": ".entry-title a, .wp-block-post-title a, h2 a",
        "link": ".entry-title a, .wp-block-post-title a, h2 a",
        "date": "time.published::attr(datetime), time.entry-date::attr(datetime), "
        ".wp-block-post-date time::attr(datetime)",
        "author": ".author a, .byline a, .wp-block-post-author-name a",
        "category": ".cat-links a, .wp-block-post-terms a",
        "pinned": "",
        "id": "",
        "next": "link:a.next.page-numbers, .nav-previous a, a.wp-block-query-pagination-next",
    }
    required = ("row", "title", "link")

    def row_id(self, row: Selector, link: Selector, href: str) -> str | None:
        if self.board.id:
            return super().row_id(row, link, href)
        for attr in (row.attrib.get("id", "").replace("post-", " post-"), row.attrib.get("class")):
            if m := _POST_ID.search(attr or ""):
                return m.group(1)
        return auto_id(href, link, row)

    def row_date(self, row: Selector, response: TextResponse) -> datetime | None:
        # the first <time datetime> of the row: the published one, not "updated"
        return self.parse_date(first_text(row, self.board.date), response)

    def row_pinned(self, row: Selector) -> bool:
        if self.board.pinned:
            return super().row_pinned(row)
        return "sticky" in (row.attrib.get("class") or "").split()
