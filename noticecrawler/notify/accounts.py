"""SQL of the operations commands: users, their devices and subscriptions, a post's outcomes.

These are the tables the app's own backend writes (docs/notifications.md); the functions here
are what `noticecrawler notify …` runs, with bound parameters.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

import psycopg
from psycopg.rows import dict_row

PLATFORMS = ("android", "ios", "web")


def _rows(conn: psycopg.Connection[Any], sql: str, params: Any = ()) -> list[dict[str, Any]]:
    return conn.cursor(row_factory=dict_row).execute(sql, params).fetchall()


def _id(conn: psycopg.Connection[Any], sql: str, params: Any) -> int:
    row = conn.cursor(row_factory=dict_row).execute(sql, params).fetchone()
    assert row is not None
    return int(row["id"])


def add_user(conn: psycopg.Connection[Any], external_id: str | None = None) -> int:
    """A new user, or the existing one with that ``external_id``."""
    if external_id is None:
        return _id(conn, "INSERT INTO users DEFAULT VALUES RETURNING id", ())
    return _id(
        conn,
        """
        INSERT INTO users (external_id) VALUES (%s)
        ON CONFLICT (external_id) DO UPDATE SET external_id = EXCLUDED.external_id
        RETURNING id
        """,
        (external_id,),
    )


def find_user(conn: psycopg.Connection[Any], ref: str) -> int | None:
    """A user by id or by external id."""
    rows = _rows(
        conn,
        "SELECT id FROM users WHERE external_id = %s OR (%s ~ '^[0-9]+$' AND id::text = %s)",
        (ref, ref, ref),
    )
    return int(rows[0]["id"]) if rows else None


def list_users(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    return _rows(
        conn,
        """
        SELECT u.id, u.external_id, u.created_at,
               (SELECT count(*) FROM devices d WHERE d.user_id = u.id AND d.active) AS devices,
               (SELECT count(*) FROM subscriptions s WHERE s.user_id = u.id) AS subscriptions
        FROM users u ORDER BY u.id
        """,
    )


def remove_user(conn: psycopg.Connection[Any], user_id: int) -> bool:
    """Deletes the user with their devices and subscriptions (notification rows go too)."""
    return conn.execute("DELETE FROM users WHERE id = %s", (user_id,)).rowcount > 0


def clean_words(values: Sequence[str], what: str) -> list[str]:
    """Each value trimmed (inner runs of spaces kept as one); a blank one is refused with a
    ValueError naming it. Repeats are dropped, the order kept."""
    cleaned: list[str] = []
    for value in values:
        word = " ".join(value.split())
        if not word:
            raise ValueError(f"{what} {value!r} is empty or blank")
        if word not in cleaned:
            cleaned.append(word)
    return cleaned


def add_device(conn: psycopg.Connection[Any], user_id: int, token: str, platform: str) -> int:
    """Registers a token; a token already known moves to this user and is active again. The
    token is trimmed; an empty one is refused (ValueError)."""
    if platform not in PLATFORMS:
        raise ValueError(f"platform {platform!r} is not one of {', '.join(PLATFORMS)}")
    token = token.strip()
    if not token:
        raise ValueError("the FCM token is empty")
    return _id(
        conn,
        """
        INSERT INTO devices (user_id, fcm_token, platform) VALUES (%s, %s, %s)
        ON CONFLICT (fcm_token) DO UPDATE SET
            user_id = EXCLUDED.user_id, platform = EXCLUDED.platform, active = true,
            last_error = NULL, last_error_at = NULL, updated_at = now()
        RETURNING id
        """,
        (user_id, token, platform),
    )


def find_device(conn: psycopg.Connection[Any], ref: str) -> dict[str, Any] | None:
    """A device by id or by FCM token."""
    rows = _rows(
        conn,
        "SELECT * FROM devices WHERE fcm_token = %s OR (%s ~ '^[0-9]+$' AND id::text = %s)",
        (ref, ref, ref),
    )
    return rows[0] if rows else None


def list_devices(conn: psycopg.Connection[Any], user_id: int | None = None) -> list[dict[str, Any]]:
    return _rows(
        conn,
        """
        SELECT id, user_id, platform, fcm_token, active, last_error, last_error_at
        FROM devices WHERE %(user)s::bigint IS NULL OR user_id = %(user)s ORDER BY id
        """,
        {"user": user_id},
    )


def remove_device(conn: psycopg.Connection[Any], device_id: int) -> bool:
    return conn.execute("DELETE FROM devices WHERE id = %s", (device_id,)).rowcount > 0


def add_subscription(
    conn: psycopg.Connection[Any],
    user_id: int,
    keywords: Sequence[str],
    negative_keywords: Sequence[str] = (),
    boards: Sequence[str] | None = None,
    known_boards: Collection[str] | None = None,
) -> int:
    """A subscription; keywords and boards trimmed. Refused (ValueError, saying which value):
    a blank keyword or board, no keyword and no board, a board not in ``known_boards`` (the
    catalog's board names; not checked when None)."""
    keywords = clean_words(keywords, "keyword")
    negative_keywords = clean_words(negative_keywords, "negative keyword")
    boards = clean_words(boards or (), "board") or None
    if not keywords and not boards:
        raise ValueError("a subscription needs keywords, or boards to follow whole")
    if known_boards is not None:
        unknown = [b for b in boards or () if b not in known_boards]
        if unknown:
            raise ValueError(
                f"no board {', '.join(f'`{b}`' for b in unknown)} in the catalog "
                "(`noticecrawler boards` lists them)"
            )
    return _id(
        conn,
        """
        INSERT INTO subscriptions (user_id, keywords, negative_keywords, boards)
        VALUES (%s, %s, %s, %s) RETURNING id
        """,
        (user_id, list(keywords), list(negative_keywords), list(boards) if boards else None),
    )


def list_subscriptions(
    conn: psycopg.Connection[Any], user_id: int | None = None
) -> list[dict[str, Any]]:
    return _rows(
        conn,
        """
        SELECT id, user_id, keywords, negative_keywords, boards FROM subscriptions
        WHERE %(user)s::bigint IS NULL OR user_id = %(user)s ORDER BY id
        """,
        {"user": user_id},
    )


def remove_subscription(conn: psycopg.Connection[Any], subscription_id: int) -> bool:
    return conn.execute("DELETE FROM subscriptions WHERE id = %s", (subscription_id,)).rowcount > 0


def post_outcomes(conn: psycopg.Connection[Any], post_id: int) -> list[dict[str, Any]]:
    """One row per device the post was for: status, attempts, FCM message name or error."""
    return _rows(
        conn,
        """
        SELECT n.device_id, d.user_id, d.platform, d.fcm_token, s.id AS subscription_id,
               n.status, n.attempts, n.message_name, n.error, n.next_attempt_at, n.updated_at
        FROM notifications n JOIN devices d ON d.id = n.device_id
        LEFT JOIN subscriptions s ON s.id = n.subscription_id
        WHERE n.post_id = %s ORDER BY n.device_id
        """,
        (post_id,),
    )
