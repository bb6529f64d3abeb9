"""What the Scrapy HTTP cache holds for a board's start URL, and the digest of a list page's
rows (the cheap check of :mod:`noticecrawler.revalidate`)."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scrapy import Request
from scrapy.extensions.httpcache import FilesystemCacheStorage
from scrapy.http import HtmlResponse, Response
from scrapy.settings import BaseSettings
from scrapy.utils.request import RequestFingerprinter

logger = logging.getLogger(__name__)

STORAGE = "scrapy.extensions.httpcache.FilesystemCacheStorage"
#: file next to a cached list page holding the digest of its rows (``<cache timestamp> <hex>``)
DIGEST_FILE = "noticecrawler_rows"


@dataclass
class Cached:
    """What the HTTP cache holds for a board's start URL."""

    response: Response
    folder: Path
    timestamp: float

    @property
    def validators(self) -> dict[str, str]:
        headers = {}
        if etag := self.response.headers.get(b"ETag"):
            headers["If-None-Match"] = etag.decode("latin-1")
        if modified := self.response.headers.get(b"Last-Modified"):
            headers["If-Modified-Since"] = modified.decode("latin-1")
        return headers


class _Spider:
    """What Scrapy's cache storage asks of a spider: its name (the cache folder)."""

    def __init__(self, name: str):
        self.name = name


def cached_page(settings: BaseSettings, board: Any) -> Cached | None:
    """The cached 200 of the board's start URL, as its crawls stored it; None when the cache is
    off, not on disk, or holds nothing for the board."""
    if not settings.getbool("HTTPCACHE_ENABLED") or settings.get("HTTPCACHE_STORAGE") != STORAGE:
        return None
    storage = FilesystemCacheStorage(settings)
    storage._fingerprinter = RequestFingerprinter()
    spider: Any = _Spider(board.name)
    request = Request(board.start_url)
    try:
        response = storage.retrieve_response(spider, request)
    except (OSError, ValueError, EOFError):
        return None
    if response is None or response.status != 200:
        return None
    folder = Path(storage._get_request_path(spider, request))
    return Cached(response, folder, float(request.meta.get("cache_timestamp", 0.0)))


def rows_digest(board: Any, response: Response) -> str | None:
    """Digest of the posts the board's engine reads on ``response`` (ids, URLs, titles, pinned),
    None when it reads none (the crawl then says why)."""
    from noticecrawler.spiders.loader import spider_class  # the engines, only when needed

    if not isinstance(response, HtmlResponse):
        return None
    try:
        posts = spider_class(board)().extract_posts(response)
    except Exception as exc:  # the crawl will read the page and report what is wrong
        logger.debug("board `%s`: rows not digested: %s", board.name, exc)
        return None
    if not posts:
        return None
    text = "\n".join(f"{p.post_id}\t{p.url}\t{p.title}\t{int(p.pinned)}" for p in posts)
    return hashlib.sha256(text.encode()).hexdigest()


def cached_digest(board: Any, cached: Cached) -> str | None:
    """The row digest of the cached page, computed once per stored page and kept beside it."""
    path = cached.folder / DIGEST_FILE
    stamp = repr(cached.timestamp)
    try:
        kept_stamp, kept = path.read_text().split()
        if kept_stamp == stamp:
            return kept
    except (OSError, ValueError):
        pass  # no digest kept (or a torn file): computed again below
    digest = rows_digest(board, cached.response)
    if digest is not None:
        tmp = path.with_suffix(".tmp")
        try:
            tmp.write_text(f"{stamp} {digest}\n")
            tmp.replace(path)
        except OSError:
            pass  # not kept: the next check computes the digest again
    return digest
