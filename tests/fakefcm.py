"""A fake FCM HTTP v1 server on 127.0.0.1, for tests and benches.

    with FakeFcm(token="test-token") as fcm:
        sender = FcmSender(endpoint=fcm.base_url, project_id=fcm.project, credentials=...)
        ...
        assert fcm.messages_for("device-1")

It answers ``POST /v1/projects/<project>/messages:send`` like FCM: checks the bearer token
(401 UNAUTHENTICATED), the message's shape (400 INVALID_ARGUMENT; data values must be
strings), records every accepted message and answers ``{"name": "projects/<p>/messages/<n>"}``.
Faults are scripted per token (``set_token_behaviour``) or for the next n requests whatever
their token (``fail_next``); error bodies have FCM's v1 shape, as its error table documents
them (``_ERRORS``: with ``details[].errorCode``, with only the canonical ``status``, a 403 about
the project's IAM permission) and a path it does not serve gets an HTML page, as Google's front
end answers. Behaviours: the keys of ``_ERRORS``, "unauthenticated" (401 ACCESS_TOKEN_EXPIRED),
("429", retry_after) / ("503", retry_after), "stall" (no answer until ``stop()``), ("huge", n)
(a body of n bytes, no length announced) and ("huge_length", n) (announces n bytes): HTTP/2.
``POST /token`` hands out the expected access token, as Google's OAuth endpoint would to a
service-account file whose ``token_uri`` is ``token_url``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.fakefcm_h2 import PREFACE, H2Connection
from tests.fakefcm_h2_lean import LeanH2Connection

Behaviour = str | tuple[str, Any]

_PATH = re.compile(r"^/v1/projects/([^/]+)/messages:send$")
_MESSAGE_KEYS = {
    "name",
    "data",
    "notification",
    "android",
    "webpush",
    "apns",
    "fcm_options",
    "token",
    "topic",
    "condition",
}
_ANDROID_KEYS = {
    "collapse_key",
    "priority",
    "ttl",
    "restricted_package_name",
    "data",
    "notification",
    "fcm_options",
    "direct_boot_ok",
}
_FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"

_ERRORS: dict[str, tuple[int, str, str | None, str, str | None]] = {
    # behaviour: (HTTP status, google.rpc status, FCM errorCode, message, ErrorInfo reason);
    # the bodies FCM's error table documents, and the ones it sends without details
    "unregistered": (404, "NOT_FOUND", "UNREGISTERED", "Requested entity was not found.", None),
    "invalid": (
        400,
        "INVALID_ARGUMENT",
        "INVALID_ARGUMENT",
        "The registration token is not a valid FCM registration token",
        None,
    ),
    "sender_mismatch": (403, "PERMISSION_DENIED", "SENDER_ID_MISMATCH", "SenderId mismatch", None),
    "third_party_auth": (
        401,
        "UNAUTHENTICATED",
        "THIRD_PARTY_AUTH_ERROR",
        "Auth error from APNS or Web Push",
        None,
    ),
    "429": (429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED", "Quota exceeded for quota metric.", None),
    "500": (500, "INTERNAL", "INTERNAL", "Internal error encountered.", None),
    "503": (503, "UNAVAILABLE", "UNAVAILABLE", "The service is currently unavailable.", None),
    # no details: only the canonical status tells
    "404_not_found": (404, "NOT_FOUND", None, "Requested entity was not found.", None),
    "404_unregistered": (404, "UNREGISTERED", None, "Requested entity was not found.", None),
    "403_denied": (403, "PERMISSION_DENIED", None, "SenderId mismatch", None),
    "unspecified_404": (404, "", "UNSPECIFIED_ERROR", "", None),
    # a 403 about the sender's own project, not about the token
    "403_iam": (
        403,
        "PERMISSION_DENIED",
        None,
        "Permission 'cloudmessaging.messages.create' denied on resource",
        "IAM_PERMISSION_DENIED",
    ),
}
#: what Google's front end answers for a path it does not serve (not FCM's JSON)
_HTML_404 = (
    b"<!DOCTYPE html>\n<html lang=en><meta charset=utf-8><title>Error 404 (Not Found)!!1"
    b"</title><p><b>404.</b> <ins>That's an error.</ins>"
)


def fcm_error_body(
    code: int, status: str, message: str, error_code: str | None = None, reason: str | None = None
) -> dict[str, Any]:
    details: list[dict[str, Any]] = []
    if error_code:
        details.append({"@type": _FCM_ERROR, "errorCode": error_code})
    if reason:
        details.append(
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": reason,
                "domain": "googleapis.com",
            }
        )
    error: dict[str, Any] = {"code": code, "message": message}
    if status:
        error["status"] = status
    if details:
        error["details"] = details
    return {"error": error}


@dataclass(frozen=True)
class Seen:
    """One request as the fake saw it (accepted or not)."""

    token: str | None
    status: int
    at: float


def _shape_error(body: Any) -> str | None:
    """Why FCM would reject this request body, or None."""
    if not isinstance(body, dict) or not isinstance(body.get("message"), dict):
        return "Invalid JSON payload received. 'message' must be an object."
    unknown = set(body) - {"message", "validate_only"}
    if unknown:
        return f"Invalid JSON payload received. Unknown name {sorted(unknown)[0]!r}"
    message = body["message"]
    unknown = set(message) - _MESSAGE_KEYS
    if unknown:
        return f"Invalid JSON payload received. Unknown name {sorted(unknown)[0]!r} at 'message'"
    if not isinstance(message.get("token"), str) or not message["token"]:
        return "Recipient of the message is not set."
    for part in ("data", "notification", "android", "apns", "webpush", "fcm_options"):
        if part in message and not isinstance(message[part], dict):
            return f"Invalid value at 'message.{part}': must be an object"
    data = message.get("data", {})
    if not all(isinstance(v, str) for v in data.values()):
        return "Invalid value at 'message.data': values must be strings"
    if not all(isinstance(v, str) for v in message.get("notification", {}).values()):
        return "Invalid value at 'message.notification': values must be strings"
    android = message.get("android", {})
    if set(android) - _ANDROID_KEYS:
        return "Invalid JSON payload received. Unknown name at 'message.android'"
    if str(android.get("priority", "HIGH")).upper() not in ("HIGH", "NORMAL"):  # either case
        return "Invalid value at 'message.android.priority'"
    if not isinstance(android.get("notification", {}), dict):
        return "Invalid value at 'message.android.notification'"
    headers = message.get("apns", {}).get("headers", {})
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        return "Invalid value at 'message.apns.headers': values must be strings"
    return None


@dataclass
class _Answer:
    token: str | None
    status: int
    body: dict[str, Any] | bytes
    headers: dict[str, str] = field(default_factory=dict)
    count: bool = True


_STALL = object()
_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
            404: "Not Found", 429: "Too Many Requests", 500: "Internal Server Error",
            503: "Service Unavailable"}  # fmt: skip


def _respond(fake: FakeFcm, method: str, path: str, headers: dict[str, str], raw: bytes) -> Any:
    """The answer to one request: an _Answer, or _STALL (no answer until stop())."""
    if method == "GET":
        # ``GET /_fake/stats``: counters, for a fake running in another process (benches)
        if path != "/_fake/stats":
            return _Answer(None, 404, _HTML_404)
        with fake._lock:
            stats = {
                "messages": len(fake.messages) + fake.lean_count,
                "connections": fake.connections_opened,
                "h2_connections": fake.h2_connections,
            }
        return _Answer(None, 200, stats, count=False)
    if path == "/token":  # OAuth 2 token endpoint of a service-account file
        with fake._lock:
            fake.token_requests += 1
        answer = {"access_token": fake.expected_token, "expires_in": 3600}
        return _Answer(None, 200, answer | {"token_type": "Bearer"}, count=False)
    match = _PATH.match(path)
    if not match:
        return _Answer(None, 404, _HTML_404)
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    message = body.get("message") if isinstance(body, dict) else None
    token = message.get("token") if isinstance(message, dict) else None
    token = token if isinstance(token, str) else None
    behaviour = fake._take_global_fault()
    if behaviour is None:
        auth = headers.get("authorization", "")
        if auth != f"Bearer {fake.expected_token}":
            behaviour = "unauthenticated" if auth.startswith("Bearer ") else "no_credentials"
    if behaviour is None:
        problem = None if fake.lean else _shape_error(body)
        if problem:
            return _Answer(token, 400, fcm_error_body(400, "INVALID_ARGUMENT", problem))
        behaviour = fake._token_behaviour(token)
    if behaviour is None and fake.lean:  # a bench's fake: counted, not checked or kept
        with fake._lock:
            fake.lean_count += 1
            name = f"projects/{match.group(1)}/messages/{next(fake._names)}"
        return _Answer(token, 200, {"name": name}, count=False)
    if behaviour is None:
        return _Answer(token, 200, {"name": fake._record(match.group(1), body)})
    return _fault(fake, token, behaviour)


def _fault(fake: FakeFcm, token: str | None, behaviour: Behaviour) -> Any:
    kind, argument = behaviour if isinstance(behaviour, tuple) else (behaviour, None)
    if kind == "stall":
        fake._count(token, 0)
        return _STALL
    if kind == "huge":  # a 200 whose body is ``argument`` bytes (no FCM answer is this big)
        # made as it goes out (the fake's own memory stays flat): HTTP/2 only
        return _Answer(token, 200, b"", {"Content-Length": "", "X-Filler": str(int(argument))})
    if kind == "huge_length":  # the same, announced in Content-Length
        n = str(int(argument))
        return _Answer(token, 200, b"", {"Content-Length": n, "X-Filler": n})
    if kind in ("unauthenticated", "no_credentials"):
        expired = kind == "unauthenticated"
        body = fcm_error_body(
            401,
            "UNAUTHENTICATED",
            "Request had invalid authentication credentials. Expected OAuth 2 access "
            "token, login cookie or other valid authentication credential.",
            reason="ACCESS_TOKEN_EXPIRED" if expired else "CREDENTIALS_MISSING",
        )
        return _Answer(token, 401, body)
    status, rpc_status, error_code, text, reason = _ERRORS[kind]
    headers = {"Retry-After": str(argument)} if argument is not None else {}
    body = fcm_error_body(status, rpc_status, text, error_code, reason)
    return _Answer(token, status, body, headers)


def answer_bytes(answer: _Answer) -> tuple[str, bytes]:
    """(Content-Type, body) of an answer."""
    if isinstance(answer.body, bytes):
        return "text/html; charset=UTF-8", answer.body
    return "application/json; charset=UTF-8", json.dumps(answer.body).encode()


def _encode(answer: _Answer, close: bool = False) -> bytes:
    kind, data = answer_bytes(answer)
    head = [
        f"HTTP/1.1 {answer.status} {_REASONS.get(answer.status, 'Error')}",
        f"Content-Type: {kind}",
        f"Content-Length: {len(data)}",
        *(f"{name}: {value}" for name, value in answer.headers.items()),
        *(["Connection: close"] if close else []),
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + data


#: what a request head may weigh before the connection is dropped (asyncio streams' limit)
_MAX_HEAD = 65536


class _Connection(asyncio.Protocol):
    """One keep-alive connection: a minimal HTTP/1.1 parser over the bytes as they arrive.

    Requests are answered one at a time, in order; while one waits (``delay``) or stalls, the
    bytes of the next stay buffered. Garbage, an oversized head or ``Connection: close`` end
    the connection, as a client hanging up does.
    """

    def __init__(self, fake: FakeFcm) -> None:
        self.fake = fake
        self.buffer = b""
        self.busy = False  # an answer is delayed or stalled
        self.transport: asyncio.Transport | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.answered = 0
        self.fresh = True  # nothing received yet: it may be an HTTP/2 preface

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        with self.fake._lock:
            self.fake.connections_opened += 1
        self.fake._connections.add(self)
        sock = transport.get_extra_info("socket")
        if sock is not None:  # headers and body in one write anyway; no delayed-ACK stalls
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        self.fake._connections.discard(self)
        if self.timer is not None:
            self.timer.cancel()
        self.transport = None

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.fresh and self.fake.http2:
            if PREFACE.startswith(self.buffer[: len(PREFACE)]) and len(self.buffer) < len(PREFACE):
                return  # maybe the HTTP/2 preface, not all of it yet
            if self.buffer.startswith(PREFACE):
                self._upgrade()
                return
        self.fresh = False
        if not self.busy:
            self._serve()

    def _upgrade(self) -> None:
        """HTTP/2 (prior knowledge, or chosen by ALPN): hand the connection to H2Connection,
        or to LeanH2Connection in a lean fake."""
        assert self.transport is not None
        self.fake._connections.discard(self)
        with self.fake._lock:
            self.fake.h2_connections += 1
        kind = LeanH2Connection if self.fake.lean and self.fake.lean_h2 else H2Connection
        h2c = kind(self.fake, self.transport, lambda: self.fake._connections.discard(h2c))
        self.fake._connections.add(h2c)
        self.transport.set_protocol(h2c)
        buffered, self.buffer, self.transport = self.buffer, b"", None
        h2c.data_received(buffered)

    def _serve(self) -> None:
        """Answer every complete request in the buffer, until one has to wait."""
        while self.transport is not None and not self.busy:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > _MAX_HEAD:
                    self.close()
                return
            try:
                request_line, *lines = self.buffer[:end].decode("latin-1").split("\r\n")
                method, path, _ = request_line.split(" ", 2)
                headers = {}
                for line in lines:
                    name, sep, value = line.partition(":")
                    if sep:
                        headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length") or 0)
                if length < 0:
                    raise ValueError(length)
            except ValueError:  # garbage
                self.close()
                return
            start = end + 4
            if len(self.buffer) < start + length:
                return  # the body is still on its way
            raw = self.buffer[start : start + length]
            self.buffer = self.buffer[start + length :]
            if self.fake.delay and method == "POST" and path != "/token":
                self.busy = True
                loop = asyncio.get_running_loop()
                self.timer = loop.call_later(
                    self.fake.delay, self._answer, method, path, headers, raw
                )
                return
            self._answer(method, path, headers, raw)

    def _answer(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> None:
        self.timer = None
        if self.transport is None:
            return
        answer = _respond(self.fake, method, path, headers, raw)
        if answer is _STALL:
            self.busy = True  # no answer until stop() closes the connection
            return
        if answer.count:
            self.fake._count(answer.token, answer.status)
        self.answered += 1
        limit = self.fake.requests_per_connection
        hang_up = bool(limit) and self.answered >= limit
        self.transport.write(_encode(answer, close=hang_up))
        if hang_up or headers.get("connection", "").lower() == "close":
            self.close()
            return
        if self.busy:
            self.busy = False
            self._serve()


class FakeFcm:
    def __init__(
        self,
        token: str = "test-token",
        project: str = "test-project",
        delay: float = 0.0,
        backlog: int = 1024,
        *,
        tls: ssl.SSLContext | None = None,
        http2: bool = True,
        max_streams: int = 100,
        lean: bool = False,
    ) -> None:
        """``tls``: serve https with this server context (ALPN offers h2 when ``http2``);
        ``http2``: also speak HTTP/2 (prior knowledge on plain http), else HTTP/1.1 only;
        ``max_streams``: SETTINGS_MAX_CONCURRENT_STREAMS of an HTTP/2 connection;
        ``lean``: a bench's fake, as cheap per push as it gets — a push with the right bearer
        token is accepted and counted (``/_fake/stats``), its shape is not checked and it is
        not kept (``messages`` stays empty; its body is parsed for the token a fault may name:
        over HTTP/2 only while a fault is scripted), request headers are not validated.
        Faults still apply. Its HTTP/2 side is hand-framed (tests/fakefcm_h2_lean.py);
        ``lean_h2 = False`` puts the ``h2`` library's back, without its header checks (a
        bench's "before")."""
        self.lean = lean
        self.lean_h2 = True
        #: pushes accepted in ``lean`` mode
        self.lean_count = 0
        self.expected_token = token
        self.project = project
        #: seconds before each push is answered (FCM's latency; a slow FCM)
        self.delay = delay
        #: the listen backlog: connections the kernel holds before the fake accepts them
        self.backlog = backlog
        self.tls = tls
        self.http2 = http2
        self.max_streams = max_streams
        if tls is not None:
            tls.set_alpn_protocols(["h2", "http/1.1"] if http2 else ["http/1.1"])
        #: of ``connections_opened``, those that spoke HTTP/2
        self.h2_connections = 0
        #: answer this many requests on a connection, the last with ``Connection: close``, and
        #: hang up (as Google's front ends do now and then); 0: keep connections open
        self.requests_per_connection = 0
        self.messages: list[dict[str, Any]] = []
        self.seen: list[Seen] = []
        #: TCP connections accepted so far (keep-alive reuse shows as few connections)
        self.connections_opened = 0
        #: access tokens handed out by ``POST /token`` (see ``token_url``)
        self.token_requests = 0
        self._lock = threading.Lock()
        self._names = itertools.count(1)
        self._behaviours: dict[str, Behaviour] = {}
        self._global: list[Behaviour] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._connections: set[Any] = set()
        self._thread: threading.Thread | None = None

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self) -> FakeFcm:
        """Serve on an asyncio loop in a thread: one protocol object per keep-alive connection,
        so a delayed or stalled answer holds no thread and the fake keeps up with the sender."""
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        async def open_server() -> None:
            assert self._loop is not None
            self._server = await self._loop.create_server(
                lambda: _Connection(self), "127.0.0.1", 0, backlog=self.backlog, ssl=self.tls
            )
            ready.set()

        def run() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(open_server())
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="fakefcm", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._server is None or self._loop is None:
            return
        loop = self._loop

        async def close() -> None:
            assert self._server is not None
            self._server.close()
            for connection in list(self._connections):  # idle, delayed and stalled ones
                connection.close()
            await asyncio.sleep(0)

        asyncio.run_coroutine_threadsafe(close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=5)
        loop.close()
        self._server = None
        self._loop = None

    def __enter__(self) -> FakeFcm:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "FakeFcm not started"
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def base_url(self) -> str:
        """What FcmSender takes as ``endpoint`` (pyfcm's FCM_END_POINT_BASE)."""
        scheme = "https" if self.tls else "http"
        host = "localhost" if self.tls else "127.0.0.1"  # the name a test certificate holds
        return f"{scheme}://{host}:{self.port}/v1/projects"

    @property
    def token_url(self) -> str:
        """The ``token_uri`` of a service-account file whose tokens this fake accepts."""
        return self.base_url.replace("/v1/projects", "/token")

    # --- scripting ---------------------------------------------------------------------------
    def set_token_behaviour(self, token: str, behaviour: Behaviour | None) -> None:
        with self._lock:
            if behaviour is None:
                self._behaviours.pop(token, None)
            else:
                self._behaviours[token] = behaviour

    def fail_next(self, n: int, behaviour: Behaviour) -> None:
        """The next ``n`` requests, whatever their token, get ``behaviour``."""
        with self._lock:
            self._global.extend([behaviour] * n)

    # --- what was received -------------------------------------------------------------------
    def messages_for(self, token: str) -> list[dict[str, Any]]:
        with self._lock:
            return [m for m in self.messages if m.get("token") == token]

    def requests_for(self, token: str) -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if s.token == token]

    # --- used by the handler -----------------------------------------------------------------
    def _take_global_fault(self) -> Behaviour | None:
        with self._lock:
            return self._global.pop(0) if self._global else None

    def _token_behaviour(self, token: str | None) -> Behaviour | None:
        with self._lock:
            return self._behaviours.get(token) if token else None

    def _record(self, project: str, body: dict[str, Any]) -> str:
        with self._lock:
            name = f"projects/{project}/messages/{next(self._names)}"
            if not body.get("validate_only"):
                self.messages.append(body["message"])
            return name

    def _count(self, token: str | None, status: int) -> None:
        with self._lock:
            self.seen.append(Seen(token, status, time.monotonic()))


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for localhost and 127.0.0.1 in ``folder``: (cert, key) PEM
    files; a client trusting the cert file verifies the fake's TLS as any other."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def server_tls(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    """A server context for FakeFcm(tls=...)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context
