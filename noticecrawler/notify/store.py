"""The notifier's SQL, as named functions with bound parameters: subscriptions, a post's
notification rows (inserted, counted, swept) and device errors. The per-batch statements
(close, claim, renew, record) are in ``batchstore``, the outbox's in ``outboxstore``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg.rows import dict_row

from noticecrawler.notify.matching import Subscription

#: statuses a worker may claim (a `retry` row once due, and `sending` whose lease ran out)
OPEN_STATUSES = ("queued", "retry")


def dict_cursor(conn: psycopg.Connection[Any]) -> psycopg.Cursor[dict[str, Any]]:
    """A dict-row cursor, whatever the connection's row factory."""
    return conn.cursor(row_factory=dict_row)


def subscriptions_version(conn: psycopg.Connection[Any]) -> int:
    sql = "SELECT version FROM subscriptions_version WHERE singleton"
    row = dict_cursor(conn).execute(sql).fetchone()
    return int(row["version"]) if row else 0


def load_subscriptions(conn: psycopg.Connection[Any]) -> tuple[int, list[Subscription]]:
    """(version, every subscription). The version is read first: if a change commits in
    between, the rows are newer than the version and the next check simply rebuilds again."""
    version = subscriptions_version(conn)
    rows = (
        dict_cursor(conn)
        .execute("SELECT id, user_id, keywords, negative_keywords, boards FROM subscriptions")
        .fetchall()
    )
    subs = [
        Subscription(r["id"], r["user_id"], r["keywords"], r["negative_keywords"], r["boards"])
        for r in rows
    ]
    return version, subs


def load_post(conn: psycopg.Connection[Any], post_id: int) -> dict[str, Any] | None:
    return (
        dict_cursor(conn)
        .execute(
            "SELECT id, board, post_id AS board_post_id, title, url, body FROM posts WHERE id = %s",
            (post_id,),
        )
        .fetchone()
    )


def insert_notifications(
    conn: psycopg.Connection[Any],
    post_id: int,
    subscription_ids: Sequence[int],
    requeue_after: float = 30.0,
) -> list[int]:
    """One `queued` row per active device of the users of these subscriptions (once per
    device, whatever the number of its user's matching subscriptions); existing rows are kept.
    The caller enqueues their send_batch at once; the sweep enqueues a row again only
    ``requeue_after`` seconds later (that task was lost). Returns the devices whose rows were
    inserted now, in ascending order."""
    rows = conn.execute(
        """
        INSERT INTO notifications (post_id, device_id, subscription_id, requeue_at)
        SELECT %(post_id)s, d.id, min(s.id), now() + make_interval(secs => %(requeue)s)
        FROM subscriptions s
        JOIN devices d ON d.user_id = s.user_id AND d.active
        WHERE s.id = ANY(%(subscription_ids)s)
        GROUP BY d.id
        ON CONFLICT (post_id, device_id) DO NOTHING
        RETURNING device_id
        """,
        {
            "post_id": post_id,
            "subscription_ids": list(subscription_ids),
            "requeue": float(requeue_after),
        },
    ).fetchall()
    return sorted(int(r["device_id"]) for r in rows)


def _counted_rows(conn: psycopg.Connection[Any]) -> float:
    """The rows of notifications as its statistics count them (-1: never analyzed)."""
    row = (
        dict_cursor(conn)
        .execute("SELECT reltuples FROM pg_class WHERE oid = 'notifications'::regclass")
        .fetchone()
    )
    return float(row["reltuples"]) if row else 0.0


def analyze_if_outgrown(conn: psycopg.Connection[Any], rows_added: int) -> bool:
    """ANALYZE notifications when ``rows_added`` (inserted since it was last analyzed here)
    outnumber the rows its statistics count; True when the statistics were renewed.

    Statistics taken while the table held only dead rows (every row deleted, then ANALYZE)
    count none, and with them every scan and index of the table looks free: the claim's plan
    walked the whole table once per row of a batch (20k devices: 20M rows per batch of 500).
    Called after each slice of a post's rows, this analyzes when the table at least doubled
    since its statistics: a few times for a post much larger than the table, never for one
    much smaller. SKIP_LOCKED: a VACUUM or ANALYZE already at work on the table (autovacuum,
    an operator) is not waited for; the next slice tries again."""
    counted = _counted_rows(conn)
    if rows_added <= max(counted, 0.0):
        return False
    conn.execute("ANALYZE (SKIP_LOCKED) notifications")
    return _counted_rows(conn) != counted


