"""The hand-written HTTP/2 client connection (noticecrawler/notify/senders/http2.py) against a
scripted server on 127.0.0.1 that writes raw frames: CONTINUATION and padding, flow control
with a big body and small windows, SETTINGS changing mid-run, PING, GOAWAY, resets, timeouts,
and malformed input, which must close the connection and fail its streams as network errors
(never an exception escaping into the event loop). The server decodes our header blocks with
the ``hpack`` library; tests/test_senders_http2.py runs the same connection against the fake
FCM's HTTP/2 side (the ``h2`` library)."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Awaitable, Callable
from typing import Any

import hpack
import pytest

from noticecrawler.notify.senders import h2frames as f
from noticecrawler.notify.senders.http2 import H2Connection
from noticecrawler.notify.senders.wire import NETWORK_ERRORS, Reply, TransportError

Frame = tuple[int, int, int, bytes]  # type, flags, stream id, payload


class Peer:
    """The server's side of one connection: the client's frames as they come, raw writes."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.encoder = hpack.Encoder()
        self.decoder = hpack.Decoder()
        self.seen: list[Frame] = []

    async def start(self, **settings: int) -> None:
        assert await self.reader.readexactly(len(f.PREFACE)) == f.PREFACE
        self.send(f.settings({getattr(f, k): v for k, v in settings.items()}))

    async def next(self, *kinds: int) -> Frame:
        """The client's next frame of one of ``kinds`` (the others are recorded and skipped)."""
        while True:
            head = await asyncio.wait_for(self.reader.readexactly(9), 5)
            high, low, kind, flags, stream_id = f.HEAD.unpack(head)
            payload = await self.reader.readexactly(high << 16 | low)
            frame = (kind, flags, stream_id & f.MAX_STREAM_ID, payload)
            self.seen.append(frame)
            if kind in kinds:
                return frame

    async def request(self) -> tuple[int, dict[str, str], bytes]:
        """A whole request: its stream, its fields (decoded by hpack), its body."""
        _, flags, stream_id, block = await self.next(f.HEADERS)
        while not flags & f.END_HEADERS:
            _, flags, _, more = await self.next(f.CONTINUATION)
            block += more
        fields = {k.decode(): v.decode() for k, v in self.decoder.decode(block, raw=True)}
        body = b""
        ended = flags & f.END_STREAM
        while not ended:
            _, data_flags, _, chunk = await self.next(f.DATA)
            body += chunk
            ended = data_flags & f.END_STREAM
        return stream_id, fields, body

    def send(self, *frames: bytes) -> None:
        self.writer.write(b"".join(frames))

    def block(self, status: int = 200, **headers: str) -> bytes:
        fields = [(":status", str(status)), *((k.replace("_", "-"), v) for k, v in headers.items())]
        return bytes(self.encoder.encode(fields))

    def answer(self, stream_id: int, body: bytes = b"{}", status: int = 200) -> None:
        block = self.block(status, content_length=str(len(body)))
        self.send(
            f.frame(f.HEADERS, f.END_HEADERS, stream_id, block),
            f.frame(f.DATA, f.END_STREAM, stream_id, body),
        )


Script = Callable[[Peer], Awaitable[None]]
#: what went wrong on the server's side (shown when the client's side fails first)
SERVER_FAILED: list[BaseException] = []


async def connect(script: Script) -> tuple[H2Connection, asyncio.Task[None], list[H2Connection]]:
    """A connection to a server running ``script`` on its one accepted connection."""
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    failed = SERVER_FAILED

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await script(Peer(reader, writer))
        except BaseException as exc:
            failed.append(exc)
            done.set_exception(exc)
        else:
            done.set_result(None)
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    changes: list[H2Connection] = []
    loop = asyncio.get_running_loop()
    _, connection = await loop.create_connection(
        lambda: H2Connection(changes.append), "127.0.0.1", port
    )
    for _ in range(200):  # the server's SETTINGS first: the tests' windows and limits are known
        if connection.settled:
            break
        await asyncio.sleep(0.01)

    async def finished() -> None:
        try:
            await asyncio.wait_for(done, 5)
        finally:
            server.close()

    return connection, asyncio.ensure_future(finished()), changes


