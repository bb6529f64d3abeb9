"""A board server whose faults a test switches on and off, on 127.0.0.1.

:class:`FaultBoard` serves one list page per board name in the demo board's layout (so the
demo selectors of :func:`noticecrawler.demo.catalog.board_entry` read it) with ETag and
Last-Modified, answering 304 to a matching If-None-Match. A board can be made to answer 5xx,
to stall (accept the request and answer nothing), or the whole server can stop listening (a
real refused connection: the port is closed) and listen again on the same port.
"""

from __future__ import annotations

import hashlib
import html
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from noticecrawler.demo.catalog import board_entry


@dataclass
class BoardState:
    #: (post id, title), newest first
    posts: list[tuple[str, str]] = field(default_factory=list)
    #: answer every list request with this status (0: answer normally)
    status: int = 0
    #: hold list requests this long before answering (0: answer at once)
    stall: float = 0.0
    #: ...from this page on (1: every page)
    stall_from: int = 1
    #: posts per list page (0: all on one page)
    per_page: int = 0


class FaultBoard:
    def __init__(self) -> None:
        self.boards: dict[str, BoardState] = {}
        self.requests: list[tuple[str, int]] = []
        self.port = 0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- content -----------------------------------------------------------------------------
    def board(self, name: str, count: int = 5) -> BoardState:
        """A board with ``count`` posts (ids count..1, newest first)."""
        with self._lock:
            state = self.boards.setdefault(
                name, BoardState([(str(n), f"{name} notice {n}") for n in range(count, 0, -1)])
            )
        return state

    def add_post(self, name: str, title: str) -> str:
        with self._lock:
            state = self.boards[name]
            post_id = str(max((int(p) for p, _ in state.posts), default=0) + 1)
            state.posts.insert(0, (post_id, title))
        return post_id

    def entry(self, name: str, **fields: Any) -> str:
        """The catalog entry of a board of this server (``?page=N`` pages when it has
        ``per_page`` set, else one list page)."""
        paged = self.board(name).per_page > 0
        values = {"next": "param:page" if paged else "none", "interval": "10m", **fields}
        return board_entry(name, start_url=f"{self.url}/{name}/list", **values)

    def write_catalog(self, path: Path, *names: str) -> Path:
        path.write_text("".join(self.entry(n) for n in names), encoding="utf-8")
        return path

    # --- faults --------------------------------------------------------------------------------
    def fail(self, name: str, status: int) -> None:
        self.boards[name].status = status

    def stall(self, name: str, seconds: float, from_page: int = 1) -> None:
        self.boards[name].stall = seconds
        self.boards[name].stall_from = from_page

    def heal(self, name: str) -> None:
        self.boards[name].status = 0
        self.boards[name].stall = 0.0
        self._wake.set()
        self._wake = threading.Event()

    @contextmanager
    def refusing(self) -> Iterator[None]:
        """Inside the block nothing listens on the port: connections are refused."""
        self.stop()
        try:
            yield
        finally:
            self.start()

    # --- serving -------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FaultBoard:
        handler = type("Handler", (_Handler,), {"board": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        self._wake.set()
        self._wake = threading.Event()

    def __enter__(self) -> FaultBoard:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def page(self, name: str, page: int = 1) -> tuple[int, bytes, str]:
        with self._lock:
            state = self.boards.get(name)
            if state is None:
                return 404, b"no such board\n", ""
            posts = state.posts
            if state.per_page:
                posts = posts[(page - 1) * state.per_page : page * state.per_page]
            rows = "".join(
                f'<tr><td class="no">{pid}</td><td class="title">'
                f'<a href="/{name}/view?no={pid}">{html.escape(title)}</a></td>'
                f'<td class="date">2026-11-{int(pid) % 28 + 1:02d}</td></tr>\n'
                for pid, title in posts
            )
        body = (
            "<html><head><meta charset='utf-8'></head><body>"
            f"<table class='board-list'><tbody>\n{rows}</tbody></table></body></html>"
        ).encode()
        return 200, body, '"' + hashlib.sha1(body).hexdigest() + '"'


class _Handler(BaseHTTPRequestHandler):
    board: FaultBoard
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        name = url.path.strip("/").split("/")[0]
        page = int(parse_qs(url.query).get("page", ["1"])[0])
        state = self.board.boards.get(name)
        self.board.requests.append((self.path, state.status if state else 404))
        if state is not None and state.stall and page >= state.stall_from:
            self.board._wake.wait(state.stall)
        if state is not None and state.status:
            self._answer(state.status, b"fault\n", {})
            return
        status, body, etag = self.board.page(name, page)
        if etag and self.headers.get("If-None-Match") == etag:
            self._answer(304, b"", {"ETag": etag})
            return
        headers = {"ETag": etag, "Content-Type": "text/html; charset=utf-8"} if etag else {}
        self._answer(status, body, headers)

    def _answer(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        try:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            if status != 304:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if status != 304:
                self.wfile.write(body)
        except OSError:  # the crawler gave up on a stalled request and hung up
            pass

    def log_message(self, format: str, *args: Any) -> None:
        pass


# --- crawls forked from the test process (as a worker runs them) ---------------------------------


@dataclass
class Crawl:
    summary: dict[str, Any]
    log: str

    @property
    def reason(self) -> str:
        return str(self.summary.get("finish_reason"))


class Crawler:
    """Runs crawls the way ``crawl_site`` does (a fresh process forked from this one), with this
    test's database, catalog and state directory; each crawl's log goes to its own file."""

    def __init__(self, tmp: Path, database_url: str, catalog: Path, **settings: Any) -> None:
        self.tmp = tmp
        self.count = 0
        self.settings: dict[str, Any] = {
            "DATABASE_URL": database_url,
            "NOTICECRAWLER_CATALOG": str(catalog),
            "NOTICECRAWLER_HOME": str(tmp / "home"),
            "HTTPCACHE_DIR": str(tmp / "home" / "httpcache"),
            "NOTICECRAWLER_NOTIFY_SENDER": "",
            "LOG_INSTALL_ROOT_HANDLER": True,
            **settings,
        }

    def scrapy_settings(self, **overrides: Any) -> Any:
        from dispatch.crawl import crawl_settings

        return crawl_settings({**self.settings, **overrides})

    def __call__(self, board: str, timeout: float = 60, **overrides: Any) -> Crawl:
        from dispatch.crawl import run_crawl

        self.count += 1
        log = self.tmp / f"crawl-{self.count}-{board}.log"
        settings = self.scrapy_settings(LOG_FILE=str(log), **overrides)
        summary = run_crawl(board, timeout=timeout, settings=settings)
        return Crawl(summary, log.read_text(errors="replace") if log.exists() else "")
