"""A local HTTP server of Korean notice boards, for demos and tests without the internet.

Every ``/<board>/…`` path prefix (``[a-z0-9_-]+``) is a board of its own, created with seeded
content on first use. List, view and RSS responses carry ``ETag``/``Last-Modified`` and answer
conditional requests with 304, and send ``Cache-Control: max-age=60`` so a crawler that does not
force revalidation serves stale pages from its cache::

    with DemoServer() as demo:
        demo.add_post("knu", title="새 공지")
        urlopen(f"{demo.url}/knu/list?page=1")
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

from noticecrawler.demo.routes import BOARD_NAME, Response, Routes, conditional
from noticecrawler.demo.state import BoardStore, Clock, RequestLog, seoul_now

logger = logging.getLogger(__name__)

MAX_BODY = 1 << 20


class DemoServer:
    """The demo boards on ``host:port`` (port 0: an ephemeral one), served from a daemon thread.

    The methods below change the same state as the ``/<board>/admin/…`` endpoints, and work
    before :meth:`start` too.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Clock = seoul_now,
        state_file: Path | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.store = BoardStore(clock, state_file)
        self.log = RequestLog()
        self._stopping = threading.Event()
        self.routes = Routes(self.store, self.log, self._stopping)
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ----------------------------------------------------------------------------
    def start(self) -> DemoServer:
        if self._httpd is not None:
            raise RuntimeError("the demo server is already running")
        self._stopping.clear()
        self._httpd = _HTTPServer((self.host, self.port), _Handler, self)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"demo-boards:{self.port}",
            daemon=True,
        )
        self._thread.start()
        logger.info("demo boards on %s (e.g. %s/demo/list)", self.url, self.url)
        return self

    def stop(self) -> None:
        """Stop serving; stalled list pages are woken up and answered 503."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopping.set()
        httpd.shutdown()
        httpd.close_connections()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> DemoServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._httpd is not None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:54321``, once started."""
        if self._httpd is None:
            raise RuntimeError("the demo server is not running; call start() first")
        return f"http://{self.host}:{self.port}"

    def list_url(self, board: str, page: int = 1) -> str:
        return f"{self.url}/{_board(board)}/list?page={page}"

    def post_url(self, board: str, post_id: str | int) -> str:
        return f"{self.url}/{_board(board)}/view?no={post_id}"

    # --- the admin API ------------------------------------------------------------------------
    def add_post(
        self,
        board: str,
        title: str | None = None,
        *,
        category: str | None = None,
        pinned: bool = False,
        body: str | None = None,
        author: str | None = None,
    ) -> str:
        """Add a post published now; returns its id ("36", "37"…, pinned: "904"…)."""
        no = self.store.add(_board(board), title, category, pinned, body, author)
        return str(no)

    def edit_post(
        self, board: str, post_id: str | int, title: str | None = None, body: str | None = None
    ) -> None:
        """Change a post's title and/or body; ``KeyError`` if there is no such post."""
        self.store.edit(_board(board), int(post_id), title, body)

    def set_stall(self, board: str, seconds: float) -> None:
        """Make the board's list pages wait ``seconds`` before answering (0: off)."""
        self.store.set_stall(_board(board), seconds)

    def set_layout_broken(self, board: str, broken: bool = True) -> None:
        self.store.set_broken(_board(board), broken)

    def reset_board(self, board: str) -> None:
        self.store.reset(_board(board))

    def requests_log(self) -> list[dict[str, Any]]:
        return self.log.entries()

    def list_requests(self, board_path: str) -> list[dict[str, Any]]:
        """The logged requests for the list pages under ``/{board_path}/list``."""
        prefix = f"/{board_path}/list"
        return [e for e in self.log.entries() if str(e["path"]).startswith(prefix)]

    def clear_log(self) -> None:
        self.log.clear()


def run_forever(host: str = "127.0.0.1", port: int = 8765, state_file: Path | None = None) -> None:
    """Serve the demo boards in the foreground until interrupted (Ctrl-C)."""
    server = DemoServer(host, port, state_file=state_file).start()
    thread = server._thread
    try:
        while thread is not None and thread.is_alive():
            thread.join(0.5)
    except KeyboardInterrupt:
        logger.info("interrupted, stopping")
    finally:
        server.stop()


def _board(name: str) -> str:
    if not BOARD_NAME.fullmatch(name) or name == "_admin":
        raise ValueError(f"invalid demo board name {name!r}: use [a-z0-9_-]+")
    return name


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[_Handler], demo: DemoServer) -> None:
        self.demo = demo
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, handler)

    def track(self, connection: socket.socket, open_: bool) -> None:
        with self._connections_lock:
            if open_:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def close_connections(self) -> None:
        """Hang up keep-alive connections, so no handler thread outlives the server for long."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("demo server: error serving %s", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "noticecrawler-demo/0.1"
    #: idle keep-alive connections are closed after this many seconds
    timeout = 30
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, True)

    def finish(self) -> None:
        self.server.track(self.connection, False)
        super().finish()

    def do_GET(self) -> None:
        self._serve(send_body=True)

    def do_HEAD(self) -> None:
        self._serve(send_body=False)

    def do_POST(self) -> None:
        self._serve(send_body=True)

    def _serve(self, send_body: bool) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY:
            self.send_error(400 if length < 0 else 413)
            return
        raw = self.rfile.read(length) if length else b""
        host = self.headers.get("Host") or f"{self.server.demo.host}:{self.server.demo.port}"
        try:
            response = self.server.demo.routes.handle(
                self.command, self.path, raw, f"http://{host}"
            )
        except Exception:
            logger.exception("demo server: %s %s failed", self.command, self.path)
            response = Response(500, b"internal error\n")
        if response.last_modified is not None:
            inm, ims = self.headers.get("If-None-Match"), self.headers.get("If-Modified-Since")
            response = conditional(response, inm, ims)
        sent = len(response.body) if send_body and response.status != 304 else 0
        # recorded before answering, so a client that has its answer finds it in the log
        self._record(response.status, sent)
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        if response.status != 304:
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if sent:
            self.wfile.write(response.body)

    def _record(self, status: int, sent: int) -> None:
        inm, ims = self.headers.get("If-None-Match"), self.headers.get("If-Modified-Since")
        if not self.path.startswith("/_admin/"):
            self.server.demo.log.append(
                {
                    "method": self.command,
                    "path": self.path,
                    "status": status,
                    "bytes": sent,
                    "if_none_match": inm,
                    "if_modified_since": ims,
                }
            )
        validator = " If-None-Match" if inm else " If-Modified-Since" if ims else ""
        logger.info(
            '%s "%s %s" %d %d%s',
            self.client_address[0],
            self.command,
            self.path,
            status,
            sent,
            validator,
        )

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # _record logs each request once, with what was sent

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("demo server: " + format, *args)