def post(
    connection: H2Connection, body: bytes = b"{}", timeout: float = 5.0, **headers: str
) -> asyncio.Future[Reply]:
    fields = {"authorization": "Bearer t", "content-type": "application/json"}
    fields.update((k.replace("_", "-"), v) for k, v in headers.items())
    return asyncio.ensure_future(
        connection.request("fcm.test", "https", "/v1/send", fields, body, timeout)
    )


def run(test: Callable[[], Awaitable[None]]) -> None:
    """Run ``test`` on a fresh loop; an exception that reached the loop fails the test."""
    escaped: list[Any] = []

    async def main() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda _, ctx: escaped.append(ctx))
        await asyncio.wait_for(test(), 10)

    SERVER_FAILED.clear()
    try:
        asyncio.run(main())
    except BaseException:
        if SERVER_FAILED:
            raise SERVER_FAILED[0] from None
        raise
    assert not escaped, escaped


def test_request_fields_and_continuation_both_ways_and_padding() -> None:
    """A 20 KB header value does not fit one 16 KB frame: HEADERS + CONTINUATION out, decoded
    by hpack into the very fields given; the answer comes as HEADERS + 2 CONTINUATIONs and
    padded DATA frames, and is put back together."""
    big = "x" * 20_000

    async def script(peer: Peer) -> None:
        await peer.start()
        stream_id, fields, body = await peer.request()
        assert fields == {
            ":method": "POST",
            ":scheme": "https",
            ":authority": "fcm.test",
            ":path": "/v1/send",
            "user-agent": "noticecrawler-push/1",
            "authorization": "Bearer t",
            "content-type": "application/json",
            "x-big": big,
            "content-length": "7",
        }
        assert body == b'{"a":1}'
        assert [k for k, *_ in peer.seen].count(f.CONTINUATION) == 1
        block = peer.block(200, content_type="application/json", x_seen="yes")
        third = len(block) // 3
        padded = bytes([5]) + b'{"name":' + b"\0" * 5
        peer.send(
            f.frame(f.HEADERS, 0, stream_id, block[:third]),
            f.frame(f.CONTINUATION, 0, stream_id, block[third : 2 * third]),
            f.frame(f.CONTINUATION, f.END_HEADERS, stream_id, block[2 * third :]),
            f.frame(f.DATA, f.PADDED, stream_id, padded),
            f.frame(f.DATA, f.PADDED | f.END_STREAM, stream_id, bytes([0]) + b'"m"}'),
        )

    async def test() -> None:
        connection, server, _ = await connect(script)
        reply = await post(connection, b'{"a":1}', x_big=big)
        await server
        assert reply == Reply(200, reply.headers, b'{"name":"m"}')
        assert dict(reply.headers) == {"content-type": "application/json", "x-seen": "yes"}
        connection.close()

    run(test)


