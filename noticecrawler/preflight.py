"""Can a board's crawl start? Checked before anything is fetched, by every way a crawl starts
(the worker's ``crawl_site``, ``scrapy crawl``).

Each way a crawl cannot start has its own finish reason, one error line naming the board, and
(where the database can take it) a ``crawl_runs`` row, so ``health`` shows it:

    catalog_error           the catalog does not load, or has no such board
    database_unreachable    PostgreSQL does not answer
    database_not_migrated   the schema lacks migrations this code needs
    lock_unavailable        the store of the per-board locks (Redis) does not answer
"""

from __future__ import annotations

import importlib
import logging
from datetime import UTC, datetime
from typing import Any

import psycopg

from noticecrawler.db import connect, kept_connection, migrate, queries, resolve_url
from noticecrawler.db.settings import redact

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT = 5


class CrawlNotStarted(RuntimeError):
    """A crawl that could not start. ``reason`` is its finish reason, ``detail`` the one line
    that says what and where. (Built from its three arguments, so Celery can rebuild it from a
    task result.)"""

    def __init__(self, board: str, reason: str, detail: str):
        super().__init__(board, reason, detail)
        self.board, self.reason, self.detail = board, reason, detail

    def __str__(self) -> str:
        return self.detail


def not_started(board: str, reason: str, problem: str) -> CrawlNotStarted:
    return CrawlNotStarted(board, reason, f"board `{board}`: crawl not started: {problem}")


def check_board(board: str, settings: Any) -> Any:
    """The board's catalog entry; ``catalog_error`` when the catalog fails or lacks it."""
    # imported by name, so type-checking this module does not walk into the spider engines
    catalog = importlib.import_module("noticecrawler.catalog")
    try:
        boards = catalog.catalog_from_settings(settings)
    except (OSError, ValueError) as exc:  # CatalogError is a ValueError; TOML errors too
        raise not_started(board, "catalog_error", f"{type(exc).__name__}: {exc}") from None
    for entry in boards:
        if entry.name == board:
            return entry
    known = ", ".join(sorted(b.name for b in boards))
    raise not_started(board, "catalog_error", f"not in the catalog (known: {known})")


def check_database(board: str, settings: Any) -> str:
    """The database URL, checked now (not a cached verdict): it answers and has every
    migration of this code applied."""
    url = resolve_url(settings.get("DATABASE_URL") or "", settings.get("NOTICECRAWLER_HOME") or "")
    try:
        try:
            done = _applied(kept_connection(url, timeout=CONNECT_TIMEOUT))
        except psycopg.OperationalError:  # the kept connection died (a restart): a new one
            done = _applied(kept_connection(url, fresh=True, timeout=CONNECT_TIMEOUT))
    except psycopg.OperationalError as exc:
        reason = str(exc).strip().splitlines()[0].removeprefix("connection failed: ")
        raise not_started(
            board,
            "database_unreachable",
            f"cannot reach PostgreSQL at {redact(url)} (DATABASE_URL): {reason}",
        ) from None
    missing = [version for version, _ in migrate.available() if version not in done]
    if missing:
        raise not_started(
            board,
            "database_not_migrated",
            f"the database at {redact(url)} lacks migrations {', '.join(missing)}; "
            "run `noticecrawler db upgrade`",
        )
    return url


def _applied(conn: psycopg.Connection[Any]) -> set[str]:
    try:
        return set(migrate.applied(conn))
    except psycopg.errors.UndefinedTable:
        return set()


def record(url: str | None, failure: CrawlNotStarted) -> None:
    """Log the failure once and keep it as the board's last run when the database can take it."""
    logger.error("%s", failure.detail)
    if not url or failure.reason in ("database_unreachable", "database_not_migrated"):
        return
    summary = {
        "pages": 0,
        "requests": 0,
        "not_modified": 0,
        "items": 0,
        "new": 0,
        "errors": 1,
        "error_detail": failure.detail,
        "finish_reason": failure.reason,
    }
    try:
        with connect(url, autocommit=True) as conn:
            run_id = queries.start_run(conn, failure.board, datetime.now(UTC))
            queries.finish_run(conn, run_id, summary)
    except psycopg.Error as exc:
        logger.warning("board `%s`: could not record the failed start: %s", failure.board, exc)
