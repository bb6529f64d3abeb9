"""Every SQL statement of the crawler, as named functions with bound parameters."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import psycopg

# One round trip stores a whole page: new rows are inserted (and queued for announcement in the
# same statement, hence the same transaction), known rows are touched, and a changed title or
# body makes a revision and marks the post edited. The database decides what is new.
STORE_POSTS = """
WITH incoming AS (
    SELECT * FROM unnest(
        %(board)s::text[], %(post_id)s::text[], %(title)s::text[], %(url)s::text[],
        %(author)s::text[], %(published_at)s::timestamptz[], %(published_source)s::text[],
        %(category)s::text[], %(pinned)s::boolean[], %(attachments)s::jsonb[], %(body)s::text[],
        %(raw_title)s::text[]
    ) AS t(board, post_id, title, url, author, published_at, published_source, category,
           pinned, attachments, body, raw_title)
),
old AS (
    SELECT p.id, p.post_id, p.title, p.body,
           (p.title <> i.title OR (p.body IS NOT NULL AND i.body IS NOT NULL
                                   AND p.body <> i.body)) AS changed
    FROM posts p JOIN incoming i ON p.board = i.board AND p.post_id = i.post_id
),
inserted AS (
    INSERT INTO posts (board, post_id, title, url, author, published_at, published_source,
                       category, pinned, attachments, body)
    SELECT board, post_id, title, url, author, COALESCE(published_at, now()), published_source,
           category, pinned, attachments, body
    FROM incoming
    ON CONFLICT (board, post_id) DO NOTHING
    RETURNING id, post_id
),
queued AS (
    INSERT INTO notify_outbox (post_id)
    SELECT id FROM inserted WHERE %(announce)s
    RETURNING post_id
),
revised AS (
    INSERT INTO post_revisions (post_id, title, body)
    SELECT id, title, body FROM old WHERE changed
),
-- a new post whose title had control or bidi characters stripped keeps the raw one
raw_kept AS (
    INSERT INTO post_revisions (post_id, title, body)
    SELECT n.id, i.raw_title, NULL
    FROM inserted n JOIN incoming i ON i.post_id = n.post_id
    WHERE i.raw_title IS NOT NULL
),
touched AS (
    UPDATE posts p SET
        last_seen_at = now(),
        pinned = i.pinned,
        title = i.title,
        body = COALESCE(i.body, p.body),
        published_at = CASE WHEN i.published_source = 'detail' AND i.published_at IS NOT NULL
                            THEN i.published_at ELSE p.published_at END,
        published_source = CASE WHEN i.published_source = 'detail' AND i.published_at IS NOT NULL
                                THEN 'detail' ELSE p.published_source END,
        attachments = CASE WHEN jsonb_array_length(i.attachments) > 0
                           THEN i.attachments ELSE p.attachments END,
        state = CASE WHEN o.changed THEN 'edited' ELSE p.state END,
        deleted_at = NULL
    FROM incoming i JOIN old o ON o.post_id = i.post_id
    WHERE p.id = o.id
    RETURNING p.id
)
SELECT i.post_id, i.id, 'new' AS status, (q.post_id IS NOT NULL) AS queued
FROM inserted i LEFT JOIN queued q ON q.post_id = i.id
UNION ALL
SELECT o.post_id, o.id, CASE WHEN o.changed THEN 'edited' ELSE 'seen' END, false
FROM old o
"""


def post_params(board: str, posts: Sequence[Mapping[str, Any]], announce: bool) -> dict[str, Any]:
    def col(key: str) -> list[Any]:
        return [p.get(key) for p in posts]

    return {
        "board": [board] * len(posts),
        "post_id": col("post_id"),
        "title": col("title"),
        "url": col("url"),
        "author": col("author"),
        "published_at": col("published"),
        "published_source": [p.get("published_source") or "list" for p in posts],
        "category": col("category"),
        "pinned": [bool(p.get("pinned")) for p in posts],
        "attachments": [json.dumps(p.get("attachments") or []) for p in posts],
        "body": col("body"),
        "raw_title": col("raw_title"),
        "announce": announce,
    }


async def store_posts(
    conn: psycopg.AsyncConnection[Any],
    board: str,
    posts: Sequence[Mapping[str, Any]],
    announce: bool,
) -> dict[str, dict[str, Any]]:
    """Store one page of posts (distinct post ids) in one statement.

    Returns post_id -> {"id", "status" ("new"/"seen"/"edited"), "queued"}.
    """
    async with conn.cursor() as cur:
        await cur.execute(STORE_POSTS, post_params(board, posts, announce))
        rows = await cur.fetchall()
    return {r[0]: {"id": r[1], "status": r[2], "queued": r[3]} for r in rows}


# A full read of a list page (200, not 304) shows every live post between its highest and lowest
# regular id: a stored post strictly inside that range which the page no longer shows is gone.
# Pinned rows rotate on and off the top and never count; ids that are not numbers are never
# compared (their order says nothing).
MARK_DELETED = """
UPDATE posts SET deleted_at = now()
WHERE board = %(board)s AND deleted_at IS NULL AND NOT pinned
  AND (CASE WHEN post_id ~ '^[0-9]{1,30}$' THEN post_id::numeric END) > %(low)s
  AND (CASE WHEN post_id ~ '^[0-9]{1,30}$' THEN post_id::numeric END) < %(high)s
  AND NOT (post_id = ANY(%(shown)s::text[]))
