"""Board health as ``noticecrawler health`` reports it (the same rules: noticecrawler.health)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.concurrency import run_in_threadpool

from noticecrawler.api.config import ApiConfig
from noticecrawler.db import connect
from noticecrawler.db import queries as db_queries
from noticecrawler.health import Health, assess


def _rows(url: str) -> dict[str, dict[str, Any]]:
    with connect(url) as conn:
        return db_queries.board_health_rows(conn)


async def board_health(cfg: ApiConfig) -> tuple[list[Health], dict[str, dict[str, Any]]]:
    """Every enabled board's state, and the last-run rows it was judged from."""
    rows = await run_in_threadpool(_rows, cfg.database_url)
    now = datetime.now(UTC)
    return [assess(b, rows.get(b.name), now) for b in cfg.boards if b.enabled], rows


def bad(report: list[Health]) -> bool:
    return any(h.status in ("failing", "stale") for h in report)
