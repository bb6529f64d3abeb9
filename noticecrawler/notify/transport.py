"""The push transport: connections to FCM on an event loop of its own thread.

Every push of a process goes through it, whichever thread asks. Per origin a pool keeps the
connections: HTTP/2 ones (senders/http2.py; chosen by ALPN, or prior knowledge with ``h2c``)
carry many pushes at once as streams, HTTP/1.1 ones (senders/http1.py) one at a time, kept
alive and reused. At most ``limit`` connections per origin, opened a few at a time
(``CONNECT_RAMP``), and only one at a time while the first connection to an origin that may
speak HTTP/2 is opening. TLS is always verified; HTTPS_PROXY is a CONNECT tunnel
(senders/proxy.py). Answers are capped and strictly framed (senders/wire.py).

What can go wrong before an HTTP answer raises one of ``NETWORK_ERRORS`` (the caller retries
later): refused or timed-out connects, TLS failures, a connection lost mid-answer, an answer
that is not HTTP or is too big, no answer within the read timeout. A push the server surely
did not process (a GOAWAY naming an earlier stream, REFUSED_STREAM, a kept-alive HTTP/1.1
connection closed as the request went out) is sent again on another connection.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import threading
from collections import deque
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, NamedTuple, TypeVar
from urllib.parse import urlsplit

import uvloop

from noticecrawler.notify.senders.http1 import H1Connection
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
        h2_class: type[H2Connection] = H2Connection,
    ) -> None:
        self.origin = origin
        self.h2_class = h2_class  # what an HTTP/2 connection is (bench/ swaps in others)
        self.h2c = h2c  # plain http: HTTP/2 with prior knowledge
        #: what the origin speaks, once a connection told ("maybe h2" until then when offered)
        self.protocol = "maybe h2" if h2c or offers_h2 else "http/1.1"
        self.h2: list[H2Connection] = []  # HTTP/2 connections taking streams
        self.h2_live: set[H2Connection] = set()  # HTTP/2 connections not yet lost
        self.proxy = proxy  # a CONNECT tunnel to reach the origin through
        self.limit = limit
        self.connect_timeout = connect_timeout
        self.tls = tls
        self.idle: list[H1Connection] = []
        self.live: set[H1Connection] = set()  # connected and not yet lost
        self.connecting = 0
        self.peak_connecting = 0  # the most connects in progress at once (tests read it)
        self.waiters: deque[asyncio.Future[None]] = deque()

    async def acquire(self) -> H1Connection | H2Connection:
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

    async def _connect(self) -> H1Connection | H2Connection:
        loop = asyncio.get_running_loop()
        self.connecting += 1
        self.peak_connecting = max(self.peak_connecting, self.connecting)
        host, port = self.origin.host, self.origin.port

        async def connect() -> tuple[asyncio.BaseTransport, H1Connection]:
            tls_host = host if self.tls else None
            if self.proxy is None:
                return await loop.create_connection(
                    lambda: H1Connection(self), host, port, ssl=self.tls, server_hostname=tls_host
                )
            sock = await self.proxy.tunnel(host, port)
            try:
                return await loop.create_connection(
                    lambda: H1Connection(self), sock=sock, ssl=self.tls, server_hostname=tls_host
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

    def release(self, connection: H1Connection | H2Connection) -> None:
        if not isinstance(connection, H1Connection):
            return  # an HTTP/2 one: its streams are counted by the connection itself (h2_changed)
        if not connection.closed:
            self.idle.append(connection)
        self._wake()

    def gone(self, connection: H1Connection) -> None:
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
    #: the transport thread's loop: uvloop's (its TLS and sockets cost less CPU per push than
    #: asyncio's; bench/bench_clients.py measures both)
    new_loop: Callable[[], asyncio.AbstractEventLoop] = staticmethod(uvloop.new_event_loop)

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
        #: the HTTP/2 connection class (bench/bench_clients.py measures others in its place)
        self.h2_class = H2Connection
        self.connect_timeout, self.read_timeout = timeout
        self._ssl = ssl_context
        self._pools: dict[_Origin, _Pool] = {}
        self.loop = self.new_loop()
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
            pool = _Pool(
                origin, self.limit, self.connect_timeout, tls, proxy, h2c, offers, self.h2_class
            )
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
                if not isinstance(connection, H1Connection):
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
