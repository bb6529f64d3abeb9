"""The lean fake FCM's hand-framed HTTP/2 side (tests/fakefcm_h2_lean.py), checked by clients
it did not write: httpx with HTTP/2, the ``h2`` library as a raw client (its state machine
refuses malformed frames, bad HPACK and flow-control violations), and the project's sender."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.settings
import httpx
import pytest

from bench.h2lib_connection import StaysOpenOnGoaway
from noticecrawler.notify.fcm_errors import Outcome
from tests.fakefcm import FakeFcm, self_signed_certificate, server_tls
from tests.fakefcm_h2 import PREFACE
from tests.fakefcm_h2_lean import HEADERS, SETTINGS, LeanH2Connection, frame, header_block
from tests.test_fcm import android
from tests.test_senders_http2 import sender_for

TOKEN = "test-token"
SEND = "/v1/projects/proj/messages:send"
PUSH = b'{"message": {"token": "device-1", "data": {"k": "v"}}}'


@pytest.fixture
def fake() -> Iterator[FakeFcm]:
    with FakeFcm(token=TOKEN, project="proj", lean=True) as fake:
        yield fake


class RawClient:
    """An h2-library client on a plain socket (h2c with prior knowledge)."""

    def __init__(
        self, fake: FakeFcm, settings: dict[int, int] | None = None, pieces: int = 0
    ) -> None:
        self.sock = socket.create_connection(("127.0.0.1", fake.port), timeout=5)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.pieces = pieces  # send in pieces of this many bytes (0: as they come)
        config = h2.config.H2Configuration(client_side=True, header_encoding=None)
        self.h2 = h2.connection.H2Connection(config=config)
        self.h2.state_machine = StaysOpenOnGoaway()  # reads the answers a GOAWAY still promised
        self.h2.initiate_connection()
        if settings:
            self.h2.update_settings(settings)
        self.events: list[h2.events.Event] = []
        self.flush()

    def close(self) -> None:
        self.sock.close()

    def flush(self) -> None:
        data = self.h2.data_to_send()
        step = self.pieces or len(data) or 1
        for start in range(0, len(data), step):
            self.sock.sendall(data[start : start + step])
            if self.pieces:
                time.sleep(0.0005)  # reads that end mid-frame on the fake's side

    def request(self, body: bytes = PUSH, token: str = TOKEN, extra: Any = ()) -> int:
        stream_id = self.h2.get_next_available_stream_id()
        headers = [
            (b":method", b"POST"),
            (b":scheme", b"http"),
            (b":authority", b"127.0.0.1"),
            (b":path", SEND.encode()),
            (b"authorization", f"Bearer {token}".encode()),
            (b"content-type", b"application/json"),
            *extra,
        ]
        self.h2.send_headers(stream_id, headers, end_stream=not body)
        while body:  # as far as the server's windows let, then wait for its WINDOW_UPDATE
            window = min(self.h2.local_flow_control_window(stream_id), 16384)
            if window <= 0:
                self.flush()
                self.read()
                continue
            chunk, body = body[:window], body[window:]
            self.h2.send_data(stream_id, chunk, end_stream=not body)
        self.flush()
        return stream_id

    def read(self) -> list[h2.events.Event]:
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("the fake hung up")
        events = self.h2.receive_data(data)
        for event in events:
            if isinstance(event, h2.events.DataReceived):
                self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        self.flush()
        self.events.extend(events)
        return events

    def until(self, done: Callable[[], bool]) -> None:
        while not done():
            self.read()  # a socket timeout (5 s) fails the test

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    def ended(self, *streams: int) -> bool:
        return set(streams) <= {e.stream_id for e in self.of(h2.events.StreamEnded)}

    def answer(self, stream_id: int) -> tuple[int, dict[bytes, bytes], bytes]:
        heads = [e for e in self.of(h2.events.ResponseReceived) if e.stream_id == stream_id]
        assert len(heads) == 1, f"stream {stream_id}: {len(heads)} answers"
        headers = dict(heads[0].headers)
        body = b"".join(e.data for e in self.of(h2.events.DataReceived) if e.stream_id == stream_id)
        return int(headers[b":status"]), headers, body


def _post_all(fake: FakeFcm, bodies: list[bytes], headers: dict[str, str]) -> list[httpx.Response]:
    async def run() -> list[httpx.Response]:
        async with httpx.AsyncClient(http1=False, http2=True, timeout=10) as client:
            url = fake.base_url.replace("/v1/projects", "") + SEND
            return list(
                await asyncio.gather(
                    *(client.post(url, content=b, headers=headers) for b in bodies)
                )
            )

    return asyncio.run(run())


def test_many_concurrent_streams_are_answered_counted_and_named(fake: FakeFcm) -> None:
    answers = _post_all(fake, [PUSH] * 250, {"authorization": f"Bearer {TOKEN}"})
    assert {(a.status_code, a.http_version) for a in answers} == {(200, "HTTP/2")}
    assert {a.headers["content-type"] for a in answers} == {"application/json; charset=UTF-8"}
    names = {a.json()["name"] for a in answers}
    assert len(names) == 250 and all(n.startswith("projects/proj/messages/") for n in names)
    assert fake.lean_count == 250 and fake.messages == []  # counted, not kept
    assert fake.h2_connections >= 1
    with httpx.Client(http1=False, http2=True) as client:  # the benches read this
        stats = client.get(fake.base_url.replace("/v1/projects", "/_fake/stats")).json()
    assert stats["messages"] == 250


def test_a_wrong_or_missing_token_gets_fcms_401_and_is_not_counted(fake: FakeFcm) -> None:
    wrong, missing = (
        _post_all(fake, [PUSH], headers)[0] for headers in ({"authorization": "Bearer x"}, {})
    )
    for answer, reason in ((wrong, "ACCESS_TOKEN_EXPIRED"), (missing, "CREDENTIALS_MISSING")):
        assert answer.status_code == 401
        error = answer.json()["error"]
        assert (error["code"], error["status"]) == (401, "UNAUTHENTICATED")
        assert error["details"][0]["reason"] == reason
    assert fake.lean_count == 0


def test_scripted_faults_still_apply(fake: FakeFcm) -> None:
    fake.fail_next(1, ("429", 7))
    fake.set_token_behaviour("device-1", "unregistered")
    throttled, gone = (
        _post_all(fake, [PUSH], {"authorization": f"Bearer {TOKEN}"})[0] for _ in "ab"
    )
    assert (throttled.status_code, throttled.headers["retry-after"]) == (429, "7")
    assert throttled.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
    assert gone.status_code == 404
    assert gone.json()["error"]["details"][0]["errorCode"] == "UNREGISTERED"
    assert fake.lean_count == 0


def test_each_answer_waits_at_least_its_delay(fake: FakeFcm) -> None:
    fake.delay = 0.15

    async def run() -> list[float]:
        async with httpx.AsyncClient(http1=False, http2=True, timeout=10) as client:
            url = fake.base_url.replace("/v1/projects", "") + SEND

            async def one(after: float) -> float:
                await asyncio.sleep(after)  # streams arriving in different turns of the loop
                start = time.monotonic()
                answer = await client.post(
                    url, content=PUSH, headers={"authorization": f"Bearer {TOKEN}"}
                )
                assert answer.status_code == 200
                return time.monotonic() - start

            return list(await asyncio.gather(*(one(0.02 * (i % 6)) for i in range(24))))

    assert min(asyncio.run(run())) >= 0.15
    assert fake.lean_count == 24


def test_a_body_larger_than_the_stream_window_is_received_through_window_updates(
    fake: FakeFcm,
) -> None:
    client = RawClient(fake)
    try:
        big = client.request(body=b"{" + b" " * 300_000 + b"}")  # 4.5 initial windows
        client.until(lambda: client.ended(big))
    finally:
        client.close()
    assert client.answer(big)[0] == 200
    updates = [e for e in client.of(h2.events.WindowUpdated) if e.stream_id == big]
    assert len(updates) >= 4
    assert fake.lean_count == 1


def test_answers_respect_the_clients_windows(fake: FakeFcm) -> None:
    client = RawClient(fake, {h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 16})
    fake.fail_next(1, ("huge_length", 200_000))  # more than the client's connection window
    try:
        huge = client.request()
        # this stream's window opened wide: the connection's 65,535 bytes bind it
        client.h2.increment_flow_control_window(1 << 20, stream_id=huge)
        small = client.request()
        client.until(lambda: client.ended(huge, small))
    finally:
        client.close()
    chunks = [e for e in client.of(h2.events.DataReceived) if e.stream_id == small]
    assert len(chunks) > 1 and all(len(e.data) <= 16 for e in chunks)
    status, headers, body = client.answer(small)
    assert status == 200 and json.loads(body)["name"].startswith("projects/proj/messages/")
    assert int(headers[b"content-length"]) == len(body)
    status, headers, body = client.answer(huge)
    assert (status, headers[b"content-length"], len(body)) == (200, b"200000", 200_000)


def test_goaway_after_requests_per_connection_answers_only_the_streams_it_names(
    fake: FakeFcm,
) -> None:
    fake.requests_per_connection = 3
    fake.delay = 0.05
    client = RawClient(fake)
    try:
        streams = [client.request() for _ in range(5)]
        client.until(lambda: client.ended(*streams[:3]))
        with pytest.raises(EOFError):  # the fake ends its side, nothing more
            for _ in range(10):
                client.read()
        client.request()  # a client that went on regardless: not processed either
        time.sleep(0.2)
        # the fake waits for the client to hang up (its answers are not lost in a reset)
        assert any(isinstance(c, LeanH2Connection) for c in fake._connections)
    finally:
        client.close()
    (goaway,) = client.of(h2.events.ConnectionTerminated)
    assert (goaway.last_stream_id, goaway.error_code) == (streams[2], h2.errors.ErrorCodes.NO_ERROR)
    assert [client.answer(s)[0] for s in streams[:3]] == [200, 200, 200]
    answered = {e.stream_id for e in client.of(h2.events.ResponseReceived)}
    assert answered.isdisjoint(streams[3:])  # above last_stream_id: never processed
    assert fake.lean_count == 3


def test_a_reset_stream_is_not_answered_and_others_are(fake: FakeFcm) -> None:
    fake.delay = 0.1
    client = RawClient(fake)
    try:
        dropped = client.request()
        client.h2.reset_stream(dropped)
        kept = client.request()
        client.until(lambda: client.ended(kept))
    finally:
        client.close()
    assert {e.stream_id for e in client.of(h2.events.ResponseReceived)} == {kept}
    assert fake.lean_count == 1


def test_settings_ping_continuation_and_the_stream_limit(fake: FakeFcm) -> None:
    fake.delay = 0.1
    fake.max_streams = 2
    client = RawClient(fake)
    try:
        client.h2.ping(b"8 octets")
        client.flush()
        # a header block past one frame: HEADERS + CONTINUATION
        first = client.request(extra=[(b"x-padding", b"p" * 40_000)])
        second = client.request()
        refused = client.request()
        client.until(lambda: client.ended(first, second) and client.of(h2.events.PingAckReceived))
        assert any(isinstance(c, LeanH2Connection) for c in fake._connections)
    finally:
        client.close()
    (changed,) = client.of(h2.events.RemoteSettingsChanged)
    assert changed.changed_settings[h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS].new_value == 2
    assert client.of(h2.events.SettingsAcknowledged)
    assert client.of(h2.events.PingAckReceived)[0].ping_data == b"8 octets"
    (reset,) = client.of(h2.events.StreamReset)
    assert (reset.stream_id, reset.error_code) == (refused, h2.errors.ErrorCodes.REFUSED_STREAM)
    assert [client.answer(s)[0] for s in (first, second)] == [200, 200]


def test_a_protocol_error_ends_the_connection_with_goaway(fake: FakeFcm) -> None:
    client = RawClient(fake)
    try:
        client.sock.sendall(b"\x00\x00\x01\x00\x00\x00\x00\x00\x00x")  # DATA on stream 0
        with pytest.raises((EOFError, ConnectionResetError)):  # not a timeout
            for _ in range(10):
                client.read()
    finally:
        client.close()
    (goaway,) = client.of(h2.events.ConnectionTerminated)
    assert goaway.error_code == h2.errors.ErrorCodes.PROTOCOL_ERROR


def test_answer_headers_are_hpack_literals_that_leave_the_clients_table_alone() -> None:
    import hpack

    fields = [(b"content-type", b"application/json"), (b"x-filler", b"1"), (b"retry-after", b"9")]
    decoder = hpack.Decoder()
    for status in (200, 429):
        assert decoder.decode(header_block(status, fields), raw=True) == [
            (b":status", str(status).encode()),
            *fields,
        ]
    assert len(decoder.header_table.dynamic_entries) == 0


@pytest.mark.parametrize("protocol", ["h2c", "h2-tls"])
def test_the_project_sender_pushes_through_the_lean_fake_across_goaways(
    protocol: str, tmp_path: Path
) -> None:
    """Each push accepted once: streams above a GOAWAY's last_stream_id go again, and the lean
    fake counts only what it answered. Over TLS the client picks h2 by ALPN."""
    certificate = self_signed_certificate(tmp_path)
    tls = server_tls(*certificate) if protocol == "h2-tls" else None
    with FakeFcm(token=TOKEN, project="proj", delay=0.01, lean=True, tls=tls) as fake:
        fake.requests_per_connection = 37
        sender = sender_for(fake, protocol, certificate, max_concurrency=64)
        try:
            results = sender.send_batch([(i, f"t{i}", android()) for i in range(300)], 64)
        finally:
            sender.close()
        assert {r.outcome for _, r in results} == {Outcome.SENT}
        assert fake.lean_count == 300 and fake.h2_connections >= 300 // 37


def test_header_blocks_are_decoded_against_the_table_as_it_is_then(fake: FakeFcm) -> None:
    """The same bytes, an indexed field naming the newest table entry, mean one token before a
    block adds a new entry and another after it: the second answer must follow the table."""
    import hpack

    path = b"\x04" + bytes([len(SEND)]) + SEND.encode()  # :path, literal without indexing

    def adding(token: bytes) -> bytes:  # authorization, literal with incremental indexing
        return b"\x83\x86" + path + b"\x57" + bytes([len(token)]) + token

    newest = b"\x83\x86" + path + b"\xbe"  # :method POST, :scheme http, index 62
    blocks = [adding(b"Bearer " + TOKEN.encode()), newest, adding(b"Bearer wrong"), newest]
    sock = socket.create_connection(("127.0.0.1", fake.port), timeout=5)
    try:
        sock.sendall(
            PREFACE
            + frame(SETTINGS, 0, 0)
            + b"".join(frame(HEADERS, 0x5, 2 * i + 1, b) for i, b in enumerate(blocks))
        )
        statuses, buffer, decoder = {}, b"", hpack.Decoder()
        while len(statuses) < len(blocks):
            data = sock.recv(65536)
            assert data, "the fake hung up"
            buffer += data
            while len(buffer) >= 9 and len(buffer) >= 9 + int.from_bytes(buffer[:3], "big"):
                length, kind, stream = int.from_bytes(buffer[:3], "big"), buffer[3], buffer[5:9]
                if kind == HEADERS:
                    fields = dict(decoder.decode(buffer[9 : 9 + length], raw=True))
                    statuses[int.from_bytes(stream, "big")] = int(fields[b":status"])
                buffer = buffer[9 + length :]
    finally:
        sock.close()
    assert statuses == {1: 200, 3: 200, 5: 401, 7: 401}
    assert fake.lean_count == 2


def test_frames_split_anywhere_across_reads_are_put_back_together(fake: FakeFcm) -> None:
    client = RawClient(fake, pieces=7)
    try:
        streams = [client.request(body=PUSH * 3) for _ in range(3)]
        client.until(lambda: client.ended(*streams))
    finally:
        client.close()
    assert [client.answer(s)[0] for s in streams] == [200, 200, 200]
    assert fake.lean_count == 3
