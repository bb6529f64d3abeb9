"""Every SQL statement of the notifier, as named functions with bound parameters."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import pq
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from noticecrawler.notify.matching import Subscription

#: statuses a worker may claim (a `retry` row once due, and `sending` whose lease ran out)
OPEN_STATUSES = ("queued", "retry")

# How the hot statements (claim, close, record, renew: one each per batch or chunk) are written,
# so that no plan of theirs walks every open row of the table:
# * their status tests are CASE expressions, not `status IN (...)` / ORs of equalities: from
#   those, the planner may pick a partial index on the open rows (notifications_due_idx,
#   notifications_open_idx), which looks empty to statistics taken before a large fan-out
#   and then holds all of its rows — a 100k-device post walked ~100k index entries per batch
#   (measured: 503 µs of PostgreSQL per push instead of 48). Through the CASE they use the
#   (post_id, device_id) key or the primary key, whatever the statistics say.
# * recording and renewing look rows up by id and match ``claim_id`` alone: a claim sets it
#   on `sending` rows only and every write ending that state (record, close, a new claim)
#   clears or replaces it, so a row still carrying our claim_id is still ours and `sending`.
# * the per-batch statements (close, claim, record) run with sequential scans, hash joins and
#   merge joins disabled for the rest of their transaction (:func:`_probing`), so that each of
#   their rows is one index probe. Priced with random_page_cost = 4, 500 probes cost as much
#   as reading ~30k rows of a table with fill factor 50: with custom plans (the first runs of
#   a statement on a connection, and again after an invalidation) and fresh statistics, the
#   claim hash-joined a scan of all notifications (20k rows: 41k rows read per batch) and
#   close_unsendable one of all devices (100k: 101k rows per batch). The record updates one
#   table, by primary key, each row's outcome read from a JSON object keyed by id: joined to
#   unnest(...), it read the whole table per chunk or scanned the unnest once per row.
# * none of this holds with statistics taken while the table held only dead rows: they count
#   no rows, every scan and index looks free, and the claim walked the whole table once per
#   row of its batch. plan_post has the table analyzed when a post outgrows its statistics
#   (:func:`analyze_if_outgrown`); tests/test_claim_plan.py checks the lot.


def _cursor(conn: psycopg.Connection[Any]) -> psycopg.Cursor[dict[str, Any]]:
    """A dict-row cursor, whatever the connection's row factory."""
    return conn.cursor(row_factory=dict_row)


#: planner settings of a per-batch statement's transaction (see the note above)
_PROBE_SETTINGS = (
    "SELECT set_config('enable_seqscan', 'off', true), set_config('enable_hashjoin', 'off', true),"
    " set_config('enable_mergejoin', 'off', true)"
)


@contextmanager
def _probing(conn: psycopg.Connection[Any]) -> Iterator[None]:
    """Plan the statements run inside as index probes per row: no sequential scan, hash join or
    merge join, until the transaction ends (one transaction of its own when ``conn`` is in
    autocommit mode and outside one; set_config(..., true) lasts the transaction)."""
    if conn.autocommit and conn.info.transaction_status == pq.TransactionStatus.IDLE:
        with conn.transaction():
            conn.execute(_PROBE_SETTINGS)
            yield
    else:
        conn.execute(_PROBE_SETTINGS)
        yield


def subscriptions_version(conn: psycopg.Connection[Any]) -> int:
    sql = "SELECT version FROM subscriptions_version WHERE singleton"
    row = _cursor(conn).execute(sql).fetchone()
    return int(row["version"]) if row else 0


