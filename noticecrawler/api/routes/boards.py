"""``/v1/boards`` and ``/v1/posts``: the catalog's boards and their stored posts."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response

from noticecrawler.api import queries
from noticecrawler.api.auth import Caller, State
from noticecrawler.api.jsonresp import json_response
from noticecrawler.api.models import Board, PostDetail, PostPage
from noticecrawler.api.problems import Problem

router = APIRouter(tags=["posts"])


def encode_cursor(published_at: datetime, post_id: int) -> str:
    raw = f"{published_at.isoformat()}|{post_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    """The (published_at, id) key a cursor carries; 422 when it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        when, _, ident = raw.partition("|")
        key = datetime.fromisoformat(when), int(ident)
        if key[0].tzinfo is None:
            raise ValueError("naive time")
        return key
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise Problem(
            422,
            "cursor: not a cursor from this API (pass next_cursor as it came)",
            kind="invalid-input",
            errors=[{"field": "cursor", "message": "invalid cursor"}],
        ) from None


def _known(state: Any, board: str) -> None:
    if state.config.board(board) is None:
        raise Problem(404, f"no board `{board}`", kind="unknown-board")


@router.get("/v1/boards", response_model=list[Board])
async def boards(caller: Caller, state: State) -> Any:
    async with state.pool.connection() as conn:
        counts = await queries.board_counts(conn)
    return [
        {
            "name": b.name,
            "url": b.start_url,
            "engine": b.engine,
            "enabled": b.enabled,
            "interval": b.interval,
            "posts": counts.get(b.name, 0),
        }
        for b in state.config.boards
    ]


@router.get("/v1/boards/{board}/posts", response_model=PostPage)
async def board_posts(
    board: str,
    caller: Caller,
    state: State,
    limit: Annotated[int | None, Query(ge=1, description="posts per page")] = None,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    since: Annotated[datetime | None, Query(description="only posts published at/after")] = None,
    q: Annotated[str | None, Query(max_length=200, description="title contains")] = None,
) -> Response:
    """The board's posts, newest first by (published_at, id), a page at a time: keyset
    pagination, so the 5,000th page costs what the first does."""
    _known(state, board)
    cfg = state.config
    size = min(limit or cfg.page_size, cfg.max_page_size)
    after = decode_cursor(cursor) if cursor else None
    if since is not None and since.tzinfo is None:
        raise Problem(422, "since: give a time zone (…Z or +09:00)", kind="invalid-input")
    query = queries.keyset_page(
        board,
        size=size,
        after=after,
        since=since,
        q=q.strip() if q else None,
    )

    async def load() -> bytes:
        async with state.pool.connection() as conn:
            return page_json(await queries.page(conn, query))

    if after is None and since is None and not q:
        body = await state.first_pages.get((board, size), load)  # the hot one: cached briefly
    else:
        body = await load()
    return Response(body, media_type="application/json")


def page_json(page: dict[str, Any]) -> bytes:
    """The page as JSON: the items as PostgreSQL wrote them, and the cursor of the next page."""
    cursor = encode_cursor(page["last_at"], page["last_id"]) if page["more"] else None
    return f'{{"items":{page["items"]},"next_cursor":{json.dumps(cursor)}}}'.encode()


@router.get("/v1/posts/{post_id}", response_model=PostDetail)
async def post(post_id: int, caller: Caller, state: State) -> Any:
    async with state.pool.connection() as conn:
        row = await queries.post(conn, post_id)
    if row is None:
        raise Problem(404, f"no post {post_id}", kind="unknown-post")
    return json_response(row)
