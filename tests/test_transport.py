"""PushTransport against real sockets on 127.0.0.1: servers scripted connection by connection."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from noticecrawler.notify.senders.proxy import Proxy, ProxyError
from noticecrawler.notify.transport import (
    MAX_HEADERS,
    NETWORK_ERRORS,
    HeaderError,
    PushTransport,
    TransportError,
)

OK = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"ok": 1}\r\n'

#: handles one accepted connection: (socket, index of the connection from 0)
Handler = Callable[[socket.socket, int], None]


def read_request(sock: socket.socket) -> tuple[bytes, bytes] | None:
    """(head, body) of the next request on ``sock``; None when the client closed it."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        body += sock.recv(65536)
    return head, body


class Server:
    """A TCP (or TLS) server on 127.0.0.1: each connection is handled by ``handler`` on a thread
    of its own; ``heads`` keeps every request head seen, ``accepted`` counts connections."""

    def __init__(
        self, handler: Handler | None, tls: ssl.SSLContext | None = None, answer: bytes = OK
    ) -> None:
        self.handler = handler or self.serve_forever(answer)
        self.tls = tls
        self.accepted = 0
        self.heads: list[bytes] = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def url(self, path: str = "/v1/send", scheme: str = "http", host: str = "127.0.0.1") -> str:
        return f"{scheme}://{host}:{self.port}{path}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self._lock:
                index = self.accepted
                self.accepted += 1
            threading.Thread(target=self._handle, args=(conn, index), daemon=True).start()

    def _handle(self, conn: socket.socket, index: int) -> None:
        # the client hanging up (or refusing our certificate) ends the connection, not the test
        with contextlib.suppress(OSError):
            try:
                if self.tls is not None:
                    conn = self.tls.wrap_socket(conn, server_side=True)
                self.handler(conn, index)
            finally:
                conn.close()

    def serve_forever(self, answer: bytes = OK) -> Handler:
        """A handler answering every request on a connection with ``answer`` (keep-alive)."""

        def handle(sock: socket.socket, index: int) -> None:
            while (request := read_request(sock)) is not None:
                with self._lock:
                    self.heads.append(request[0])
                sock.sendall(answer)

        return handle

    def close(self) -> None:
        self._stop.set()
        self.sock.close()


@pytest.fixture
def serve() -> Iterator[Callable[..., Server]]:
    servers: list[Server] = []

    def start(
        handler: Handler | None = None, tls: ssl.SSLContext | None = None, answer: bytes = OK
    ) -> Server:
        server = Server(handler, tls, answer)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def transport() -> Iterator[PushTransport]:
    t = PushTransport(4, (2.0, 2.0))
    yield t
    t.close()


def post(t: PushTransport, url: str, body: bytes = b'{"m": 1}', **headers: str) -> Any:
    return t.run(t.post(url, body, headers or {"Content-Type": "application/json"}))


def test_requests_share_one_keep_alive_connection(
    serve: Callable[..., Server], transport: PushTransport
) -> None:
    server = serve()
    for _ in range(5):
        url = server.url("/v1/projects/p/messages:send")
        reply = post(transport, url, Authorization="Bearer t")
        assert (reply.status, reply.body) == (200, b'{"ok": 1}\r\n')
    assert server.accepted == 1
    head = server.heads[0].decode()
    assert head.startswith("POST /v1/projects/p/messages:send HTTP/1.1\r\n")
    assert f"Host: 127.0.0.1:{server.port}" in head
    assert "Authorization: Bearer t" in head and "Content-Length: 8" in head
    assert "User-Agent: noticecrawler-push/1" in head


def test_concurrent_requests_stay_within_the_limit(serve: Callable[..., Server]) -> None:
    server = serve()
    t = PushTransport(3, (2.0, 2.0))
    try:

        async def many() -> list[Any]:
            return await asyncio.gather(
                *(t.post(server.url(), b"x", {"X-N": str(i)}) for i in range(40))
            )

        replies = t.run(many())
        assert [r.status for r in replies] == [200] * 40
        assert len(server.heads) == 40
        assert 1 <= server.accepted <= 3
        assert t.connections <= 3
    finally:
        t.close()


def test_chunked_answer_and_headers_in_any_case(
    serve: Callable[..., Server], transport: PushTransport
) -> None:
    answer = (
        b"HTTP/1.1 429 Too Many Requests\r\nretry-after: 7\r\nTransfer-Encoding: chunked\r\n\r\n"
        b'5\r\n{"err\r\n8\r\nor": 429\r\n1\r\n}\r\n0\r\n\r\n'
    )
    server = serve(answer=answer)
    first = post(transport, server.url())
    second = post(transport, server.url())
    assert first.status == 429 and first.body == b'{"error": 429}'
    assert first.headers["Retry-After"] == "7" and first.headers.get("RETRY-AFTER") == "7"
    assert second.body == b'{"error": 429}'
    assert server.accepted == 1  # a chunked answer leaves the connection reusable


