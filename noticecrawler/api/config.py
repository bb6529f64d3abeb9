"""The values the API runs with, resolved once from the project's settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from noticecrawler.catalog import BoardDef


@dataclass(frozen=True)
class ApiConfig:
    database_url: str
    broker_url: str
    #: Redis of the per-board crawl locks (the one the crawl workers use)
    lock_url: str
    boards: tuple[BoardDef, ...] = ()
    cors_origins: tuple[str, ...] = ()
    #: requests per second and burst per token; 0: no limit
    rate_limit: float = 10.0
    rate_burst: int = 50
    pool_size: int = 10
    max_subscriptions: int = 20
    max_keywords: int = 100
    max_keyword_length: int = 50
    page_size: int = 20
    max_page_size: int = 100
    #: a board's first page (no cursor, since or q) is served from memory this long; 0: never
    page_cache_seconds: float = 1.0
    #: a verified token is trusted this long before the database is asked again: a revoked
    #: token stops working within this bound (0: every request asks the database)
    token_cache_seconds: float = 10.0
    #: FastAPI's own OpenTelemetry spans and metrics (when a provider is configured); off, a
    #: request skips the per-request check for one (docs/api.md)
    telemetry: bool = False

    def board(self, name: str) -> BoardDef | None:
        return next((b for b in self.boards if b.name == name), None)


def from_settings(settings: Any) -> ApiConfig:
    """The configuration from Scrapy settings; embedded servers are started when needed (as the
    crawl workers do: the same database, broker and lock store)."""
    from noticecrawler.boardlock import resolve_lock_url
    from noticecrawler.catalog import catalog_from_settings
    from noticecrawler.db.settings import database_url
    from noticecrawler.notify.port import broker_url

    broker = broker_url(settings)
    # the lock store the workers and `scrapy crawl` meet in (one rule: noticecrawler.boardlock)
    lock = resolve_lock_url(
        settings.get("CRAWL_LOCK_URL") or "",
        settings.get("CELERY_RESULT_BACKEND") or "",
        broker,
        settings.get("NOTICECRAWLER_HOME"),
    )
    origins = [o.strip() for o in (settings.get("API_CORS_ORIGINS") or "").split(",")]
    return ApiConfig(
        database_url=database_url(settings),
        broker_url=broker,
        lock_url=lock,
        boards=tuple(catalog_from_settings(settings)),
        cors_origins=tuple(o for o in origins if o),
        rate_limit=settings.getfloat("API_RATE_LIMIT", 10.0),
        rate_burst=settings.getint("API_RATE_BURST", 50),
        pool_size=settings.getint("API_POOL_SIZE", 10),
        max_subscriptions=settings.getint("API_MAX_SUBSCRIPTIONS", 20),
        max_keywords=settings.getint("API_MAX_KEYWORDS", 100),
        max_keyword_length=settings.getint("API_MAX_KEYWORD_LENGTH", 50),
        page_size=settings.getint("API_PAGE_SIZE", 20),
        max_page_size=settings.getint("API_MAX_PAGE_SIZE", 100),
        page_cache_seconds=settings.getfloat("API_PAGE_CACHE_SECONDS", 1.0),
        token_cache_seconds=settings.getfloat("API_TOKEN_CACHE_SECONDS", 10.0),
        telemetry=settings.getbool("API_TELEMETRY", False),
    )
