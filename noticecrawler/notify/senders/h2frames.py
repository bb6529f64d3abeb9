"""HTTP/2 framing for the push client (RFC 9113 §4, §6): frame heads, the frames a client
sends, and request header blocks (RFC 7541) built once per set of fields.

Requests use no HPACK state at all: every field is a "literal header field without indexing,
new name" (RFC 7541 §6.2.2) with plain (not Huffman) strings, so a header block is bytes that
can be cached and joined — the fields shared by every push of a sender once, then only the
push's ``content-length``. Answers are decoded by the ``hpack`` library (senders/http2.py).
"""

from __future__ import annotations

import functools
import struct

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# frame types (RFC 9113 §6)
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY = range(8)
WINDOW_UPDATE, CONTINUATION = 8, 9
# flags
END_STREAM = ACK = 0x1
END_HEADERS = 0x4
PADDED = 0x8
PRIORITY_FLAG = 0x20
# settings (§6.5.2)
HEADER_TABLE_SIZE, ENABLE_PUSH, MAX_CONCURRENT_STREAMS = 1, 2, 3
INITIAL_WINDOW_SIZE, MAX_FRAME_SIZE, MAX_HEADER_LIST_SIZE = 4, 5, 6
# error codes (§7)
NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR = 0, 1, 2, 3
FRAME_SIZE_ERROR, REFUSED_STREAM, CANCEL, COMPRESSION_ERROR = 6, 7, 8, 9
ERROR_NAMES = {
    0: "NO_ERROR",
    1: "PROTOCOL_ERROR",
    2: "INTERNAL_ERROR",
    3: "FLOW_CONTROL_ERROR",
    4: "SETTINGS_TIMEOUT",
    5: "STREAM_CLOSED",
    6: "FRAME_SIZE_ERROR",
    7: "REFUSED_STREAM",
    8: "CANCEL",
    9: "COMPRESSION_ERROR",
    10: "CONNECT_ERROR",
    11: "ENHANCE_YOUR_CALM",
    12: "INADEQUATE_SECURITY",
    13: "HTTP_1_1_REQUIRED",
}

DEFAULT_WINDOW = 65_535
DEFAULT_FRAME_SIZE = 16_384
MAX_WINDOW = 2**31 - 1
MAX_STREAM_ID = 2**31 - 1

#: a frame head: length (24 bits, as 8 + 16), type, flags, stream id (31 bits, R bit masked)
HEAD = struct.Struct(">BHBBL")
_U32 = struct.Struct(">L")
_TWO_U32 = struct.Struct(">LL")
_SETTING = struct.Struct(">HL")


class H2Error(Exception):
    """A connection error (§5.4.1): the connection is closed with GOAWAY ``code``."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def error_name(code: int) -> str:
    return ERROR_NAMES.get(code, f"error {code:#x}")


def frame(kind: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    size = len(payload)
    return HEAD.pack(size >> 16, size & 0xFFFF, kind, flags, stream_id) + payload


def settings(values: dict[int, int]) -> bytes:
    return frame(SETTINGS, 0, 0, b"".join(_SETTING.pack(k, v) for k, v in values.items()))


def parse_settings(payload: bytes) -> list[tuple[int, int]]:
    return [_SETTING.unpack_from(payload, i) for i in range(0, len(payload), 6)]


def window_update(stream_id: int, increment: int) -> bytes:
    return frame(WINDOW_UPDATE, 0, stream_id, _U32.pack(increment))


def rst_stream(stream_id: int, code: int) -> bytes:
    return frame(RST_STREAM, 0, stream_id, _U32.pack(code))


def goaway(last_stream_id: int, code: int, debug: bytes = b"") -> bytes:
    return frame(GOAWAY, 0, 0, _TWO_U32.pack(last_stream_id, code) + debug)


def u32(payload: bytes, offset: int = 0) -> int:
    value: int = _U32.unpack_from(payload, offset)[0]
    return value


def header_frames(stream_id: int, block: bytes, end_stream: bool, max_size: int) -> list[bytes]:
    """HEADERS, then CONTINUATION frames when the block is over the peer's frame size."""
    flags = END_STREAM if end_stream else 0
    if len(block) <= max_size:
        return [frame(HEADERS, flags | END_HEADERS, stream_id, block)]
    frames = [frame(HEADERS, flags, stream_id, block[:max_size])]
    for start in range(max_size, len(block), max_size):
        last = start + max_size >= len(block)
        chunk = block[start : start + max_size]
        frames.append(frame(CONTINUATION, END_HEADERS if last else 0, stream_id, chunk))
    return frames


# --- HPACK, encoding side (RFC 7541 §5.1, §5.2, §6.2.2) ----------------------------------------
def hpack_int(value: int, prefix_bits: int, flags: int = 0) -> bytes:
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes((flags | value,))
    out = [flags | limit]
    value -= limit
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def literal(name: bytes, value: bytes) -> bytes:
    """``name: value`` as a literal field without indexing, new name, no Huffman coding."""
    return b"\x00" + hpack_int(len(name), 7) + name + hpack_int(len(value), 7) + value


@functools.lru_cache(maxsize=64)
def request_block(
    authority: str, scheme: str, path: str, headers: tuple[tuple[str, str], ...], user_agent: str
) -> bytes:
    """The header block of a POST but its content-length: the same bytes for every push that
    shares these fields (header names lowercased as HTTP/2 wants; values checked by the
    transport before they get here)."""
    fields = [
        (b":method", b"POST"),
        (b":scheme", scheme.encode()),
        (b":authority", authority.encode("latin-1")),
        (b":path", path.encode("latin-1")),
        (b"user-agent", user_agent.encode("latin-1")),
    ]
    fields.extend((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers)
    return b"".join(literal(name, value) for name, value in fields)


@functools.lru_cache(maxsize=1024)
def content_length(size: int) -> bytes:
    return literal(b"content-length", str(size).encode())