def test_connection_close_answer_opens_a_new_connection(
    serve: Callable[..., Server], transport: PushTransport
) -> None:
    closing = OK.replace(b"Content-Length", b"Connection: close\r\nContent-Length")
    server = serve(answer=closing)
    for _ in range(3):
        assert post(transport, server.url()).status == 200
    assert server.accepted == 3
    assert transport.connections == 0


def test_answer_ended_by_closing_the_connection(
    serve: Callable[..., Server], transport: PushTransport
) -> None:
    def handle(sock: socket.socket, index: int) -> None:
        read_request(sock)
        sock.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it")

    server = serve(handle)
    reply = post(transport, server.url())
    assert (reply.status, reply.body) == (200, b"all of it")


def test_idle_connection_closed_by_the_server_is_replaced(
    serve: Callable[..., Server], transport: PushTransport
) -> None:
    def handle(sock: socket.socket, index: int) -> None:
        read_request(sock)
        sock.sendall(OK)  # then hang up, as a server's keep-alive timeout does

    server = serve(handle)
    assert post(transport, server.url()).status == 200
    assert post(transport, server.url()).status == 200
    assert server.accepted == 2


def test_request_meeting_a_just_closed_keep_alive_connection_is_sent_again(
    serve: Callable[..., Server], transport: PushTransport
) -> None:
    """The server closes the kept-alive connection as the second request arrives, without
    answering: that request goes out once more on a new connection."""
    seen: list[int] = []

    def handle(sock: socket.socket, index: int) -> None:
        while read_request(sock) is not None:
            seen.append(index)
            if index == 0 and seen.count(0) == 2:
                sock.shutdown(socket.SHUT_RDWR)
                return
            sock.sendall(OK)

    server = serve(handle)
    assert post(transport, server.url()).status == 200
    assert post(transport, server.url()).status == 200
    assert seen == [0, 0, 1]


def test_fresh_connection_closed_without_answer_is_an_error_not_a_resend(
    serve: Callable[..., Server], transport: PushTransport
) -> None:
    seen: list[int] = []

    def handle(sock: socket.socket, index: int) -> None:
        read_request(sock)
        seen.append(index)
        sock.shutdown(socket.SHUT_RDWR)

    server = serve(handle)
    with pytest.raises(TransportError, match="before any answer"):
        post(transport, server.url())
    assert seen == [0]  # a POST is not repeated on a connection that never answered


def test_answer_cut_in_the_middle(serve: Callable[..., Server], transport: PushTransport) -> None:
    def handle(sock: socket.socket, index: int) -> None:
        read_request(sock)
        sock.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"name": ')
        sock.shutdown(socket.SHUT_RDWR)

    server = serve(handle)
    with pytest.raises(TransportError, match="in the middle of the answer") as caught:
        post(transport, server.url())
    assert caught.value.answered
    assert server.accepted == 1  # bytes came back: the request reached the server, no resend


def test_garbage_answer_is_a_network_error(
    serve: Callable[..., Server], transport: PushTransport
) -> None:
    server = serve(answer=b"SSH-2.0-OpenSSH_9.2\r\n\r\n")
    with pytest.raises(TransportError, match="not an HTTP answer") as caught:
        post(transport, server.url())
    assert isinstance(caught.value, NETWORK_ERRORS)
    transport.run(asyncio.sleep(0.05))
    assert transport.connections == 0  # the connection is dropped


def test_no_answer_times_out_and_drops_the_connection(serve: Callable[..., Server]) -> None:
    release = threading.Event()

    def handle(sock: socket.socket, index: int) -> None:
        read_request(sock)
        release.wait(10)

    server = serve(handle)
    t = PushTransport(2, (2.0, 0.3))
    try:
        with pytest.raises(TimeoutError, match=r"no answer within 0.3 s"):
            post(t, server.url())
        t.run(asyncio.sleep(0.05))
        assert t.connections == 0
    finally:
        release.set()
        t.close()


def test_refused_connection_is_a_network_error(transport: PushTransport) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens once it is closed
    with pytest.raises(ConnectionRefusedError):
        post(transport, f"http://127.0.0.1:{port}/x")
    assert transport.connections == 0


@pytest.mark.parametrize("bad", ["a\r\nX-Evil: 1", "a\nb", "a\rb", "a\x00b", "a\x0bb", "a\x7f"])
def test_control_characters_in_a_header_are_refused_before_sending(
    serve: Callable[..., Server], transport: PushTransport, bad: str
) -> None:
    server = serve()
    with pytest.raises(HeaderError, match="control character") as caught:
        post(transport, server.url(), Authorization=f"Bearer {bad}")
    assert isinstance(caught.value, ValueError)
    with pytest.raises(HeaderError, match="would break the request"):
        post(transport, server.url(), **{"X-A:b": "1"})
    assert server.heads == []  # nothing went out
    assert post(transport, server.url(), Authorization="Bearer a\tb").status == 200


