"""The database URL a process uses, from the Scrapy settings (resolved once per process)."""

from __future__ import annotations

from typing import Any

import psycopg

from noticecrawler.db import resolve_url
from noticecrawler.errors import ProjectError
from noticecrawler.redaction import redact

_resolved: dict[tuple[str, str], str] = {}


__all__ = ["DatabaseUnavailable", "database_url", "redact"]


class DatabaseUnavailable(ProjectError, RuntimeError):
    """The database cannot be reached; the message says which one and why."""


def database_url(settings: Any) -> str:
    """``DATABASE_URL``, or the embedded PostgreSQL under ``NOTICECRAWLER_HOME`` (started if
    needed) when it is empty. Checked once per process, so a crawl with no database fails at
    start with one clear message instead of after fetching pages it cannot store."""
    key = (settings.get("DATABASE_URL") or "", settings.get("NOTICECRAWLER_HOME") or "")
    if key not in _resolved:
        url = resolve_url(*key)
        try:
            psycopg.connect(url, connect_timeout=5).close()
        except psycopg.OperationalError as e:
            reason = redact(str(e).strip().splitlines()[0].removeprefix("connection failed: "))
            raise DatabaseUnavailable(
                f"cannot reach PostgreSQL at {redact(url)} (DATABASE_URL): {reason}"
            ) from None
        _resolved[key] = url
    return _resolved[key]
