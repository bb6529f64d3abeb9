"""Page batches: the rows of one list page are stored together and their verdict reaches the
spider, which decides from it whether to read the next page.

The spider announces a page with :meth:`PageTracker.expect` before yielding its posts; the store
pipeline adds each arriving post to the page's batch and, once the batch is complete, stores it
in one round trip and resolves it with each post's status ("new" / "seen" / "edited"). Posts
dropped or failing on their way count as arrived, so a batch always completes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from itemadapter import ItemAdapter
from scrapy import signals
from scrapy.crawler import Crawler


class StoreFailed(RuntimeError):
    """A page's posts could not be stored; the message says which board, page and why."""


class PageBatch:
    def __init__(self, key: str, expected: int):
        self.key = key
        self.expected = expected
        self.items: list[Any] = []
        self.skipped = 0
        self.done: asyncio.Future[dict[str, str]] = asyncio.get_running_loop().create_future()
        self._flush: Callable[[PageBatch], Awaitable[None]] | None = None
        #: set when the page was read in full (200, not 304): (every post id it shows, the
        #: regular ones); the store then marks the posts it no longer shows as deleted
        self.page_ids: tuple[list[str], list[str]] | None = None

    @property
    def full(self) -> bool:
        return len(self.items) + self.skipped >= self.expected

    def on_full(self, flush: Callable[[PageBatch], Awaitable[None]]) -> None:
        self._flush = flush

    def resolve(self, statuses: dict[str, str]) -> None:
        if not self.done.done():
            self.done.set_result(statuses)

    def fail(self, exc: BaseException) -> None:
        if not self.done.done():
            self.done.set_exception(exc)

    async def skip(self) -> None:
        self.skipped += 1
        if self.full:
            if self._flush is not None and self.items:
                await self._flush(self)
            else:
                self.resolve({})


class PageTracker:
    """Extension holding the pending page batches of one crawl."""

    def __init__(self) -> None:
        self._batches: dict[str, PageBatch] = {}

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> PageTracker:
        tracker = cls()
        crawler.signals.connect(tracker._item_lost, signal=signals.item_dropped)
        crawler.signals.connect(tracker._item_lost, signal=signals.item_error)
        return tracker

    def expect(self, key: str, count: int) -> PageBatch:
        batch = PageBatch(key, count)
        self._batches[key] = batch
        if count == 0:
            batch.resolve({})
        batch.done.add_done_callback(lambda _: self._batches.pop(key, None))
        return batch

    def batch_for(self, item: Any) -> PageBatch | None:
        key = ItemAdapter(item).get("list_url")
        return self._batches.get(key) if key else None

    async def _item_lost(self, item: Any, **kwargs: Any) -> None:
        batch = self.batch_for(item)
        if batch is not None and not any(i is item for i in batch.items):
            await batch.skip()
