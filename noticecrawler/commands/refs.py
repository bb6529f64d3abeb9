"""What the operations commands share: a connection, and turning a user's reference (an id, an
external id, a token, ``board:post_id``) into a row, or one line saying there is none."""

from __future__ import annotations

from typing import Any

import psycopg

from noticecrawler.db import connect
from noticecrawler.db.settings import database_url
from noticecrawler.errors import NotFound, UnknownBoard


def conn(settings: Any) -> psycopg.Connection[Any]:
    return connect(database_url(settings), autocommit=True)


def board(settings: Any, name: str) -> Any:
    """The catalog's board ``name``; an unknown name is one line listing the known ones."""
    from noticecrawler.catalog import catalog_from_settings

    boards = {b.name: b for b in catalog_from_settings(settings)}
    if name not in boards:
        raise UnknownBoard(name, boards)
    return boards[name]


def user(conn: psycopg.Connection[Any], ref: str) -> int:
    from noticecrawler.notify import accounts

    found = accounts.find_user(conn, ref)
    if found is None:
        raise NotFound(f"no user `{ref}` (give a user id or external id)")
    return found


def optional_user(conn: psycopg.Connection[Any], ref: str | None) -> int | None:
    return None if ref is None else user(conn, ref)


def device(conn: psycopg.Connection[Any], ref: str) -> dict[str, Any]:
    from noticecrawler.notify import accounts

    found = accounts.find_device(conn, ref)
    if found is None:
        raise NotFound(f"no device `{ref}` (give a device id or FCM token)")
    return found


def post(conn: psycopg.Connection[Any], ref: str) -> int:
    from noticecrawler.db import queries

    found = queries.find_post(conn, ref)
    if found is None:
        raise NotFound(f"no post `{ref}` (give a post id or board:post_id)")
    return found


def removed(what: str, ref: Any, done: bool) -> int:
    print(f"{what} {ref} removed" if done else f"no {what} {ref}")
    return 0 if done else 1
