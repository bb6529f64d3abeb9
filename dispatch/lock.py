"""The per-board crawl lock (it lives in :mod:`noticecrawler.boardlock`, where ``scrapy crawl``
takes it too)."""

from noticecrawler.boardlock import PREFIX, BoardLock, client

__all__ = ["PREFIX", "BoardLock", "client"]
