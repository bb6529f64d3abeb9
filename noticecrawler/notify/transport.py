"""The push transport: keep-alive HTTP/1.1 connections on an event loop of its own thread.

Every push of a process goes through it, whichever thread asks: connections (TLS for https)
are kept alive and shared by all batches, at most ``limit`` per origin are open, and connect
and answer waits are bounded. A push is one ``write`` of a prebuilt request and one parse of
the answer by httptools (llhttp, the parser of Node.js and uvicorn: chunked bodies, keep-alive
rules). Measured with the fake FCM in another process on the
same 2 CPUs (bench/bench_fanout.py --client): ~45 µs of CPU per push, against ~140 µs through
an aiohttp session and ~1 ms through pyfcm's ``requests`` session; pyfcm's own async helper
opens a new session — a new connection, against the real FCM a TLS handshake — per message.

What can go wrong before an HTTP answer raises one of ``NETWORK_ERRORS`` (the caller retries
later): refused or timed-out connects, TLS failures, a connection lost mid-answer, an answer
that is not HTTP, no answer within the read timeout. A request that meets a kept-alive
connection the server had just closed (nothing came back) is sent once more on a new one.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import threading
from collections import deque
from collections.abc import Coroutine, Mapping
from typing import Any, NamedTuple, TypeVar, cast
from urllib.parse import urlsplit

import httptools

from noticecrawler.notify.senders.proxy import Proxy

T = TypeVar("T")
USER_AGENT = "noticecrawler-push/1"
#: connects in progress at once per origin: a batch opens its connections a few at a time
#: (each step as fast as the server accepts) instead of 100 SYNs at once, which overflow a
#: small listen backlog — requests written on connections the server has not accepted yet
#: wait unseen, time out and are retried, and the server answers both (issue 9, item 7)
CONNECT_RAMP = 4
#: an FCM answer is a few hundred bytes: a body past this is no answer of FCM (the connection
#: is dropped, the push retried later), and so is a head past the header caps
MAX_BODY = 64 * 1024
MAX_HEAD = 16 * 1024
MAX_HEADERS = 100
#: bytes no header value may hold (CR/LF split the request, NUL and the other controls are
#: refused by servers or rewritten by proxies)
_CONTROL = frozenset(chr(c) for c in (*range(0x20), 0x7F)) - {"\t"}


class HeaderError(ValueError):
    """A header name or value that cannot go into a request (control characters, a colon in a
    name): raised when the request is built, before anything is sent."""


def check_header(name: str, value: str) -> None:
    """Raise HeaderError when ``name: value`` cannot be sent as one well-formed header."""
    if not name or ":" in name or " " in name or _CONTROL.intersection(name):
        raise HeaderError(f"header name {name!r} would break the request")
    bad = _CONTROL.intersection(value)
    if bad:
        shown = ", ".join(sorted(repr(c) for c in bad))
        raise HeaderError(f"header {name!r} holds a control character ({shown})")


class TransportError(ConnectionError):
    """The connection broke before a whole answer came back, or the answer is not HTTP."""

    def __init__(self, message: str, *, answered: bool = False) -> None:
        super().__init__(message)
        #: some bytes of an answer had arrived (the request surely reached the server)
        self.answered = answered


#: what a push can fail with before an HTTP answer: retried later, never here
#: (TimeoutError, ssl.SSLError and TransportError are all OSErrors)
NETWORK_ERRORS = (OSError, asyncio.TimeoutError)


class Headers(dict[str, str]):
    """An answer's headers, looked up whatever the case of the name."""

    def __getitem__(self, name: str) -> str:
        return super().__getitem__(name.lower())

    def __contains__(self, name: object) -> bool:
        return super().__contains__(name.lower() if isinstance(name, str) else name)

    def get(self, name: str, default: Any = None) -> Any:
        return super().get(name.lower(), default)


class Reply(NamedTuple):
    status: int
    headers: Mapping[str, str]
    body: bytes


class _Origin(NamedTuple):
    scheme: str
    host: str
    port: int


