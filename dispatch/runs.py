"""What a crawl task does, without Celery: take the board's lock, crawl it in a fresh process,
release the lock, return the summary."""

from __future__ import annotations

import logging
from typing import Any

from dispatch.config import DispatchConfig
from dispatch.crawl import crawl_settings, run_crawl
from dispatch.lock import BoardLock, client
from dispatch.schedule import catalog_boards

logger = logging.getLogger(__name__)


class UnknownBoard(LookupError):
    """A board name the catalog does not have."""


def crawl_board(
    board: str,
    token: str,
    cfg: DispatchConfig,
    *,
    timeout: float | None = None,
    interrupts: tuple[type[BaseException], ...] = (),
) -> dict[str, Any]:
    """Crawl ``board`` unless another task (another ``token``) is crawling it right now.

    Returns the crawl summary with ``board`` and ``skipped`` added; a skipped crawl returns
    ``{"board", "skipped": True, "reason": "locked", "holder"}``.
    """
    known = {b.name for b in catalog_boards()}
    if board not in known:
        raise UnknownBoard(f"board `{board}` is not in the catalog (known: {sorted(known)})")
    lock = BoardLock(client(cfg.lock_url), board, token, cfg.lock_expire)
    holder = lock.acquire()
    if holder is not None:
        logger.info("board `%s`: already being crawled by task %s; skipped", board, holder)
        return {"board": board, "skipped": True, "reason": "locked", "holder": holder}
    try:
        limit = timeout or cfg.soft_time_limit
        summary = run_crawl(
            board,
            timeout=limit,
            # per-host politeness in the lock Redis; a crawl waiting for its host past 80 % of
            # its time limit ends as host_busy instead of being killed
            settings=crawl_settings(
                {"HOST_LIMITS_REDIS_URL": cfg.lock_url, "HOST_WAIT_MAX": 0.8 * limit}
            ),
            interrupts=interrupts,
        )
    finally:
        lock.release()
    return {"board": board, "skipped": False, **summary}


def enabled_boards() -> list[Any]:
    return [b for b in catalog_boards() if b.enabled]
