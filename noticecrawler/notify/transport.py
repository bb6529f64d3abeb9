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

from noticecrawler.notify.senders.http2 import H2Connection
from noticecrawler.notify.senders.proxy import Proxy
from noticecrawler.notify.senders.wire import (
    CONNECT_RAMP,
    MAX_BODY,
    MAX_HEAD,
    MAX_HEADERS,
    NETWORK_ERRORS,
    USER_AGENT,
    HeaderError,
    Headers,
    Origin,
    Reply,
    TransportError,
    check_header,
)

__all__ = [
    "MAX_BODY",
    "MAX_HEAD",
    "MAX_HEADERS",
    "NETWORK_ERRORS",
    "HeaderError",
    "PushTransport",
    "Reply",
    "TransportError",
]

T = TypeVar("T")
#: a push the server did not process (GOAWAY above its stream, REFUSED_STREAM) is sent again
#: on another connection, at most this many times in all
UNPROCESSED_TRIES = 8
_Origin = Origin


class _Target(NamedTuple):
    origin: Origin
    authority: str  # host[:port] as in the URL (Host header, :authority)
    path: str
    start: str  # the HTTP/1.1 request line, Host and User-Agent


@functools.lru_cache(maxsize=64)
def _target(url: str) -> _Target:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    check_header("url", url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host = parts.netloc.rpartition("@")[2]
    start = f"POST {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {USER_AGENT}\r\n"
    return _Target(Origin(parts.scheme, parts.hostname, port), host, path, start)


def _head(target: _Target, headers: Mapping[str, str], length: int) -> bytes:
    lines = [target.start, f"Content-Length: {length}\r\n"]
    for name, value in headers.items():
        lines.append(f"{name}: {value}\r\n")
    lines.append("\r\n")
    return "".join(lines).encode("latin-1")


class _Connection(asyncio.Protocol):
    """One keep-alive connection: one request at a time, its answer parsed as it arrives."""

    def __init__(self, pool: _Pool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.reused = False  # it has answered a request before
        self.waiter: asyncio.Future[Reply] | None = None
        self.h2: H2Connection | None = None  # set when the connection turned out HTTP/2
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
        if self.transport is not None or self.h2 is not None:
            return
        tls = transport.get_extra_info("ssl_object")
        chosen = tls.selected_alpn_protocol() if tls is not None else None
        if chosen == "h2" or (tls is None and self.pool.h2c):
            # HTTP/2 (chosen by ALPN, or prior knowledge): the connection is an H2Connection's
            self.h2 = H2Connection(self.pool.h2_changed)
            transport.set_protocol(self.h2)
            self.h2.connection_made(transport)
            return
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
        h2c: bool = False,
        offers_h2: bool = False,
    ) -> None:
        self.origin = origin
        self.h2c = h2c  # plain http: HTTP/2 with prior knowledge
        #: what the origin speaks, once a connection told ("maybe h2" until then when offered)
        self.protocol = "maybe h2" if h2c or offers_h2 else "http/1.1"
        self.h2: list[H2Connection] = []  # HTTP/2 connections taking streams
        self.h2_live: set[H2Connection] = set()  # HTTP/2 connections not yet lost
        self.proxy = proxy  # a CONNECT tunnel to reach the origin through
        self.limit = limit
        self.connect_timeout = connect_timeout
        self.tls = tls
        self.idle: list[_Connection] = []
        self.live: set[_Connection] = set()  # connected and not yet lost
        self.connecting = 0
        self.peak_connecting = 0  # the most connects in progress at once (tests read it)
        self.waiters: deque[asyncio.Future[None]] = deque()

    async def acquire(self) -> _Connection | H2Connection:
        while True:
            best = max(self.h2, key=lambda c: c.capacity, default=None)
            if best is not None and best.capacity > 0:
                return best
            while self.idle:
                connection = self.idle.pop()  # the most recently used: the least likely stale
                if not connection.closed:
                    return connection
            # an HTTP/2 origin (or one that may be, until the first connection tells): wait for
            # the connection being opened rather than open more
            ramp = 1 if self.h2 or self.protocol in ("h2", "maybe h2") else CONNECT_RAMP
            if self.open < self.limit and self.connecting < ramp:
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
        return self.connecting + len(self.live) + len(self.h2)

    def h2_changed(self, connection: H2Connection) -> None:
        """An HTTP/2 connection freed streams, changed its settings, or is gone."""
        if connection.transport is None:
            self.h2_live.discard(connection)
        if connection.closed or connection.going_away:
            if connection in self.h2:
                self.h2.remove(connection)
            self._wake()  # a connection slot (or a stream) is free
            return
        for _ in range(connection.capacity):
            if not self._wake():
                break

    async def _connect(self) -> _Connection | H2Connection:
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
        if connection.transport is None and connection.h2 is None and not connection.closed:
            connection.connection_made(transport)  # some loops call it only after returning
        self.protocol = "h2" if connection.h2 is not None else "http/1.1"
        if connection.h2 is not None:
            self.h2.append(connection.h2)
            self.h2_live.add(connection.h2)
            self.h2_changed(connection.h2)  # its streams are for the waiters too
            return connection.h2
        return connection

    def release(self, connection: _Connection | H2Connection) -> None:
        if isinstance(connection, H2Connection):
            return  # its streams are counted by the connection itself (h2_changed)
        if not connection.closed:
            self.idle.append(connection)
        self._wake()

    def gone(self, connection: _Connection) -> None:
        """A connection closed (whoever closed it)."""
        if connection in self.idle:
            self.idle.remove(connection)
        self.live.discard(connection)
        self._wake()

    def _wake(self) -> bool:
        """Wake one waiter; False when none was waiting."""
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return True
        return False

    def close(self) -> None:
        for connection in list(self.live):
            connection.close()
        for h2connection in list(self.h2_live):
            h2connection.close()
        self.idle.clear()


class PushTransport:
    def __init__(
        self,
        limit: int,
        timeout: tuple[float, float],
        *,
        ssl_context: ssl.SSLContext | None = None,
        proxy: Proxy | None = None,
        http2: bool = True,
        h2c: bool = False,
    ) -> None:
        """``proxy``: the HTTPS_PROXY (with its NO_PROXY) that https origins are reached through;
        TLS is always verified (``ssl_context`` may only add trusted CAs, as tests do).
        ``http2``: offer h2 by ALPN on https (HTTP/1.1 when the server does not choose it);
        ``h2c``: speak HTTP/2 with prior knowledge on plain http (test servers)."""
        if ssl_context is not None and (
            ssl_context.verify_mode != ssl.CERT_REQUIRED or not ssl_context.check_hostname
        ):
            raise ValueError("TLS verification cannot be turned off for pushes")
        self.limit = max(1, limit)
        self.proxy = proxy
        self.http2 = http2
        self.h2c = h2c
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
                tls.set_alpn_protocols(["h2", "http/1.1"] if self.http2 else ["http/1.1"])
                if self.proxy is not None and self.proxy.applies_to(origin.host, origin.port):
                    proxy = self.proxy
            h2c = self.h2c and origin.scheme == "http"
            offers = tls is not None and self.http2
            pool = _Pool(origin, self.limit, self.connect_timeout, tls, proxy, h2c, offers)
            self._pools[origin] = pool
        return pool

    @property
    def connections(self) -> int:
        """Connections open now (or being opened), all origins together."""
        return sum(pool.open for pool in self._pools.values())

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> Reply:
        """POST ``body`` (on the transport's loop); the whole answer, or a NETWORK_ERRORS."""
        target = _target(url)
        for name, value in headers.items():
            check_header(name, value)
        pool = self._pool(target.origin)
        data = b""
        stale_retried = False
        for attempt in range(1, UNPROCESSED_TRIES + 1):
            connection = await pool.acquire()
            try:
                if isinstance(connection, H2Connection):
                    return await connection.request(
                        target.authority,
                        target.origin.scheme,
                        target.path,
                        headers,
                        body,
                        self.read_timeout,
                    )
                reused = connection.reused
                data = data or _head(target, headers, len(body)) + body
                try:
                    return await connection.request(data, self.read_timeout)
                except TransportError as exc:
                    if not reused or exc.answered or stale_retried:
                        raise
                    # a kept-alive connection the server had closed as the request went out:
                    # sent once more on a new one
                    stale_retried = exc.unprocessed = True
                    raise
            except TransportError as exc:
                if attempt == UNPROCESSED_TRIES or not exc.unprocessed:
                    raise
                # never processed (GOAWAY, REFUSED_STREAM, a stale kept-alive connection)
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
                if not any(pool.live or pool.h2_live for pool in self._pools.values()):
                    break
                await asyncio.sleep(0.01)

        self.run(shut())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        self.loop.close()
