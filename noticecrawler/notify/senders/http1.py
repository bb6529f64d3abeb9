"""One HTTP/1.1 connection of the push transport: one request at a time, its answer parsed
as it arrives by httptools (llhttp, the parser of Node.js and uvicorn: chunked bodies,
keep-alive rules), within the caps of senders/wire.py. A connection whose TLS handshake picked
h2 by ALPN (or a pool speaking h2c) hands itself over to an H2Connection at once."""

from __future__ import annotations

import asyncio
from typing import Any, Protocol, cast

import httptools

from noticecrawler.notify.senders.http2 import H2Connection
from noticecrawler.notify.senders.wire import (
    MAX_BODY,
    MAX_HEAD,
    MAX_HEADERS,
    Headers,
    Reply,
    TransportError,
)


class Pool(Protocol):
    """What a connection tells its pool (transport._Pool)."""

    live: set[Any]
    h2c: bool
    h2_class: type[H2Connection]

    def gone(self, connection: Any) -> None: ...

    def h2_changed(self, connection: H2Connection) -> None: ...


class H1Connection(asyncio.Protocol):
    """One keep-alive connection: one request at a time, its answer parsed as it arrives."""

    def __init__(self, pool: Pool) -> None:
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
            self.h2 = self.pool.h2_class(self.pool.h2_changed)
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
