"""API tokens: made here, shown once, stored only as their SHA-256 (``api_tokens``)."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

import psycopg

#: every token starts so (easy to spot in a leaked log or a secret scanner's rules)
PREFIX = "nct_"


def new_token() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def issue(
    conn: psycopg.Connection[Any], user_id: int | None, *, admin: bool = False, label: str = ""
) -> str:
    """A new token for the user (None: an admin token of no user); returns it in clear, the
    only time it exists in clear."""
    if user_id is None and not admin:
        raise ValueError("a token without a user must be an admin token")
    token = new_token()
    conn.execute(
        """
        INSERT INTO api_tokens (user_id, token_sha256, prefix, admin, label)
        VALUES (%s, %s, %s, %s, %s)
        """,
        (user_id, digest(token), token[: len(PREFIX) + 6], admin, label or None),
    )
    return token


def revoke(conn: psycopg.Connection[Any], prefix: str) -> int:
    """Revoke the live tokens starting with ``prefix``; how many."""
    cur = conn.execute(
        "UPDATE api_tokens SET revoked_at = now() WHERE prefix = %s AND revoked_at IS NULL",
        (prefix,),
    )
    return cur.rowcount


def listing(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    cur = conn.execute(
        """
        SELECT t.id, t.prefix, t.user_id, u.external_id, t.admin, t.label, t.created_at,
               t.last_used_at, t.revoked_at
        FROM api_tokens t LEFT JOIN users u ON u.id = t.user_id ORDER BY t.id
        """
    )
    return [dict(r) for r in cur.fetchall()]
