"""``/v1/admin``: trigger a board's crawl, and the boards' health (admin tokens only)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from noticecrawler.api import health
from noticecrawler.api.auth import Admin, State
from noticecrawler.api.models import CrawlQueued, Health
from noticecrawler.api.problems import Problem
from noticecrawler.db.settings import redact

router = APIRouter(prefix="/v1/admin", tags=["admin"])


async def queue_crawl(state: Any, board: str) -> str:
    """Send ``crawl_site(board)``; the task id. 404 unknown board, 409 crawl running, 503
    broker or lock store unreachable."""
    found = state.config.board(board)
    if found is None:
        raise Problem(404, f"no board `{board}`", kind="unknown-board")
    try:
        holder = await run_in_threadpool(state.trigger.holder, board)
        if holder is not None:
            raise Problem(
                409,
                f"board `{board}` is being crawled now (task {holder})",
                kind="crawl-running",
                task_id=holder,
            )
        task_id: str = await run_in_threadpool(state.trigger.send, board, float(found.interval))
    except Problem:
        raise
    except Exception as e:
        reason = redact(f"{type(e).__name__}: {e}")
        raise Problem(503, f"cannot queue the crawl: {reason}", kind="broker-unavailable") from e
    return task_id


@router.post("/boards/{board}/crawl", status_code=202, response_model=CrawlQueued)
async def crawl(board: str, caller: Admin, state: State) -> Any:
    """Queue a crawl of the board now (crawl_site through the broker, to the crawl queue)."""
    task_id = await queue_crawl(state, board)
    return JSONResponse({"board": board, "task_id": task_id}, status_code=202)


@router.get("/health", response_model=Health)
async def board_health(caller: Admin, state: State) -> Any:
    """Every enabled board: ok / failing / stale / never, as `noticecrawler health`; `ok` is
    false when the command would exit 1."""
    report, _ = await health.board_health(state.config)
    return {
        "ok": not health.bad(report),
        "boards": [{"board": h.board, "status": h.status, "detail": h.detail} for h in report],
    }
