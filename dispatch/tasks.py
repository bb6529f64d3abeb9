"""The crawl tasks. Thin: a board name in, a small JSON summary out; the work is in
:mod:`dispatch.runs` and :mod:`dispatch.crawl`.

Importing this module (the worker does, before it forks its pool) pre-imports Scrapy and the
project, so each crawl's fresh process starts warm.
"""

from __future__ import annotations

import logging
from typing import Any

from billiard.pool import SIG_SOFT_TIMEOUT
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import worker_ready

from dispatch import config, runs
from dispatch.celery_app import app
from dispatch.schedule import CRAWL_QUEUE
from noticecrawler.preflight import CrawlNotStarted

SOFT_TIME_LIMIT, TIME_LIMIT = config.time_limits()

logger = logging.getLogger(__name__)


@worker_ready.connect
def warn_without_contact(**_: Any) -> None:
    """Once per worker start: hosts should be able to tell who crawls them."""
    import noticecrawler.settings

    if not getattr(noticecrawler.settings, "NOTICECRAWLER_CONTACT", ""):
        logger.warning(
            "NOTICECRAWLER_CONTACT is not set: the User-Agent sent to every board names no "
            "contact (set a URL or e-mail address the hosts can reach you at)"
        )


@app.task(
    name="dispatch.crawl_site",
    bind=True,
    acks_late=True,
    ignore_result=False,
    soft_time_limit=SOFT_TIME_LIMIT,
    time_limit=TIME_LIMIT,
    # a crawl that cannot start ends FAILURE with the one line that says why (logged once by
    # the task, by Celery without a traceback)
    throws=(CrawlNotStarted,),
)
def crawl_site(self: Any, board: str, check: bool = True) -> dict[str, Any]:
    """Crawl one board in a fresh process; skipped when the board is being crawled already.
    Raises :class:`~noticecrawler.preflight.CrawlNotStarted` (state FAILURE) when the crawl
    cannot start. The limits are this worker's (the message carries none: dispatch/limits.py).
    ``check``: check the board cheaply first (``check_due`` sends False after its own check)."""
    return runs.crawl_board(
        board,
        self.request.id,
        config.current(),
        timeout=self.soft_time_limit,
        interrupts=(SoftTimeLimitExceeded,),
        interrupt_signals=(SIG_SOFT_TIMEOUT,) if SIG_SOFT_TIMEOUT else (),
        check=check,
    )


def _send_crawl(board: Any, check: bool) -> None:
    args = (board.name,) if check else (board.name, False)
    crawl_site.apply_async(args, queue=CRAWL_QUEUE, expires=float(board.interval))


@app.task(
    name="dispatch.check_due",
    bind=True,
    ignore_result=True,
    soft_time_limit=SOFT_TIME_LIMIT,
    time_limit=TIME_LIMIT,
)
def check_due(self: Any) -> dict[str, Any]:
    """Check every board whose slot has passed in this process (beat sends it at most every
    ``CRAWL_CHECK_TICK`` seconds); ``crawl_site`` only for the boards that changed. No result
    is stored; one summary line per batch in the log."""
    import noticecrawler.settings

    tick = float(config.setting(noticecrawler.settings, "CRAWL_CHECK_TICK") or 5.0)
    return runs.check_due(self.request.id, config.current(), _send_crawl, tick=tick)


@app.task(name="dispatch.crawl_sites")
def crawl_sites() -> list[str]:
    """Send one ``crawl_site`` per enabled board to the crawl queue; returns the board names."""
    boards = runs.enabled_boards()
    for board in boards:
        _send_crawl(board, check=True)
    return [b.name for b in boards]
