"""The beat schedule, built from the catalog: one entry per enabled board, named after it."""

from __future__ import annotations

import importlib
import math
import zlib
from collections.abc import Iterable
from datetime import datetime
from types import ModuleType
from typing import Any

from celery.schedules import schedstate, schedule

CRAWL_SITE = "dispatch.crawl_site"
CRAWL_QUEUE = "crawl_tasks"


def board_offset(name: str, interval: float) -> float:
    """A stable offset in [0, interval) from the board's name: the boards of one host (and all
    others) fire spread over their interval instead of together at each tick."""
    return interval * (zlib.crc32(name.encode()) / 2**32)


class spread(schedule):  # lower case like celery's own schedule classes
    """Every ``run_every`` seconds, at ``offset`` past each multiple of it (since the epoch):
    the same moments on every beat restart, so a board keeps its place in the interval."""

    def __init__(self, run_every: float, offset: float, app: Any = None):
        super().__init__(run_every=run_every, app=app)
        self.offset = offset

    def is_due(self, last_run_at: datetime) -> schedstate:
        every = self.run_every.total_seconds()
        now = self.now().timestamp()
        slot = math.floor((now - self.offset) / every) * every + self.offset  # the last one
        wait = slot + every - now
        if self.maybe_make_aware(last_run_at).timestamp() < slot - 1e-3:
            return schedstate(True, wait)
        return schedstate(False, wait)

    def __reduce__(self) -> tuple[Any, ...]:
        return self.__class__, (self.run_every.total_seconds(), self.offset)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, spread) and (other.run_every, other.offset) == (
            self.run_every,
            self.offset,
        )

    def __hash__(self) -> int:
        return hash((self.run_every, self.offset))

    def __repr__(self) -> str:
        return f"<spread: every {self.run_every.total_seconds():g}s at +{self.offset:.1f}s>"


def beat_schedule(boards: Iterable[Any]) -> dict[str, dict[str, Any]]:
    """Each board is crawled every ``interval`` seconds, at its own offset in the interval. A
    crawl task still waiting when the next one is due has expired and is dropped by the worker,
    so after downtime a board is crawled once, not once per missed interval."""
    return {
        board.name: {
            "task": CRAWL_SITE,
            "schedule": spread(float(board.interval), board_offset(board.name, board.interval)),
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
