"""``scrapy crawl <board>`` with the per-board lock the workers take.

While a worker (or another ``scrapy crawl``) crawls the board, the command refuses in one line
and exits 1; so does it when the database is away or lacks migrations
(:mod:`noticecrawler.preflight`). Otherwise it holds the lock for the whole crawl (renewed
while it runs), so a worker's ``crawl_site`` of that board is skipped meanwhile, and runs left
``running`` by a dead crawl of the board are closed as ``killed``.

The lock store is the workers' (:func:`noticecrawler.boardlock.resolve_lock_url`). With an
in-memory broker and no Redis named (tests) no worker can share a lock, and none is taken;
``-s NOTICECRAWLER_BOARD_LOCK=0`` turns the lock off.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import sys
import threading
from typing import Any

import redis
from scrapy.commands.crawl import Command as ScrapyCrawl

from noticecrawler.boardlock import BoardLock, client, resolve_lock_url
from noticecrawler.db.settings import redact
from noticecrawler.preflight import CrawlNotStarted, check_database, record


class Command(ScrapyCrawl):
    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        if len(args) == 1:
            try:  # a database that is away or not migrated: one line, not a traceback per part
                check_database(args[0], self.settings)
            except CrawlNotStarted as failure:
                record(None, failure)
                self.exitcode = 1
                return
        lock = self._lock(args[0]) if len(args) == 1 else None
        if lock is None:
            super().run(args, opts)
            return
        try:
            holder = lock.acquire()
        except redis.RedisError as exc:
            # a worker cannot take the lock from a store it cannot reach either (its crawl ends
            # `lock_unavailable`), so no worker crawls the board meanwhile: crawl without it
            print(
                f"board `{args[0]}`: cannot reach the lock store at "
                f"{redact(lock_url(self.settings))} (CRAWL_LOCK_URL): {exc}; crawling without "
                "the lock",
                file=sys.stderr,
            )
            super().run(args, opts)
            return
        if holder is not None:
            self._refuse(
                f"board `{args[0]}`: already being crawled (lock held by {holder}); not crawled"
            )
            return
        self.settings.set("NOTICECRAWLER_BOARD_LOCK_HELD", True, priority="cmdline")
        done = threading.Event()
        keeper = threading.Thread(target=_keep, args=(lock, done), daemon=True)
        keeper.start()
        try:
            super().run(args, opts)
        finally:
            done.set()
            keeper.join()
            with contextlib.suppress(redis.RedisError):  # else it expires
                lock.release()

    def _lock(self, board: str) -> BoardLock | None:
        assert self.settings is not None
        if not self.settings.getbool("NOTICECRAWLER_BOARD_LOCK", True):
            return None
        url = lock_url(self.settings)
        if not url:
            return None
        expire = self.settings.getfloat("CRAWL_LOCK_EXPIRE") or (
            self.settings.getfloat("CRAWL_TIME_LIMIT", 300) + 60
        )
        token = f"scrapy:{socket.gethostname()}:{os.getpid()}"
        return BoardLock(client(url), board, token, expire)

    def _refuse(self, line: str) -> None:
        print(line, file=sys.stderr)
        self.exitcode = 1


def lock_url(settings: Any) -> str:
    """The workers' lock store; empty when there can be no worker to share it with."""
    get = settings.get
    explicit = get("CRAWL_LOCK_URL") or ""
    broker = get("CELERY_BROKER_URL") or ""
    backend = get("CELERY_RESULT_BACKEND") or ""
    if not explicit and broker.startswith("memory://") and not backend.startswith("redis"):
        return ""
    return resolve_lock_url(explicit, backend, broker, get("NOTICECRAWLER_HOME") or "")


def _keep(lock: BoardLock, done: threading.Event) -> None:
    """Renew the lock at a third of its expiry while the crawl runs."""
    while not done.wait(lock.expire_ms / 3000):
        with contextlib.suppress(redis.RedisError):
            lock.acquire()
