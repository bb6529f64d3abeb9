"""``/v1/boards`` and ``/v1/posts``: the catalog's boards and their stored posts."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.routing import BaseRoute, Route

from noticecrawler.api import queries
from noticecrawler.api.auth import Caller, State, bearer_token, principal_for
from noticecrawler.api.config import ApiConfig
from noticecrawler.api.jsonresp import json_response
from noticecrawler.api.models import Board, PostDetail, PostPage
from noticecrawler.api.problems import Problem, invalid_input
from noticecrawler.api.state import app_state

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


def _limit(value: str | None, cfg: ApiConfig) -> int:
    if value is None:
        return cfg.page_size
    try:
        limit = int(value)
    except ValueError:
        raise invalid_input("limit", "Input should be a valid integer") from None
    if limit < 1:
        raise invalid_input("limit", "Input should be greater than or equal to 1")
    return min(limit, cfg.max_page_size)


def _since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        since = datetime.fromisoformat(value)
    except ValueError:
        raise invalid_input("since", "Input should be a valid ISO 8601 datetime") from None
    if since.tzinfo is None:
        raise Problem(422, "since: give a time zone (…Z or +09:00)", kind="invalid-input")
    return since


#: the longest title search
Q_MAX_LENGTH = 200


def _q(value: str | None) -> str | None:
    if value is not None and len(value) > Q_MAX_LENGTH:
        raise invalid_input("q", f"String should have at most {Q_MAX_LENGTH} characters")
    return value.strip() if value else None


def _param(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


#: the posts endpoint reads its parameters itself (below); this is their OpenAPI description
POSTS_OPENAPI: dict[str, Any] = {
    "parameters": [
        {"name": "board", "in": "path", "required": True, "schema": {"type": "string"}},
        _param("limit", {"type": "integer", "minimum": 1}, "posts per page"),
        _param("cursor", {"type": "string"}, "next_cursor of the previous page"),
        _param("since", {"type": "string", "format": "date-time"}, "only posts published at/after"),
        _param("q", {"type": "string", "maxLength": Q_MAX_LENGTH}, "title contains"),
    ],
    "security": [{"HTTPBearer": []}],
}


POSTS_PATH = "/v1/boards/{board}/posts"


@router.get(POSTS_PATH, response_model=PostPage, openapi_extra=POSTS_OPENAPI)
async def board_posts(request: Request) -> Response:
    """The board's posts, newest first by (published_at, id), a page at a time: keyset
    pagination, so the 5,000th page costs what the first does.

    The hot endpoint, so it does by hand what a FastAPI signature would (the token, the four
    query parameters, the same problem+json errors) and is served by a plain Starlette route
    (``plain_routes``): FastAPI's per-request routing, dependency and parameter solving cost
    more than the page's query (docs/api.md, "Where a request's time goes"). The FastAPI route
    above describes it in /docs (and would serve it the same without the plain one)."""
    state = app_state(request)
    await principal_for(state, bearer_token(request))
    board: str = request.path_params["board"]
    _known(state, board)
    params = request.query_params
    size = _limit(params.get("limit"), state.config)
    cursor = params.get("cursor")
    after = decode_cursor(cursor) if cursor else None
    since = _since(params.get("since"))
    q = _q(params.get("q"))
    query = queries.keyset_page(board, size=size, after=after, since=since, q=q)

    async def load() -> bytes:
        return page_json(await state.read(lambda conn: queries.page(conn, query)))

    if after is None and since is None and not q:
        body = await state.first_pages.get((board, size), load)  # the hot one: cached briefly
    else:
        body = await load()
    return Response(body, media_type="application/json")


def plain_routes() -> list[BaseRoute]:
    """Routes the app puts before its FastAPI ones: served by Starlette alone (the app's
    middleware and problem+json handlers still apply)."""
    return [Route(POSTS_PATH, board_posts, methods=["GET"])]


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