RETURNING post_id
"""


def id_range(regular_ids: Sequence[str]) -> tuple[int, int] | None:
    """(lowest, highest) of a page's regular post ids when all are numbers, else None."""
    numbers = [int(i) for i in regular_ids if i.isdigit() and len(i) <= 30]
    if len(numbers) < 2 or len(numbers) != len(regular_ids):
        return None
    return min(numbers), max(numbers)


async def mark_deleted(
    conn: psycopg.AsyncConnection[Any],
    board: str,
    shown: Sequence[str],
    regular: Sequence[str],
) -> list[str]:
    """Mark the board's posts the page no longer shows inside its id range; their post ids.

    ``shown``: every post id on the page (pinned included); ``regular``: the non-pinned ones.
    """
    bounds = id_range(regular)
    if bounds is None:
        return []
    async with conn.cursor() as cur:
        await cur.execute(
            MARK_DELETED,
            {"board": board, "low": bounds[0], "high": bounds[1], "shown": list(shown)},
        )
        rows = await cur.fetchall()
    return [r[0] for r in rows]


async def first_crawl_pending(conn: psycopg.AsyncConnection[Any], board: str) -> bool:
    """Whether the board's first crawl is still to be done: it has no post, or no run of it
    has finished yet (the first crawl died after storing a page: the posts behind that page are
    its backlog too, not news)."""
    async with conn.cursor() as cur:
        await cur.execute(
            """SELECT NOT EXISTS (SELECT 1 FROM posts WHERE board = %(b)s)
                   OR NOT EXISTS (SELECT 1 FROM crawl_runs
                                  WHERE board = %(b)s AND finish_reason = 'finished')""",
            {"b": board},
        )
        row = await cur.fetchone()
    return bool(row and row[0])


# --- crawl runs ------------------------------------------------------------------------------


def start_run(conn: psycopg.Connection[Any], board: str, started: datetime) -> int:
    row = conn.execute(
        "INSERT INTO crawl_runs (board, started_at) VALUES (%s, %s) RETURNING id",
        (board, started),
    ).fetchone()
    assert row is not None
    return int(row["id"] if isinstance(row, Mapping) else row[0])


def finish_run(conn: psycopg.Connection[Any], run_id: int, summary: Mapping[str, Any]) -> None:
    conn.execute(
        """UPDATE crawl_runs SET finished_at = now(), pages = %(pages)s,
               requests = %(requests)s, not_modified = %(not_modified)s, items = %(items)s,
               new = %(new)s, errors = %(errors)s, error_detail = %(error_detail)s,
               finish_reason = %(finish_reason)s, deleted = %(deleted)s,
               throttled = %(throttled)s
           WHERE id = %(id)s""",
        {"deleted": 0, "throttled": 0, **summary, "id": run_id},
    )


