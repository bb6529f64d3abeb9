"""The lean HTTP/2 side of the fake FCM (``FakeFcm(lean=True)``, the benches' fake): framing
written here after RFC 9113, the client's header blocks decoded by the ``hpack`` library.

What a bench needs at the least CPU per push: a request with the right bearer token on the
send path is counted and answered ``{"name": ...}`` after the fake's ``delay``, its body not
parsed. Anything else (a wrong token, another path, a scripted fault) goes through the same
``_respond`` as every other side of the fake, so faults still apply. Per connection:

* frames parsed with one ``struct`` unpack each; HPACK decoding is stateful, so every header
  block (HEADERS + CONTINUATION) is decoded, even of a stream that is refused;
* answers are HPACK literals without indexing (RFC 7541 6.2.2: the client's table is left
  alone), made once per content length and reused;
* the delayed answers wait in one queue with one timer: the streams that arrive in the same
  turn of the loop share a due time and are answered together, each no earlier than its own;
* everything one turn produces goes out in one ``transport.write``;
* flow control both ways: the connection window is opened to 16 MiB and kept open, a stream's
  window (65,535) is replenished while its body is still coming; answers wait for the client's
  windows (``WINDOW_UPDATE``, ``SETTINGS_INITIAL_WINDOW_SIZE``);
* ``requests_per_connection`` sends GOAWAY naming the last stream answered, as the strict side.

Not checked here (the strict side, on the ``h2`` library, checks them): request header names
and values, content-length against the body, stream priorities.
"""

from __future__ import annotations

import asyncio
import collections
import re
import struct
import threading
from typing import TYPE_CHECKING, Any

import hpack
from hpack.table import HeaderTable

from tests.fakefcm_h2 import PREFACE

if TYPE_CHECKING:
    from tests.fakefcm import FakeFcm

# frame types and flags (RFC 9113 section 6)
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY = range(8)
WINDOW_UPDATE, CONTINUATION = 8, 9
END_STREAM = ACK = 0x1
END_HEADERS, PADDED, PRIORITY_FLAG = 0x4, 0x8, 0x20
# error codes (section 7)
NO_ERROR, PROTOCOL_ERROR, FLOW_CONTROL_ERROR, STREAM_CLOSED = 0, 1, 3, 5
FRAME_SIZE_ERROR, REFUSED_STREAM, COMPRESSION_ERROR = 6, 7, 9
# settings (section 6.5.2)
INITIAL_WINDOW_SIZE, MAX_FRAME_SIZE, MAX_CONCURRENT_STREAMS, MAX_HEADER_LIST_SIZE = 4, 5, 3, 6
ENABLE_PUSH = 2

#: a frame header: (length << 8 | type), flags, stream id
_HEAD = struct.Struct(">IBI")
_SETTING = struct.Struct(">HI")
_U32 = struct.Struct(">I")
_GOAWAY = struct.Struct(">II")
_MAX_WINDOW = 2**31 - 1
_FRAME = 16384  # SETTINGS_MAX_FRAME_SIZE: the fake keeps the default
_STREAM_WINDOW = 65535  # SETTINGS_INITIAL_WINDOW_SIZE: the fake keeps the default
_CONNECTION_WINDOW = 1 << 24
_HEADER_LIST = 65536
_SEND_PATH = re.compile(rb"^/v1/projects/([^/]+)/messages:send$")

# HPACK's static table (RFC 7541 appendix A): the first index of each name, and of each status
_NAMES: dict[bytes, int] = {}
_STATUSES: dict[bytes, int] = {}
for _index, (_name, _value) in enumerate(HeaderTable.STATIC_TABLE, start=1):
    _NAMES.setdefault(_name, _index)
    if _name == b":status":
        _STATUSES[_value] = _index


def _integer(value: int, prefix: int, first: int = 0) -> bytes:
    """An HPACK integer with a ``prefix``-bit prefix (RFC 7541 5.1)."""
    limit = (1 << prefix) - 1
    if value < limit:
        return bytes([first | value])
    out = bytearray([first | limit])
    value -= limit
    while value >= 128:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _string(raw: bytes) -> bytes:
    return _integer(len(raw), 7) + raw  # not Huffman-coded


