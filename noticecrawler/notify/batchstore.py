"""The notifier's per-batch statements: close what cannot be sent, claim a batch under a lease,
renew the lease, record the outcomes (one each per batch or chunk of a post's fan-out)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import pq
from psycopg.types.json import Jsonb

from noticecrawler.notify.store import dict_cursor

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
            dict_cursor(conn)
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
