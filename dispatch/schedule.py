"""The beat schedule, built from the catalog: one entry per enabled board, named after it."""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from types import ModuleType
from typing import Any

CRAWL_SITE = "dispatch.crawl_site"
CRAWL_QUEUE = "crawl_tasks"


def beat_schedule(boards: Iterable[Any]) -> dict[str, dict[str, Any]]:
    """Each board is crawled every ``interval`` seconds. A crawl task still waiting when the
    next one is due has expired and is dropped by the worker, so after downtime a board is
    crawled once, not once per missed interval."""
    return {
        board.name: {
            "task": CRAWL_SITE,
            "schedule": float(board.interval),
            "args": (board.name,),
            "options": {"queue": CRAWL_QUEUE, "expires": float(board.interval)},
        }
        for board in boards
        if board.enabled
    }


def catalog_boards(settings: ModuleType | None = None) -> list[Any]:
    """The catalog's boards (:class:`noticecrawler.catalog.BoardDef`)."""
    settings = settings or importlib.import_module("noticecrawler.settings")
    # imported by name, so type-checking dispatch does not walk into the spider engines
    catalog = importlib.import_module("noticecrawler.catalog")
    boards: list[Any] = catalog.load_catalog(
        settings.NOTICECRAWLER_CATALOG, {"demo": settings.DEMO_BOARD_URL}
    )
    return boards
