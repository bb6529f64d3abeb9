"""One crawl per board at a time: a Redis key per board holding the id of the task crawling it.

Taken by the worker's ``crawl_site`` (token: the task id) and by ``scrapy crawl`` (token:
``scrapy:<host>:<pid>``), so the two never crawl one board at once.

The key expires after ``expire`` seconds (longer than the hard time limit), so the lock of a
SIGKILLed worker frees itself. A task delivered again after such a kill carries the same task id
and takes its own lock back instead of waiting for the expiry.
"""

from __future__ import annotations

import os
from typing import Any

import redis

PREFIX = "noticecrawler:crawl-lock:"

# SET the key when it is free or already ours; otherwise return the holder.
_ACQUIRE = """
local holder = redis.call('GET', KEYS[1])
if (not holder) or holder == ARGV[1] then
    redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
    return false
end
return holder
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


def is_redis(url: str | None) -> bool:
    return bool(url) and str(url).startswith(("redis://", "rediss://", "unix://"))


def resolve_lock_url(lock_url: str, result_backend: str, broker_url: str, home: str) -> str:
    """``CRAWL_LOCK_URL``, else the result backend or the broker when it is Redis, else the
    embedded Redis under ``home`` (started if needed). Workers and ``scrapy crawl`` resolve the
    lock store with this one rule, so they meet in the same Redis."""
    if lock_url:
        return lock_url
    found = next((u for u in (result_backend, broker_url) if u and is_redis(u)), "")
    if found:
        return found
    from noticecrawler.db.embedded import redis_url

    return redis_url(home)


_clients: dict[tuple[int, str], redis.Redis] = {}


def client(url: str) -> redis.Redis:
    """A Redis client of this process (never one inherited across a fork)."""
    key = (os.getpid(), url)
    if key not in _clients:
        _clients[key] = redis.Redis.from_url(
            url, decode_responses=True, socket_timeout=10, socket_connect_timeout=10
        )
    return _clients[key]


class BoardLock:
    def __init__(self, conn: redis.Redis, board: str, token: str, expire: float):
        self.conn = conn
        self.key = PREFIX + board
        self.token = token
        self.expire_ms = int(expire * 1000)

    def acquire(self) -> str | None:
        """None when this token now holds the lock, else the token of the holder."""
        holder: Any = self.conn.eval(_ACQUIRE, 1, self.key, self.token, self.expire_ms)
        return str(holder) if holder else None

    def release(self) -> bool:
        return bool(self.conn.eval(_RELEASE, 1, self.key, self.token))

    def holder(self) -> str | None:
        value: Any = self.conn.get(self.key)
        return str(value) if value else None
