"""Downloader middlewares."""

from __future__ import annotations

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.http import Response
from scrapy.statscollectors import StatsCollector


class NotModifiedStatsMiddleware:
    """Counts list-page answers as the server gave them, before the HTTP cache turns a 304 into
    the cached 200: ``noticecrawler/http/304``, ``noticecrawler/http/bytes`` (body bytes on the
    wire) and ``noticecrawler/http/requests``."""

    def __init__(self, stats: StatsCollector):
        self.stats = stats

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> NotModifiedStatsMiddleware:
        assert crawler.stats is not None
        return cls(crawler.stats)

    def process_response(self, request: Request, response: Response) -> Response:
        self.stats.inc_value("noticecrawler/http/requests")
        self.stats.inc_value("noticecrawler/http/bytes", len(response.body))
        if response.status == 304:
            self.stats.inc_value("noticecrawler/http/304")
        return response
