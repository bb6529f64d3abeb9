"""A board without validators whose page changes on every request outside its rows (tests and
bench/bench_check_cost.py)."""

from __future__ import annotations

import random
import re
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class CounterProxy:
    """The demo server's pages with no ETag/Last-Modified, a view counter that changes on every
    request and a clock on the page: only the rows tell whether anything changed."""

    def __init__(self, upstream: str, host: str = "127.0.0.1"):
        self.upstream = upstream
        self.lists: list[str] = []
        #: (path, time.monotonic()) of every list page served
        self.times: list[tuple[str, float]] = []
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                try:
                    with urllib.request.urlopen(proxy.upstream + self.path, timeout=10) as r:
                        status, body, kind = r.status, r.read(), r.headers["Content-Type"]
                except urllib.error.HTTPError as e:
                    status, body, kind = e.code, e.read(), e.headers["Content-Type"]
                if "/list" in self.path and status == 200:
                    html = body.decode("utf-8")
                    html = re.sub(
                        r'<td class="hits">\d+</td>',
                        lambda _: f'<td class="hits">{random.randint(1, 10**6)}</td>',
                        html,
                    )
                    html = html.replace("<body>", f"<body><p>{time.time_ns()}</p>", 1)
                    with proxy.lock:
                        proxy.lists.append(html)
                        proxy.times.append((self.path, time.monotonic()))
                    body = html.encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", kind or "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.url = f"http://{host}:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> CounterProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