def load_subscriptions(conn: psycopg.Connection[Any]) -> tuple[int, list[Subscription]]:
    """(version, every subscription). The version is read first: if a change commits in
    between, the rows are newer than the version and the next check simply rebuilds again."""
    version = subscriptions_version(conn)
    rows = (
        _cursor(conn)
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
        _cursor(conn)
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
        _cursor(conn)
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
        _cursor(conn)
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


def close_unsendable(
    conn: psycopg.Connection[Any], post_id: int, device_ids: Sequence[int], max_attempts: int
) -> int:
    """Close open rows that must not be sent: the device was deactivated meanwhile
    (`unregistered`), or a dead worker's lease ran out on the last allowed attempt
    (`failed`). Rows another transaction holds are left alone (see :func:`claim`). Returns
    the number of rows closed."""
    with _probing(conn):
        cur = conn.execute(
            """
            WITH closing AS (
                SELECT n.id, d.active FROM notifications n JOIN devices d ON d.id = n.device_id
                WHERE n.post_id = %(post_id)s AND n.device_id = ANY(%(device_ids)s)
                  AND CASE n.status
                          WHEN 'sending' THEN n.lease_until < now()
                                              AND (NOT d.active OR n.attempts >= %(max_attempts)s)
                          WHEN 'queued' THEN NOT d.active
                          WHEN 'retry' THEN NOT d.active
                          ELSE false
                      END
                ORDER BY n.id
                FOR UPDATE OF n SKIP LOCKED
            )
            UPDATE notifications n SET
                status = CASE WHEN NOT c.active THEN 'unregistered' ELSE 'failed' END,
                error = CASE WHEN NOT c.active THEN 'device deactivated before sending'
                             ELSE 'worker lost after the last attempt' END,
                claim_id = NULL, lease_until = NULL, updated_at = now()
            FROM closing c WHERE n.id = c.id
            """,
            {
                "post_id": post_id,
                "device_ids": list(device_ids),
                "max_attempts": max_attempts,
            },
        )
        return cur.rowcount


def claim(
    conn: psycopg.Connection[Any],
    post_id: int,
    device_ids: Sequence[int],
    claim_id: str,
    lease_seconds: float,
) -> list[dict[str, Any]]:
    """Mark the claimable rows `sending` under ``claim_id`` until the lease ends; returns them
    with the device's token and platform. A `retry` row is claimable only once due (its own
    Retry-After / backoff has passed), whoever asks.

    Rows another transaction holds locked are skipped, never waited for (each row goes to one
    worker): whoever holds one is claiming, closing, renewing or recording it, or the sweep is
    enqueueing it again. Waiting instead deadlocked two claimers of overlapping batches (the
    original task and the sweep's) against each other or a lease renewal."""
    with _probing(conn):
        return (
            _cursor(conn)
            .execute(
                """
            WITH mine AS (
                SELECT n.id, d.fcm_token, d.platform
                FROM notifications n JOIN devices d ON d.id = n.device_id AND d.active
                WHERE n.post_id = %(post_id)s AND n.device_id = ANY(%(device_ids)s)
                  AND CASE n.status
                          WHEN 'queued' THEN true
                          WHEN 'retry' THEN n.next_attempt_at IS NULL OR n.next_attempt_at <= now()
                          WHEN 'sending' THEN n.lease_until < now()
                          ELSE false
                      END
                ORDER BY n.id
                FOR UPDATE OF n SKIP LOCKED
            )
            UPDATE notifications n SET
                status = 'sending', attempts = n.attempts + 1, claim_id = %(claim_id)s,
                lease_until = now() + make_interval(secs => %(lease)s), requeue_at = NULL,
                updated_at = now()
            FROM mine WHERE n.id = mine.id
            RETURNING n.id, n.device_id, n.attempts, mine.fcm_token, mine.platform
            """,
                {
                    "post_id": post_id,
                    "device_ids": list(device_ids),
                    "claim_id": claim_id,
                    "lease": float(lease_seconds),
                },
            )
            .fetchall()
        )


def renew_lease(
    conn: psycopg.Connection[Any], claim_id: str, lease_seconds: float, ids: Sequence[int]
) -> int:
    """The rows of this claim still being pushed stay ours ``lease_seconds`` more. ``ids``:
    the rows the claim took (those already recorded are no longer its own and stay as they
    are); looked up by primary key — finding them by ``claim_id`` walked every open row of
    the table, each time (a 100k-device post: ~27 ms of PostgreSQL's CPU per renewal)."""
    cur = conn.execute(
        """
        WITH ours AS (
            SELECT id FROM notifications
            WHERE id = ANY(%(ids)s) AND claim_id = %(claim_id)s
            ORDER BY id
            FOR UPDATE SKIP LOCKED
        )
        UPDATE notifications n SET lease_until = now() + make_interval(secs => %(lease)s)
        FROM ours WHERE n.id = ours.id
        """,
        {"claim_id": claim_id, "lease": float(lease_seconds), "ids": list(ids)},
    )
    return cur.rowcount


def record_outcomes(
    conn: psycopg.Connection[Any], claim_id: str, outcomes: Sequence[dict[str, Any]]
) -> int:
    """Store each row's outcome (keys: id, status, message_name, error, retry_after: seconds
    until a `retry` row is due), only if the row is still ours (a worker whose lease ran out
    and was re-claimed loses the write)."""
    if not outcomes:
        return 0
    # one table, no join: the rows by primary key, each one's outcome looked up by its id in a
    # JSON object (a binary search). Joined to unnest(...) instead, the planner also chose to
    # read the whole table per chunk, or to scan the unnest once per row (256² per chunk).
    by_id = {
        str(o["id"]): [o["status"], o.get("message_name"), o.get("error"), o.get("retry_after")]
        for o in outcomes
    }
    with _probing(conn):
        cur = conn.execute(
            """
            UPDATE notifications n SET
                status = %(o)s -> n.id::text ->> 0,
                message_name = %(o)s -> n.id::text ->> 1,
                error = %(o)s -> n.id::text ->> 2,
                claim_id = NULL, lease_until = NULL, requeue_at = NULL, updated_at = now(),
                next_attempt_at = CASE
                    WHEN %(o)s -> n.id::text ->> 0 = 'retry'
                    THEN now() + make_interval(
                        secs => COALESCE((%(o)s -> n.id::text ->> 3)::float8, 0))
                END
            WHERE n.id = ANY(%(ids)s) AND n.claim_id = %(claim_id)s
            """,
            {"claim_id": claim_id, "ids": [o["id"] for o in outcomes], "o": Jsonb(by_id)},
        )
        return cur.rowcount


def note_device_errors(
    conn: psycopg.Connection[Any], errors: Sequence[tuple[int, str, str, bool]]
) -> int:
    """(device_id, token sent to, error, deactivate) → last_error set, and the device
    deactivated when asked — only if it still has that token. Returns devices deactivated."""
    if not errors:
        return 0
    rows = (
        _cursor(conn)
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
        _cursor(conn)
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
        _cursor(conn)
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


# --- the outbox: posts waiting to be announced ----------------------------------------------


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
    are not the outbox's business: :func:`due_rows` enqueues them. Each post is sent at most
    once per ``age`` seconds and ``max_sends`` times in all.
    """
    rows = (
        _cursor(conn)
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
        _cursor(conn)
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
        _cursor(conn).execute("SELECT * FROM notify_outbox WHERE post_id = %s", (post_id,))
    ).fetchone()