def record_run(
    conn: psycopg.Connection[Any], board: str, started: datetime, summary: Mapping[str, Any]
) -> int:
    """A whole run (started and finished) in one statement: the runs that need no crawl."""
    row = conn.execute(
        """INSERT INTO crawl_runs (board, started_at, finished_at, pages, requests, not_modified,
               items, new, errors, error_detail, finish_reason, deleted, throttled)
           VALUES (%(board)s, %(started)s, now(), %(pages)s, %(requests)s, %(not_modified)s,
               %(items)s, %(new)s, %(errors)s, %(error_detail)s, %(finish_reason)s,
               %(deleted)s, %(throttled)s)
           RETURNING id""",
        {"deleted": 0, "throttled": 0, **summary, "board": board, "started": started},
    ).fetchone()
    assert row is not None
    return int(row["id"] if isinstance(row, Mapping) else row[0])


RUN_COLUMNS = (
    "pages", "requests", "not_modified", "items", "new", "errors", "error_detail",
    "finish_reason", "deleted", "throttled",
)  # fmt: skip


def record_runs(
    conn: psycopg.Connection[Any], runs: Sequence[tuple[str, datetime, Mapping[str, Any]]]
) -> None:
    """Whole runs (board, started, summary) of a batch of checks in one statement: one commit
    (and one WAL flush) for the batch."""
    if not runs:
        return
    row = "(%s, %s, now(), " + ", ".join(["%s"] * len(RUN_COLUMNS)) + ")"
    params: list[Any] = []
    for board, started, summary in runs:
        values = {"deleted": 0, "throttled": 0, **summary}
        params += [board, started, *(values[c] for c in RUN_COLUMNS)]
    conn.execute(
        "INSERT INTO crawl_runs (board, started_at, finished_at, " + ", ".join(RUN_COLUMNS) + ")"
        " VALUES " + ", ".join([row] * len(runs)),
        params,
    )


def last_run_states(conn: psycopg.Connection[Any], boards: Sequence[str]) -> dict[str, Any]:
    """Each board's last run (finish reason, errors), in one query; boards never run are left
    out."""
    cur = conn.execute(
        """SELECT b.board, r.finish_reason, r.errors
           FROM unnest(%s::text[]) AS b(board)
           JOIN LATERAL (SELECT finish_reason, errors FROM crawl_runs c WHERE c.board = b.board
                         ORDER BY c.started_at DESC, c.id DESC LIMIT 1) r ON true""",
        (list(boards),),
    )
    return {r["board"]: dict(r) for r in cur.fetchall()}


def close_dead_runs(conn: psycopg.Connection[Any], board: str) -> list[int]:
    """Close the board's runs still marked running as ``killed``. Only for a caller that holds
    the board's lock: no other crawl of the board is alive then, so such a row was left by a
    process that died (SIGKILL, OOM, power loss). Returns the ids closed."""
    cur = conn.execute(
        """UPDATE crawl_runs SET finished_at = now(), finish_reason = 'killed',
               errors = errors + 1,
               error_detail = 'board `' || board || '`: the crawl started at '
                   || to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')
                   || ' UTC died without finishing (process killed); closed by the next crawl'
           WHERE board = %s AND finished_at IS NULL
           RETURNING id""",
        (board,),
    )
    return [int(r["id"] if isinstance(r, Mapping) else r[0]) for r in cur.fetchall()]


def posts_seen_before(
    conn: psycopg.Connection[Any], board: str, before: datetime, limit: int = 1000
) -> set[str]:
    """Post ids of ``board`` first seen before ``before`` (the newest ``limit`` of them)."""
    rows = conn.execute(
        "SELECT post_id FROM posts WHERE board = %s AND first_seen_at < %s"
        " ORDER BY first_seen_at DESC LIMIT %s",
        (board, before, limit),
    ).fetchall()
    return {r["post_id"] for r in rows}


def last_runs(conn: psycopg.Connection[Any], board: str, limit: int = 10) -> list[dict[str, Any]]:
    cur = conn.execute(
        "SELECT * FROM crawl_runs WHERE board = %s ORDER BY id DESC LIMIT %s", (board, limit)
    )
    return [dict(r) for r in cur.fetchall()]