@pytest.mark.parametrize(
    ("settings", "size"),
    [
        ({"INITIAL_WINDOW_SIZE": 1000}, 50_000),  # the stream's window is the limit
        ({"INITIAL_WINDOW_SIZE": 1 << 20, "MAX_FRAME_SIZE": 20_000}, 150_000),  # the connection's
    ],
)
def test_a_big_body_keeps_to_the_windows_and_the_frame_size(
    settings: dict[str, int], size: int
) -> None:
    """The server credits every DATA frame back only after it arrived: the client never sends
    past either window nor over the frame size, and the whole body arrives in order."""
    body = bytes(range(256)) * (size // 256) + b"!" * (size % 256)
    stream_window = settings["INITIAL_WINDOW_SIZE"]
    frame_size = settings.get("MAX_FRAME_SIZE", f.DEFAULT_FRAME_SIZE)

    async def script(peer: Peer) -> None:
        await peer.start(**settings)
        _, flags, stream_id, _ = await peer.next(f.HEADERS)
        assert not flags & f.END_STREAM
        windows = [f.DEFAULT_WINDOW, stream_window]
        received = b""
        while True:
            _, flags, _, chunk = await peer.next(f.DATA)
            assert len(chunk) <= min(*windows, frame_size)
            received += chunk
            windows = [w - len(chunk) for w in windows]
            if flags & f.END_STREAM:
                break
            peer.send(f.window_update(0, len(chunk)), f.window_update(stream_id, len(chunk)))
            windows = [w + len(chunk) for w in windows]
        assert received == body
        peer.answer(stream_id)

    async def test() -> None:
        connection, server, _ = await connect(script)
        reply = await post(connection, body)
        await server
        assert reply.status == 200
        connection.close()

    run(test)


@pytest.mark.parametrize("size", [3_000, 30_000])  # one DATA frame, or two
def test_a_window_opened_by_settings_lets_a_waiting_body_go(size: int) -> None:
    """INITIAL_WINDOW_SIZE 0: the request's HEADERS go, its body waits; a later SETTINGS raising
    it to 100,000 changes the open stream's window too (RFC 9113 §6.9.2) and the body goes."""
    body = b"b" * size

    async def script(peer: Peer) -> None:
        await peer.start(INITIAL_WINDOW_SIZE=0)
        _, flags, stream_id, _ = await peer.next(f.HEADERS)
        assert not flags & f.END_STREAM
        with pytest.raises(TimeoutError):  # nothing sent past the window
            await asyncio.wait_for(peer.next(f.DATA), 0.2)
        peer.send(f.settings({f.INITIAL_WINDOW_SIZE: 100_000}))
        received = b""
        while len(received) < len(body):
            received += (await peer.next(f.DATA))[3]
        assert received == body
        peer.answer(stream_id)

    async def test() -> None:
        connection, server, _ = await connect(script)
        assert (await post(connection, body)).status == 200
        await server
        connection.close()

    run(test)


def test_settings_lowered_mid_run_ping_and_unknown_frames() -> None:
    """MAX_CONCURRENT_STREAMS from 10 down to 2 with 5 streams open: no new stream until fewer
    than 2 are left (and the pool is told as capacity comes back); SETTINGS and PING are
    acknowledged; a PRIORITY frame and a frame of an unknown type change nothing."""
    states: list[tuple[str, int]] = []
    connection: H2Connection | None = None

    async def script(peer: Peer) -> None:
        await peer.start(MAX_CONCURRENT_STREAMS=10)
        ids = [(await peer.request())[0] for _ in range(5)]
        peer.send(f.settings({f.MAX_CONCURRENT_STREAMS: 2}), f.frame(f.PING, 0, 0, b"12345678"))
        peer.send(f.frame(0x42, 0xFF, 0, b"what is this"), f.frame(f.PRIORITY, 0, 1, b"\0" * 5))
        _, flags, _, payload = await peer.next(f.PING)
        assert flags == f.ACK and payload == b"12345678"
        acks = [s for s in peer.seen if s[0] == f.SETTINGS and s[1] == f.ACK]
        assert len(acks) == 2  # ours for their first SETTINGS and for the lowered one
        assert connection is not None
        states.append(("lowered", connection.capacity))
        for stream_id in ids[:4]:
            peer.answer(stream_id)
        await asyncio.sleep(0.05)
        states.append(("4 answered", connection.capacity))
        peer.answer(ids[4])
        await asyncio.sleep(0.05)
        states.append(("all answered", connection.capacity))

    async def test() -> None:
        nonlocal connection
        connection, server, changes = await connect(script)
        await asyncio.sleep(0.05)
        assert connection.capacity == 10
        replies = [post(connection) for _ in range(5)]
        await server
        assert [r.status for r in await asyncio.gather(*replies)] == [200] * 5
        assert states == [("lowered", 0), ("4 answered", 1), ("all answered", 2)]
        assert len(changes) >= 6
        connection.close()

    run(test)


def test_goaway_keeps_the_streams_it_promised_and_fails_the_others_as_unprocessed() -> None:
    """GOAWAY naming stream 1 with streams 1 and 3 open: 3 fails at once as never processed
    (the transport sends it again elsewhere), 1 is still answered on this connection, which
    then takes no stream and closes itself."""

    async def script(peer: Peer) -> None:
        await peer.start()
        first, _, _ = await peer.request()
        await peer.request()
        peer.send(f.goaway(first, f.NO_ERROR))
        await asyncio.sleep(0.05)
        peer.answer(first, b'{"late":1}')
        await peer.reader.read()
        assert peer.reader.at_eof()  # the client closed the connection

    async def test() -> None:
        connection, server, _ = await connect(script)
        one, three = post(connection), post(connection)
        with pytest.raises(TransportError) as refused:
            await three
        assert refused.value.unprocessed and connection.capacity == 0
        assert (await one).body == b'{"late":1}'
        await server
        assert connection.closed

    run(test)


def test_resets_and_a_timeout_fail_only_their_stream() -> None:
    """REFUSED_STREAM → unprocessed; another reset → a plain network error; a stream with no
    answer in time → TimeoutError and a RST_STREAM CANCEL; a long answer gets its stream's
    window topped up; the connection goes on answering."""
    long_body = b"y" * 60_000

    async def script(peer: Peer) -> None:
        await peer.start()
        refused, _, _ = await peer.request()
        other, _, _ = await peer.request()
        slow, _, _ = await peer.request()
        peer.send(f.rst_stream(refused, f.REFUSED_STREAM), f.rst_stream(other, f.INTERNAL_ERROR))
        _, _, cancelled, payload = await peer.next(f.RST_STREAM)
        assert (cancelled, struct.unpack(">L", payload)[0]) == (slow, f.CANCEL)
        last, _, _ = await peer.request()
        peer.send(f.frame(f.HEADERS, f.END_HEADERS, last, peer.block(200)))
        for start in range(0, len(long_body), 10_000):
            flags = f.END_STREAM if start + 10_000 >= len(long_body) else 0
            peer.send(f.frame(f.DATA, flags, last, long_body[start : start + 10_000]))
        _, _, topped_up, payload = await peer.next(f.WINDOW_UPDATE)  # times out if never
        assert topped_up == last and f.u32(payload) >= 30_000

    async def test() -> None:
        connection, server, _ = await connect(script)
        # the same read timeout for all (as the transport gives): the connection's one timer
        refused, other, slow = (post(connection, timeout=0.3) for _ in range(3))
        with pytest.raises(TransportError) as error:
            await refused
        assert error.value.unprocessed
        with pytest.raises(TransportError, match="INTERNAL_ERROR") as error:
            await other
        assert not error.value.unprocessed
        with pytest.raises(TimeoutError):
            await slow
        assert (await post(connection)).body == long_body
        await server
        assert not connection.closed
        connection.close()

    run(test)


def test_one_stalled_stream_leaves_no_trail_of_deadlines() -> None:
    """One stream gets no answer while hundreds of others, sent after it, are answered: the
    connection's deadline queue stays within twice the open streams plus a small constant all
    along (ended streams' entries behind the stalled one do not pile up), the others all
    succeed, and the stalled stream still times out at its deadline, with a RST_STREAM CANCEL,
    leaving the queue empty."""
    timeout, batch, pushes = 2.0, 25, 600
    seen: list[tuple[str, int, int]] = []

    async def script(peer: Peer) -> None:
        await peer.start()
        stalled, _, _ = await peer.request()
        while True:
            kind, _, stream_id, payload = await peer.next(f.HEADERS, f.RST_STREAM)
            if kind == f.RST_STREAM:
                seen.append(("reset", stream_id, f.u32(payload)))
                return
            peer.decoder.decode(payload, raw=True)  # keep hpack's table in step
            assert (await peer.next(f.DATA))[1] & f.END_STREAM
            peer.answer(stream_id)
            seen.append(("answered", stream_id, 0))
            assert stream_id != stalled

    async def test() -> None:
        loop = asyncio.get_running_loop()
        connection, server, _ = await connect(script)
        started = loop.time()
        stalled = post(connection, timeout=timeout)
        await asyncio.sleep(0)  # the stalled request is stream 1
        sent, over = 0, []  # (pushes answered, queue length, open streams) past the bound

        def check() -> None:
            queued, open_streams = len(connection.deadlines), len(connection.streams)
            if queued > 2 * open_streams + 64:
                over.append((sent, queued, open_streams))

        while sent < pushes and not stalled.done():
            replies = [post(connection, timeout=timeout) for _ in range(batch)]
            await asyncio.sleep(0)  # all of the batch in flight
            check()
            assert [r.status for r in await asyncio.gather(*replies)] == [200] * batch
            sent += batch
            check()
        assert sent >= 200, f"the stalled stream ended after only {sent} others"
        with pytest.raises(TimeoutError):
            await stalled
        assert loop.time() - started >= timeout - 0.01
        await server
        assert seen[-1] == ("reset", 1, f.CANCEL)
        assert sum(1 for what, *_ in seen if what == "answered") == sent
        assert not connection.streams and not connection.deadlines
        assert not over, f"the deadline queue outgrew the open streams: {over[:3]}…{over[-1:]}"
        connection.close()

    run(test)


GARBAGE = {
    "not http/2 at all": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}",
    "a frame over 16 KiB": f.frame(f.DATA, 0, 1, b"z" * 20_000),
    "PUSH_PROMISE": f.frame(f.PUSH_PROMISE, f.END_HEADERS, 1, b"\0\0\0\2" + b"\x82"),
    "CONTINUATION alone": f.frame(f.CONTINUATION, f.END_HEADERS, 1, b"\x88"),
    "HEADERS then DATA": f.frame(f.HEADERS, 0, 1, b"\x88") + f.frame(f.DATA, 0, 1, b"x"),
    "DATA on stream 0": f.frame(f.DATA, 0, 0, b"x"),
    "a broken header block": f.frame(f.HEADERS, f.END_HEADERS, 1, b"\xff\xff\xff\xff\xff"),
    "a stream never opened": f.frame(f.HEADERS, f.END_HEADERS, 9, b"\x88"),
    "padding past the end": f.frame(f.DATA, f.PADDED, 1, b"\x09abc"),
    "a short PING": f.frame(f.PING, 0, 0, b"1234"),
    "a window over 2**31-1": f.window_update(0, 2**31 - 1),
}


@pytest.mark.parametrize("garbage", GARBAGE.values(), ids=GARBAGE.keys())
def test_malformed_input_closes_the_connection_and_fails_its_streams(garbage: bytes) -> None:
    async def script(peer: Peer) -> None:
        await peer.start()
        await peer.request()
        await peer.request()
        peer.send(garbage)
        _, _, _, payload = await peer.next(f.GOAWAY)
        assert struct.unpack(">L", payload[4:8])[0] != f.NO_ERROR
        await peer.reader.read()
        assert peer.reader.at_eof()

    async def test() -> None:
        connection, server, changes = await connect(script)
        streams = [post(connection), post(connection)]
        for stream in streams:
            with pytest.raises(NETWORK_ERRORS) as error:
                await stream
            assert "protocol error" in str(error.value)
        await server
        await asyncio.sleep(0.05)
        assert connection.closed and connection.capacity == 0 and changes[-1] is connection

    run(test)
