"""The push transport's HTTP/2 connection over the ``h2`` library, kept as a bench candidate.

Until issue 13's last round this was noticecrawler/notify/senders/http2.py: framing, HPACK and
flow control are the ``h2`` library's (the state machine under httpx and hypercorn); this
module only maps a push to a stream and back. bench/bench_clients.py puts it in the transport's
place (``PushTransport.h2_class``) as "transport-h2lib", side by side with the hand-written
connection that replaced it (senders/http2.py, chosen because it costs far less CPU per push).
The transport's rules, as there:

* every stream's answer is capped (``MAX_BODY`` of data, ``MAX_HEADERS`` headers, the header
  list at ``MAX_HEAD`` bytes, which the connection also announces in its SETTINGS);
* a stream that times out is reset (RST_STREAM CANCEL); the connection goes on for the others;
* GOAWAY: streams above the server's ``last_stream_id`` were never processed — they fail with
  ``TransportError(unprocessed=True)`` and the transport sends them again on a new connection
  (no duplicate possible); the connection takes no new stream and closes when the rest end;
* REFUSED_STREAM likewise; any other reset, a protocol error or a lost connection fails the
  streams concerned as a network error (retried later by the fan-out, never here).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable, Mapping
from typing import Any, cast

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings

from noticecrawler.notify.senders.wire import (
    MAX_BODY,
    MAX_HEAD,
    MAX_HEADERS,
    USER_AGENT,
    Headers,
    Reply,
    TransportError,
)


class StaysOpenOnGoaway(h2.connection.H2ConnectionStateMachine):
    """h2's connection state machine, except that a received GOAWAY does not close it.

    h2 (4.x) turns the whole connection CLOSED on GOAWAY and then refuses every later frame,
    so the answers of the streams the server still promised (those up to ``last_stream_id``,
    which it goes on answering, as Google's front ends do) would be lost and their pushes
    repeated. This connection opens no stream after a GOAWAY (``going_away``), so staying
    open only lets those answers in. (Pinned by a test while this was the transport's
    connection; a bench candidate now.)"""

    def process_input(self, input_: h2.connection.ConnectionInputs) -> list[Any]:
        if (
            input_ is h2.connection.ConnectionInputs.RECV_GOAWAY
            and self.state is h2.connection.ConnectionState.CLIENT_OPEN
        ):
            return []
        return super().process_input(input_)


class _Stream:
    __slots__ = ("body", "ended", "future", "headers", "size", "status")

    def __init__(self, future: asyncio.Future[Reply]) -> None:
        self.future = future
        self.ended = False  # closed on the server's side (answer ended, or reset)
        self.status = 0
        self.headers = Headers()
        self.body: list[bytes] = []
        self.size = 0


@functools.lru_cache(maxsize=64)
def _fields(
    authority: str, scheme: str, path: str, headers: tuple[tuple[str, str], ...]
) -> tuple[tuple[bytes, bytes], ...]:
    """A request's header fields but its length, encoded once for every push that shares them."""
    fields = [
        (b":method", b"POST"),
        (b":scheme", scheme.encode()),
        (b":authority", authority.encode("latin-1")),
        (b":path", path.encode("latin-1")),
        (b"user-agent", USER_AGENT.encode()),
    ]
    fields.extend((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers)
    return tuple(fields)


class H2Connection(asyncio.Protocol):
    """Streams multiplexed on one connection; ``on_change`` is called whenever its capacity
    for new streams may have grown (a stream ended, new SETTINGS) or it is gone."""

    def __init__(self, on_change: Callable[[H2Connection], None]) -> None:
        self.on_change = on_change
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.going_away = False  # GOAWAY received (or sent): no new stream
        self.streams: dict[int, _Stream] = {}
        self.window_open = asyncio.Event()
        self.settled = False  # the server's first SETTINGS arrived
        # outbound headers are checked by the transport (check_header) before they get here
        config = h2.config.H2Configuration(
            client_side=True,
            header_encoding=None,
            validate_outbound_headers=False,
            normalize_outbound_headers=False,
        )
        self.write_pending = False
        self.h2 = h2.connection.H2Connection(config=config)
        self.h2.state_machine = StaysOpenOnGoaway()
        self.h2.local_settings = h2.settings.Settings(
            client=True,
            initial_values={
                h2.settings.SettingCodes.ENABLE_PUSH: 0,
                h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: MAX_HEAD,
            },
        )

    # --- asyncio.Protocol ---------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.h2.initiate_connection()
        self._flush()

    def data_received(self, data: bytes) -> None:
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            self._fail_all(TransportError(f"HTTP/2 protocol error: {exc}", answered=True))
            self._flush()
            self.close()
            return
        for event in events:
            self._event(event)
        self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.transport = None
        self.window_open.set()  # a body waiting for the flow-control window stops waiting
        why = f": {exc}" if exc else ""
        for stream in list(self.streams.values()):
            where = "in the middle of the answer" if stream.status else "before any answer"
            error = TransportError(f"connection closed {where}{why}", answered=bool(stream.status))
            self._settle(stream, error)
        self.streams.clear()
        self.on_change(self)

    # --- what the transport asks ----------------------------------------------------------------
    @property
    def capacity(self) -> int:
        """Streams that may be opened now."""
        if self.closed or self.going_away or self.transport is None:
            return 0
        limit = min(self.h2.remote_settings.max_concurrent_streams, 1000)
        if not self.settled:
            limit = min(limit, 100)  # the server's SETTINGS are still on their way
        return max(0, limit - len(self.streams))

    async def request(
        self,
        authority: str,
        scheme: str,
        path: str,
        headers: Mapping[str, str],
        body: bytes,
        read_timeout: float,
    ) -> Reply:
        if self.capacity <= 0:
            raise TransportError("no stream free on this connection", unprocessed=True)
        loop = asyncio.get_running_loop()
        try:
            stream_id = self.h2.get_next_available_stream_id()
        except h2.exceptions.NoAvailableStreamIDError:  # 2**30 streams used: a new connection
            self.going_away = True
            self.on_change(self)
            raise TransportError("stream ids used up", unprocessed=True) from None
        fields = [*_fields(authority, scheme, path, tuple(headers.items()))]
        fields.append((b"content-length", str(len(body)).encode()))
        stream = self.streams[stream_id] = _Stream(loop.create_future())
        timer = loop.call_later(read_timeout, self._timed_out, stream_id, read_timeout)
        try:
            try:
                self.h2.send_headers(stream_id, fields, end_stream=not body)
            except h2.exceptions.ProtocolError as exc:  # e.g. the server just lowered its limit
                raise TransportError(f"stream not opened: {exc!r}", unprocessed=True) from None
            try:
                await self._send_body(stream_id, stream, body)
            except h2.exceptions.ProtocolError as exc:  # reset by the server meanwhile
                raise TransportError(f"body not sent: {exc!r}") from None
            self._flush()
            return await stream.future
        finally:
            timer.cancel()
            left = self.streams.pop(stream_id, None)
            if left is not None and not left.ended and not self.closed:
                self._reset(stream_id)  # cancelled or timed out before its answer ended
            self.on_change(self)

    async def _send_body(self, stream_id: int, stream: _Stream, body: bytes) -> None:
        view = memoryview(body)
        while view:
            if stream.future.done() or self.closed:
                return  # timed out or lost while waiting for the window: request() tells
            window = self.h2.local_flow_control_window(stream_id)
            size = min(window, self.h2.max_outbound_frame_size, len(view))
            if size <= 0:
                self._flush()
                self.window_open.clear()
                await self.window_open.wait()
                continue
            last = size == len(view)
            self.h2.send_data(stream_id, bytes(view[:size]), end_stream=last)
            view = view[size:]

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.closed = True
            self._write(last=True)  # what is queued (a RST_STREAM, a GOAWAY) still goes out
            self.transport.close()
        self.closed = True

    # --- events -----------------------------------------------------------------------------------
    def _event(self, event: Any) -> None:
        if isinstance(event, h2.events.ResponseReceived | h2.events.TrailersReceived):
            self._headers(event.stream_id, event.headers or ())
        elif isinstance(event, h2.events.DataReceived):
            with contextlib.suppress(h2.exceptions.ProtocolError):  # a stream we reset
                self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            stream = self.streams.get(event.stream_id)
            if stream is not None:
                stream.size += len(event.data or b"")
                if stream.size > MAX_BODY:
                    self._drop(event.stream_id, f"answer body over {MAX_BODY} bytes")
                else:
                    stream.body.append(event.data or b"")
        elif isinstance(event, h2.events.StreamEnded):
            stream = self.streams.get(event.stream_id)
            if stream is not None:
                stream.ended = True
                reply = Reply(stream.status, stream.headers, b"".join(stream.body))
                self._settle(stream, reply)
        elif isinstance(event, h2.events.StreamReset):
            stream = self.streams.get(event.stream_id)
            if stream is not None:
                stream.ended = True
                refused = event.error_code == h2.errors.ErrorCodes.REFUSED_STREAM
                error = TransportError(
                    f"stream reset by the server ({event.error_code!r})",
                    answered=bool(stream.status),
                    unprocessed=refused,
                )
                self._settle(stream, error)
        elif isinstance(event, h2.events.ConnectionTerminated):
            self._goaway(event.last_stream_id)
        elif isinstance(event, h2.events.WindowUpdated):
            self.window_open.set()
        elif isinstance(event, h2.events.RemoteSettingsChanged):
            self.settled = True
            self.on_change(self)

    def _headers(self, stream_id: int, fields: Any) -> None:
        stream = self.streams.get(stream_id)
        if stream is None:
            return
        for name, value in fields:
            key = name.decode("latin-1").lower() if isinstance(name, bytes) else str(name)
            text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
            if key == ":status":
                stream.status = int(text) if text.isdigit() else 0
                continue
            if len(stream.headers) >= MAX_HEADERS:
                self._drop(stream_id, f"answer with over {MAX_HEADERS} headers")
                return
            known = stream.headers.get(key)
            stream.headers[key] = f"{known}, {text}" if known is not None else text
        length = stream.headers.get("content-length", "0")
        if not length.isdigit() or int(length) > MAX_BODY:
            self._drop(stream_id, f"answer announcing a body of {length[:20]} bytes")

    def _goaway(self, last_stream_id: int | None) -> None:
        self.going_away = True
        last = last_stream_id if last_stream_id is not None else 2**31
        for stream_id, stream in list(self.streams.items()):
            if stream_id > last:
                error = TransportError("GOAWAY: the server did not take it", unprocessed=True)
                self._settle(stream, error)
        self.on_change(self)

    # --- helpers --------------------------------------------------------------------------------
    def _settle(self, stream: _Stream, outcome: Reply | Exception) -> None:
        if stream.future.done():
            return
        if isinstance(outcome, Exception):
            stream.future.set_exception(outcome)
        else:
            stream.future.set_result(outcome)

    def _drop(self, stream_id: int, why: str) -> None:
        stream = self.streams.get(stream_id)
        if stream is not None:
            self._settle(stream, TransportError(why, answered=True))
        self._reset(stream_id)

    def _reset(self, stream_id: int) -> None:
        with contextlib.suppress(h2.exceptions.H2Error):  # already closed on both sides
            self.h2.reset_stream(stream_id, h2.errors.ErrorCodes.CANCEL)
        self._flush()

    def _timed_out(self, stream_id: int, seconds: float) -> None:
        stream = self.streams.get(stream_id)
        if stream is not None:
            self._settle(stream, TimeoutError(f"no answer within {seconds:g} s"))
            self.window_open.set()  # its body may be waiting for the window: let it see

    def _fail_all(self, error: Exception) -> None:
        for stream in self.streams.values():
            self._settle(stream, error)

    def _flush(self) -> None:
        """Write what h2 has queued once per turn of the loop: the frames of every stream
        started (or answered) meanwhile go out in one send, not one system call each."""
        if not self.write_pending and self.transport is not None:
            self.write_pending = True
            asyncio.get_running_loop().call_soon(self._write)

    def _write(self, last: bool = False) -> None:
        self.write_pending = False
        if self.transport is None or (self.closed and not last):
            return  # closing: nothing more goes out
        data = self.h2.data_to_send()
        if data:
            self.transport.write(data)
        if self.going_away and not self.closed and not self.streams:
            self.close()  # gone away and nothing left to wait for
