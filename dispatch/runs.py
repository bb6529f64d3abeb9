"""What a crawl task does, without Celery: check that the crawl can start, take the board's
lock, crawl it in a fresh process, release the lock, return the summary."""

from __future__ import annotations

import logging
from contextlib import suppress
from typing import Any

import redis

from dispatch.config import DispatchConfig
from dispatch.crawl import crawl_settings, run_crawl
from dispatch.interrupts import held_back
from dispatch.lock import BoardLock, client
from dispatch.schedule import catalog_boards
from noticecrawler import preflight
from noticecrawler.db.settings import redact
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
    with held_back(interrupt_signals):
        url = None
        try:
            url = preflight.check_database(board, settings)
            preflight.check_board(board, settings)
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
            summary = run_crawl(
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
