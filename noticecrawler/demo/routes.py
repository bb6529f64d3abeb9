"""What the demo server answers, as plain :class:`Response` values (no sockets here).

``/<board>/list|view|download|rss`` and ``/<board>/admin/<action>`` for any board name matching
``[a-z0-9_-]+``; ``/_admin/requests`` for the request log.
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
import re
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from noticecrawler.demo.render import render_index, render_list, render_rss, render_view
from noticecrawler.demo.state import Board, BoardStore, RequestLog

BOARD_NAME = re.compile(r"[a-z0-9_-]+")
_JSON = "application/json; charset=utf-8"


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    #: set on list, view and rss: the response gets ETag/Last-Modified and may become a 304
    last_modified: datetime | None = None


@dataclass(frozen=True)
class Encoding:
    codec: str
    content_type: str
    meta: str | None


def encoding_for(board: str) -> Encoding:
    """``-euckr`` boards: CP949 bytes labelled euc-kr; ``-nocharset``: CP949 bytes, no label."""
    if board.endswith("-euckr"):
        return Encoding("cp949", "text/html; charset=euc-kr", "euc-kr")
    if board.endswith("-nocharset"):
        return Encoding("cp949", "text/html", None)
    return Encoding("utf-8", "text/html; charset=utf-8", "utf-8")


def _json(status: int, data: object) -> Response:
    return Response(status, json.dumps(data, ensure_ascii=False).encode(), _JSON)


def _error(status: int, message: str) -> Response:
    return _json(status, {"error": message})


class BadRequest(Exception):
    """An admin request the demo server cannot act on (answered 400)."""


def _field(data: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    value = data.get(key)
    if value is not None and not isinstance(value, kind):
        kinds = kind if isinstance(kind, tuple) else (kind,)
        raise BadRequest(f"`{key}` must be {' or '.join(k.__name__ for k in kinds)}")
    return value


class Routes:
    def __init__(self, store: BoardStore, log: RequestLog, stopping: threading.Event) -> None:
        self.store = store
        self.log = log
        self.stopping = stopping

    def handle(self, method: str, target: str, body: bytes, base_url: str) -> Response:
        split = urlsplit(target)
        query = {k: v[-1] for k, v in parse_qs(split.query).items()}
        parts = split.path.strip("/").split("/")
        if split.path == "/":
            return Response(
                200, render_index(self.store.names()).encode(), "text/html; charset=utf-8"
            )
        if parts[0] == "_admin":
            return self._log_admin(method, parts[1:])
        board = parts[0]
        if not BOARD_NAME.fullmatch(board):
            return _error(404, f"no such board: {board!r}")
        if len(parts) == 1:
            return Response(302, headers={"Location": f"/{board}/list"})
        if parts[1] == "admin" and len(parts) == 3:
            if method != "POST":
                return _error(405, "admin endpoints take POST")
            try:
                return self._admin(board, parts[2], body, base_url)
            except BadRequest as exc:
                return _error(400, str(exc))
        if method not in ("GET", "HEAD"):
            return _error(405, f"{method} not allowed here")
        if len(parts) == 2 and parts[1] in ("list", "view", "download", "rss"):
            return getattr(self, f"_{parts[1]}")(board, query, base_url)
        return _error(404, f"no such page: {split.path}")

    # --- pages --------------------------------------------------------------------------------
    def _list(self, board: str, query: dict[str, str], base_url: str) -> Response:
        page = _int(query.get("page")) or 1
        stall = self.store.read(board, lambda b: b.stall)
        if stall and self.stopping.wait(stall):
            return _error(503, "server is shutting down")
        enc = encoding_for(board)
        now = self.store.clock()

        def render(b: Board) -> tuple[str, datetime]:
            return render_list(b, max(page, 1), now, enc.meta), b.last_modified

        html, modified = self.store.read(board, render)
        body = html.encode(enc.codec, errors="xmlcharrefreplace")
        return Response(200, body, enc.content_type, last_modified=modified)

    def _view(self, board: str, query: dict[str, str], base_url: str) -> Response:
        no = _int(query.get("no"))
        enc = encoding_for(board)

        def render(b: Board) -> tuple[str, datetime] | None:
            post = b.posts.get(no) if no is not None else None
            return (render_view(b, post, enc.meta), b.last_modified) if post else None

        found = self.store.read(board, render)
        if found is None:
            html = "<!DOCTYPE html><html><body><p>게시물이 존재하지 않습니다.</p></body></html>\n"
            return Response(404, html.encode(), "text/html; charset=utf-8")
        body = found[0].encode(enc.codec, errors="xmlcharrefreplace")
        return Response(200, body, enc.content_type, last_modified=found[1])

    def _download(self, board: str, query: dict[str, str], base_url: str) -> Response:
        no, index = _int(query.get("no")), _int(query.get("file"))

        def name(b: Board) -> str | None:
            post = b.posts.get(no) if no is not None else None
            if post is None or index is None or not 1 <= index <= len(post.files):
                return None
            return post.files[index - 1]

        filename = self.store.read(board, name)
        if filename is None:
            return _error(404, "no such attachment")
        content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        body = f"noticecrawler demo attachment {filename} (board {board}, post {no})\n".encode()
        disposition = f"attachment; filename*=UTF-8''{quote(filename)}"
        return Response(200, body, content_type, {"Content-Disposition": disposition})

    def _rss(self, board: str, query: dict[str, str], base_url: str) -> Response:
        xml, modified = self.store.read(board, lambda b: (render_rss(b, base_url), b.last_modified))
        return Response(
            200, xml.encode(), "application/rss+xml; charset=utf-8", last_modified=modified
        )

    # --- admin --------------------------------------------------------------------------------
    def _admin(self, board: str, action: str, raw: bytes, base_url: str) -> Response:
        try:
            data = json.loads(raw) if raw.strip() else {}
        except ValueError as exc:
            raise BadRequest(f"body is not JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise BadRequest("body must be a JSON object")
        if action not in ("add", "edit", "stall", "layout", "reset"):
            return _error(404, f"no such admin action: {action}")
        result: Response = getattr(self, f"_admin_{action}")(board, data, base_url)
        return result

    def _admin_add(self, board: str, data: dict[str, Any], base_url: str) -> Response:
        no = self.store.add(
            board,
            title=_field(data, "title", str),
            category=_field(data, "category", str),
            pinned=bool(_field(data, "pinned", bool)),
            body=_field(data, "body", str),
            author=_field(data, "author", str),
        )
        return _json(200, {"post_id": str(no), "url": f"{base_url}/{board}/view?no={no}"})

    def _admin_edit(self, board: str, data: dict[str, Any], base_url: str) -> Response:
        no = _int(str(data.get("post_id", "")))
        if no is None:
            raise BadRequest("`post_id` is required")
        try:
            self.store.edit(board, no, _field(data, "title", str), _field(data, "body", str))
        except KeyError:
            return _error(404, f"board {board} has no post {no}")
        return _json(200, {"post_id": str(no), "url": f"{base_url}/{board}/view?no={no}"})

    def _admin_stall(self, board: str, data: dict[str, Any], base_url: str) -> Response:
        seconds = _field(data, "seconds", (int, float)) or 0
        self.store.set_stall(board, float(seconds))
        return _json(200, {"stall": seconds})

    def _admin_layout(self, board: str, data: dict[str, Any], base_url: str) -> Response:
        broken = bool(_field(data, "broken", bool))
        self.store.set_broken(board, broken)
        return _json(200, {"broken": broken})

    def _admin_reset(self, board: str, data: dict[str, Any], base_url: str) -> Response:
        self.store.reset(board)
        return _json(200, {"reset": board})

    def _log_admin(self, method: str, parts: list[str]) -> Response:
        if parts == ["requests"] and method == "GET":
            return _json(200, self.log.entries())
        if parts == ["requests", "clear"] and method == "POST":
            self.log.clear()
            return _json(200, {"cleared": True})
        return _error(404, "the admin endpoints are GET /_admin/requests, POST …/clear")


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def conditional(
    response: Response, if_none_match: str | None, if_modified_since: str | None
) -> Response:
    """Add the validators; a 304 when ``If-None-Match`` (or else ``If-Modified-Since``) says so."""
    assert response.last_modified is not None
    etag = '"' + hashlib.sha256(response.body).hexdigest()[:32] + '"'
    response.headers.update(
        {
            "ETag": etag,
            "Last-Modified": format_datetime(response.last_modified, usegmt=True),
            "Cache-Control": "max-age=60",
        }
    )
    if if_none_match is not None:
        tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
        fresh = etag in tags or "*" in tags
    else:
        fresh = if_modified_since is not None and _not_after(
            response.last_modified, if_modified_since
        )
    if fresh:
        return Response(304, headers=response.headers)
    return response


def _not_after(last_modified: datetime, if_modified_since: str) -> bool:
    try:
        since = parsedate_to_datetime(if_modified_since)
    except (TypeError, ValueError):
        return False
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    return last_modified <= since
