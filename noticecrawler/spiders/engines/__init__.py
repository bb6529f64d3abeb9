"""Board engines: one platform base spider per kind of board software.

``ENGINES`` maps the ``engine`` name a catalog entry gives to its base spider class; each
engine's module docstring lists its catalog fields and quirks (docs/engines.md gathers them).
"""

from __future__ import annotations

from noticecrawler.spiders.base import BoardSpider
from noticecrawler.spiders.engines.feed import FeedSpider
from noticecrawler.spiders.engines.gnuboard import GnuboardSpider
from noticecrawler.spiders.engines.jsboard import JsBoardSpider
from noticecrawler.spiders.engines.listboard import ListBoardSpider
from noticecrawler.spiders.engines.table import TableBoardSpider
from noticecrawler.spiders.engines.wordpress import WordpressSpider
from noticecrawler.spiders.engines.xe import XeBoardSpider
from noticecrawler.spiders.engines.zeroboard import ZeroboardSpider

ENGINES: dict[str, type[BoardSpider]] = {
    "table": TableBoardSpider,
    "list": ListBoardSpider,
    "gnuboard": GnuboardSpider,
    "xe": XeBoardSpider,
    "zeroboard": ZeroboardSpider,
    "wordpress": WordpressSpider,
    "jsboard": JsBoardSpider,
    "feed": FeedSpider,
}
