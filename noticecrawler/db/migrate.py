"""Versioned SQL migrations: ``noticecrawler/db/migrations/NNNN_name.sql`` applied in order.

Each file runs once, in its own transaction, and is recorded in ``schema_migrations``; an
advisory lock keeps two processes from migrating at the same time. Re-running is a no-op.
"""

from __future__ import annotations

import logging
from importlib import resources
from typing import Any

import psycopg
from psycopg.rows import tuple_row

logger = logging.getLogger(__name__)

_LOCK_KEY = 0x6E6F7469  # "noti"


def available() -> list[tuple[str, str]]:
    """(version, sql) for every migration file, in order."""
    folder = resources.files("noticecrawler.db") / "migrations"
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)
    return [(f.name.removesuffix(".sql"), f.read_text(encoding="utf-8")) for f in files]


def upgrade(conn: psycopg.Connection[Any]) -> list[str]:
    """Apply the migrations not applied yet; returns the versions applied now."""
    applied_now: list[str] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        cur = conn.cursor(row_factory=tuple_row)
        done = {r[0] for r in cur.execute("SELECT version FROM schema_migrations").fetchall()}
        for version, sql in available():
            if version in done:
                continue
            with conn.transaction():
                conn.execute(sql.encode())
                conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))
            logger.info("applied migration %s", version)
            applied_now.append(version)
    return applied_now


def applied(conn: psycopg.Connection[Any]) -> list[str]:
    cur = conn.cursor(row_factory=tuple_row)
    return [r[0] for r in cur.execute("SELECT version FROM schema_migrations ORDER BY version")]
