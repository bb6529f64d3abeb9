"""The notify outbox's statements: the posts waiting to be announced (written in the crawl's
transaction, taken and planned by notify_post, swept again when a notify_post was lost)."""

from __future__ import annotations

from typing import Any

import psycopg

from noticecrawler.notify.store import dict_cursor


def take_outbox(conn: psycopg.Connection[Any], post_id: int) -> bool:
    """Mark the post's outbox row taken (kept when already taken); False: not in the outbox,
    so the post is not to be announced (first crawl of a board, edited post, unknown id)."""
    row = conn.execute(
        """
        UPDATE notify_outbox SET taken_at = COALESCE(taken_at, now())
        WHERE post_id = %s RETURNING post_id
        """,
        (post_id,),
    ).fetchone()
    return row is not None


def mark_planned(conn: psycopg.Connection[Any], post_id: int) -> None:
    """Every notification row of the post is in (and its batches enqueued)."""
    conn.execute("UPDATE notify_outbox SET planned_at = now() WHERE post_id = %s", (post_id,))


def sweep_outbox(
    conn: psycopg.Connection[Any],
    age: float,
    max_sends: int,
    limit: int,
    unplanned_age: float | None = None,
) -> list[int]:
    """Posts whose ``notify_post`` must be sent again, marked as sent now.

    A post qualifies when its outbox row is untaken ``age`` seconds after it was written (the
    broker was away), or taken but not planned ``unplanned_age`` (default ``age``) seconds
    later (its notify_post died while inserting the rows). Stalled pushes of a planned post
    are not the outbox's business: ``store.due_rows`` enqueues them. Each post is sent at
    most once per ``age`` seconds and ``max_sends`` times in all.
    """
    rows = (
        dict_cursor(conn)
        .execute(
            """
        WITH candidates AS (
            SELECT post_id FROM notify_outbox
            WHERE taken_at IS NULL AND created_at < now() - make_interval(secs => %(age)s)
            UNION
            SELECT post_id FROM notify_outbox
            WHERE taken_at IS NOT NULL AND planned_at IS NULL
              AND taken_at < now() - make_interval(secs => %(unplanned_age)s)
        ),
        due AS (
            SELECT o.post_id FROM notify_outbox o JOIN candidates c USING (post_id)
            WHERE o.attempts < %(max_sends)s
              AND (o.sent_at IS NULL OR o.sent_at < now() - make_interval(secs => %(age)s))
            ORDER BY o.created_at
            LIMIT %(limit)s
            FOR UPDATE OF o SKIP LOCKED
        )
        UPDATE notify_outbox o SET sent_at = now(), attempts = o.attempts + 1
        FROM due WHERE o.post_id = due.post_id
        RETURNING o.post_id
        """,
            {
                "age": float(age),
                "unplanned_age": float(age if unplanned_age is None else unplanned_age),
                "max_sends": max_sends,
                "limit": limit,
            },
        )
        .fetchall()
    )
    return sorted(int(r["post_id"]) for r in rows)


def untaken_posts(conn: psycopg.Connection[Any], board: str | None = None) -> list[int]:
    rows = (
        dict_cursor(conn)
        .execute(
            """
        SELECT o.post_id FROM notify_outbox o JOIN posts p ON p.id = o.post_id
        WHERE o.taken_at IS NULL AND (%(board)s::text IS NULL OR p.board = %(board)s)
        ORDER BY o.created_at, o.post_id
        """,
            {"board": board},
        )
        .fetchall()
    )
    return [int(r["post_id"]) for r in rows]


def outbox_row(conn: psycopg.Connection[Any], post_id: int) -> dict[str, Any] | None:
    return (
        dict_cursor(conn).execute("SELECT * FROM notify_outbox WHERE post_id = %s", (post_id,))
    ).fetchone()
