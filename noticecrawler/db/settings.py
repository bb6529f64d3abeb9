"""The database URL a process uses, from the Scrapy settings (resolved once per process)."""

from __future__ import annotations

from typing import Any

from noticecrawler.db import resolve_url

_resolved: dict[tuple[str, str], str] = {}


def database_url(settings: Any) -> str:
    """``DATABASE_URL``, or the embedded PostgreSQL under ``NOTICECRAWLER_HOME`` (started if
    needed) when it is empty."""
    key = (settings.get("DATABASE_URL") or "", settings.get("NOTICECRAWLER_HOME") or "")
    if key not in _resolved:
        _resolved[key] = resolve_url(*key)
    return _resolved[key]
