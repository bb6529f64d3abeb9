"""Per-host politeness shared by every crawl process: at most ``HOST_CONCURRENCY`` requests in
flight and at least ``HOST_DELAY`` seconds between two request starts, and between an answer and
the next request, per host name.

The slots live in Redis (the lock Redis, ``HOST_LIMITS_REDIS_URL``), so they hold across worker
processes and across machines sharing it; Redis' own clock decides, so machines need no synced
clocks. Without a Redis URL (``scrapy crawl`` by hand) the same rules hold inside the one crawl.

A host that answers 429 or 503 with ``Retry-After`` (seconds or an HTTP date) is held for that
long, capped at ``HOST_RETRY_AFTER_MAX``: no process sends it anything before then; the run counts
it as ``throttled``. A request that cannot get a slot before the crawl's wait budget
(``HOST_WAIT_MAX``, default 80 % of ``CRAWL_SOFT_TIME_LIMIT``) ends the crawl as ``host_busy``
instead of being killed at the time limit.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
import weakref
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response
from scrapy.utils.httpobj import urlparse_cached

logger = logging.getLogger(__name__)

TOKEN_META = "noticecrawler_host_token"
PREFIX = "noticecrawler:host:"
#: how often a request waiting for a full host asks again (seconds)
POLL = 0.05


class EndsCrawl(IgnoreRequest):
    """A request failure that ends the crawl with ``reason``; the message says what and where."""

    reason = "board_error"


class HostBusy(EndsCrawl):
    reason = "host_busy"


# Returns 0 when the slot is taken, else the milliseconds to wait (-1: host full, ask again soon)
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local nxt = tonumber(redis.call('GET', KEYS[2]) or '0')
if nxt > now then return nxt - now end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return -1 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[4]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('SET', KEYS[2], now + tonumber(ARGV[3]), 'PX', tonumber(ARGV[3]) + 60000)
return 0
"""
# The answer is in: the next request waits HOST_DELAY from now too (so the host sees the gap
# even when one answer was slow to arrive)
_RELEASE = """
redis.call('ZREM', KEYS[1], ARGV[1])
local t = redis.call('TIME')
local untl = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[2])
if untl > tonumber(redis.call('GET', KEYS[2]) or '0') then
    redis.call('SET', KEYS[2], untl, 'PX', tonumber(ARGV[2]) + 60000)
end
return 0
"""
_HOLD = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local untl = now + tonumber(ARGV[1])
if untl > tonumber(redis.call('GET', KEYS[1]) or '0') then
    redis.call('SET', KEYS[1], untl, 'PX', tonumber(ARGV[1]) + 60000)
end
return 0
"""


def _no_client_info() -> dict[str, Any]:
    """Client arguments that skip ``CLIENT SETINFO`` on connect: two round trips and a read of
    the package metadata for every connection of every crawl process (the name of the library is
    of no use to anyone here)."""
    import inspect

    import redis.asyncio

    if "driver_info" in inspect.signature(redis.asyncio.Redis.__init__).parameters:
        return {"driver_info": None}
    return {"lib_name": None, "lib_version": None}  # redis-py before 7.1


NO_CLIENT_INFO = _no_client_info()


def redis_client(url: str, **options: Any) -> Any:
    """An asyncio Redis client for one crawl process (the host slots, the robots.txt cache)."""
    import redis.asyncio

    return redis.asyncio.Redis.from_url(url, **NO_CLIENT_INFO, **options)


class SharedRedis:
    """One asyncio Redis client per crawl and URL, shared by the host slots and the robots.txt
    cache (one connection, one AUTH per crawl process instead of two); closed by its last
    user."""

    _per_crawler: weakref.WeakKeyDictionary[Any, dict[str, SharedRedis]] = (
        weakref.WeakKeyDictionary()
    )

    def __init__(self, url: str):
        self.client = redis_client(url, socket_timeout=10, socket_connect_timeout=10)
        self.users = 0

    @classmethod
    def of(cls, crawler: Crawler, url: str) -> SharedRedis:
        """The crawl's client for ``url``, with one more user (each user calls :meth:`release`)."""
        per = cls._per_crawler.setdefault(crawler, {})
        shared = per.get(url)
        if shared is None:
            shared = per[url] = cls(url)
        shared.users += 1
        return shared

    async def release(self) -> None:
        self.users -= 1
        if self.users == 0:
            await self.client.aclose()


class Slots(Protocol):
    async def acquire(self, host: str, token: str) -> float:
        """0 when ``token`` holds a slot of ``host`` now, else seconds to wait (-1: full)."""

    async def release(self, host: str, token: str) -> None: ...

    async def hold(self, host: str, seconds: float) -> None:
        """No request to ``host`` for ``seconds`` from now (kept if a longer hold is set)."""


class RedisSlots:
    def __init__(self, shared: SharedRedis, concurrency: int, delay: float, lease: float):
        self.shared = shared
        self.redis = shared.client
        self.args = (concurrency, int(delay * 1000), int(lease * 1000))

    async def acquire(self, host: str, token: str) -> float:
        keys = (PREFIX + host + ":inflight", PREFIX + host + ":next")
        wait = int(await self.redis.eval(_ACQUIRE, 2, *keys, token, *self.args))
        return wait / 1000 if wait > 0 else float(wait)

    async def release(self, host: str, token: str) -> None:
        keys = (PREFIX + host + ":inflight", PREFIX + host + ":next")
        await self.redis.eval(_RELEASE, 2, *keys, token, self.args[1])

    async def hold(self, host: str, seconds: float) -> None:
        await self.redis.eval(_HOLD, 1, PREFIX + host + ":next", int(seconds * 1000))

    async def close(self) -> None:
        await self.shared.release()


