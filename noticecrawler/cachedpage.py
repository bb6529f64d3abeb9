"""What the Scrapy HTTP cache holds for a board's start URL, and the digest of a list page's
rows (the cheap check of :mod:`noticecrawler.revalidate`)."""

from __future__ import annotations

import gzip
import hashlib
import logging
import pickle
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scrapy import Request
from scrapy.extensions.httpcache import FilesystemCacheStorage
from scrapy.http import Headers, HtmlResponse, Response
from scrapy.settings import BaseSettings
from scrapy.utils.python import to_unicode
from scrapy.utils.request import RequestFingerprinter
from w3lib.http import headers_raw_to_dict

logger = logging.getLogger(__name__)

STORAGE = "scrapy.extensions.httpcache.FilesystemCacheStorage"
#: file next to a cached list page holding the digest of its rows (``<cache timestamp> <hex>``)
DIGEST_FILE = "noticecrawler_rows"


@dataclass
class Cached:
    """What the HTTP cache holds for a board's start URL: its validators at once, the page
    itself only when asked (:meth:`load`)."""

    folder: Path
    timestamp: float
    validators: dict[str, str]
    settings: BaseSettings = field(repr=False)
    #: the rows digest of this stored page, once read or computed (:func:`cached_digest`)
    digest: str | None = None

    def load(self, board: Any) -> Response | None:
        """The stored page, read from disk."""
        storage = FilesystemCacheStorage(self.settings)
        storage._fingerprinter = RequestFingerprinter()
        spider: Any = _Spider(board.name)
        try:
            return storage.retrieve_response(spider, Request(board.start_url))
        except (OSError, ValueError, EOFError):
            return None


class _Spider:
    """What Scrapy's cache storage asks of a spider: its name (the cache folder)."""

    def __init__(self, name: str):
        self.name = name


#: per process: the cache folder of a board's start URL, and what was read from it (by the
#: modification times of the files a store writes first and last)
_folders: dict[tuple[str, str, str], Path] = {}
_read: dict[Path, tuple[tuple[int, int], Cached]] = {}


def _folder(settings: BaseSettings, board: Any) -> Path:
    key = (str(settings.get("HTTPCACHE_DIR")), board.name, board.start_url)
    if key not in _folders:
        storage = FilesystemCacheStorage(settings)
        storage._fingerprinter = RequestFingerprinter()
        spider: Any = _Spider(board.name)
        _folders[key] = Path(storage._get_request_path(spider, Request(board.start_url)))
    return _folders[key]


def _validators(headers: Headers) -> dict[str, str]:
    out = {}
    if etag := headers.get(b"ETag"):
        out["If-None-Match"] = to_unicode(etag, "latin-1")
    if modified := headers.get(b"Last-Modified"):
        out["If-Modified-Since"] = to_unicode(modified, "latin-1")
    return out


def cached_page(settings: BaseSettings, board: Any) -> Cached | None:
    """The cached 200 of the board's start URL, as its crawls stored it; None when the cache is
    off, not on disk, expired (``HTTPCACHE_EXPIRATION_SECS``, as Scrapy's storage decides) or
    holds nothing for the board. Read once per stored page per process (two ``stat`` calls tell
    whether a crawl stored it again)."""
    if not settings.getbool("HTTPCACHE_ENABLED") or settings.get("HTTPCACHE_STORAGE") != STORAGE:
        return None
    folder = _folder(settings, board)
    try:
        meta, data = (folder / "pickled_meta").stat(), (folder / "response_data").stat()
    except OSError:
        return None
    expiration = settings.getint("HTTPCACHE_EXPIRATION_SECS")
    if 0 < expiration < time.time() - meta.st_mtime:
        return None  # expired
    stamp = (meta.st_mtime_ns, data.st_mtime_ns)
    if (kept := _read.get(folder)) is not None and kept[0] == stamp:
        return kept[1]
    opener: Any = gzip.open if settings.getbool("HTTPCACHE_GZIP") else open
    try:
        with opener(folder / "pickled_meta", "rb") as f:
            metadata = pickle.load(f)  # written by this project's own crawls
        with opener(folder / "response_headers", "rb") as f:
            headers = Headers(headers_raw_to_dict(f.read()))
    except (OSError, ValueError, EOFError, pickle.UnpicklingError):
        return None
    if metadata.get("status") != 200:
        return None
    cached = Cached(folder, float(metadata.get("timestamp", 0.0)), _validators(headers), settings)
    _read[folder] = (stamp, cached)
    return cached


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
    if cached.digest is not None:
        return cached.digest
    path = cached.folder / DIGEST_FILE
    stamp = repr(cached.timestamp)
    try:
        kept_stamp, kept = path.read_text().split()
        if kept_stamp == stamp:
            cached.digest = kept
            return kept
    except (OSError, ValueError):
        pass  # no digest kept (or a torn file): computed again below
    response = cached.load(board)
    digest = rows_digest(board, response) if response is not None else None
    if digest is not None:
        cached.digest = digest
        tmp = path.with_suffix(".tmp")
        try:
            tmp.write_text(f"{stamp} {digest}\n")
            tmp.replace(path)
        except OSError:
            pass  # not kept: the next check computes the digest again
    return digest
