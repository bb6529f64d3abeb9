"""``scrapy crawl <board>`` with honest endings and the workers' per-board lock.

* an unknown board, a malformed catalog, an unreachable or unmigrated database: one line
  (``unknown board 'x'; known: …``), logged as the crawl's first error, and exit status 2;
* while a worker (or another ``scrapy crawl``) crawls the board: one line, exit status 1;
  otherwise the lock is held for the whole crawl (renewed while it runs), so a worker's
  ``crawl_site`` of that board is skipped meanwhile, and runs left ``running`` by a dead crawl
  of the board are closed as ``killed``;
* a crawl whose finish reason is not ``finished``, or that recorded errors: exit status 1.

The lock store is the workers' (:func:`noticecrawler.boardlock.resolve_lock_url`). With an
in-memory broker and no Redis named (tests) no worker can share a lock, and none is taken;
``-s NOTICECRAWLER_BOARD_LOCK=0`` turns the lock off.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import socket
import sys
import threading
from typing import Any

import redis
from scrapy.commands.crawl import Command as ScrapyCrawl

from noticecrawler.boardlock import BoardLock, client, resolve_lock_url
from noticecrawler.db.settings import redact
from noticecrawler.errors import EXIT_FAILURE, MIGRATE_HINT, ProjectError, UnknownBoard, one_line
from noticecrawler.redaction import install_log_redaction

logger = logging.getLogger("noticecrawler.crawl")


class NotMigrated(ProjectError):
    """The database lacks a migration: ``noticecrawler db upgrade`` applies it."""


def check_database(settings: Any) -> None:
    """Refuse to crawl into a database that is unreachable or lacks a migration."""
    from noticecrawler.db import connect, migrate
    from noticecrawler.db.settings import database_url

    with connect(database_url(settings)) as conn:
        try:
            done = set(migrate.applied(conn))
        except Exception as exc:
            if one_line(exc) == MIGRATE_HINT:
                raise NotMigrated(MIGRATE_HINT) from None
            raise
    missing = [v for v, _ in migrate.available() if v not in done]
    if missing:
        raise NotMigrated(f"{MIGRATE_HINT} (missing {', '.join(missing)})")


class Command(ScrapyCrawl):
    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        install_log_redaction()
        if len(args) != 1:
            super().run(args, opts)
            return
        try:
            self.exitcode = self._crawl(args[0], opts)
        except Exception as exc:
            line = one_line(exc)
            if line is None:
                raise
            logger.error("%s", line)
            print(f"scrapy crawl: {line}", file=sys.stderr)
            self.exitcode = EXIT_FAILURE

    def _crawl(self, name: str, opts: argparse.Namespace) -> int:
        assert self.crawler_process is not None and self.settings is not None
        known = self.crawler_process.spider_loader.list()
        if name not in known:
            raise UnknownBoard(name, known)
        if self.settings.getbool("NOTICECRAWLER_RECORD_RUNS", True):
            check_database(self.settings)
        lock = self._lock(name)
        if lock is None:
            return self._run_crawler(name, opts)
        try:
            holder = lock.acquire()
        except redis.RedisError as exc:
            # a worker cannot take the lock from a store it cannot reach either (its crawl ends
            # `lock_unavailable`), so no worker crawls the board meanwhile: crawl without it
            print(
                f"board `{name}`: cannot reach the lock store at "
                f"{redact(lock_url(self.settings))} (CRAWL_LOCK_URL): {exc}; crawling without "
                "the lock",
                file=sys.stderr,
            )
            return self._run_crawler(name, opts)
        if holder is not None:
            print(
                f"board `{name}`: already being crawled (lock held by {holder}); not crawled",
                file=sys.stderr,
            )
            return 1
        self.settings.set("NOTICECRAWLER_BOARD_LOCK_HELD", True, priority="cmdline")
        done = threading.Event()
        keeper = threading.Thread(target=_keep, args=(lock, done), daemon=True)
        keeper.start()
        try:
            return self._run_crawler(name, opts)
        finally:
            done.set()
            keeper.join()
            with contextlib.suppress(redis.RedisError):  # else it expires
                lock.release()

    def _run_crawler(self, name: str, opts: argparse.Namespace) -> int:
        assert self.crawler_process is not None
        crawler = self._create_crawler(name)
        self.crawler_process.crawl(crawler, **opts.spargs)
        self.crawler_process.start()
        if self.crawler_process.bootstrap_failed:
            return 1
        stats = crawler.stats.get_stats() if crawler.stats else {}
        from noticecrawler.extensions import run_summary

        summary = run_summary(stats, str(stats.get("finish_reason", "")))
        # the spider and the run recorder have logged the cause already
        return 0 if summary["finish_reason"] == "finished" and not summary["errors"] else 1

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