def test_bad_urls_are_refused(transport: PushTransport) -> None:
    with pytest.raises(ValueError, match="not an http"):
        post(transport, "ftp://127.0.0.1/x")


# --- misbehaving servers: the answer is bounded and strictly framed ---------------------------


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(field)


def _flood(sock: socket.socket, head: bytes, chunk: bytes, most: int = 4000) -> None:
    """Answer the request with ``head`` then ``chunk`` again and again (at most ``most``
    times, ~250 MB) until the client hangs up."""
    read_request(sock)
    sock.sendall(head)
    for _ in range(most):
        sock.sendall(chunk)


@pytest.mark.parametrize(
    ("head", "chunk"),
    [
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"10000\r\n" + b"x" * 65536 + b"\r\n",
        ),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 100000000000\r\n\r\n", b"x" * 65536),
        (b"HTTP/1.1 200 OK\r\nX-Long: ", b"y" * 65536),  # a header line without end
    ],
    ids=["endless-chunked", "huge-content-length", "endless-header"],
)
def test_endless_answers_are_cut_and_memory_stays_flat(
    serve: Callable[..., Server], transport: PushTransport, head: bytes, chunk: bytes
) -> None:
    server = serve(lambda sock, index: _flood(sock, head, chunk))
    Path("/proc/self/clear_refs").write_text("5")  # the peak RSS starts again from now
    before = _rss_kib("VmRSS")
    with pytest.raises(TransportError) as caught:
        post(transport, server.url())
    growth_mib = (_rss_kib("VmHWM") - before) / 1024
    assert growth_mib < 20, f"the sender grew by {growth_mib:.0f} MiB"
    assert caught.value.answered
    transport.run(asyncio.sleep(0.05))
    assert transport.connections == 0  # dropped, never reused


def test_too_many_headers_is_an_error(
    serve: Callable[..., Server], transport: PushTransport
) -> None:
    many = b"".join(b"X-%d: 1\r\n" % i for i in range(MAX_HEADERS + 1))
    server = serve(answer=b"HTTP/1.1 200 OK\r\n" + many + b"Content-Length: 0\r\n\r\n")
    with pytest.raises(TransportError, match="headers"):
        post(transport, server.url())


def test_a_second_unsolicited_answer_closes_the_connection(
    serve: Callable[..., Server], transport: PushTransport
) -> None:
    second = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nRetry-After: 99999\r\n\r\nhello"

    def handle(sock: socket.socket, index: int) -> None:
        while read_request(sock) is not None:
            sock.sendall(OK + (second if index == 0 else b""))

    server = serve(handle)
    first = post(transport, server.url())
    assert first.status == 200 and first.body == b'{"ok": 1}\r\n'
    assert dict(first.headers) == {"content-type": "application/json", "content-length": "11"}
    after = post(transport, server.url())
    assert (after.status, after.body, "retry-after" in after.headers) == (
        200,
        b'{"ok": 1}\r\n',
        False,
    )
    assert server.accepted == 2  # the first connection was not trusted again


