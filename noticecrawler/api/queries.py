"""Every SQL statement of the API, as named async functions with bound parameters.

The schema is the migrations' (noticecrawler/db/migrations); the API's own table, ``api_tokens``,
is in 0007_api.sql.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

Conn = psycopg.AsyncConnection[Any]
Row = dict[str, Any]


async def _rows(conn: Conn, query: Any, params: Any = ()) -> list[Row]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(query, params)
    return await cur.fetchall()


async def _row(conn: Conn, query: Any, params: Any = ()) -> Row | None:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(query, params)
    return await cur.fetchone()


async def ping(conn: Conn) -> None:
    await conn.execute("SELECT 1")


# --- tokens -----------------------------------------------------------------------------------


async def token_principal(conn: Conn, digest: bytes) -> Row | None:
    """The live token with this SHA-256 (its id, user and admin flag); marks it used."""
    return await _row(
        conn,
        """
        UPDATE api_tokens SET last_used_at = now()
        WHERE token_sha256 = %s AND revoked_at IS NULL
        RETURNING id, user_id, admin
        """,
        (digest,),
    )


# --- devices ----------------------------------------------------------------------------------


async def register_device(conn: Conn, user_id: int, token: str, platform: str) -> Row:
    """Insert the token, or move it to this user (one row per token, whoever registers it)."""
    row = await _row(
        conn,
        """
        INSERT INTO devices (user_id, fcm_token, platform) VALUES (%s, %s, %s)
        ON CONFLICT (fcm_token) DO UPDATE SET
            user_id = EXCLUDED.user_id, platform = EXCLUDED.platform, active = true,
            last_error = NULL, last_error_at = NULL, updated_at = now()
        RETURNING id, fcm_token AS token, platform, active, created_at, updated_at,
                  (xmax = 0) AS created
        """,
        (user_id, token, platform),
    )
    assert row is not None
    return row


async def user_devices(conn: Conn, user_id: int) -> list[Row]:
    return await _rows(
        conn,
        """
        SELECT id, fcm_token AS token, platform, active, last_error, created_at, updated_at
        FROM devices WHERE user_id = %s ORDER BY id
        """,
        (user_id,),
    )


async def device_owner(conn: Conn, token: str) -> int | None:
    row = await _row(conn, "SELECT user_id FROM devices WHERE fcm_token = %s", (token,))
    return None if row is None else int(row["user_id"])


async def delete_device(conn: Conn, user_id: int, token: str) -> bool:
    cur = await conn.execute(
        "DELETE FROM devices WHERE fcm_token = %s AND user_id = %s", (token, user_id)
    )
    return cur.rowcount > 0


# --- subscriptions ----------------------------------------------------------------------------


async def user_subscriptions(conn: Conn, user_id: int) -> list[Row]:
    return await _rows(
        conn,
        """
        SELECT id, keywords, negative_keywords, boards, created_at, updated_at
        FROM subscriptions WHERE user_id = %s ORDER BY id
        """,
        (user_id,),
    )


async def replace_subscriptions(
    conn: Conn, user_id: int, subscriptions: Sequence[tuple[list[str], list[str], list[str]]]
) -> None:
    """The user's subscriptions become exactly these (keywords, negative keywords, boards);
    run inside a transaction. The user's row lock orders two replacements of one user."""
    await conn.execute("SELECT id FROM users WHERE id = %s FOR UPDATE", (user_id,))
    await conn.execute("DELETE FROM subscriptions WHERE user_id = %s", (user_id,))
    if not subscriptions:
        return
    cur = conn.cursor()
    await cur.executemany(
        """
        INSERT INTO subscriptions (user_id, keywords, negative_keywords, boards)
        VALUES (%s, %s, %s, %s)
        """,
        [(user_id, k, n, b or None) for k, n, b in subscriptions],
    )


# --- posts ------------------------------------------------------------------------------------


#: a post as the API shows it (`deleted`: the crawler saw it vanish from its board, 0006_hosts)
POST_COLUMNS = sql.SQL(
    "p.id, p.board, p.post_id, p.title, p.url, p.author, p.published_at, p.category, "
    "p.pinned, p.attachments, p.first_seen_at, p.state = 'edited' AS edited, "
    "p.deleted_at IS NOT NULL AS deleted"
)


def like_pattern(text: str) -> str:
    """``%text%`` for ILIKE, with the user's own % _ and \\ taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


#: a page query: its SQL (rendered once per shape, see ``_keyset_sql``) and its parameters
Query = tuple[bytes, dict[str, Any]]


def _page(inner: sql.Composable) -> bytes:
    """Wrap ``inner`` (posts in page order, at most ``size + 1``) so that PostgreSQL writes the
    page's JSON: ``items`` (the first ``size`` posts, a JSON text passed through as it is),
    ``more`` (a post follows them), ``last_at``/``last_id`` (the key of the last item).

    ``json_agg`` of the row itself (``s``), not of ``to_jsonb(row) - 'n'``: the same JSON (keys
    in column order) for half the database's CPU (docs/api.md, "Where a request's time goes")."""
    return (
        sql.SQL(
            """
        WITH page AS (
            SELECT s, s.published_at, s.id,
                   row_number() OVER (ORDER BY s.published_at DESC, s.id DESC) AS n
            FROM ({inner}) s
        )
        SELECT coalesce(json_agg(page.s ORDER BY n) FILTER (WHERE n <= %(size)s), '[]')::text
                   AS items,
               count(*) > %(size)s AS more,
               max(published_at) FILTER (WHERE n = %(size)s) AS last_at,
               max(id) FILTER (WHERE n = %(size)s) AS last_id
        FROM page
        """
        )
        .format(inner=inner)
        .as_bytes(None)
    )


