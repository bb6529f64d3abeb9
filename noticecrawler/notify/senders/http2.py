"""One HTTP/2 connection of the push transport: many pushes in flight as streams.

A client of RFC 9113 cut to what pushing needs, written for little Python work per push (the
``h2`` library's state machine cost more CPU than the rest of a push together; bench/
bench_clients.py measures both): a request is its cached header block (senders/h2frames.py)
plus one DATA frame; every frame of a turn of the loop goes out in one write; every frame of a
read is parsed in one loop; one timer per connection watches all the streams' deadlines.
Answers' headers are decoded by the ``hpack`` library. The transport's rules:

* every stream's answer is capped (``MAX_BODY`` of data, ``MAX_HEADERS`` headers, the header
  list at ``MAX_HEAD`` bytes, which the connection also announces in its SETTINGS);
* a stream that times out is reset (RST_STREAM CANCEL); the connection goes on for the others;
* GOAWAY: streams above the server's ``last_stream_id`` were never processed — they fail with
  ``TransportError(unprocessed=True)`` and the transport sends them again on a new connection
  (no duplicate possible); the connection takes no new stream, still reads the answers of the
  others, and closes when they end;
* REFUSED_STREAM likewise; any other reset fails its stream, and anything that breaks the
  protocol (a malformed frame, a frame over our size, PUSH_PROMISE — we send ENABLE_PUSH 0 —,
  a bad header block) closes the connection with GOAWAY and fails its streams, as a network
  error (retried later by the fan-out, never here).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Mapping
from typing import cast

import hpack

from noticecrawler.notify.senders import h2frames as f
from noticecrawler.notify.senders.wire import (
    MAX_BODY,
    MAX_HEAD,
    MAX_HEADERS,
    USER_AGENT,
    Headers,
    Reply,
    TransportError,
)

#: our receive window for the whole connection (streams keep the default 65,535: an answer past
#: MAX_BODY is dropped anyway); topped up when half of it is used
RECEIVE_WINDOW = 1 << 20
#: streams a connection opens at most, whatever the server allows; and before its SETTINGS came
STREAM_CAP, UNSETTLED_CAP = 1000, 100
#: the deadline queue is rebuilt from the open streams' entries when it holds more than twice
#: their number plus this many (entries of ended streams behind one that stalls)
DEADLINES_SLACK = 32


class _Stream:
    __slots__ = ("body", "credit", "future", "headers", "sending", "size", "status", "window")

    def __init__(self, future: asyncio.Future[Reply], window: int) -> None:
        self.future = future
        self.window = window  # what we may still send on it
        self.sending = True  # our side not ended yet (body waiting for the window)
        self.status = 0
        self.headers = Headers()
        self.body: list[bytes] = []
        self.size = 0
        self.credit = 0  # DATA received on it since its receive window was last topped up


class H2Connection(asyncio.Protocol):
    """Streams multiplexed on one connection; ``on_change`` is called whenever its capacity
    for new streams may have grown (a stream ended, new SETTINGS) or it is gone."""

    def __init__(self, on_change: Callable[[H2Connection], None]) -> None:
        self.on_change = on_change
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.going_away = False  # GOAWAY received (or sent): no new stream
        self.settled = False  # the server's first SETTINGS arrived
        self.streams: dict[int, _Stream] = {}
        self.next_id = 1
        self.max_streams = STREAM_CAP
        self.send_window = f.DEFAULT_WINDOW  # the connection's, for our DATA
        self.stream_window = f.DEFAULT_WINDOW  # a new stream's (the server's INITIAL_WINDOW_SIZE)
        self.max_frame = f.DEFAULT_FRAME_SIZE  # the largest frame the server takes
        self.window_open = asyncio.Event()  # set when a send window grew
        self.received = 0  # bytes of DATA since our connection window was last topped up
        self.decoder = hpack.Decoder(max_header_list_size=MAX_HEAD)
        self.partial: tuple[int, bool, bytearray] | None = None  # a block awaiting CONTINUATION
        self.inbox = b""  # the start of a frame not all received yet
        self.outbox: list[bytes] = []
        self.write_pending = False
        self.deadlines: deque[tuple[float, int, float]] = deque()  # (when, stream id, seconds)
        self.timer: asyncio.TimerHandle | None = None

    # --- asyncio.Protocol ---------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        ours = {f.ENABLE_PUSH: 0, f.MAX_HEADER_LIST_SIZE: MAX_HEAD}
        self.outbox += [f.PREFACE, f.settings(ours)]
        self.outbox.append(f.window_update(0, RECEIVE_WINDOW - f.DEFAULT_WINDOW))
        self._flush()

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        if self.inbox:
            data = self.inbox + data
        pos, end = 0, len(data)
        try:
            while end - pos >= 9:
                high, low, kind, flags, stream_id = f.HEAD.unpack_from(data, pos)
                size = high << 16 | low
                if size > f.DEFAULT_FRAME_SIZE:  # we never announce a larger MAX_FRAME_SIZE
                    raise f.H2Error(f.FRAME_SIZE_ERROR, f"a frame of {size} bytes")
                if end - pos - 9 < size:
                    break
                payload = data[pos + 9 : pos + 9 + size]
                pos += 9 + size
                self._frame(kind, flags, stream_id & f.MAX_STREAM_ID, payload)
                if self.closed:
                    return
        except f.H2Error as exc:
            self._abort(exc.code, str(exc))
            return
        self.inbox = data[pos:]
        self._flush()

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.transport = None
        self.window_open.set()  # a body waiting for the flow-control window stops waiting
        if self.timer is not None:
            self.timer.cancel()
        why = f": {exc}" if exc else ""
        for stream in self.streams.values():
            where = "in the middle of the answer" if stream.status else "before any answer"
            error = TransportError(f"connection closed {where}{why}", answered=bool(stream.status))
            _settle(stream, error)
        self.streams.clear()
        self.on_change(self)

    # --- what the transport asks ----------------------------------------------------------------
    @property
    def capacity(self) -> int:
        """Streams that may be opened now."""
        if self.closed or self.going_away or self.transport is None:
            return 0
        limit = self.max_streams if self.settled else min(self.max_streams, UNSETTLED_CAP)
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
        stream_id = self.next_id
        if stream_id > f.MAX_STREAM_ID:  # 2**30 streams used: a new connection
            self.going_away = True
            self.on_change(self)
            raise TransportError("stream ids used up", unprocessed=True)
        self.next_id += 2
        loop = asyncio.get_running_loop()
        stream = self.streams[stream_id] = _Stream(loop.create_future(), self.stream_window)
        block = f.request_block(authority, scheme, path, tuple(headers.items()), USER_AGENT)
        block += f.content_length(len(body))
        self.outbox += f.header_frames(stream_id, block, not body, self.max_frame)
        size = len(body)
        if not body:
            stream.sending = False
        elif size <= self.send_window and size <= stream.window and size <= self.max_frame:
            self.outbox.append(f.frame(f.DATA, f.END_STREAM, stream_id, body))
            self.send_window -= size
            stream.window -= size
            stream.sending = False
        self._flush()
        when = loop.time() + read_timeout
        self.deadlines.append((when, stream_id, read_timeout))
        if self.timer is None:
            self.timer = loop.call_at(when, self._sweep)
        try:
            if stream.sending:
                await self._send_body(stream_id, stream, body)
            return await stream.future
        finally:
            if self.streams.pop(stream_id, None) is not None and not self.closed:
                self._reset(stream_id)  # cancelled or timed out before its answer ended
            elif stream.sending and not self.closed:
                self._reset(stream_id)  # answered before its body was all sent
            deadlines = self.deadlines
            while deadlines and deadlines[0][1] not in self.streams:
                deadlines.popleft()
            if len(deadlines) > 2 * len(self.streams) + DEADLINES_SLACK:
                self._compact_deadlines()
            self.on_change(self)

    async def _send_body(self, stream_id: int, stream: _Stream, body: bytes) -> None:
        view = memoryview(body)
        while view:
            if stream.future.done() or self.closed:
                return  # answered, reset, timed out or lost meanwhile: request() tells
            size = min(self.send_window, stream.window, self.max_frame, len(view))
            if size <= 0:
                self.window_open.clear()
                await self.window_open.wait()
                continue
            last = size == len(view)
            self.outbox.append(
                f.frame(f.DATA, f.END_STREAM if last else 0, stream_id, bytes(view[:size]))
            )
            self.send_window -= size
            stream.window -= size
            view = view[size:]
            self._flush()
        stream.sending = False

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.closed = True
            self._write(last=True)  # what is queued (a RST_STREAM, a GOAWAY) still goes out
            self.transport.close()
        self.closed = True

    # --- frames received --------------------------------------------------------------------------
    def _frame(self, kind: int, flags: int, stream_id: int, payload: bytes) -> None:
        if self.partial is not None and kind != f.CONTINUATION:
            raise f.H2Error(f.PROTOCOL_ERROR, "a header block interrupted")
        if kind == f.DATA:
            self._data(flags, stream_id, payload)
        elif kind == f.HEADERS:
            self._headers_frame(flags, stream_id, payload)
        elif kind == f.CONTINUATION:
            self._continuation(flags, stream_id, payload)
        elif kind == f.SETTINGS:
            self._settings(flags, stream_id, payload)
        elif kind == f.WINDOW_UPDATE:
            self._window_update(stream_id, payload)
        elif kind == f.RST_STREAM:
            if stream_id == 0 or len(payload) != 4:
                raise f.H2Error(f.PROTOCOL_ERROR, "a malformed RST_STREAM")
            self._stream_reset(stream_id, f.u32(payload))
        elif kind == f.PING:
            if stream_id != 0 or len(payload) != 8:
                raise f.H2Error(f.PROTOCOL_ERROR, "a malformed PING")
            if not flags & f.ACK:
                self.outbox.append(f.frame(f.PING, f.ACK, 0, payload))
        elif kind == f.GOAWAY:
            if stream_id != 0 or len(payload) < 8:
                raise f.H2Error(f.PROTOCOL_ERROR, "a malformed GOAWAY")
            self._goaway(f.u32(payload) & f.MAX_STREAM_ID)
        elif kind == f.PUSH_PROMISE:
            raise f.H2Error(f.PROTOCOL_ERROR, "PUSH_PROMISE although push is off")
        # PRIORITY and frame types we do not know are ignored (RFC 9113 §4.1, §5.5)

    def _data(self, flags: int, stream_id: int, payload: bytes) -> None:
        if stream_id == 0:
            raise f.H2Error(f.PROTOCOL_ERROR, "DATA on stream 0")
        size = len(payload)  # padding counts for flow control
        self.received += size
        if self.received >= RECEIVE_WINDOW // 2:
            self.outbox.append(f.window_update(0, self.received))
            self.received = 0
        if flags & f.PADDED:
            payload = _unpad(payload)
        stream = self._stream(stream_id)
        if stream is None:
            return  # a stream we reset or gave up on
        if not stream.status:
            self._drop(stream_id, "DATA before the answer's headers")
            return
        stream.size += len(payload)
        if stream.size > MAX_BODY:
            self._drop(stream_id, f"answer body over {MAX_BODY} bytes")
            return
        stream.body.append(payload)
        if flags & f.END_STREAM:
            self._ended(stream_id, stream)
            return
        stream.credit += size
        if stream.credit >= f.DEFAULT_WINDOW // 2:  # a long answer: let the rest come
            self.outbox.append(f.window_update(stream_id, stream.credit))
            stream.credit = 0

    def _headers_frame(self, flags: int, stream_id: int, payload: bytes) -> None:
        if stream_id == 0:
            raise f.H2Error(f.PROTOCOL_ERROR, "HEADERS on stream 0")
        if flags & f.PADDED:
            payload = _unpad(payload)
        if flags & f.PRIORITY_FLAG:
            payload = payload[5:]
        end_stream = bool(flags & f.END_STREAM)
        if flags & f.END_HEADERS:
            self._header_block(stream_id, end_stream, payload)
        else:
            self.partial = (stream_id, end_stream, bytearray(payload))

    def _continuation(self, flags: int, stream_id: int, payload: bytes) -> None:
        if self.partial is None or self.partial[0] != stream_id:
            raise f.H2Error(f.PROTOCOL_ERROR, "CONTINUATION without its HEADERS")
        _, end_stream, block = self.partial
        block += payload
        if len(block) > MAX_HEAD:
            raise f.H2Error(f.PROTOCOL_ERROR, f"a header block over {MAX_HEAD} bytes")
        if flags & f.END_HEADERS:
            self.partial = None
            self._header_block(stream_id, end_stream, block)

    def _header_block(self, stream_id: int, end_stream: bool, block: bytes | bytearray) -> None:
        try:  # decoded even for a stream we dropped: the decoder's table is the connection's
            fields = self.decoder.decode(bytes(block), raw=True)
        except hpack.OversizedHeaderListError:
            raise f.H2Error(f.PROTOCOL_ERROR, f"a header list over {MAX_HEAD} bytes") from None
        except hpack.HPACKError as exc:
            raise f.H2Error(f.COMPRESSION_ERROR, f"a bad header block ({exc})") from None
        stream = self._stream(stream_id)
        if stream is None:
            return
        headers = stream.headers
        for name, value in fields:
            key = name.decode("latin-1").lower()
            text = value.decode("latin-1")
            if key == ":status":
                status = int(text) if text.isdigit() else 0
                if 100 <= status < 200 and not end_stream:
                    return  # an interim answer (100 Continue): the real one follows
                stream.status = status
                continue
            if len(headers) >= MAX_HEADERS:
                self._drop(stream_id, f"answer with over {MAX_HEADERS} headers")
                return
            known = headers.get(key)
            headers[key] = f"{known}, {text}" if known is not None else text
        if not stream.status:
            self._drop(stream_id, "answer without a :status")
            return
        length = headers.get("content-length", "0")
        if not length.isdigit() or int(length) > MAX_BODY:
            self._drop(stream_id, f"answer announcing a body of {length[:20]} bytes")
        elif end_stream:
            self._ended(stream_id, stream)

    def _settings(self, flags: int, stream_id: int, payload: bytes) -> None:
        if stream_id != 0 or len(payload) % 6 or (flags & f.ACK and payload):
            raise f.H2Error(f.FRAME_SIZE_ERROR, "a malformed SETTINGS")
        if flags & f.ACK:
            return
        for key, value in f.parse_settings(payload):
            if key == f.MAX_CONCURRENT_STREAMS:
                self.max_streams = min(value, STREAM_CAP)
            elif key == f.INITIAL_WINDOW_SIZE:
                if value > f.MAX_WINDOW:
                    raise f.H2Error(f.FLOW_CONTROL_ERROR, f"INITIAL_WINDOW_SIZE {value}")
                delta, self.stream_window = value - self.stream_window, value
                for stream in self.streams.values():
                    stream.window += delta
                self.window_open.set()
            elif key == f.MAX_FRAME_SIZE:
                if not f.DEFAULT_FRAME_SIZE <= value <= 2**24 - 1:
                    raise f.H2Error(f.PROTOCOL_ERROR, f"MAX_FRAME_SIZE {value}")
                self.max_frame = value
            # HEADER_TABLE_SIZE: we index nothing; MAX_HEADER_LIST_SIZE: advisory
        self.outbox.append(f.frame(f.SETTINGS, f.ACK, 0))
        self.settled = True
        self.on_change(self)

    def _window_update(self, stream_id: int, payload: bytes) -> None:
        if len(payload) != 4:
            raise f.H2Error(f.FRAME_SIZE_ERROR, "a malformed WINDOW_UPDATE")
        increment = f.u32(payload) & f.MAX_WINDOW
        if stream_id == 0:
            if increment == 0:
                raise f.H2Error(f.PROTOCOL_ERROR, "a WINDOW_UPDATE of 0")
            self.send_window += increment
            if self.send_window > f.MAX_WINDOW:
                raise f.H2Error(f.FLOW_CONTROL_ERROR, "the send window over 2**31-1")
        else:
            stream = self.streams.get(stream_id)
            if stream is None:
                return
            if increment == 0 or stream.window + increment > f.MAX_WINDOW:
                self._drop(stream_id, "a bad WINDOW_UPDATE on the stream")
                return
            stream.window += increment
        self.window_open.set()

    def _stream_reset(self, stream_id: int, code: int) -> None:
        stream = self._stream(stream_id)
        if stream is None:
            return
        self.streams.pop(stream_id)  # closed on both sides: nothing to reset back
        error = TransportError(
            f"stream reset by the server ({f.error_name(code)})",
            answered=bool(stream.status),
            unprocessed=code == f.REFUSED_STREAM,
        )
        _settle(stream, error)

    def _goaway(self, last_stream_id: int) -> None:
        self.going_away = True
        for stream_id, stream in list(self.streams.items()):
            if stream_id > last_stream_id:
                error = TransportError("GOAWAY: the server did not take it", unprocessed=True)
                self.streams.pop(stream_id)
                _settle(stream, error)
        self.on_change(self)

    # --- helpers --------------------------------------------------------------------------------
    def _stream(self, stream_id: int) -> _Stream | None:
        stream = self.streams.get(stream_id)
        if stream is None and (stream_id >= self.next_id or not stream_id & 1):
            raise f.H2Error(f.PROTOCOL_ERROR, f"a frame on stream {stream_id}, never opened")
        return stream

    def _ended(self, stream_id: int, stream: _Stream) -> None:
        del self.streams[stream_id]
        _settle(stream, Reply(stream.status, stream.headers, b"".join(stream.body)))

    def _drop(self, stream_id: int, why: str) -> None:
        stream = self.streams.get(stream_id)
        if stream is not None:
            _settle(stream, TransportError(why, answered=True))
        self._reset(stream_id)

    def _reset(self, stream_id: int) -> None:
        self.streams.pop(stream_id, None)
        self.outbox.append(f.rst_stream(stream_id, f.CANCEL))
        self._flush()

    def _abort(self, code: int, why: str) -> None:
        """A connection error: GOAWAY, every stream failed, the connection closed."""
        error = TransportError(f"HTTP/2 protocol error: {why}", answered=True)
        for stream in self.streams.values():
            _settle(stream, error)
        self.streams.clear()
        self.outbox.append(f.goaway(self.next_id - 2 if self.next_id > 1 else 0, code))
        self.close()

    def _compact_deadlines(self) -> None:
        """Keep only the open streams' deadlines, in order. Ended streams' entries leave the
        queue only from its head, so while one stream waits out its read timeout every push
        after it leaves one behind; this bounds the queue to about twice the open streams. It
        removes over half of what it reads: O(1) per push, amortized; no deadline changes."""
        streams = self.streams
        self.deadlines = deque(entry for entry in self.deadlines if entry[1] in streams)

    def _sweep(self) -> None:
        """The connection's one timer: fail the streams past their deadline, then wait for
        the next one (deadlines come in order: the transport gives every push the same
        read timeout)."""
        self.timer = None
        loop = asyncio.get_running_loop()
        now = loop.time() + 0.001
        deadlines = self.deadlines
        while deadlines:
            when, stream_id, seconds = deadlines[0]
            stream = self.streams.get(stream_id)
            if stream is None:
                deadlines.popleft()
            elif when <= now:
                deadlines.popleft()
                _settle(stream, TimeoutError(f"no answer within {seconds:g} s"))
                self.window_open.set()  # its body may be waiting for the window: let it see
            else:
                self.timer = loop.call_at(when, self._sweep)
                return

    def _flush(self) -> None:
        """Write what is queued once per turn of the loop: the frames of every stream started
        (or answered) meanwhile go out in one send, not one system call each."""
        if not self.write_pending and self.transport is not None:
            self.write_pending = True
            asyncio.get_running_loop().call_soon(self._write)

    def _write(self, last: bool = False) -> None:
        self.write_pending = False
        if self.transport is None or (self.closed and not last):
            return  # closing: nothing more goes out
        if self.outbox:
            data = b"".join(self.outbox)
            self.outbox.clear()
            self.transport.write(data)
        if self.going_away and not self.closed and not self.streams:
            self.close()  # gone away and nothing left to wait for


def _settle(stream: _Stream, outcome: Reply | Exception) -> None:
    if stream.future.done():
        return
    if isinstance(outcome, Exception):
        stream.future.set_exception(outcome)
    else:
        stream.future.set_result(outcome)


def _unpad(payload: bytes) -> bytes:
    if not payload or payload[0] >= len(payload):
        raise f.H2Error(f.PROTOCOL_ERROR, "padding as long as the frame")
    return payload[1 : len(payload) - payload[0]]
