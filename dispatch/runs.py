"""What the crawl tasks do, without Celery: ``crawl_site`` checks that the crawl can start,
takes the board's lock, crawls it in a fresh process (or checks it cheaply first), releases the
lock and returns the summary; ``check_due`` checks every board whose slot has passed in this
process and hands the ones that changed to ``crawl_site``."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import suppress
from functools import cache
from typing import Any

import redis

from dispatch.config import DispatchConfig
from dispatch.crawl import crawl_settings, run_crawl
from dispatch.due import claim_due, lock_boards, unlock_boards
from dispatch.interrupts import held_back
from dispatch.lock import BoardLock, client
from dispatch.schedule import board_slots, catalog_boards
from noticecrawler import preflight, revalidate
from noticecrawler.db import kept_connection
from noticecrawler.db.settings import database_url, redact
from noticecrawler.preflight import CrawlNotStarted

logger = logging.getLogger(__name__)


def crawl_board(
    board: str,
    token: str,
    cfg: DispatchConfig,
    *,
    timeout: float | None = None,
    interrupts: tuple[type[BaseException], ...] = (),
    interrupt_signals: tuple[int, ...] = (),
    overrides: dict[str, Any] | None = None,
    check: bool = True,
) -> dict[str, Any]:
    """Crawl ``board`` unless another task (another ``token``) is crawling it right now.

    Returns the crawl summary with ``board`` and ``skipped`` added; a skipped crawl returns
    ``{"board", "skipped": True, "reason": "locked", "holder"}``. Raises
    :class:`~noticecrawler.preflight.CrawlNotStarted` (logged once, recorded as the board's run
    where the database can take it) when the catalog, the database or the lock store fail.

    ``interrupts`` (raised on ``interrupt_signals``, e.g. Celery's soft time limit) cut the wait
    for the crawl short; everywhere else the signal is held back, so stopping the crawl process,
    recording the run and releasing the lock always run to the end. ``overrides``: Scrapy
    settings of this crawl (tests, scripts).
    """
    limit = timeout or cfg.soft_time_limit
    settings = task_settings(cfg, limit, overrides)
    with held_back(interrupt_signals):
        url = None
        try:
            url = preflight.check_database(board, settings)
            entry = preflight.check_board(board, settings)
            lock = BoardLock(client(cfg.lock_url), board, token, cfg.lock_expire)
            try:
                holder = lock.acquire()
            except redis.RedisError as exc:
                raise preflight.not_started(
                    board,
                    "lock_unavailable",
                    f"cannot reach the lock store at {redact(cfg.lock_url)} (CRAWL_LOCK_URL): "
                    f"{type(exc).__name__}: {exc}",
                ) from None
        except CrawlNotStarted as failure:
            preflight.record(url, failure)
            raise
        if holder is not None:
            logger.info("board `%s`: already being crawled by task %s; skipped", board, holder)
            return {"board": board, "skipped": True, "reason": "locked", "holder": holder}
        try:
            # an unchanged board is checked here, without forking a crawl (revalidate.py)
            cheap = revalidate.check_without_crawl(entry, settings, cfg.lock_url) if check else None
            summary = cheap or run_crawl(
                board,
                timeout=limit,
                settings=settings,
                interrupts=interrupts,
                interrupt_signals=interrupt_signals,
            )
        finally:
            with suppress(redis.RedisError):  # the lock store went away: the lock expires
                lock.release()
    return {"board": board, "skipped": False, **summary}


def enabled_boards() -> list[Any]:
    return [b for b in catalog_boards() if b.enabled]


def task_settings(
    cfg: DispatchConfig, limit: float, overrides: dict[str, Any] | None = None
) -> Any:
    """The Scrapy settings a task crawls (or checks) with."""
    # per-host politeness in the lock Redis; a crawl waiting for its host past 80 % of its time
    # limit ends as host_busy instead of being killed
    settings = crawl_settings(
        {
            "HOST_LIMITS_REDIS_URL": cfg.lock_url,
            "HOST_WAIT_MAX": 0.8 * limit,
            **(overrides or {}),
            "NOTICECRAWLER_BOARD_LOCK_HELD": True,
        }
    )
    if "LOG_LEVEL" not in (overrides or {}) and settings.get("CRAWL_SCRAPY_LOG_LEVEL"):
        # quiet by default: one summary line per run, Scrapy's own lines at DEBUG only
        settings.set("LOG_LEVEL", settings.get("CRAWL_SCRAPY_LOG_LEVEL"), priority="cmdline")
        settings.set("STATS_DUMP", False, priority="cmdline")
    return settings


@cache
def _batch_settings(cfg: DispatchConfig, limit: float) -> Any:
    """One settings object per process for the batched check (it only reads them)."""
    return task_settings(cfg, limit)


#: sends ``crawl_site(board, check)`` for a board the batch could not settle
SendCrawl = Callable[[Any, bool], None]


def check_due(
    token: str, cfg: DispatchConfig, send_crawl: SendCrawl, *, tick: float, now: float | None = None
) -> dict[str, Any]:
    """Check every enabled board whose slot has passed (and was not claimed yet) in this process.

    Each due board is claimed for its slot (dispatch/due.py) and locked (``token``) like a crawl;
    a board being crawled right now is skipped (that crawl is its check). The boards checked
    cheaply get their runs recorded in one statement; every other board is handed to
    ``crawl_site`` through ``send_crawl``: without a second check when this one found it changed
    or could not check it, with its own check (and the crawl's full wait for its host) when its
    host stayed busy past ``2 * tick`` seconds here. Returns counts for the task's result."""
    started = time.monotonic()
    boards = {b.name: b for b in enabled_boards()}
    redis_client = client(cfg.lock_url)
    due = claim_due(redis_client, board_slots(boards.values(), time.time() if now is None else now))
    if not due:
        return {"due": 0}
    mine = lock_boards(redis_client, due, token, cfg.lock_expire)
    batch = revalidate.Batch(crawl=list(mine))
    try:
        settings = _batch_settings(cfg, cfg.soft_time_limit)
        if settings.getbool("NOTICECRAWLER_CHEAP_CHECK", True):
            conn = kept_connection(database_url(settings))
            batch = revalidate.check_boards(
                [boards[name] for name in batch.crawl], settings, redis_client, conn,
                wait=max(2 * tick, 1.0),
            )  # fmt: skip
    except Exception as exc:  # the crawls meet the same problem and record it
        logger.warning("check_due: cheap checks not possible (%s); crawling %d boards", exc,
                       len(batch.crawl))  # fmt: skip
    finally:
        with suppress(redis.RedisError):  # the lock store went away: the locks expire
            unlock_boards(redis_client, mine, token)
    for name in batch.crawl:
        send_crawl(boards[name], False)
    for name in batch.busy:
        send_crawl(boards[name], True)
    not_modified = sum(r["not_modified"] for r in batch.runs.values())
    logger.info(
        "check_due: %d boards due, %d checked without a crawl (%d not modified, %d rows "
        "unchanged), %d sent to crawl, %d host busy, %d being crawled; %.2fs",
        len(due), len(batch.runs), not_modified, len(batch.runs) - not_modified,
        len(batch.crawl), len(batch.busy), len(due) - len(mine), time.monotonic() - started,
    )  # fmt: skip
    return {
        "due": len(due),
        "checked": len(batch.runs),
        "crawl": len(batch.crawl),
        "busy": len(batch.busy),
        "locked": len(due) - len(mine),
    }
