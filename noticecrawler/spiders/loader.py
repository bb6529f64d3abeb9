"""A spider loader that adds one spider per catalog board to the project's spiders."""

from __future__ import annotations

from scrapy import Spider
from scrapy.settings import BaseSettings
from scrapy.spiderloader import SpiderLoader

from noticecrawler.catalog import BoardDef, CatalogError, catalog_from_settings
from noticecrawler.spiders.base import BoardSpider
from noticecrawler.spiders.engines import ENGINES


def spider_class(board: BoardDef) -> type[BoardSpider]:
    """The spider of one catalog board: its engine's base with ``name`` and ``board`` set."""
    base = ENGINES[board.engine]
    return type(
        f"{board.name.title().replace('_', '')}Spider",
        (base,),
        {"name": board.name, "board": board, "__module__": __name__},
    )


class CatalogSpiderLoader(SpiderLoader):
    def __init__(self, settings: BaseSettings):
        super().__init__(settings)
        for board in catalog_from_settings(settings):
            if board.name in self._spiders:
                raise CatalogError(
                    board.name,
                    "name",
                    "collides with the spider of the same name in "
                    f"{self._spiders[board.name].__module__}",
                )
            self._spiders[board.name] = spider_class(board)

    def load(self, spider_name: str) -> type[Spider]:
        return super().load(spider_name)