def open_device_ids(
    conn: psycopg.Connection[Any], post_id: int, due_only: bool = False
) -> list[int]:
    """Devices of this post still to push: queued, to retry, or claimed by a dead worker.
    ``due_only`` leaves out the rows to retry whose next attempt is still to come."""
    rows = (
        dict_cursor(conn)
        .execute(
            """
        SELECT device_id FROM notifications
        WHERE post_id = %(post_id)s
          AND (status = ANY(%(open)s) OR (status = 'sending' AND lease_until < now()))
          AND NOT (%(due_only)s AND status = 'retry' AND next_attempt_at > now())
        ORDER BY device_id
        """,
            {"post_id": post_id, "open": list(OPEN_STATUSES), "due_only": due_only},
        )
        .fetchall()
    )
    return [int(r["device_id"]) for r in rows]


def note_device_errors(
    conn: psycopg.Connection[Any], errors: Sequence[tuple[int, str, str, bool]]
) -> int:
    """(device_id, token sent to, error, deactivate) → last_error set, and the device
    deactivated when asked — only if it still has that token. Returns devices deactivated."""
    if not errors:
        return 0
    rows = (
        dict_cursor(conn)
        .execute(
            """
        UPDATE devices d SET
            last_error = u.error, last_error_at = now(), updated_at = now(),
            active = d.active AND NOT u.deactivate
        FROM unnest(%(ids)s::bigint[], %(tokens)s::text[], %(errors)s::text[],
                    %(deactivate)s::boolean[]) AS u(id, token, error, deactivate)
        WHERE d.id = u.id AND d.fcm_token = u.token
        RETURNING d.id, u.deactivate AS deactivated
        """,
            {
                "ids": [e[0] for e in errors],
                "tokens": [e[1] for e in errors],
                "errors": [e[2] for e in errors],
                "deactivate": [e[3] for e in errors],
            },
        )
        .fetchall()
    )
    return sum(1 for r in rows if r["deactivated"])


def status_counts(conn: psycopg.Connection[Any], post_id: int) -> dict[str, int]:
    rows = (
        dict_cursor(conn)
        .execute(
            "SELECT status, count(*) AS n FROM notifications WHERE post_id = %s GROUP BY status",
            (post_id,),
        )
        .fetchall()
    )
    return {str(r["status"]): int(r["n"]) for r in rows}


def due_rows(
    conn: psycopg.Connection[Any], requeue_after: float, limit: int
) -> list[tuple[int, int]]:
    """(post_id, device_id) of the open rows whose send_batch must be enqueued now: retries
    whose time has come, rows of a dead worker (lease run out), rows whose task was lost
    (enqueued more than ``requeue_after`` seconds ago and untouched). They are marked enqueued
    (``requeue_at``) before the caller enqueues, so a lost task is enqueued again later."""
    rows = (
        dict_cursor(conn)
        .execute(
            """
        WITH due AS (
            SELECT id FROM notifications
            WHERE is_open AND status IN ('queued', 'retry', 'sending')
              AND (requeue_at IS NULL OR requeue_at <= now())
              AND CASE status
                      WHEN 'sending' THEN lease_until < now()
                      WHEN 'retry' THEN next_attempt_at IS NULL OR next_attempt_at <= now()
                      ELSE true
                  END
            ORDER BY id
            LIMIT %(limit)s
            FOR UPDATE SKIP LOCKED
        )
        UPDATE notifications n SET requeue_at = now() + make_interval(secs => %(requeue)s)
        FROM due WHERE n.id = due.id
        RETURNING n.post_id, n.device_id
        """,
            {"requeue": float(requeue_after), "limit": limit},
        )
        .fetchall()
    )
    return sorted((int(r["post_id"]), int(r["device_id"])) for r in rows)