def test_bytes_on_an_idle_connection_close_it(
    serve: Callable[..., Server], transport: PushTransport
) -> None:
    def handle(sock: socket.socket, index: int) -> None:
        read_request(sock)
        sock.sendall(OK)
        if index == 0:
            time.sleep(0.1)
            sock.sendall(OK)  # unsolicited, on the idle kept-alive connection
        while read_request(sock) is not None:
            sock.sendall(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")

    server = serve(handle)
    assert post(transport, server.url()).status == 200
    time.sleep(0.3)
    assert post(transport, server.url()).status == 200  # a new connection, its own answer
    assert server.accepted == 2


# --- TLS -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for localhost and 127.0.0.1: (cert, key) PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
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


def tls_server(serve: Callable[..., Server], certificate: tuple[Path, Path]) -> Server:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return serve(tls=context)


def test_https_with_a_trusted_certificate_keeps_the_connection(
    serve: Callable[..., Server], certificate: tuple[Path, Path]
) -> None:
    server = tls_server(serve, certificate)
    trust = ssl.create_default_context(cafile=str(certificate[0]))
    t = PushTransport(2, (2.0, 2.0), ssl_context=trust)
    try:
        for _ in range(3):
            reply = post(t, server.url(scheme="https", host="localhost"))
            assert (reply.status, reply.body) == (200, b'{"ok": 1}\r\n')
        assert server.accepted == 1
    finally:
        t.close()


def test_https_with_an_untrusted_certificate_is_refused(
    serve: Callable[..., Server], certificate: tuple[Path, Path]
) -> None:
    server = tls_server(serve, certificate)
    t = PushTransport(2, (2.0, 2.0))  # the system's CAs: a self-signed certificate fails
    try:
        with pytest.raises(ssl.SSLCertVerificationError) as caught:
            post(t, server.url(scheme="https", host="localhost"))
        assert isinstance(caught.value, NETWORK_ERRORS)
        assert server.heads == []  # nothing was sent over it
    finally:
        t.close()


# --- HTTPS_PROXY / NO_PROXY ------------------------------------------------------------------


class ConnectProxy:
    """A local HTTP CONNECT proxy: records each CONNECT target, then pipes bytes both ways
    (or refuses with ``refuse`` as its status line)."""

    def __init__(self, refuse: bytes = b"") -> None:
        self.refuse = refuse
        self.targets: list[str] = []
        self.authorizations: list[str] = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError), conn:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                head += chunk
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ")
            assert method == "CONNECT"
            self.targets.append(target)
            for line in lines[1:]:
                if line.lower().startswith("proxy-authorization:"):
                    self.authorizations.append(line.split(":", 1)[1].strip())
            if self.refuse:
                conn.sendall(self.refuse + b"\r\nContent-Length: 0\r\n\r\n")
                return
            host, _, port = target.rpartition(":")
            with socket.create_connection((host, int(port))) as upstream:
                conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                pump = threading.Thread(target=self._pipe, args=(upstream, conn), daemon=True)
                pump.start()
                self._pipe(conn, upstream)
                pump.join(5)

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
            sink.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def proxy() -> Iterator[ConnectProxy]:
    p = ConnectProxy()
    yield p
    p.close()


def test_https_goes_through_the_proxy_with_tls_to_the_origin(
    serve: Callable[..., Server], certificate: tuple[Path, Path], proxy: ConnectProxy
) -> None:
    server = tls_server(serve, certificate)
    trust = ssl.create_default_context(cafile=str(certificate[0]))
    via = Proxy.parse(f"http://user:p%40ss@127.0.0.1:{proxy.port}", no_proxy="example.test")
    t = PushTransport(2, (2.0, 2.0), ssl_context=trust, proxy=via)
    try:
        for _ in range(3):
            reply = post(t, server.url(scheme="https", host="localhost"))
            assert (reply.status, reply.body) == (200, b'{"ok": 1}\r\n')
    finally:
        t.close()
    assert proxy.targets == [f"localhost:{server.port}"]  # one tunnel, kept alive
    assert proxy.authorizations == ["Basic dXNlcjpwQHNz"]  # user:p@ss
    assert server.accepted == 1 and len(server.heads) == 3


def test_no_proxy_and_plain_http_go_direct(
    serve: Callable[..., Server], certificate: tuple[Path, Path], proxy: ConnectProxy
) -> None:
    server = tls_server(serve, certificate)
    plain = serve()
    trust = ssl.create_default_context(cafile=str(certificate[0]))
    via = Proxy.parse(f"127.0.0.1:{proxy.port}", no_proxy="example.test, localhost")
    t = PushTransport(2, (2.0, 2.0), ssl_context=trust, proxy=via)
    try:
        assert post(t, server.url(scheme="https", host="localhost")).status == 200
        assert post(t, plain.url()).status == 200  # HTTPS_PROXY is for https only
    finally:
        t.close()
    assert proxy.targets == []


def test_a_proxy_refusing_the_tunnel_is_a_network_error(
    serve: Callable[..., Server], certificate: tuple[Path, Path]
) -> None:
    server = tls_server(serve, certificate)
    refusing = ConnectProxy(refuse=b"HTTP/1.1 403 Forbidden")
    trust = ssl.create_default_context(cafile=str(certificate[0]))
    t = PushTransport(
        2, (2.0, 2.0), ssl_context=trust, proxy=Proxy.parse(f"127.0.0.1:{refusing.port}")
    )
    try:
        with pytest.raises(ProxyError, match="403") as caught:
            post(t, server.url(scheme="https", host="localhost"))
        assert isinstance(caught.value, NETWORK_ERRORS)
    finally:
        t.close()
        refusing.close()
    assert server.heads == []


def test_tls_verification_cannot_be_turned_off() -> None:
    lax = ssl.create_default_context()
    lax.check_hostname = False
    lax.verify_mode = ssl.CERT_NONE
    with pytest.raises(ValueError, match="cannot be turned off"):
        PushTransport(1, (1.0, 1.0), ssl_context=lax)


@pytest.mark.parametrize("url", ["socks5://127.0.0.1:1080", "http://127.0.0.1:x"])
def test_a_proxy_url_that_cannot_work_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="HTTPS_PROXY"):
        Proxy.parse(url)