def board_posts(conn: psycopg.Connection[Any], board: str) -> list[dict[str, Any]]:
    cur = conn.execute(
        "SELECT * FROM posts WHERE board = %s"
        " ORDER BY pinned DESC, published_at DESC NULLS LAST, id DESC",
        (board,),
    )
    return [dict(r) for r in cur.fetchall()]


def board_health_rows(conn: psycopg.Connection[Any]) -> dict[str, dict[str, Any]]:
    """Per board: its last run and the finish time of its last clean run (finished, no error)."""
    cur = conn.execute(
        """
        SELECT DISTINCT ON (r.board) r.board, r.started_at, r.finished_at, r.finish_reason,
               r.errors, r.error_detail, r.items, r.new, r.throttled,
               (SELECT max(o.finished_at) FROM crawl_runs o
                 WHERE o.board = r.board AND o.finish_reason = 'finished' AND o.errors = 0
               ) AS last_ok_at
        FROM crawl_runs r
        ORDER BY r.board, r.id DESC
        """
    )
    return {r["board"]: dict(r) for r in cur.fetchall()}


def find_post(conn: psycopg.Connection[Any], ref: str) -> int | None:
    """The id of the post ``ref`` names: a post id, or ``board:post_id``."""
    board, sep, board_post = ref.partition(":")
    if sep:
        row = conn.execute(
            "SELECT id FROM posts WHERE board = %s AND post_id = %s", (board, board_post)
        ).fetchone()
    elif ref.isdigit():
        row = conn.execute("SELECT id FROM posts WHERE id = %s", (int(ref),)).fetchone()
    else:
        row = None
    return None if row is None else int(row["id"])


def metrics_rows(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """What the Prometheus exporter shows, read in one snapshot."""
    boards = conn.execute(
        """
        SELECT board, coalesce(finish_reason, 'running') AS finish_reason, count(*) AS runs,
               sum(new) AS new, sum(not_modified) AS not_modified, sum(errors) AS errors,
               max(finished_at) FILTER (WHERE finish_reason = 'finished' AND errors = 0)
                   AS last_ok_at
        FROM crawl_runs GROUP BY board, coalesce(finish_reason, 'running')
        """
    ).fetchall()
    pushes = conn.execute(
        "SELECT status, count(*) AS n, sum(greatest(attempts - 1, 0)) AS retries"
        " FROM notifications GROUP BY status"
    ).fetchall()
    outbox = conn.execute(
        "SELECT count(*) AS depth, extract(epoch FROM now() - min(created_at)) AS oldest"
        " FROM notify_outbox WHERE planned_at IS NULL"
    ).fetchone()
    return {"boards": [dict(r) for r in boards], "pushes": [dict(r) for r in pushes],
            "outbox": dict(outbox or {})}  # fmt: skip


def forget_board(conn: psycopg.Connection[Any], board: str) -> None:
    """Delete a board's posts (with their pushes and revisions) and runs: the demo's fresh start."""
    conn.execute("DELETE FROM posts WHERE board = %s", (board,))
    conn.execute("DELETE FROM crawl_runs WHERE board = %s", (board,))


def final_pushes_since(
    conn: psycopg.Connection[Any], since: float, seen: set[int]
) -> list[dict[str, Any]]:
    """Notification rows that reached a final status after ``since`` (Unix time), not in
    ``seen``, oldest first, with their post's board and title and the device's token."""
    rows = conn.execute(
        """
        SELECT n.id, n.status, n.updated_at, p.board, p.title, d.fcm_token
        FROM notifications n JOIN posts p ON p.id = n.post_id JOIN devices d ON d.id = n.device_id
        WHERE n.status IN ('sent', 'failed', 'unregistered', 'invalid')
          AND n.updated_at >= to_timestamp(%s)
        ORDER BY n.updated_at, n.id
        """,
        (since,),
    ).fetchall()
    return [dict(r) for r in rows if r["id"] not in seen]
