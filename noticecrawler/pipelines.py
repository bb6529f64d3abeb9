"""Item pipelines, one job each, in order: normalize → store → notify.

Items are read through itemadapter, so Post dataclasses, dicts and scrapy Items all work.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import unicodedata
from dataclasses import asdict, is_dataclass
from typing import Any

import psycopg
from itemadapter import ItemAdapter
from scrapy.crawler import Crawler
from scrapy.exceptions import DropItem, NotConfigured
from scrapy.utils.misc import load_object

from noticecrawler.db import queries
from noticecrawler.db.settings import database_url
from noticecrawler.pages import PageBatch, PageTracker, StoreFailed

logger = logging.getLogger(__name__)


#: bidi embeddings, overrides, isolates and marks: they reorder or hide text on the phone
BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)


def strip_controls(text: str) -> str:
    """``text`` without control characters (category Cc, whitespace aside) and bidi controls."""
    return "".join(
        c
        for c in text
        if c not in BIDI_CONTROLS and (c.isspace() or unicodedata.category(c) != "Cc")
    )


class NormalizePipeline:
    """Checks the fields every post needs and tidies text: control and bidi characters
    stripped (the raw title kept in ``raw_title`` when that changed it), NFC, collapsed
    whitespace."""

    REQUIRED = ("board", "post_id", "title", "url")

    def __init__(self, crawler: Crawler):
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> NormalizePipeline:
        return cls(crawler)

    def process_item(self, item: Any) -> Any:
        adapter = ItemAdapter(item)
        for key in ("title", "author", "category", "post_id"):
            value = adapter.get(key)
            if isinstance(value, str):
                clean = strip_controls(value)
                if key == "title" and clean != value:
                    _set(adapter, "raw_title", value)
                    assert self.crawler.stats is not None
                    self.crawler.stats.inc_value("noticecrawler/normalize/controls_stripped")
                adapter[key] = " ".join(unicodedata.normalize("NFC", clean).split())
        missing = [key for key in self.REQUIRED if not adapter.get(key)]
        if missing:
            assert self.crawler.stats is not None
            self.crawler.stats.inc_value("noticecrawler/normalize/dropped")
            raise DropItem(f"board `{adapter.get('board')}`: post without {', '.join(missing)}")
        published = adapter.get("published")
        if published is not None and published.tzinfo is None:
            raise DropItem(f"board `{adapter['board']}`: naive published time {published!r}")
        if adapter.get("attachments"):
            adapter["attachments"] = [
                asdict(a) if is_dataclass(a) and not isinstance(a, type) else dict(a)
                for a in adapter["attachments"]
            ]
        return item


class StorePipeline:
    """Stores posts in PostgreSQL; the database says which are new.

    The posts of one list page arrive as a batch (see :mod:`noticecrawler.pages`) and are stored
    with one statement; other items are stored one by one. Each item leaves with ``status``
    ("new", "seen" or "edited") and ``db_id`` set. Stats: ``noticecrawler/store/new``,
    ``…/seen``, ``…/edited``. The connection is opened in the crawling process itself.
    """

    def __init__(self, crawler: Crawler, url: str):
        self.crawler = crawler
        self.url = url
        self.conn: psycopg.AsyncConnection[Any] | None = None
        self.tracker = crawler.get_extension(PageTracker)
        self.announce = True
        self.first_crawl = False
        self._lock = asyncio.Lock()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> StorePipeline:
        return cls(crawler, database_url(crawler.settings))

    async def open_spider(self) -> None:
        self.conn = await psycopg.AsyncConnection.connect(self.url, autocommit=True)
        spider = self.crawler.spider
        board = getattr(spider, "board", None)
        if board is not None:
            self.first_crawl = await queries.first_crawl_pending(self.conn, board.name)
            # the first crawl of a board stores its backlog without announcing it
            self.announce = not self.first_crawl or board.announce_first_crawl
            spider.first_crawl = self.first_crawl  # type: ignore[union-attr]
            if self.first_crawl:
                logger.info("board `%s`: first crawl, posts are stored silently", board.name)

    async def close_spider(self) -> None:
        if self.conn is not None:
            await self.conn.close()

    async def process_item(self, item: Any) -> Any:
        batch = self.tracker.batch_for(item) if self.tracker is not None else None
        if batch is None:
            await self._store([item])
            return item
        batch.items.append(item)
        batch.on_full(self._flush)
        if batch.full:
            await self._flush(batch)
        try:
            await batch.done
        except StoreFailed as exc:  # logged once by _flush; the spider ends the crawl
            raise DropItem(str(exc)) from None
        return item

    async def _flush(self, batch: PageBatch) -> None:
        try:
            statuses = await self._store(batch.items)
        except (psycopg.Error, OSError) as exc:
            board = ItemAdapter(batch.items[0]).get("board")
            message = (
                f"board `{board}`: storing {len(batch.items)} posts of {batch.key} failed "
                f"({type(exc).__name__}: {str(exc).strip()}); the next crawl stores them"
            )
            logger.error("%s", message)
            assert self.crawler.stats is not None
            self.crawler.stats.inc_value("noticecrawler/store/failed_pages")
            batch.fail(StoreFailed(message))
            return
        if batch.page_ids is not None:
            await self._mark_deleted(batch)
        batch.resolve(statuses)

    async def _mark_deleted(self, batch: PageBatch) -> None:
        assert self.conn is not None and self.crawler.stats is not None and batch.page_ids
        board = str(ItemAdapter(batch.items[0]).get("board"))
        try:
            async with self._lock:
                gone = await queries.mark_deleted(self.conn, board, *batch.page_ids)
        except (psycopg.Error, OSError) as exc:  # the next full read marks them
            logger.warning("board `%s`: could not mark deleted posts: %s", board, exc)
            return
        if gone:
            self.crawler.stats.inc_value("noticecrawler/store/deleted", len(gone))
            logger.info("board `%s`: %s no longer on %s: marked deleted", board, gone, batch.key)

    async def _store(self, items: list[Any]) -> dict[str, str]:
        assert self.conn is not None and self.crawler.stats is not None
        adapters = [ItemAdapter(i) for i in items]
        by_board: dict[str, list[ItemAdapter]] = {}
        for a in adapters:
            by_board.setdefault(a["board"], []).append(a)
        statuses: dict[str, str] = {}
        for board, group in by_board.items():
            distinct = {a["post_id"]: a for a in group}
            result = await self._store_page(board, list(distinct.values()))
            for a in group:
                row = result.get(a["post_id"], {"id": None, "status": "seen", "queued": False})
                first = distinct[a["post_id"]] is a
                status = row["status"] if first else "seen"
                _set(a, "status", status)
                _set(a, "db_id", row["id"])
                _set(a, "announced", bool(row["queued"]) and first)
                statuses[a["post_id"]] = statuses.get(a["post_id"], status)
                self.crawler.stats.inc_value(f"noticecrawler/store/{status}")
        return statuses

    async def _store_page(self, board: str, posts: list[ItemAdapter]) -> dict[str, Any]:
        """One page in one statement. A lost connection (PostgreSQL restarted, a failover) is
        opened again and the statement retried for up to ``NOTICECRAWLER_DB_RETRY_SECONDS``:
        the statement is idempotent (a page stored before the connection broke comes back as
        seen, its outbox rows already written). Any other error fails the page at once."""
        assert self.crawler.stats is not None
        deadline = time.monotonic() + self.crawler.settings.getfloat(
            "NOTICECRAWLER_DB_RETRY_SECONDS", 30
        )
        delay = 0.25
        async with self._lock:  # one statement at a time on the connection
            while True:
                try:
                    if self.conn is None or self.conn.closed:
                        self.conn = await psycopg.AsyncConnection.connect(
                            self.url, autocommit=True, connect_timeout=5
                        )
                    return await queries.store_posts(self.conn, board, posts, self.announce)
                except psycopg.OperationalError as exc:
                    if time.monotonic() + delay > deadline:
                        raise
                    logger.warning(
                        "board `%s`: PostgreSQL connection lost (%s); retrying in %.1fs",
                        board,
                        str(exc).strip().splitlines()[0] if str(exc).strip() else "closed",
                        delay,
                    )
                    self.crawler.stats.inc_value("noticecrawler/store/reconnects")
                    if self.conn is not None:
                        with contextlib.suppress(psycopg.Error):
                            await self.conn.close()
                    self.conn = None
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 4.0)


def _set(adapter: ItemAdapter, key: str, value: Any) -> None:
    with contextlib.suppress(KeyError):  # a scrapy.Item without that field
        adapter[key] = value


class NotifyPipeline:
    """After the row is committed, sends one ``notify_post(post_id)`` task per announced post
    through the narrow notify port (``NOTICECRAWLER_NOTIFY_SENDER``). A failed send loses
    nothing: the outbox row stays, and the periodic sweep sends it later."""

    def __init__(self, crawler: Crawler, send: Any):
        self.crawler = crawler
        self.send = send

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> NotifyPipeline:
        path = crawler.settings.get("NOTICECRAWLER_NOTIFY_SENDER")
        if not path:
            raise NotConfigured("NOTICECRAWLER_NOTIFY_SENDER is empty")
        return cls(crawler, load_object(path))

    async def process_item(self, item: Any) -> Any:
        adapter = ItemAdapter(item)
        assert self.crawler.stats is not None
        announce = adapter.get("status") == "new" and adapter.get("announced")
        if announce and adapter.get("list_url") and self._after_detail():
            # its detail page comes next; the post is announced once that is stored
            self.crawler.stats.inc_value("noticecrawler/notify/after_detail")
            return item
        if not (announce or (adapter.get("notify_after_detail") and adapter.get("db_id"))):
            return item
        try:
            await asyncio.to_thread(self.send, int(adapter["db_id"]), self.crawler.settings)
            self.crawler.stats.inc_value("noticecrawler/notify/sent")
        except Exception as exc:  # broker down: the outbox sweep will send it
            self.crawler.stats.inc_value("noticecrawler/notify/deferred")
            logger.warning(
                "board `%s`: could not send notify_post(%s) now (%s); the outbox sweep will",
                adapter["board"],
                adapter["db_id"],
                exc,
            )
        return item

    def _after_detail(self) -> bool:
        board = getattr(self.crawler.spider, "board", None)
        return bool(board is not None and board.follow_details)
