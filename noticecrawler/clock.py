"""One clock for every command: times in the board's timezone, with the offset
(`2026-11-19 00:00 +09:00`)."""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo


def zone_of(settings: Any, board: str | None = None) -> tzinfo:
    """The timezone of ``board`` in the catalog; else NOTICECRAWLER_DEFAULT_TIMEZONE."""
    if board is not None:
        from noticecrawler.catalog import catalog_from_settings

        for b in catalog_from_settings(settings):
            if b.name == board:
                return b.zone
    default = settings.get("NOTICECRAWLER_DEFAULT_TIMEZONE") if settings else None
    return ZoneInfo(default or "Asia/Seoul")


def when(moment: datetime | None, zone: tzinfo, seconds: bool = False) -> str:
    """``2026-11-19 00:00 +09:00`` (``?`` for no time)."""
    if moment is None:
        return "?"
    local = moment.astimezone(zone)
    offset = local.strftime("%z")
    offset = f"{offset[:3]}:{offset[3:]}" if offset else ""
    return local.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M") + f" {offset}"
