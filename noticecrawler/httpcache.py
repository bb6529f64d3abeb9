"""HTTP cache policy for list pages: always revalidate, never mask an error.

Scrapy's RFC2616 policy guesses freshness (a page with ``max-age`` or an old ``Last-Modified``
would be served from the cache with no request at all) and answers a 5xx with the cached page,
which would hide a broken board as "nothing new". This policy keeps the conditional-request
machinery (ETag → If-None-Match, Last-Modified → If-Modified-Since) and drops both guesses: every
list request goes to the server, and only a 304 lets the cached page stand in.
"""

from __future__ import annotations

from scrapy.extensions.httpcache import RFC2616Policy
from scrapy.http import Request, Response


class RevalidatingPolicy(RFC2616Policy):
    def is_cached_response_fresh(self, cachedresponse: Response, request: Request) -> bool:
        self._set_conditional_validators(request, cachedresponse)
        return False

    def is_cached_response_valid(
        self, cachedresponse: Response, response: Response, request: Request
    ) -> bool:
        return response.status == 304
