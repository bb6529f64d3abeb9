"""The ``crawl_runs`` row of a forked crawl, opened and finished by the process that forks it.

The pool process holds a kept connection (a warm PostgreSQL backend, used by the start check
already); the crawl process would open fresh ones, a backend process each. So the row is opened
here before the fork (the catch-up after an unfinished run travels to the crawl process with
it) and finished here from the crawl's summary, whatever its end: finished, killed at the time
limit, crashed. When the row cannot be opened here, the crawl process's recorder opens it
itself, as a ``scrapy crawl`` by hand does.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import Any

import psycopg
from scrapy.settings import BaseSettings

from noticecrawler.db import connect, kept_connection, queries
from noticecrawler.db.settings import database_url
from noticecrawler.extensions import OpenedRun, open_run

logger = logging.getLogger(__name__)


def _on_kept_connection(settings: BaseSettings, work: Any, seconds: float) -> Any:
    """``work(conn)`` on this process's kept connection (a warm PostgreSQL backend, where a
    crawl process would open a fresh one); a lost connection is opened again and the work tried
    again for up to ``seconds``."""
    url = database_url(settings)
    deadline = time.monotonic() + seconds
    delay, tries = 0.25, 0
    while True:
        try:
            return work(kept_connection(url, fresh=tries > 0))
        except psycopg.OperationalError:
            tries += 1
            if tries == 1:
                continue  # the kept connection died (PostgreSQL restarted): a new one at once
            if time.monotonic() + delay > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 4.0)


def open_before_fork(board: str, settings: BaseSettings) -> OpenedRun | None:
    """The board's run row, opened here before the fork; None when the database does not take
    it now (the crawl process's recorder then opens it, with its retries, as ``scrapy crawl``
    does)."""
    if not settings.getbool("NOTICECRAWLER_RECORD_RUNS", True):
        return None
    lock_held = settings.getbool("NOTICECRAWLER_BOARD_LOCK_HELD")
    try:
        opened: OpenedRun = _on_kept_connection(
            settings, lambda conn: open_run(conn, board, lock_held), 0.0
        )
    except psycopg.Error as exc:
        logger.info("board `%s`: run not opened before the crawl (%s)", board, exc)
        return None
    opened.opened_by_parent = True
    return opened


def finish(board: str, settings: BaseSettings, opened: OpenedRun, summary: dict[str, Any]) -> None:
    """Complete the run opened before the fork with the crawl's summary (whatever its end)."""
    seconds = settings.getfloat("NOTICECRAWLER_DB_RETRY_SECONDS", 30)
    if summary["finish_reason"] in ("time_limit", "crashed", "database_unreachable"):
        seconds = 0.0  # as before: one try; the board's next crawl closes the row as killed
    try:
        _on_kept_connection(
            settings, lambda conn: queries.finish_run(conn, opened.run_id, summary), seconds
        )
    except psycopg.Error as exc:  # the summary still says what happened
        logger.warning("board `%s`: could not record the run: %s", board, exc)


def record_killed(
    board: str, settings: BaseSettings, started_at: datetime, summary: dict[str, Any]
) -> None:
    """Finish the crawl_runs row the killed process had started (if it got that far)."""
    try:
        with connect(database_url(settings), autocommit=True) as conn:
            runs = queries.last_runs(conn, board, 1)
            if runs and runs[0]["finished_at"] is None and runs[0]["started_at"] >= started_at:
                queries.finish_run(conn, runs[0]["id"], summary)
    except Exception as exc:  # the summary still says what happened
        logger.warning("board `%s`: could not record the stopped crawl: %s", board, exc)
