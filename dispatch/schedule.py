"""The beat schedule, built from the catalog.

Each board has its slots: every ``interval`` seconds at its own offset (:func:`board_offset`),
so the boards of one host are spread over their interval. Beat either sends one ``crawl_site``
per board at each of its slots (:func:`beat_schedule`, ``CRAWL_CHECK_TICK = 0``), or one
``check_due`` at most every ``CRAWL_CHECK_TICK`` seconds when a slot has passed
(:func:`check_schedule`): that task checks every board whose slot passed in one process
(dispatch/due.py, dispatch/runs.py) and forks crawls only for the boards that changed.
"""

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
CHECK_DUE = "dispatch.check_due"
CRAWL_QUEUE = "crawl_tasks"
#: the name of the one beat entry of the batched check
CHECK_ENTRY = "check-due"


def board_offset(name: str, interval: float) -> float:
    """A stable offset in [0, interval) from the board's name: the boards of one host (and all
    others) fire spread over their interval instead of together at each tick."""
    return interval * (zlib.crc32(name.encode()) / 2**32)


def last_slot(every: float, offset: float, now: float) -> float:
    """The latest slot at or before ``now`` (seconds since the epoch) of a board checked every
    ``every`` seconds at ``offset`` past each multiple of it."""
    return math.floor((now - offset) / every) * every + offset


def board_slots(boards: Iterable[Any], now: float) -> dict[str, float]:
    """Each enabled board's latest slot at or before ``now``."""
    return {
        b.name: last_slot(float(b.interval), board_offset(b.name, b.interval), now)
        for b in boards
        if b.enabled
    }


class spread(schedule):  # lower case like celery's own schedule classes
    """Every ``run_every`` seconds, at ``offset`` past each multiple of it (since the epoch):
    the same moments on every beat restart, so a board keeps its place in the interval."""

    def __init__(self, run_every: float, offset: float, app: Any = None):
        super().__init__(run_every=run_every, app=app)
        self.offset = offset

    def is_due(self, last_run_at: datetime) -> schedstate:
        every = self.run_every.total_seconds()
        now = self.now().timestamp()
        slot = last_slot(every, self.offset, now)
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


class batched(schedule):  # lower case like celery's own schedule classes
    """Due when a slot of one of ``slots`` (``(interval, offset)`` pairs) has passed since the
    entry last ran, at most once every ``run_every`` seconds: beat sends one message for every
    board that fell due in between, and none while no board is due."""

    def __init__(self, run_every: float, slots: Iterable[tuple[float, float]], app: Any = None):
        super().__init__(run_every=run_every, app=app)
        self.slots = tuple(sorted(set(slots)))

    def is_due(self, last_run_at: datetime) -> schedstate:
        tick = self.run_every.total_seconds()
        now = self.now().timestamp()
        last = self.maybe_make_aware(last_run_at).timestamp()
        if not self.slots:
            return schedstate(False, tick)
        latest = max(last_slot(every, offset, now) for every, offset in self.slots)
        upcoming = min(last_slot(every, offset, now) + every for every, offset in self.slots)
        if latest > last + 1e-3:
            if now - last >= tick:
                return schedstate(True, max(tick, upcoming - now))
            return schedstate(False, tick - (now - last))
        return schedstate(False, max(upcoming - now, tick - (now - last), 0.05))

    def __reduce__(self) -> tuple[Any, ...]:
        return self.__class__, (self.run_every.total_seconds(), self.slots)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, batched) and (other.run_every, other.slots) == (
            self.run_every,
            self.slots,
        )

    def __hash__(self) -> int:
        return hash((self.run_every, self.slots))

    def __repr__(self) -> str:
        return (
            f"<batched: {len(self.slots)} slots, at most every {self.run_every.total_seconds():g}s>"
        )


def check_schedule(boards: Iterable[Any], tick: float) -> dict[str, dict[str, Any]]:
    """One entry: ``check_due`` when a board's slot has passed, at most every ``tick`` seconds.
    A message still queued at the next tick has expired and is dropped (the next one checks
    the same boards: their slots are claimed only when checked)."""
    enabled = [b for b in boards if b.enabled]
    return {
        CHECK_ENTRY: {
            "task": CHECK_DUE,
            "schedule": batched(
                tick, ((float(b.interval), board_offset(b.name, b.interval)) for b in enabled)
            ),
            "options": {"queue": CRAWL_QUEUE, "expires": float(tick)},
        }
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
