"""HTTP cache for list pages: always revalidate, never mask an error.

Scrapy's RFC2616 policy guesses freshness (a page with ``max-age`` or an old ``Last-Modified``
would be served from the cache with no request at all) and answers a 5xx with the cached page,
which would hide a broken board as "nothing new". This policy keeps the conditional-request
machinery (ETag → If-None-Match, Last-Modified → If-Modified-Since) and drops both guesses: every
list request goes to the server, and only a 304 lets the cached page stand in.
"""

from __future__ import annotations

from scrapy import Spider
from scrapy.downloadermiddlewares.httpcache import HttpCacheMiddleware
from scrapy.extensions.httpcache import RFC2616Policy
from scrapy.http import Request, Response
from scrapy.settings import BaseSettings


class RevalidatingPolicy(RFC2616Policy):
    """RFC2616 without the freshness guess; an error answer never replaces the cached page
    (the stock policy ignores ``HTTPCACHE_IGNORE_HTTP_CODES`` and, with ``ALWAYS_STORE``, would
    store a 503 over the good page, so the board's next 200 could not be answered 304)."""

    def __init__(self, settings: BaseSettings):
        super().__init__(settings)
        self.ignore_http_codes = {int(c) for c in settings.getlist("HTTPCACHE_IGNORE_HTTP_CODES")}

    def should_cache_response(self, response: Response, request: Request) -> bool:
        if response.status >= 400 or response.status in self.ignore_http_codes:
            return False
        return super().should_cache_response(response, request)

    def is_cached_response_fresh(self, cachedresponse: Response, request: Request) -> bool:
        self._set_conditional_validators(request, cachedresponse)
        return False

    def is_cached_response_valid(
        self, cachedresponse: Response, response: Response, request: Request
    ) -> bool:
        return response.status == 304


class NoErrorRecoveryCacheMiddleware(HttpCacheMiddleware):
    """Scrapy's HTTP cache without its "error recovery".

    The stock middleware answers a download error (connection refused, timeout, reset) with the
    cached page before the retry middleware sees the error, so a board that is down looks like
    an unchanged board. Here a failed fetch stays a failure: it is retried, and when it still
    fails the spider's errback records it as an error of the run. Only a 304 from the server
    lets the cached page stand in (:class:`RevalidatingPolicy`).
    """

    def process_exception(
        self, request: Request, exception: Exception, spider: Spider | None = None
    ) -> Request | Response | None:
        if request.meta.pop("cached_response", None) is not None:
            self.stats.inc_value("noticecrawler/httpcache/no_error_recovery")
        return None
