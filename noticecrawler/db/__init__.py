"""PostgreSQL access: where the database is, connections, and the migration runner."""

from __future__ import annotations

import atexit
import os

import psycopg
from psycopg.rows import dict_row


def resolve_url(url: str, home: str) -> str:
    """``url`` itself, or the URL of the embedded PostgreSQL under ``home`` when it is empty."""
    if url:
        return url
    from noticecrawler.db.embedded import postgres_url

    return postgres_url(home)


def connect(url: str, *, autocommit: bool = False) -> psycopg.Connection[dict]:
    """A new connection with dict rows. Connections are opened per process, never shared across
    a fork: callers open one after the process they run in has started."""
    return psycopg.connect(
        url,
        autocommit=autocommit,
        row_factory=dict_row,
        application_name=f"noticecrawler[{os.getpid()}]",
        connect_timeout=10,
    )


_kept: dict[tuple[int, str], psycopg.Connection[dict]] = {}


@atexit.register
def _close_kept() -> None:
    """Close this process's kept connections at exit (a forked child never runs this)."""
    for (pid, _), conn in list(_kept.items()):
        if pid == os.getpid() and not conn.closed:
            conn.close()


def kept_connection(
    url: str, *, fresh: bool = False, timeout: int = 10
) -> psycopg.Connection[dict]:
    """This process's kept autocommit connection to ``url``, for the small statements every
    crawl task runs (a PostgreSQL backend is a process of its own: opening one per task costs
    more than the task's queries). Never one opened before a fork; ``fresh``: reopen it (after
    it failed)."""
    key = (os.getpid(), url)
    conn = _kept.get(key)
    if fresh or conn is None or conn.closed or conn.broken:
        if conn is not None and not conn.closed:
            conn.close()
        conn = _kept[key] = psycopg.connect(
            url,
            autocommit=True,
            row_factory=dict_row,
            application_name=f"noticecrawler[{os.getpid()}]",
            connect_timeout=timeout,
        )
    return conn
