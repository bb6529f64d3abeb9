"""The HTTP/2 side of the fake FCM (tests/fakefcm.py): h2c with prior knowledge, or h2 chosen
by ALPN over TLS, as FCM's front ends offer it.

The same answers and faults as over HTTP/1.1 (``_respond``), but many streams in flight on one
connection, each answered after the fake's ``delay`` on its own. ``requests_per_connection``
becomes a GOAWAY: after that many requests the fake sends GOAWAY naming the last stream it will
answer; streams above it are never processed (the client must send them again elsewhere).
Framing, HPACK and flow control come from the ``h2`` library (the state machine behind httpx
and hypercorn).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings

if TYPE_CHECKING:
    from tests.fakefcm import FakeFcm

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


class _AnswersAfterGoaway(h2.connection.H2ConnectionStateMachine):
    """h2 closes the connection for good when it sends GOAWAY; FCM's front ends go on
    answering the streams up to the GOAWAY's last_stream_id, and so does the fake."""

    def process_input(self, input_: h2.connection.ConnectionInputs) -> list[Any]:
        if (
            input_ is h2.connection.ConnectionInputs.SEND_GOAWAY
            and self.state is h2.connection.ConnectionState.SERVER_OPEN
        ):
            return []
        return super().process_input(input_)


class H2Connection(asyncio.Protocol):
    """One HTTP/2 connection of the fake: streams answered independently."""

    def __init__(self, fake: FakeFcm, transport: asyncio.Transport, on_close: Any) -> None:
        self.fake = fake
        self.transport: asyncio.Transport | None = transport
        self.on_close = on_close
        # a lean (bench) fake leaves request headers unchecked: h2's checks are most of its
        # CPU per request
        strict = not fake.lean
        config = h2.config.H2Configuration(
            client_side=False,
            header_encoding=None,
            validate_inbound_headers=strict,
            normalize_inbound_headers=strict,
            validate_outbound_headers=strict,
            normalize_outbound_headers=strict,
        )
        self.h2 = h2.connection.H2Connection(config=config)
        self.h2.state_machine = _AnswersAfterGoaway()
        self.h2.local_settings = h2.settings.Settings(
            client=False,
            initial_values={
                h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: fake.max_streams,
                h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: 65536,
            },
        )
        self.h2.initiate_connection()
        self.requests: dict[int, tuple[dict[str, str], bytearray]] = {}
        self.timers: dict[int, asyncio.TimerHandle] = {}
        #: answer bytes waiting for the flow-control window (bytes, then that many b"x")
        self.pending: dict[int, tuple[bytes, int]] = {}
        self.accepted = 0  # requests taken (counted for GOAWAY)
        self.last_stream: int | None = None  # set once GOAWAY went out
        self.finished = False  # every stream the GOAWAY promised is answered
        self.eof = False  # our side of the connection is ended
        self.flush()

    def flush(self) -> None:
        data = self.h2.data_to_send()
        if data and self.transport is not None and not self.eof:  # nothing after write_eof
            self.transport.write(data)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        for timer in self.timers.values():
            timer.cancel()
        self.on_close()

    def data_received(self, data: bytes) -> None:
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.ProtocolError:
            self.flush()
            self.close()
            return
        for event in events:
            if isinstance(event, h2.events.RequestReceived):
                headers = {
                    k.decode("latin-1").lower(): v.decode("latin-1") for k, v in event.headers or ()
                }
                self.requests[event.stream_id] = (headers, bytearray())
            elif isinstance(event, h2.events.DataReceived):
                entry = self.requests.get(event.stream_id)
                if entry is not None:
                    entry[1].extend(event.data or b"")
                self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                self._request(event.stream_id)
            elif isinstance(event, h2.events.StreamReset):
                self.requests.pop(event.stream_id, None)
                self.pending.pop(event.stream_id, None)
            elif isinstance(event, h2.events.WindowUpdated):
                self._send_pending()
            elif isinstance(event, h2.events.ConnectionTerminated):
                self.close()
        self.flush()

    def _send_pending(self) -> None:
        """Send the answers' bodies as far as HTTP/2 flow control lets (the rest when the
        client opens its window)."""
        for stream_id, (data, filler) in list(self.pending.items()):
            try:
                while True:
                    window = self.h2.local_flow_control_window(stream_id)
                    left = len(data) + filler
                    size = min(left, window, self.h2.max_outbound_frame_size)
                    if left and size <= 0:
                        break  # the rest when the client opens its window
                    chunk, data = data[:size], data[size:]
                    made = min(filler, size - len(chunk))
                    chunk, filler = chunk + b"x" * made, filler - made
                    self.h2.send_data(stream_id, chunk, end_stream=not (data or filler))
                    if not (data or filler):
                        break
            except h2.exceptions.ProtocolError:  # reset by the client meanwhile
                data, filler = b"", 0
            if data or filler:
                self.pending[stream_id] = (data, filler)
            else:
                self.pending.pop(stream_id, None)
        self.flush()
        if self.last_stream is not None and not self.timers and not self.pending:
            self._finish()

    def _finish(self) -> None:
        if self.transport is None or self.finished:
            return
        self.finished = True
        # everything promised before the GOAWAY is answered: end our side and let the client
        # hang up (closing with its unread streams in our buffer would reset the connection,
        # and the client could lose answers already sent)
        if self.transport.can_write_eof():  # TLS cannot half-close: the client hangs up
            self.transport.write_eof()
            self.eof = True
        asyncio.get_running_loop().call_later(5, self.close)

    def _request(self, stream_id: int) -> None:
        headers, body = self.requests.pop(stream_id, ({}, bytearray()))
        if self.last_stream is not None and stream_id > self.last_stream:
            return  # after our GOAWAY: never processed, as the GOAWAY promised
        self.accepted += 1
        limit = self.fake.requests_per_connection
        if limit and self.accepted >= limit and self.last_stream is None:
            self.last_stream = stream_id
            self.h2.close_connection(last_stream_id=stream_id)
        method, path = headers.get(":method", ""), headers.get(":path", "")
        delay = self.fake.delay if method == "POST" and path != "/token" else 0.0
        args = (stream_id, method, path, headers, bytes(body))
        # every answer waits for its timer (0 s without a delay): a GOAWAY sent by this request
        # goes out before the answers it promises, as a front end's would
        self.timers[stream_id] = asyncio.get_running_loop().call_later(delay, self._answer, *args)

    def _answer(
        self, stream_id: int, method: str, path: str, headers: dict[str, str], raw: bytes
    ) -> None:
        from tests.fakefcm import _STALL, _respond, answer_bytes

        self.timers.pop(stream_id, None)
        if self.transport is None:
            return
        answer = _respond(self.fake, method, path, headers, raw)
        if answer is _STALL:
            return  # no answer until stop() closes the connection
        if answer.count:
            self.fake._count(answer.token, answer.status)
        kind, data = answer_bytes(answer)
        fields = [(b":status", str(answer.status).encode()), (b"content-type", kind.encode())]
        extra = {name.lower(): value for name, value in answer.headers.items()}
        filler = int(extra.pop("x-filler", "0"))  # bytes of b"x" made as they go out
        length = extra.pop("content-length", str(len(data)))
        if length:  # "" : no length announced, the body runs until the stream ends
            fields.append((b"content-length", length.encode()))
        fields.extend((k.encode("latin-1"), v.encode("latin-1")) for k, v in extra.items())
        try:
            self.h2.send_headers(stream_id, fields)
        except h2.exceptions.ProtocolError:  # the client reset the stream meanwhile
            return
        self.pending[stream_id] = (data, filler)
        self._send_pending()
