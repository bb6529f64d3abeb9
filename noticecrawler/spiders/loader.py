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
        # a bad catalog is reported when a spider is asked for (one line from `scrapy crawl`),
        # not while Scrapy builds its crawler process
        self.catalog_error: CatalogError | None = None
        try:
            boards = catalog_from_settings(settings)
        except CatalogError as e:
            self.catalog_error = e
            boards = []
        for board in boards:
            if board.name in self._spiders:
                raise CatalogError(
                    board.name,
                    "name",
                    "collides with the spider of the same name in "
                    f"{self._spiders[board.name].__module__}",
                )
            self._spiders[board.name] = spider_class(board)

    def load(self, spider_name: str) -> type[Spider]:
        if self.catalog_error is not None:
            raise self.catalog_error
        return super().load(spider_name)

    def list(self) -> list[str]:
        if self.catalog_error is not None:
            raise self.catalog_error
        return super().list()
