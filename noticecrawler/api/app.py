"""The app factory: ``create_app(config)`` → the FastAPI application (OpenAPI docs at /docs)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from psycopg_pool import AsyncConnectionPool

from noticecrawler.api import problems, queries
from noticecrawler.api.config import ApiConfig
from noticecrawler.api.crawl import CrawlTrigger
from noticecrawler.api.pagecache import PageCache
from noticecrawler.api.ratelimit import RateLimiter
from noticecrawler.api.routes import admin, boards, devices, notifications, page, subscriptions
from noticecrawler.api.state import AppState, app_state

logger = logging.getLogger(__name__)

DESCRIPTION = """
The backend of the notice apps: register a phone's FCM token, edit keyword subscriptions, read a
board's posts, see the pushes sent; operators trigger crawls and read the boards' health.

Every endpoint but `/healthz` needs `Authorization: Bearer <token>` (tokens come from
`noticecrawler users token USER`; admin tokens from `noticecrawler users token --admin`).
Errors are `application/problem+json` with `status`, `title` and `detail`.
"""


async def configure_connection(conn: psycopg.AsyncConnection[Any]) -> None:
    """Each pooled connection plans a prepared statement once, with its parameters unknown
    (a generic plan), instead of PostgreSQL's default of planning it anew for each run's values
    while that plan looks cheaper: every API statement is a seek on a key's index (a board's
    page, a token, a user's rows) or a small aggregate, whose plan does not depend on the
    values; the page query then costs half the database CPU (docs/api.md)."""
    await conn.execute("SET plan_cache_mode = force_generic_plan")


def create_app(config: ApiConfig) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = AsyncConnectionPool(
            config.database_url,
            min_size=min(2, config.pool_size),
            max_size=config.pool_size,
            kwargs={"autocommit": True, "application_name": "noticecrawler-api"},
            configure=configure_connection,
            open=False,
        )
        await pool.open(wait=True, timeout=30)
        trigger = CrawlTrigger(config.broker_url, config.lock_url)
        app.state.nc = AppState(
            config=config,
            pool=pool,
            limiter=RateLimiter(config.rate_limit, config.rate_burst),
            trigger=trigger,
            first_pages=PageCache(config.page_cache_seconds),
        )
        try:
            yield
        finally:
            trigger.close()
            await pool.close()

    app = FastAPI(
        title="noticecrawler",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        telemetry=None if config.telemetry else {"tracing": False, "metrics": False, "logs": False},
    )
    problems.install(app)
    if config.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(config.cors_origins),
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )
    # boards first: its posts endpoint is the hot one, and routes are matched in order
    for module in (boards, devices, subscriptions, notifications, admin, page):
        app.include_router(module.router)
    app.router.routes[:0] = boards.plain_routes()

    @app.get("/healthz", tags=["health"])
    async def healthz(request: Request) -> Any:
        """Liveness, without a token: the API answers and reaches its database."""
        try:
            async with app_state(request).pool.connection(timeout=5) as conn:
                await queries.ping(conn)
        except Exception as e:
            return problems.problem_response(503, f"database unreachable: {type(e).__name__}")
        return {"status": "ok"}

    return app
