"""One crawl per board at a time: a Redis key per board holding the id of the task crawling it.

Taken by the worker's ``crawl_site`` (token: the task id) and by ``scrapy crawl`` (token:
``scrapy:<host>:<pid>``), so the two never crawl one board at once.

The key expires after ``expire`` seconds (longer than the hard time limit), so the lock of a
SIGKILLed worker frees itself. A task delivered again after such a kill carries the same task id
and takes its own lock back instead of waiting for the expiry.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
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


def lock_url_for(settings: Any) -> str:
    """The workers' lock store as ``scrapy crawl`` finds it from Scrapy settings; empty when no
    worker can share a lock (an in-memory broker and no Redis named: the tests)."""
    explicit = settings.get("CRAWL_LOCK_URL") or ""
    broker = settings.get("CELERY_BROKER_URL") or ""
    backend = settings.get("CELERY_RESULT_BACKEND") or ""
    if not explicit and broker.startswith("memory://") and not is_redis(backend):
        return ""
    return resolve_lock_url(explicit, backend, broker, settings.get("NOTICECRAWLER_HOME") or "")


def lock_for_command(board: str, settings: Any) -> BoardLock | None:
    """The lock ``scrapy crawl <board>`` takes (None: off, ``NOTICECRAWLER_BOARD_LOCK``, or no
    worker to share it with). Token ``scrapy:<host>:<pid>``; expiry the workers'."""
    if not settings.getbool("NOTICECRAWLER_BOARD_LOCK", True):
        return None
    url = lock_url_for(settings)
    if not url:
        return None
    expire = settings.getfloat("CRAWL_LOCK_EXPIRE") or settings.getfloat("CRAWL_TIME_LIMIT") + 60
    token = f"scrapy:{socket.gethostname()}:{os.getpid()}"
    return BoardLock(client(url), board, token, expire)


@contextmanager
def kept(lock: BoardLock) -> Iterator[None]:
    """Renew the lock at a third of its expiry while the block runs; release it after."""
    done = threading.Event()

    def renew() -> None:
        while not done.wait(lock.expire_ms / 3000):
            with suppress(redis.RedisError):
                lock.acquire()

    keeper = threading.Thread(target=renew, name="board-lock", daemon=True)
    keeper.start()
    try:
        yield
    finally:
        done.set()
        keeper.join()
        with suppress(redis.RedisError):  # else it expires
            lock.release()
