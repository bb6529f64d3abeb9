"""Bounded downloads: no page bigger than ``DOWNLOAD_MAXSIZE`` (decompressed size included) is
read, and one bigger than ``DOWNLOAD_WARNSIZE`` is logged.

:class:`SizeGuard` stops a download as soon as the declared length or the bytes received pass
the limit (the body read so far is dropped), and counts a compressed body's decompressed size
chunk by chunk before Scrapy decompresses it, so a gzip bomb never fills memory. Either way the
request fails with :class:`PageTooLarge` and the crawl ends as ``page_too_large``; the page is
not cached and nothing is stored. :func:`fetch_capped` is the same cap for a plain fetch
(``noticecrawler detect``).
"""

from __future__ import annotations

import logging
import urllib.request
import zlib
from dataclasses import dataclass

from scrapy import Request, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import StopDownload
from scrapy.http import Response

from noticecrawler.politeness import EndsCrawl

logger = logging.getLogger(__name__)

SIZE_META = "noticecrawler_size"
CHUNK = 64 * 1024


class PageTooLarge(EndsCrawl):
    reason = "page_too_large"

    def __init__(self, url: str, size: int, limit: int, how: str):
        super().__init__(
            f"page too large: {url} is {how} {size} bytes, over the limit of {limit} bytes "
            f"(DOWNLOAD_MAXSIZE {limit / 2**20:g} MiB); not read, nothing stored"
        )
        self.url, self.size, self.limit = url, size, limit


def decompressed_size(body: bytes, encoding: str, limit: int) -> int | None:
    """The size ``body`` decompresses to, counted chunk by chunk and given up just past
    ``limit`` (the count returned is then > limit); None for an encoding not counted here."""
    encoding = encoding.strip().lower()
    if encoding in ("gzip", "x-gzip"):
        decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
    elif encoding == "deflate":
        raw = not body[:1] or (body[0] & 0x0F) != 8  # zlib header, or a raw deflate stream
        decoder = zlib.decompressobj(-zlib.MAX_WBITS if raw else zlib.MAX_WBITS)
    else:
        return None
    total = 0
    data = body
    try:
        while data and total <= limit:
            total += len(decoder.decompress(data, CHUNK))
            data = decoder.unconsumed_tail
        while total <= limit and not decoder.eof:
            out = decoder.decompress(b"", CHUNK)
            if not out:
                break
            total += len(out)
    except zlib.error:
        return total  # a broken stream: Scrapy's decompression says what is wrong with it
    return total


class SizeGuard:
    """Downloader middleware (above the HTTP cache, so an oversized page is never cached)."""

    def __init__(self, crawler: Crawler, maxsize: int, warnsize: int):
        self.crawler = crawler
        self.maxsize = maxsize
        self.warnsize = warnsize

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> SizeGuard:
        s = crawler.settings
        guard = cls(crawler, s.getint("DOWNLOAD_MAXSIZE"), s.getint("DOWNLOAD_WARNSIZE"))
        if guard.maxsize:
            crawler.signals.connect(guard.headers_received, signal=signals.headers_received)
            crawler.signals.connect(guard.bytes_received, signal=signals.bytes_received)
        return guard

    def process_request(self, request: Request) -> None:
        if self.maxsize:
            # the limits are ours: the download handler's own would log a second line
            request.meta["download_maxsize"] = 0
            request.meta["download_warnsize"] = 0
            request.meta[SIZE_META] = 0

    def headers_received(self, headers: object, body_length: int, request: Request) -> None:
        if SIZE_META in request.meta and 0 < body_length > self.maxsize:
            request.meta[SIZE_META] = -body_length  # declared
            raise StopDownload(fail=False)

    def bytes_received(self, data: bytes, request: Request) -> None:
        received = request.meta.get(SIZE_META)
        if received is None or received < 0:
            return
        received += len(data)
        request.meta[SIZE_META] = received
        if received > self.maxsize:
            raise StopDownload(fail=False)

    def process_response(self, request: Request, response: Response) -> Response:
        received = request.meta.pop(SIZE_META, None)
        if received is None:
            return response
        # Scrapy's decompression keeps to the same limit (br, zstd: it counts those itself)
        request.meta["download_maxsize"] = self.maxsize
        request.meta["download_warnsize"] = self.warnsize
        if "download_stopped" in response.flags:
            if received < 0:
                raise PageTooLarge(request.url, -received, self.maxsize, "declared as")
            raise PageTooLarge(request.url, received, self.maxsize, "more than")
        size = len(response.body)
        encoding = (response.headers.get(b"Content-Encoding") or b"").decode("latin-1")
        if encoding and size:
            counted = decompressed_size(response.body, encoding.split(",")[-1], self.maxsize)
            if counted is not None and counted > self.maxsize:
                raise PageTooLarge(request.url, counted, self.maxsize, "decompressed more than")
            size = counted or size
        if self.warnsize and size > self.warnsize:
            logger.warning(
                "%s is %d bytes, over DOWNLOAD_WARNSIZE (%d bytes)",
                request.url,
                size,
                self.warnsize,
            )
        return response


@dataclass
class Fetched:
    url: str
    body: bytes
    content_type: str


def fetch_capped(url: str, *, limit: int, user_agent: str, timeout: float = 20) -> Fetched:
    """GET ``url`` reading at most ``limit`` bytes (decompressed); :class:`PageTooLarge` past
    it. Asks for an uncompressed body and decompresses gzip/deflate itself under the cap."""
    request = urllib.request.Request(
        url, headers={"User-Agent": user_agent, "Accept-Encoding": "gzip, deflate"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as answer:
        declared = answer.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise PageTooLarge(url, int(declared), limit, "declared as")
        encoding = (answer.headers.get("Content-Encoding") or "").strip().lower()
        decoder = None
        if encoding in ("gzip", "x-gzip"):
            decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            decoder = zlib.decompressobj(zlib.MAX_WBITS)
        parts: list[bytes] = []
        total = 0
        while chunk := answer.read(CHUNK):
            data = chunk
            while data:
                out = decoder.decompress(data, CHUNK) if decoder else data
                data = decoder.unconsumed_tail if decoder else b""
                total += len(out)
                if total > limit:
                    raise PageTooLarge(url, total, limit, "more than")
                parts.append(out)
        return Fetched(answer.geturl(), b"".join(parts), answer.headers.get("Content-Type", ""))
