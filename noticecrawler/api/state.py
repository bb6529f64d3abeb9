"""What the running app holds: its configuration, the database pool, the token cache, the rate
limiter and the crawl trigger. One per app (``app.state.nc``)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import psycopg
from fastapi import Request
from psycopg_pool import AsyncConnectionPool

from noticecrawler.api.config import ApiConfig
from noticecrawler.api.crawl import CrawlTrigger
from noticecrawler.api.pagecache import PageCache
from noticecrawler.api.ratelimit import RateLimiter

T = TypeVar("T")


@dataclass
class Principal:
    """Who is calling: the token's id, its user (None for an admin token of no user), admin."""

    token_id: int
    user_id: int | None
    admin: bool


@dataclass
class AppState:
    config: ApiConfig
    pool: AsyncConnectionPool
    limiter: RateLimiter
    trigger: CrawlTrigger
    first_pages: PageCache
    _tokens: dict[bytes, tuple[float, Principal | None]] = field(default_factory=dict)

    def cached(self, digest: bytes) -> tuple[bool, Principal | None]:
        hit = self._tokens.get(digest)
        if hit is None or time.monotonic() - hit[0] >= self.config.token_cache_seconds:
            return False, None
        return True, hit[1]

    def remember(self, digest: bytes, principal: Principal | None) -> None:
        if len(self._tokens) > 10_000:
            self._tokens.clear()
        self._tokens[digest] = (time.monotonic(), principal)

    async def read(self, work: Callable[[psycopg.AsyncConnection[Any]], Awaitable[T]]) -> T:
        """``work`` (a read, or a write that may run twice: marking a token used) on a pooled
        connection. When that connection turns out broken (PostgreSQL restarted, or the session
        was killed), the pool checks its idle connections, replaces the dead ones, and ``work``
        runs once more on a fresh one (which prepares its statements anew): a lost connection
        costs a request no 500."""
        conn: psycopg.AsyncConnection[Any] | None = None
        try:
            async with self.pool.connection() as conn:
                return await work(conn)
        except psycopg.OperationalError:
            if conn is None or not conn.broken:
                raise
        await self.pool.check()
        async with self.pool.connection() as conn:
            return await work(conn)


def app_state(request: Request) -> AppState:
    state: Any = request.app.state.nc
    assert isinstance(state, AppState)
    return state


async def state_dependency(request: Request) -> AppState:
    """``app_state`` as a dependency (async: a plain ``def`` would cost a thread hop)."""
    return app_state(request)
