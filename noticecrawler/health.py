"""Is every enabled board being crawled cleanly? (printed by ``noticecrawler health``)

Reads the crawl-runs record. A board is
    ok        its last run finished without error, and a clean run is recent
    failing   its last run ended with an error (layout changed, HTTP errors, time limit …)
    stale     no clean run within STALE_INTERVALS × its crawl interval (workers or beat down)
    never     no run recorded yet
Exit status 1 when any board is failing or stale, so cron or a monitor can alert on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from noticecrawler.catalog import BoardDef, catalog_from_settings
from noticecrawler.clock import when
from noticecrawler.db import connect, queries
from noticecrawler.db.settings import database_url

STALE_INTERVALS = 3


@dataclass(frozen=True)
class Health:
    board: str
    status: str
    detail: str


def assess(board: BoardDef, row: dict[str, Any] | None, now: datetime) -> Health:
    if row is None:
        return Health(board.name, "never", "no crawl recorded yet")
    if row["finish_reason"] is None and row["finished_at"] is None:
        running = f"running since {when(row['started_at'], board.zone, seconds=True)}"
        if now - row["started_at"] < timedelta(seconds=STALE_INTERVALS * board.interval):
            return Health(board.name, "ok", running)
    elif row["finish_reason"] != "finished" or row["errors"]:
        reason = row["error_detail"] or f"finish reason {row['finish_reason']}"
        return Health(board.name, "failing", f"{reason} ({row['errors']} errors)")
    last_ok = row["last_ok_at"]
    limit = timedelta(seconds=STALE_INTERVALS * board.interval)
    if last_ok is None or now - last_ok > limit:
        last = when(last_ok, board.zone, seconds=True) if last_ok else "never"
        return Health(board.name, "stale", f"last clean run: {last} (interval {board.interval}s)")
    throttled = row.get("throttled") or 0
    note = f"; throttled {throttled}x by the host (429/503 Retry-After)" if throttled else ""
    return Health(
        board.name, "ok", f"last clean run {when(last_ok, board.zone, seconds=True)}{note}"
    )


def board_health(settings: Any, now: datetime | None = None) -> list[Health]:
    boards = [b for b in catalog_from_settings(settings) if b.enabled]
    with connect(database_url(settings)) as conn:
        rows = queries.board_health_rows(conn)
    moment = now or datetime.now(UTC)
    return [assess(b, rows.get(b.name), moment) for b in boards]
