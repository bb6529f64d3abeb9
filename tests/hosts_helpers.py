"""A small board server for the host tests, bound to one loopback address (Linux routes all of
127.0.0.0/8 to lo, so 127.0.0.2, 127.0.0.3 … are separate hosts on one machine).

Each board is a numbered list of posts (newest first, 10 a page) with pinned rows on top, detail
pages and ETags; the server logs every request with its start and end time, and can serve a
robots.txt, answer 429 with Retry-After, or serve an oversized page or a gzip bomb.
"""

from __future__ import annotations

import gzip
import hashlib
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

PAGE = 10


@dataclass
class HostBoard:
    posts: list[int] = field(default_factory=lambda: list(range(120, 100, -1)))
    pinned: list[int] = field(default_factory=lambda: [900])
    #: post id -> date shown (YYYY-MM-DD); default: today
    dates: dict[int, str] = field(default_factory=dict)
    bodies: dict[int, str] = field(default_factory=dict)
    #: posts whose detail page answers 404
    no_detail: set[int] = field(default_factory=set)
    #: changes the ETag of the list page without changing its content
    generation: int = 0


@dataclass
class Special:
    """What the next request(s) to a board's list get instead of the page."""

    kind: str  # "status" | "huge" | "bomb"
    status: int = 429
    headers: dict[str, str] = field(default_factory=dict)
    times: int = 1
    size: int = 0


class HostServer:
    def __init__(self, host: str, latency: float = 0.0):
        self.host = host
        self.latency = latency
        self.boards: dict[str, HostBoard] = {}
        self.specials: dict[str, Special] = {}
        self.robots: str | None = None
        self.log: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self._httpd = _Server((host, 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.hosts = self  # type: ignore[attr-defined]
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> HostServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def board(self, name: str) -> HostBoard:
        with self.lock:
            return self.boards.setdefault(name, HostBoard())

    def entries(self, path_prefix: str = "") -> list[dict[str, Any]]:
        with self.lock:
            return [dict(e) for e in self.log if e["path"].startswith(path_prefix)]

    # --- pages ----------------------------------------------------------------------------------
    def list_page(self, name: str, page: int) -> str:
        b = self.board(name)
        today = time.strftime("%Y-%m-%d")
        rows = []
        if page == 1:
            for no in b.pinned:
                rows.append(
                    f'<tr><td class="no">공지</td><td class="title"><a href="/{name}/view?no={no}">'
                    f'고정 공지 {no}</a></td><td class="date">{today}</td></tr>'
                )
        for no in b.posts[(page - 1) * PAGE : page * PAGE]:
            rows.append(
                f'<tr><td class="no">{no}</td><td class="title"><a href="/{name}/view?no={no}">'
                f'공지 {no}</a></td><td class="date">{b.dates.get(no, today)}</td></tr>'
            )
        return (
            '<!DOCTYPE html><html><head><meta charset="utf-8"></head><body><table><tbody>'
            + "".join(rows)
            + "</tbody></table></body></html>"
        )

    def view_page(self, name: str, no: int) -> str | None:
        b = self.board(name)
        if (no not in b.posts and no not in b.pinned) or no in b.no_detail:
            return None
        body = b.bodies.get(no, f"본문 {no}")
        return (
            f'<!DOCTYPE html><html><head><meta charset="utf-8"></head><body><h1>공지 {no}</h1>'
            f'<div class="body">{body}</div></body></html>'
        )


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a crawl process hung up (killed, or done with a keep-alive connection)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Any

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        hosts: HostServer = self.server.hosts
        started = time.monotonic()
        status, headers, body, stream = self._answer(hosts)
        if hosts.latency:
            time.sleep(hosts.latency)
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        if stream:
            self.send_header("Connection", "close")
            self.end_headers()
            chunk = b"<!-- " + b"x" * 65536 + b" -->\n"
            sent = 0
            try:
                while sent < stream:
                    self.wfile.write(chunk)
                    sent += len(chunk)
            except OSError:  # the crawler hung up once it had enough: that is the point
                pass
            self.close_connection = True
        else:
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if status != 304:
                self.wfile.write(body)
        with hosts.lock:
            hosts.log.append(
                {
                    "path": self.path,
                    "status": status,
                    "start": started,
                    "end": time.monotonic(),
                    "agent": self.headers.get("User-Agent", ""),
                    "conditional": bool(self.headers.get("If-None-Match")),
                    "bytes": 0 if status == 304 else len(body),
                }
            )

    def _answer(self, hosts: HostServer) -> tuple[int, dict[str, str], bytes, int]:
        split = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(split.query).items()}
        if split.path == "/robots.txt":
            if hosts.robots is None:
                return 404, {}, b"no robots here", 0
            return 200, {"Content-Type": "text/plain"}, hosts.robots.encode(), 0
        parts = split.path.strip("/").split("/")
        if len(parts) != 2:
            return 404, {}, b"", 0
        name, kind = parts
        html: str | None
        if kind == "list":
            with hosts.lock:
                special = hosts.specials.get(name)
                if special is not None:
                    special.times -= 1
                    if special.times <= 0:
                        del hosts.specials[name]
            if special is not None:
                return self._special(special)
            html = hosts.list_page(name, int(query.get("page", "1")))
            salt = str(hosts.board(name).generation)
        elif kind == "view":
            html = hosts.view_page(name, int(query.get("no", "0")))
            salt = ""
        else:
            html = None
        if html is None:
            return 404, {}, b"", 0
        body = html.encode()
        etag = '"' + hashlib.sha1(body + salt.encode()).hexdigest() + '"'
        headers = {"Content-Type": "text/html; charset=utf-8", "ETag": etag}
        if self.headers.get("If-None-Match") == etag:
            return 304, {"ETag": etag}, b"", 0
        return 200, headers, body, 0

    def _special(self, special: Special) -> tuple[int, dict[str, str], bytes, int]:
        if special.kind == "huge":
            return 200, {"Content-Type": "text/html; charset=utf-8"}, b"", special.size
        if special.kind == "bomb":
            raw = b"<html><body><!-- " + b"\0" * special.size + b" --></body></html>"
            body = gzip.compress(raw, 9)
            headers = {"Content-Type": "text/html; charset=utf-8", "Content-Encoding": "gzip"}
            return 200, headers, body, 0
        return special.status, dict(special.headers), b"slow down\n", 0


def board_row(name: str, server: HostServer, **fields: Any) -> str:
    """A ``[[board]]`` entry for board ``name`` of ``server`` (the table engine's defaults)."""
    values: dict[str, Any] = {
        "name": name,
        "engine": "table",
        "start_url": f"{server.url}/{name}/list",
        "first_crawl_max_pages": 1,
        **fields,
    }

    def toml(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int | float):
            return str(v)
        return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'

    return "[[board]]\n" + "".join(f"{k} = {toml(v)}\n" for k, v in values.items()) + "\n"