@functools.cache
def _keyset_sql(after: bool, since: bool, q: bool) -> bytes:
    """The page query of one shape (which filters it has), rendered once: eight texts in all,
    each prepared once per connection (``page``)."""
    where = [sql.SQL("p.board = %(board)s")]
    if after:
        where.append(sql.SQL("(p.published_at, p.id) < (%(after_at)s, %(after_id)s)"))
    if since:
        where.append(sql.SQL("p.published_at >= %(since)s"))
    if q:
        where.append(sql.SQL("p.title ILIKE %(q)s"))
    return _page(
        sql.SQL(
            "SELECT {cols} FROM posts p WHERE {where} "
            "ORDER BY p.published_at DESC, p.id DESC LIMIT %(limit)s"
        ).format(cols=POST_COLUMNS, where=sql.SQL(" AND ").join(where))
    )


def keyset_page(
    board: str,
    *,
    size: int,
    after: tuple[datetime, int] | None = None,
    since: datetime | None = None,
    q: str | None = None,
) -> Query:
    """A page of the board's posts, newest first by (published_at, id), starting after the
    ``after`` key (keyset pagination: the index seeks there, however deep). See ``_page``."""
    params: dict[str, Any] = {"board": board, "size": size, "limit": size + 1}
    if after is not None:
        params["after_at"], params["after_id"] = after
    if since is not None:
        params["since"] = since
    if q:
        params["q"] = like_pattern(q)
    return _keyset_sql(after is not None, since is not None, bool(q)), params


@functools.cache
def _offset_sql() -> bytes:
    return _page(
        sql.SQL(
            "SELECT {cols} FROM posts p WHERE p.board = %(board)s "
            "ORDER BY p.published_at DESC, p.id DESC LIMIT %(limit)s OFFSET %(offset)s"
        ).format(cols=POST_COLUMNS)
    )


def offset_page(board: str, *, size: int, offset: int) -> Query:
    """The same page by OFFSET (what keyset pagination replaces; bench/bench_api.py compares):
    the same wrapper, the same JSON, the same preparing; only the inner SQL differs."""
    return _offset_sql(), {"board": board, "size": size, "limit": size + 1, "offset": offset}


async def page(conn: Conn, query: Query) -> Row:
    """Run a page query of ``keyset_page`` or ``offset_page``, as a prepared statement from its
    first run on this connection (the API's connections plan prepared statements once:
    ``plan_cache_mode``, noticecrawler/api/app.py)."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(query[0], query[1], prepare=True)
    row = await cur.fetchone()
    assert row is not None
    return row


async def post(conn: Conn, post_id: int) -> Row | None:
    query = sql.SQL(
        "SELECT {cols}, p.body, p.last_seen_at, p.published_source, "
        "(SELECT count(*) FROM post_revisions r WHERE r.post_id = p.id) AS revisions "
        "FROM posts p WHERE p.id = %s"
    ).format(cols=POST_COLUMNS)
    return await _row(conn, query, (post_id,))


async def board_counts(conn: Conn) -> dict[str, int]:
    rows = await _rows(conn, "SELECT board, count(*) AS posts FROM posts GROUP BY board")
    return {r["board"]: int(r["posts"]) for r in rows}


# --- notifications ----------------------------------------------------------------------------


async def user_notifications(conn: Conn, user_id: int, limit: int) -> list[Row]:
    return await _rows(
        conn,
        """
        SELECT n.id, n.post_id, p.board, p.title, p.url, n.device_id, d.platform, n.status,
               n.attempts, n.error, n.created_at, n.updated_at
        FROM devices d
        JOIN notifications n ON n.device_id = d.id
        JOIN posts p ON p.id = n.post_id
        WHERE d.user_id = %s
        ORDER BY n.id DESC LIMIT %s
        """,
        (user_id, limit),
    )


# --- the operator page ------------------------------------------------------------------------


async def posts_per_day(conn: Conn, days: int) -> list[Row]:
    """Posts first stored per board and UTC day, over the last ``days`` days."""
    return await _rows(
        conn,
        """
        SELECT board, (first_seen_at AT TIME ZONE 'UTC')::date AS day, count(*) AS posts
        FROM posts
        WHERE first_seen_at >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
                               - make_interval(days => %s - 1)
        GROUP BY 1, 2
        """,
        (days,),
    )


async def outbox_depth(conn: Conn) -> Row:
    """Posts waiting to be announced: not taken yet, and taken but not fully planned."""
    row = await _row(
        conn,
        """
        SELECT count(*) FILTER (WHERE taken_at IS NULL) AS waiting,
               count(*) FILTER (WHERE taken_at IS NOT NULL) AS planning
        FROM notify_outbox WHERE planned_at IS NULL
        """,
    )
    assert row is not None
    return row


async def push_outcomes(conn: Conn, hours: int) -> dict[str, int]:
    rows = await _rows(
        conn,
        """
        SELECT status, count(*) AS n FROM notifications
        WHERE updated_at >= now() - make_interval(hours => %s)
        GROUP BY status
        """,
        (hours,),
    )
    return {r["status"]: int(r["n"]) for r in rows}