class LocalSlots:
    """The same rules inside one process (no Redis configured)."""

    def __init__(self, concurrency: int, delay: float):
        self.concurrency, self.delay = concurrency, delay
        self.inflight: dict[str, set[str]] = {}
        self.next: dict[str, float] = {}

    async def acquire(self, host: str, token: str) -> float:
        now = time.monotonic()
        wait = self.next.get(host, 0.0) - now
        if wait > 0:
            return wait
        held = self.inflight.setdefault(host, set())
        if len(held) >= self.concurrency:
            return -1
        held.add(token)
        self.next[host] = now + self.delay
        return 0

    async def release(self, host: str, token: str) -> None:
        self.inflight.get(host, set()).discard(token)
        self.next[host] = max(self.next.get(host, 0.0), time.monotonic() + self.delay)

    async def hold(self, host: str, seconds: float) -> None:
        self.next[host] = max(self.next.get(host, 0.0), time.monotonic() + seconds)

    async def close(self) -> None:
        return None


_local: dict[tuple[int, float], LocalSlots] = {}


def local_slots(concurrency: int, delay: float) -> LocalSlots:
    """The slots of this process: several crawls in one process share them."""
    return _local.setdefault((concurrency, delay), LocalSlots(concurrency, delay))


def retry_after_seconds(value: bytes | str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date; None if unusable."""
    if value is None:
        return None
    text = (value.decode("latin-1") if isinstance(value, bytes) else value).strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class HostPoliteness:
    """Downloader middleware (close to the downloader: only requests that go to the network)."""

    def __init__(self, crawler: Crawler, slots: Any, wait_max: float, retry_after_max: float):
        self.crawler = crawler
        self.slots = slots
        self.retry_after_max = retry_after_max
        self.deadline = time.monotonic() + wait_max
        self.wait_max = wait_max
        assert crawler.stats is not None
        self.stats = crawler.stats

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> HostPoliteness:
        s = crawler.settings
        concurrency = max(1, s.getint("HOST_CONCURRENCY", 1))
        delay = max(0.0, s.getfloat("HOST_DELAY", 1.0))
        url = s.get("HOST_LIMITS_REDIS_URL", "")
        lease = s.getfloat("DOWNLOAD_TIMEOUT", 180) + 10
        slots = (
            RedisSlots(SharedRedis.of(crawler, url), concurrency, delay, lease)
            if url
            else LocalSlots(concurrency, delay)
        )
        wait_max = s.getfloat("HOST_WAIT_MAX", 0) or 0.8 * s.getfloat("CRAWL_SOFT_TIME_LIMIT", 240)
        mw = cls(crawler, slots, wait_max, s.getfloat("HOST_RETRY_AFTER_MAX", 600))
        from scrapy import signals

        crawler.signals.connect(mw.spider_closed, signal=signals.spider_closed)
        return mw

    async def spider_closed(self) -> None:
        await self.slots.close()

    def _board(self) -> str:
        board = getattr(self.crawler.spider, "board", None)
        return board.name if board is not None else str(getattr(self.crawler.spider, "name", "?"))

    async def process_request(self, request: Request) -> None:
        host = urlparse_cached(request).hostname or ""
        token = uuid.uuid4().hex
        started = time.monotonic()
        while True:
            wait = await self.slots.acquire(host, token)
            if wait == 0:
                break
            now = time.monotonic()
            if now + max(wait, 0) > self.deadline:
                self.stats.inc_value("noticecrawler/hosts/busy")
                raise HostBusy(
                    f"host {host} stayed busy: {request.url} could not start within the crawl's "
                    f"wait budget of {self.wait_max:g}s (next slot in "
                    f"{'?' if wait < 0 else f'{wait:.1f}s'})"
                )
            await asyncio.sleep(POLL if wait < 0 else min(wait, 5.0))
        waited = time.monotonic() - started
        if waited > 0.001:
            self.stats.inc_value("noticecrawler/hosts/waited_ms", int(waited * 1000))
        request.meta[TOKEN_META] = (host, token)

    async def _release(self, request: Request) -> None:
        held = request.meta.pop(TOKEN_META, None)
        if held is not None:
            await self.slots.release(*held)

    async def process_response(self, request: Request, response: Response) -> Response:
        await self._release(request)
        if response.status in (429, 503):
            seconds = retry_after_seconds(response.headers.get(b"Retry-After"))
            if seconds is not None or response.status == 429:
                self.stats.inc_value("noticecrawler/hosts/throttled")
            if seconds is not None:
                held = min(seconds, self.retry_after_max)
                host = urlparse_cached(request).hostname or ""
                await self.slots.hold(host, held)
                logger.warning(
                    "board `%s`: %s answered %d with Retry-After %s: no request to %s for %.0fs",
                    self._board(),
                    request.url,
                    response.status,
                    (response.headers.get(b"Retry-After") or b"").decode("latin-1"),
                    host,
                    held,
                )
        return response

    async def process_exception(self, request: Request, exception: Exception) -> None:
        await self._release(request)