def header_block(status: int, fields: list[tuple[bytes, bytes]]) -> bytes:
    """An HPACK block that adds nothing to the client's dynamic table: the status indexed when
    the static table has it, every field a literal without indexing (its name indexed when the
    static table has the name)."""
    code = str(status).encode()
    if code in _STATUSES:
        out = [_integer(_STATUSES[code], 7, 0x80)]
    else:
        out = [_integer(_NAMES[b":status"], 4) + _string(code)]
    for name, value in fields:
        index = _NAMES.get(name)
        if index:
            out.append(_integer(index, 4) + _string(value))
        else:
            out.append(b"\x00" + _string(name) + _string(value))
    return b"".join(out)


def frame(kind: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    return _HEAD.pack(len(payload) << 8 | kind, flags, stream_id) + payload


class _Fail(Exception):
    """A connection error (RFC 9113 5.4.1): GOAWAY with this code, then hang up."""

    def __init__(self, code: int) -> None:
        self.code = code


class _Stream:
    """A request whose END_STREAM has not arrived yet."""

    __slots__ = ("chunks", "headers", "window")

    def __init__(self, headers: dict[bytes, bytes]) -> None:
        self.headers = headers
        self.chunks: list[bytes] = []
        self.window = _STREAM_WINDOW  # what the client may still send on it


class LeanH2Connection(asyncio.Protocol):
    """One HTTP/2 connection of a lean fake (the interface of fakefcm_h2.H2Connection)."""

    def __init__(self, fake: FakeFcm, transport: asyncio.Transport, on_close: Any) -> None:
        from tests.fakefcm import _STALL, _respond

        self._respond, self._stall = _respond, _STALL
        self.fake = fake
        self.transport: asyncio.Transport | None = transport
        self.on_close = on_close
        self.loop = asyncio.get_running_loop()
        self.auth = f"Bearer {fake.expected_token}".encode()
        self.lock: threading.Lock = fake._lock
        self.decoder = hpack.Decoder(max_header_list_size=_HEADER_LIST)
        self.decoded: dict[bytes, dict[bytes, bytes]] = {}  # see _decode
        self.buffer = b""
        self.preface = False  # the client's preface has arrived
        self.continuation: tuple[int, int, bytearray] | None = None  # stream, flags, block
        self.receiving: dict[int, _Stream] = {}
        #: every open stream (receiving, waiting for its answer, or stalled): its send window
        self.windows: dict[int, int] = {}
        self.initial_window = 65535  # the client's SETTINGS_INITIAL_WINDOW_SIZE
        self.send_window = 65535  # the client's connection window
        self.max_frame = _FRAME  # the client's SETTINGS_MAX_FRAME_SIZE
        self.receive_window = _CONNECTION_WINDOW
        self.last_client_stream = 0
        self.queue: collections.deque[tuple[float, int, Any]] = collections.deque()
        self.timer: asyncio.TimerHandle | None = None
        self.pending: dict[int, tuple[bytes, int]] = {}  # body bytes waiting for a window
        self.out: list[bytes] = []
        self.counted = 0  # lean pushes answered since the last flush
        self.projects: dict[bytes, bytes] = {}  # send paths seen: path -> project
        self.blocks: dict[int, bytes] = {}  # 200 header blocks by content length
        self.accepted = 0  # requests taken (counted for GOAWAY)
        self.last_stream: int | None = None  # set once our GOAWAY went out
        self.peer_gone = False  # the client sent GOAWAY
        self.finished = False  # every stream our GOAWAY promised is answered
        self.eof = False  # our side of the connection is ended
        settings = (
            (MAX_CONCURRENT_STREAMS, fake.max_streams),
            (MAX_HEADER_LIST_SIZE, _HEADER_LIST),
            (ENABLE_PUSH, 0),
        )
        self.out.append(frame(SETTINGS, 0, 0, b"".join(_SETTING.pack(*s) for s in settings)))
        opened = _U32.pack(_CONNECTION_WINDOW - 65535)
        self.out.append(frame(WINDOW_UPDATE, 0, 0, opened))
        self.flush()

    # --- lifecycle -----------------------------------------------------------------------
    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.timer is not None:
            self.timer.cancel()
        self.on_close()

    def flush(self) -> None:
        if self.counted:
            with self.lock:
                self.fake.lean_count += self.counted
            self.counted = 0
        # after write_eof (``eof``) nothing more can go out
        if self.out and self.transport is not None and not self.eof:
            self.transport.write(b"".join(self.out))
        self.out.clear()
        if self.last_stream is not None or self.peer_gone:
            self._maybe_finish()

    def _maybe_finish(self) -> None:
        if self.transport is None or self.queue or self.pending:
            return
        if self.peer_gone and not self.windows:
            self.close()
        elif self.last_stream is not None:
            last = self.last_stream
            if any(stream_id <= last for stream_id in self.windows):
                return
            # everything promised before the GOAWAY is answered: end our side and let the
            # client hang up (TLS cannot half-close: there the client hangs up on its own);
            # streams still arriving stay unprocessed (last_stream is kept)
            if self.finished:
                return
            self.finished = True
            if self.transport.can_write_eof():
                self.transport.write_eof()
                self.eof = True
            self.loop.call_later(5, self.close)

    # --- receiving -----------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        buffer = self.buffer + data if self.buffer else data
        try:
            self.buffer = self._frames(buffer)
        except _Fail as failure:
            goaway = _GOAWAY.pack(self.last_client_stream, failure.code)
            self.out.append(frame(GOAWAY, 0, 0, goaway))
            self.flush()
            self.close()
            return
        self.flush()
        self._arm()

    def _frames(self, buffer: bytes) -> bytes:
        """Handle every complete frame in ``buffer``; return what is left of it."""
        pos = 0
        if not self.preface:
            if len(buffer) < len(PREFACE):
                if not PREFACE.startswith(buffer):
                    raise _Fail(PROTOCOL_ERROR)
                return buffer
            if not buffer.startswith(PREFACE):
                raise _Fail(PROTOCOL_ERROR)
            self.preface, pos = True, len(PREFACE)
        size = len(buffer)
        unpack = _HEAD.unpack_from
        while size - pos >= 9:
            head, flags, stream_id = unpack(buffer, pos)
            length = head >> 8
            if length > _FRAME:
                raise _Fail(FRAME_SIZE_ERROR)
            end = pos + 9 + length
            if end > size:
                break
            kind = head & 0xFF
            stream_id &= 0x7FFFFFFF
            payload = buffer[pos + 9 : end]
            pos = end
            if self.continuation is not None and kind != CONTINUATION:
                raise _Fail(PROTOCOL_ERROR)
            if kind == DATA:
                self._data(flags, stream_id, payload)
            elif kind == HEADERS:
                self._headers_frame(flags, stream_id, payload)
            elif kind == CONTINUATION:
                self._continuation(flags, stream_id, payload)
            elif kind == SETTINGS:
                self._settings(flags, stream_id, payload)
            elif kind == WINDOW_UPDATE:
                self._window_update(stream_id, payload)
            elif kind == RST_STREAM:
                if stream_id == 0:
                    raise _Fail(PROTOCOL_ERROR)
                if length != 4:
                    raise _Fail(FRAME_SIZE_ERROR)
                self._forget(stream_id)
            elif kind == PING:
                if stream_id:
                    raise _Fail(PROTOCOL_ERROR)
                if length != 8:
                    raise _Fail(FRAME_SIZE_ERROR)
                if not flags & ACK:
                    self.out.append(frame(PING, ACK, 0, payload))
            elif kind == GOAWAY:
                self.peer_gone = True
            elif kind == PUSH_PROMISE:
                raise _Fail(PROTOCOL_ERROR)  # a client never promises
            elif kind == PRIORITY and length != 5:
                self._reset(stream_id, FRAME_SIZE_ERROR)
            # PRIORITY is advisory, unknown frame types are ignored (section 5.5)
        return buffer[pos:] if pos < size else b""

    @staticmethod
    def _unpad(flags: int, payload: bytes) -> bytes:
        if flags & PADDED:
            if not payload or payload[0] >= len(payload):
                raise _Fail(PROTOCOL_ERROR)
            return payload[1 : len(payload) - payload[0]]
        return payload

    def _data(self, flags: int, stream_id: int, payload: bytes) -> None:
        if stream_id == 0:
            raise _Fail(PROTOCOL_ERROR)
        length = len(payload)  # padding counts against flow control too
        self.receive_window -= length
        if self.receive_window < 0:
            raise _Fail(FLOW_CONTROL_ERROR)
        if self.receive_window < _CONNECTION_WINDOW // 2:
            grown = _CONNECTION_WINDOW - self.receive_window
            self.out.append(frame(WINDOW_UPDATE, 0, 0, _U32.pack(grown)))
            self.receive_window = _CONNECTION_WINDOW
        stream = self.receiving.get(stream_id)
        if stream is None:
            if stream_id > self.last_client_stream:
                raise _Fail(PROTOCOL_ERROR)  # DATA on an idle stream
            if stream_id in self.windows:  # half closed by the client: no more DATA
                self._reset(stream_id, STREAM_CLOSED)
            return  # a stream reset meanwhile, or past our GOAWAY: dropped
        stream.window -= length
        if stream.window < 0:
            self._reset(stream_id, FLOW_CONTROL_ERROR)
            return
        if length:
            stream.chunks.append(self._unpad(flags, payload))
        if flags & END_STREAM:
            self._complete(stream_id)
        elif stream.window < _STREAM_WINDOW // 2:  # more of the body to come
            grown = _STREAM_WINDOW - stream.window
            self.out.append(frame(WINDOW_UPDATE, 0, stream_id, _U32.pack(grown)))
            stream.window = _STREAM_WINDOW

    def _headers_frame(self, flags: int, stream_id: int, payload: bytes) -> None:
        if stream_id == 0 or not stream_id & 1:
            raise _Fail(PROTOCOL_ERROR)
        block = self._unpad(flags, payload)
        if flags & PRIORITY_FLAG:
            block = block[5:]
        if flags & END_HEADERS:
            self._header_block(stream_id, flags, block)
        else:
            self.continuation = (stream_id, flags, bytearray(block))

    def _continuation(self, flags: int, stream_id: int, payload: bytes) -> None:
        if self.continuation is None or self.continuation[0] != stream_id:
            raise _Fail(PROTOCOL_ERROR)
        _, first_flags, block = self.continuation
        block += payload
        if len(block) > _HEADER_LIST:
            raise _Fail(PROTOCOL_ERROR)  # a header block the fake will not hold
        if flags & END_HEADERS:
            self.continuation = None
            self._header_block(stream_id, first_flags, bytes(block))

    def _decode(self, block: bytes) -> dict[bytes, bytes]:
        """The header block decoded against the connection's HPACK table. A block that leaves
        the table as it was (indexed fields, literals without indexing) decodes the same way
        until the table changes: it is kept, keyed by its bytes, and the kept ones are dropped
        as soon as a block changes the table."""
        headers = self.decoded.get(block)
        if headers is not None:
            return headers
        table = self.decoder.header_table
        entries = table.dynamic_entries
        before = (entries[0] if entries else None, len(entries), table.maxsize)
        try:
            headers = dict(self.decoder.decode(block, raw=True))  # type: ignore[arg-type]
        except (hpack.HPACKError, ValueError, IndexError):
            raise _Fail(COMPRESSION_ERROR) from None
        after = (entries[0] if entries else None, len(entries), table.maxsize)
        if after[0] is not before[0] or after[1:] != before[1:]:
            self.decoded.clear()
        elif len(self.decoded) < 1024:
            self.decoded[block] = headers
        return headers

    def _header_block(self, stream_id: int, flags: int, block: bytes) -> None:
        headers = self._decode(block)
        stream = self.receiving.get(stream_id)
        if stream is not None:  # trailers: they end the request
            if not flags & END_STREAM:
                raise _Fail(PROTOCOL_ERROR)
            self._complete(stream_id)
            return
        if stream_id <= self.last_client_stream:
            raise _Fail(PROTOCOL_ERROR if stream_id not in self.windows else STREAM_CLOSED)
        self.last_client_stream = stream_id
        if self.last_stream is not None and stream_id > self.last_stream:
            return  # past our GOAWAY: never processed, as it promised
        if len(self.windows) >= self.fake.max_streams:
            self.out.append(frame(RST_STREAM, 0, stream_id, _U32.pack(REFUSED_STREAM)))
            return
        self.receiving[stream_id] = _Stream(headers)
        self.windows[stream_id] = self.initial_window
        if flags & END_STREAM:
            self._complete(stream_id)

    def _settings(self, flags: int, stream_id: int, payload: bytes) -> None:
        if stream_id:
            raise _Fail(PROTOCOL_ERROR)
        if flags & ACK:
            if payload:
                raise _Fail(FRAME_SIZE_ERROR)
            return
        if len(payload) % 6:
            raise _Fail(FRAME_SIZE_ERROR)
        for pos in range(0, len(payload), 6):
            code, value = _SETTING.unpack_from(payload, pos)
            if code == INITIAL_WINDOW_SIZE:
                if value > _MAX_WINDOW:
                    raise _Fail(FLOW_CONTROL_ERROR)
                delta, self.initial_window = value - self.initial_window, value
                for open_id in self.windows:
                    self.windows[open_id] += delta
            elif code == MAX_FRAME_SIZE:
                if not _FRAME <= value < 1 << 24:
                    raise _Fail(PROTOCOL_ERROR)
                self.max_frame = value
            elif code == ENABLE_PUSH and value > 1:
                raise _Fail(PROTOCOL_ERROR)
            # the header table size binds our encoder, which never indexes
        self.out.append(frame(SETTINGS, ACK, 0))
        if self.pending:
            self._send_pending()

    def _window_update(self, stream_id: int, payload: bytes) -> None:
        if len(payload) != 4:
            raise _Fail(FRAME_SIZE_ERROR)
        grown = _U32.unpack(payload)[0] & 0x7FFFFFFF
        if stream_id == 0:
            if not grown:
                raise _Fail(PROTOCOL_ERROR)
            self.send_window += grown
            if self.send_window > _MAX_WINDOW:
                raise _Fail(FLOW_CONTROL_ERROR)
        elif stream_id in self.windows:
            if not grown:
                self._reset(stream_id, PROTOCOL_ERROR)
                return
            self.windows[stream_id] += grown
            if self.windows[stream_id] > _MAX_WINDOW:
                self._reset(stream_id, FLOW_CONTROL_ERROR)
                return
        if self.pending:
            self._send_pending()

    def _reset(self, stream_id: int, code: int) -> None:
        self.out.append(frame(RST_STREAM, 0, stream_id, _U32.pack(code)))
        self._forget(stream_id)

    def _forget(self, stream_id: int) -> None:
        """The stream is closed: its request dropped, its answer (queued or half sent) too."""
        self.receiving.pop(stream_id, None)
        self.windows.pop(stream_id, None)
        self.pending.pop(stream_id, None)

    # --- answering -----------------------------------------------------------------------
    def _complete(self, stream_id: int) -> None:
        """The request on ``stream_id`` has arrived whole: queue its answer."""
        stream = self.receiving.pop(stream_id)
        if self.last_stream is not None and stream_id > self.last_stream:
            self.windows.pop(stream_id, None)
            return  # after our GOAWAY: never processed
        self.accepted += 1
        limit = self.fake.requests_per_connection
        if limit and self.accepted >= limit and self.last_stream is None:
            self.last_stream = stream_id
            self.out.append(frame(GOAWAY, 0, 0, _GOAWAY.pack(stream_id, NO_ERROR)))
        headers = stream.headers
        method, path = headers.get(b":method"), headers.get(b":path", b"")
        project = self.projects.get(path)
        if project is None and method == b"POST":
            match = _SEND_PATH.match(path)
            if match:
                project = self.projects[path] = match.group(1)
        fake = self.fake
        lean = (
            project is not None
            and method == b"POST"
            and headers.get(b"authorization") == self.auth
            and not fake._global
            and not fake._behaviours
        )
        request = project if lean else (headers, b"".join(stream.chunks))
        delay = fake.delay if method == b"POST" and path != b"/token" else 0.0
        if delay:
            self.queue.append((self.loop.time() + delay, stream_id, request))
        else:
            self._answer(stream_id, request)

    def _arm(self) -> None:
        if self.timer is None and self.queue:
            self.timer = self.loop.call_at(self.queue[0][0], self._due)

    def _due(self) -> None:
        self.timer = None
        now, queue = self.loop.time(), self.queue
        while queue and queue[0][0] <= now:
            _, stream_id, request = queue.popleft()
            self._answer(stream_id, request)
        self.flush()
        self._arm()

    def _answer(self, stream_id: int, request: Any) -> None:
        if stream_id not in self.windows or self.transport is None:
            return  # reset by the client meanwhile
        if isinstance(request, bytes):  # a lean push: counted, answered with a name
            body = b'{"name": "projects/%s/messages/%d"}' % (request, next(self.fake._names))
            block = self.blocks.get(len(body))
            if block is None:
                fields = [
                    (b"content-type", b"application/json; charset=UTF-8"),
                    (b"content-length", b"%d" % len(body)),
                ]
                block = self.blocks[len(body)] = header_block(200, fields)
            self.counted += 1
            self.out.append(frame(HEADERS, END_HEADERS, stream_id, block))
            self._send_body(stream_id, body, 0)
            return
        self._answer_slowly(stream_id, *request)

    def _answer_slowly(self, stream_id: int, headers: dict[bytes, bytes], raw: bytes) -> None:
        from tests.fakefcm import answer_bytes

        text = {k.decode("latin-1"): v.decode("latin-1") for k, v in headers.items()}
        method, path = text.get(":method", ""), text.get(":path", "")
        answer = self._respond(self.fake, method, path, text, raw)
        if answer is self._stall:
            return  # no answer until stop() closes the connection
        if answer.count:
            self.fake._count(answer.token, answer.status)
        kind, data = answer_bytes(answer)
        extra = {name.lower(): value for name, value in answer.headers.items()}
        filler = int(extra.pop("x-filler", "0"))  # bytes of b"x" made as they go out
        length = extra.pop("content-length", str(len(data)))
        fields = [(b"content-type", kind.encode())]
        if length:  # "": no length announced, the body runs until the stream ends
            fields.append((b"content-length", length.encode()))
        fields.extend((k.encode("latin-1"), v.encode("latin-1")) for k, v in extra.items())
        block = header_block(answer.status, fields)
        self.out.append(frame(HEADERS, END_HEADERS, stream_id, block))
        self._send_body(stream_id, data, filler)

    def _send_body(self, stream_id: int, data: bytes, filler: int) -> None:
        """DATA frames as far as the client's windows let; the rest waits in ``pending``."""
        while True:
            left = len(data) + filler
            size = min(left, self.send_window, self.windows[stream_id], self.max_frame)
            if size <= 0 and left:
                self.pending[stream_id] = (data, filler)
                return
            chunk, data = data[:size], data[size:]
            made = min(filler, size - len(chunk))
            if made:
                chunk, filler = chunk + b"x" * made, filler - made
            last = not (data or filler)
            self.out.append(frame(DATA, END_STREAM if last else 0, stream_id, chunk))
            self.send_window -= size
            self.windows[stream_id] -= size
            if last:
                del self.windows[stream_id]
                self.pending.pop(stream_id, None)
                return

    def _send_pending(self) -> None:
        for stream_id, (data, filler) in list(self.pending.items()):
            if self.send_window <= 0:
                return
            del self.pending[stream_id]
            if stream_id in self.windows:
                self._send_body(stream_id, data, filler)
