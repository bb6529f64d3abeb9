"""A board's first page, kept for a second: every app that opens asks for it, and a board
changes once per crawl (minutes), so one query a second serves them all. Concurrent misses of
one key share one query."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable


class PageCache:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._pages: dict[Hashable, tuple[float, bytes]] = {}
        self._loading: dict[Hashable, asyncio.Future[bytes]] = {}

    async def get(self, key: Hashable, load: Callable[[], Awaitable[bytes]]) -> bytes:
        if self.seconds <= 0:
            return await load()
        now = time.monotonic()
        hit = self._pages.get(key)
        if hit is not None and now - hit[0] < self.seconds:
            return hit[1]
        pending = self._loading.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._loading[key] = future
        try:
            body = await load()
        except BaseException as e:
            future.set_exception(e)
            future.exception()  # retrieved here: the waiters (if any) get it too
            raise
        finally:
            del self._loading[key]
        if len(self._pages) > 1000:
            self._pages.clear()
        self._pages[key] = (now, body)
        future.set_result(body)
        return body
