"""Extensions: the crawl-runs record."""

from __future__ import annotations

import logging
import pprint
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg
from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured

from noticecrawler.db import connect, queries
from noticecrawler.db.settings import database_url

logger = logging.getLogger(__name__)


def run_summary(stats: dict[str, Any], reason: str) -> dict[str, Any]:
    """The crawl-runs row (and the task summary) from a crawl's stats."""
    errors = sum(v for k, v in stats.items() if k.startswith("noticecrawler/errors/"))
    errors += int(stats.get("spider_exceptions/count", 0) or 0)
    errors += (
        sum(v for k, v in stats.items() if k.startswith("downloader/exception_type_count/"))
        if reason != "finished"
        else 0
    )
    return {
        "pages": int(stats.get("noticecrawler/pages", 0)),
        "requests": int(stats.get("downloader/request_count", 0)),
        "not_modified": int(stats.get("noticecrawler/http/304", 0)),
        "items": int(stats.get("item_scraped_count", 0)),
        "new": int(stats.get("noticecrawler/store/new", 0)),
        "edited": int(stats.get("noticecrawler/store/edited", 0)),
        "deleted": int(stats.get("noticecrawler/store/deleted", 0)),
        "throttled": int(stats.get("noticecrawler/hosts/throttled", 0)),
        "errors": int(errors),
        "error_detail": stats.get("noticecrawler/error_detail"),
        "finish_reason": reason,
    }


def with_retry(url: str, work: Any, seconds: float, what: str) -> None:
    """Run ``work(conn)`` on a fresh connection; a connection that cannot be opened or is lost
    (PostgreSQL restarting) is tried again for up to ``seconds``."""
    deadline = time.monotonic() + seconds
    delay = 0.25
    while True:
        try:
            with connect(url, autocommit=True) as conn:
                work(conn)
            return
        except psycopg.OperationalError as exc:
            if time.monotonic() + delay > deadline:
                raise
            logger.warning("%s: PostgreSQL not reachable (%s); retrying", what, exc)
            time.sleep(delay)
            delay = min(delay * 2, 4.0)


@dataclass
class OpenedRun:
    """A board's ``crawl_runs`` row, started, and what the crawl needs to know of the last run.

    ``catch_up``: the last run did not finish (it may have stored a page and died before the
    next: the rows it stored are no proof that the pages after them were read), so paging goes
    on past known rows until a page whose oldest row was in ``known_before`` (the posts seen
    before that run started). ``opened_by_parent``: the process that forked the crawl opened
    the row and finishes it from the crawl's summary."""

    run_id: int
    board: str
    catch_up: bool = False
    known_before: set[str] = field(default_factory=set)
    last_reason: str | None = None
    opened_by_parent: bool = False


def open_run(conn: psycopg.Connection[Any], board: str, lock_held: bool) -> OpenedRun:
    """Start the board's run: the last run read (catch-up after an unfinished one), runs left
    ``running`` by dead crawls closed as ``killed`` when the caller holds the board's lock (no
    other crawl of the board is alive then), the new row inserted."""
    last = queries.last_runs(conn, board, 1)
    catch_up = bool(last and last[0]["finish_reason"] != "finished")
    known = queries.posts_seen_before(conn, board, last[0]["started_at"]) if catch_up else set()
    if lock_held:
        for run_id in queries.close_dead_runs(conn, board):
            logger.warning(
                "board `%s`: run %d was left running by a killed crawl; closed as killed",
                board,
                run_id,
            )
    run_id = queries.start_run(conn, board, datetime.now(UTC))
    return OpenedRun(
        run_id,
        board,
        catch_up=catch_up,
        known_before=known,
        last_reason=(last[0]["finish_reason"] or "without finishing") if catch_up else None,
    )


class CrawlRunRecorder:
    """Writes one ``crawl_runs`` row per crawl of a board: started when the spider opens,
    completed with pages, requests, 304s, items, new, errors and the finish reason.

    A crawl forked by the worker gets its row already opened (``NOTICECRAWLER_OPENED_RUN``,
    by the pool process on its kept connection: two fresh PostgreSQL backends per crawl
    fewer); the pool process then finishes it from the crawl's summary, and this extension
    only applies the catch-up and logs the run's line."""

    def __init__(self, crawler: Crawler, url: str):
        self.crawler = crawler
        self.url = url
        self.run_id: int | None = None
        self.opened: OpenedRun | None = crawler.settings.get("NOTICECRAWLER_OPENED_RUN")
        self.parent_finishes = False

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> CrawlRunRecorder:
        if not crawler.settings.getbool("NOTICECRAWLER_RECORD_RUNS", True):
            raise NotConfigured
        ext = cls(crawler, database_url(crawler.settings))
        crawler.signals.connect(ext.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        return ext

    def spider_opened(self, spider: Any) -> None:
        board = getattr(spider, "board", None)
        if board is None:
            return
        if self.opened is not None and self.opened.board == board.name:
            self._apply(self.opened, spider)
            self.parent_finishes = self.opened.opened_by_parent
            return
        seconds = self.crawler.settings.getfloat("NOTICECRAWLER_DB_RETRY_SECONDS", 30)
        what = f"board `{board.name}`: starting the run"
        with_retry(self.url, lambda conn: self._open_run(conn, spider), seconds, what)

    def _open_run(self, conn: psycopg.Connection[Any], spider: Any) -> None:
        lock_held = self.crawler.settings.getbool("NOTICECRAWLER_BOARD_LOCK_HELD")
        self._apply(open_run(conn, spider.board.name, lock_held), spider)

    def _apply(self, run: OpenedRun, spider: Any) -> None:
        if run.catch_up:
            spider.catch_up = True
            spider.known_before = set(run.known_before)
            logger.info(
                "board `%s`: the last run ended %s; reading up to the page limit",
                run.board,
                run.last_reason,
            )
        self.run_id = run.run_id

    def spider_closed(self, spider: Any, reason: str) -> None:
        if self.run_id is None:
            return
        assert self.crawler.stats is not None
        stats = self.crawler.stats.get_stats()
        summary = run_summary(stats, reason)
        if logger.isEnabledFor(logging.DEBUG):
            # one entry a line, as Scrapy's own dump
            logger.debug("board `%s`: stats\n%s", spider.board.name, pprint.pformat(stats))
        run_id = self.run_id
        seconds = self.crawler.settings.getfloat("NOTICECRAWLER_DB_RETRY_SECONDS", 30)

        def finish(conn: psycopg.Connection[Any]) -> None:
            queries.finish_run(conn, run_id, summary)

        if not self.parent_finishes:
            with_retry(self.url, finish, seconds, f"board `{spider.board.name}`: recording the run")
        level = logging.INFO if not summary["errors"] else logging.WARNING
        logger.log(
            level,
            "board `%s`: %s — %d pages, %d requests (%d not modified), %d posts, %d new, %d errors",
            spider.board.name,
            reason,
            summary["pages"],
            summary["requests"],
            summary["not_modified"],
            summary["items"],
            summary["new"],
            summary["errors"],
        )