@functools.lru_cache(maxsize=64)
def _target(url: str) -> tuple[_Origin, str]:
    """(origin, the request line and Host header) of an http(s) URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host = parts.netloc.rpartition("@")[2]
    start = f"POST {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {USER_AGENT}\r\n"
    return _Origin(parts.scheme, parts.hostname, port), start


def _head(url: str, headers: Mapping[str, str], length: int) -> tuple[_Origin, bytes]:
    origin, start = _target(url)
    lines = [start, f"Content-Length: {length}\r\n"]
    for name, value in headers.items():
        check_header(name, value)
        lines.append(f"{name}: {value}\r\n")
    lines.append("\r\n")
    return origin, "".join(lines).encode("latin-1")


class _Connection(asyncio.Protocol):
    """One keep-alive connection: one request at a time, its answer parsed as it arrives."""

    def __init__(self, pool: _Pool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.reused = False  # it has answered a request before
        self.waiter: asyncio.Future[Reply] | None = None
        self._begin()

    def _begin(self) -> None:
        self.headers = Headers()
        self.body: list[bytes] = []
        self.body_size = 0
        self.head_size = 0
        self.answered = False  # bytes of the current answer arrived
        self.headers_done = False
        self.complete = False  # the current answer has ended

    # --- asyncio.Protocol -----------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self.transport is None:
            self.transport = cast(asyncio.Transport, transport)
            self.pool.live.add(self)

    def data_received(self, data: bytes) -> None:
        if self.waiter is None or self.complete or self.closed:
            self.close()  # bytes nobody asked for: the connection's framing is not to be trusted
            return
        self.answered = True
        if not self.headers_done:
            self.head_size += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            cause = exc.__cause__ or exc.__context__
            why = cause if isinstance(cause, TransportError) else exc
            self._fail(TransportError(f"not an HTTP answer: {why}", answered=True))
            self.close()
            return
        if not self.headers_done and self.head_size > MAX_HEAD:
            self._fail(TransportError(f"answer head over {MAX_HEAD} bytes", answered=True))
            self.close()

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.transport = None
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            if self.headers_done and not self._delimited():
                waiter.set_result(self._reply())  # an answer ended by closing (HTTP/1.0 style)
            else:
                why = f": {exc}" if exc else ""
                where = "in the middle of the answer" if self.answered else "before any answer"
                error = TransportError(f"connection closed {where}{why}", answered=self.answered)
                self._fail(error)
        self.pool.gone(self)

    # --- httptools callbacks (an exception stops the parse: data_received fails the request)
    def on_message_begin(self) -> None:
        if self.complete:
            raise TransportError("a second answer to one request")

    def on_header(self, name: bytes, value: bytes) -> None:
        if len(self.headers) >= MAX_HEADERS:
            raise TransportError(f"answer with over {MAX_HEADERS} headers")
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        self.headers[key] = f"{self.headers[key]}, {text}" if key in self.headers else text

    def on_headers_complete(self) -> None:
        self.headers_done = True
        length = self.headers.get("content-length", "0")
        if not length.isdigit() or int(length) > MAX_BODY:
            raise TransportError(f"answer announcing a body of {length[:20]} bytes")

    def on_body(self, body: bytes) -> None:
        self.body_size += len(body)
        if self.body_size > MAX_BODY:
            raise TransportError(f"answer body over {MAX_BODY} bytes")
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.complete = True
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(self._reply())
        if not self.parser.should_keep_alive():
            self.close()

    # --- used by the pool -----------------------------------------------------------------
    def _delimited(self) -> bool:
        return "content-length" in self.headers or "transfer-encoding" in self.headers

    def _reply(self) -> Reply:
        return Reply(self.parser.get_status_code(), self.headers, b"".join(self.body))

    def _fail(self, error: Exception) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(error)

    def _timed_out(self, seconds: float) -> None:
        self._fail(TimeoutError(f"no answer within {seconds:g} s"))
        self.close()  # whatever comes later belongs to no request

    async def request(self, data: bytes, read_timeout: float) -> Reply:
        assert self.waiter is None, "one request at a time"
        if self.transport is None or self.closed:  # the server hung up as it accepted
            raise TransportError("connection closed before the request was sent")
        loop = asyncio.get_running_loop()
        self._begin()
        self.waiter = waiter = loop.create_future()
        timer = loop.call_later(read_timeout, self._timed_out, read_timeout)
        self.transport.write(data)
        try:
            return await waiter
        finally:
            timer.cancel()
            self.waiter = None
            self.reused = True
            if not waiter.done() or waiter.cancelled():
                self.close()  # cancelled mid-request: the connection's state is unknown

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class _Pool:
    """The keep-alive connections to one origin: at most ``limit`` open (at most
    ``CONNECT_RAMP`` of them being opened), idle ones reused."""

    def __init__(
        self,
        origin: _Origin,
        limit: int,
        connect_timeout: float,
        tls: Any,
        proxy: Proxy | None = None,
    ) -> None:
        self.origin = origin
        self.proxy = proxy  # a CONNECT tunnel to reach the origin through
        self.limit = limit
        self.connect_timeout = connect_timeout
        self.tls = tls
        self.idle: list[_Connection] = []
        self.live: set[_Connection] = set()  # connected and not yet lost
        self.connecting = 0
        self.peak_connecting = 0  # the most connects in progress at once (tests read it)
        self.waiters: deque[asyncio.Future[None]] = deque()

    async def acquire(self) -> _Connection:
        while True:
            while self.idle:
                connection = self.idle.pop()  # the most recently used: the least likely stale
                if not connection.closed:
                    return connection
            if self.open < self.limit and self.connecting < CONNECT_RAMP:
                return await self._connect()
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self.waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self.waiters:
                    self.waiters.remove(waiter)

    @property
    def open(self) -> int:
        return self.connecting + len(self.live)

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        self.connecting += 1
        self.peak_connecting = max(self.peak_connecting, self.connecting)
        host, port = self.origin.host, self.origin.port

        async def connect() -> tuple[asyncio.BaseTransport, _Connection]:
            tls_host = host if self.tls else None
            if self.proxy is None:
                return await loop.create_connection(
                    lambda: _Connection(self), host, port, ssl=self.tls, server_hostname=tls_host
                )
            sock = await self.proxy.tunnel(host, port)
            try:
                return await loop.create_connection(
                    lambda: _Connection(self), sock=sock, ssl=self.tls, server_hostname=tls_host
                )
            except BaseException:
                sock.close()
                raise

        try:
            transport, connection = await asyncio.wait_for(connect(), self.connect_timeout)
        except BaseException as exc:
            self.connecting -= 1
            self._wake()  # the slot is free again
            if isinstance(exc, TimeoutError):
                raise TimeoutError(
                    f"no connection to {host}:{port} within {self.connect_timeout:g} s"
                ) from None
            raise
        self.connecting -= 1
        self._wake()  # a connect slot is free: the next waiter may open one more
        if connection.transport is None and not connection.closed:
            connection.connection_made(transport)  # some loops call it only after returning
        return connection

    def release(self, connection: _Connection) -> None:
        if not connection.closed:
            self.idle.append(connection)
        self._wake()

    def gone(self, connection: _Connection) -> None:
        """A connection closed (whoever closed it)."""
        if connection in self.idle:
            self.idle.remove(connection)
        self.live.discard(connection)
        self._wake()

    def _wake(self) -> None:
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def close(self) -> None:
        for connection in list(self.live):
            connection.close()
        self.idle.clear()


class PushTransport:
    def __init__(
        self,
        limit: int,
        timeout: tuple[float, float],
        *,
        ssl_context: ssl.SSLContext | None = None,
        proxy: Proxy | None = None,
    ) -> None:
        """``proxy``: the HTTPS_PROXY (with its NO_PROXY) that https origins are reached through;
        TLS is always verified (``ssl_context`` may only add trusted CAs, as tests do)."""
        if ssl_context is not None and (
            ssl_context.verify_mode != ssl.CERT_REQUIRED or not ssl_context.check_hostname
        ):
            raise ValueError("TLS verification cannot be turned off for pushes")
        self.limit = max(1, limit)
        self.proxy = proxy
        self.connect_timeout, self.read_timeout = timeout
        self._ssl = ssl_context
        self._pools: dict[_Origin, _Pool] = {}
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="fcm-io", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the transport's loop and wait for its result (any thread)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def _pool(self, origin: _Origin) -> _Pool:
        pool = self._pools.get(origin)
        if pool is None:
            tls: Any = None
            proxy = None
            if origin.scheme == "https":
                tls = self._ssl or ssl.create_default_context()
                if self.proxy is not None and self.proxy.applies_to(origin.host, origin.port):
                    proxy = self.proxy
            pool = _Pool(origin, self.limit, self.connect_timeout, tls, proxy)
            self._pools[origin] = pool
        return pool

    @property
    def connections(self) -> int:
        """Connections open now (or being opened), all origins together."""
        return sum(pool.open for pool in self._pools.values())

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> Reply:
        """POST ``body`` (on the transport's loop); the whole answer, or a NETWORK_ERRORS."""
        origin, head = _head(url, headers, len(body))
        pool = self._pool(origin)
        data = head + body
        for attempt in (1, 2):
            connection = await pool.acquire()
            reused = connection.reused
            try:
                return await connection.request(data, self.read_timeout)
            except TransportError as exc:
                if attempt == 2 or not reused or exc.answered:
                    raise
                # a kept-alive connection the server had closed as the request went out
            finally:
                pool.release(connection)
        raise AssertionError("unreachable")

    def close(self) -> None:
        if not self.loop.is_running():
            return

        async def shut() -> None:
            for pool in self._pools.values():
                pool.close()
            for _ in range(100):  # until every transport has really closed (at most ~1 s)
                if not any(pool.live for pool in self._pools.values()):
                    break
                await asyncio.sleep(0.01)

        self.run(shut())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        self.loop.close()
