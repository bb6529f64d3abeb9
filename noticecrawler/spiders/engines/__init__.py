"""Board engines: one platform base spider per kind of board software.

``ENGINES`` maps the ``engine`` name a catalog entry gives to its base spider class.
"""

from __future__ import annotations

from noticecrawler.spiders.base import BoardSpider
from noticecrawler.spiders.engines.table import TableBoardSpider

ENGINES: dict[str, type[BoardSpider]] = {
    "table": TableBoardSpider,
}
