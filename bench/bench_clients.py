"""Which HTTP client pushes to FCM: the candidates side by side in one run, at each latency.

    python bench/bench_clients.py [--delay-ms 5 40] [--messages 5000] [--in-flight 500]

The fake FCM (tests/fakefcm.py) runs in a child process over TLS, offering h2 and http/1.1 by
ALPN like FCM's front ends, answering every push after ``--delay-ms``. Each candidate sends the
same ``--messages`` Android pushes with at most ``--in-flight`` unanswered at once:

* ``transport-h1``: today's PushTransport through FcmSender (keep-alive HTTP/1.1, one request
  per connection at a time: ``--in-flight`` connections);
* ``aiohttp-h1``: one aiohttp session (HTTP/1.1 only), ``--in-flight`` connections;
* ``httpx-h2``: one httpx.AsyncClient(http2=True): streams multiplexed on few connections;
* ``transport-h2``: the same FcmSender offering h2 by ALPN: streams on few connections, over
  the hand-written HTTP/2 connection (noticecrawler/notify/senders/http2.py);
* ``transport-h2lib``: the same, the connection being the ``h2`` library's state machine
  (bench/h2lib_connection.py, the transport's connection until the hand-written one);
* ``transport-h1-asyncio`` / ``transport-h2-asyncio``: transport-h1 / transport-h2 on asyncio's
  own event loop instead of uvloop's (the transport's since issue 13's last round);
* ``firebase-admin``: the official SDK's ``messaging.send_each_async`` (httpx with HTTP/2
  under the hood), 500 messages per call as its docs allow, calls one after another.

Reported: pushes/s, the bench process's CPU per push (the fake has its own process), and the
connections the fake accepted. Everything shares this machine's CPUs with the fake.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import ssl
import statistics
import sys
import tempfile
import time
import urllib.request
import warnings
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from google.oauth2.credentials import Credentials

from bench.bench_workers import tree_cpu
from bench.h2lib_connection import H2Connection as H2LibConnection
from noticecrawler.notify.senders.fcm import FcmSender, build_message
from noticecrawler.notify.transport import PushTransport
from tests.fakefcm import FakeFcm, self_signed_certificate, server_tls

TOKEN = "bench-token"
PROJECT = "bench"
POST = {"id": 1, "board": "cse", "title": "2학기 국가장학금 신청 안내", "url": "https://x.test/1"}


def serve(delay: float, folder: str, ready: Any, stop: Any) -> None:
    cert, key = Path(folder) / "cert.pem", Path(folder) / "key.pem"
    tls = server_tls(cert, key)
    with FakeFcm(token=TOKEN, project=PROJECT, delay=delay, tls=tls, lean=True) as fake:
        ready.put(fake.port)
        stop.wait()


def stats(port: int, trust: ssl.SSLContext) -> dict[str, int]:
    url = f"https://localhost:{port}/_fake/stats"
    with urllib.request.urlopen(url, timeout=10, context=trust) as answer:
        return dict(json.load(answer))


def credentials() -> Credentials:
    def refresh(request: Any, scopes: Any = None) -> tuple[str, datetime]:
        return TOKEN, datetime.now(UTC).replace(tzinfo=None) + timedelta(hours=1)

    return Credentials(token=None, refresh_handler=refresh)


class Bench:
    def __init__(self, port: int, trust: ssl.SSLContext, in_flight: int, folder: Path) -> None:
        self.port = port
        self.trust = trust
        self.in_flight = in_flight
        self.folder = folder
        self.url = f"https://localhost:{port}/v1/projects/{PROJECT}/messages:send"
        self.kwargs = build_message(POST, "android", "notices")
        self.headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        self.sender = self._sender(http2=False)
        self.sender_h2 = self._sender(http2=True)
        self.sender_h2lib = self._sender(http2=True)
        self.sender_h2lib.transport.h2_class = cast(Any, H2LibConnection)
        own = PushTransport.__dict__["new_loop"]
        PushTransport.new_loop = staticmethod(asyncio.new_event_loop)
        try:  # the same two on asyncio's own loop instead of uvloop's
            self.sender_h2_asyncio = self._sender(http2=True)
            self.sender_h1_asyncio = self._sender(http2=False)
        finally:
            PushTransport.new_loop = own

    def _sender(self, http2: bool) -> FcmSender:
        return FcmSender(
            project_id=PROJECT,
            credentials=credentials(),
            endpoint=f"https://localhost:{self.port}/v1/projects",
            max_concurrency=self.in_flight,
            ssl_context=ssl.create_default_context(cafile=str(self.folder / "cert.pem")),
            http2=http2,
        )

    def bodies(self, tokens: list[str]) -> list[bytes]:
        """The request bodies pyfcm builds (the same bytes for every candidate)."""
        return [bytes(self.sender.fcm.parse_payload(fcm_token=t, **self.kwargs)) for t in tokens]

    # --- candidates: each sends to every token and returns how many FCM accepted -------------
    def transport_h1(self, tokens: list[str]) -> int:
        items = [(t, t, self.kwargs) for t in tokens]
        results = self.sender.send_batch(items, concurrency=self.in_flight)
        return sum(1 for _, r in results if r.message_name)

    def transport_h2(self, tokens: list[str]) -> int:
        items = [(t, t, self.kwargs) for t in tokens]
        results = self.sender_h2.send_batch(items, concurrency=self.in_flight)
        return sum(1 for _, r in results if r.message_name)

    def transport_h2lib(self, tokens: list[str]) -> int:
        return self._through(self.sender_h2lib, tokens)

    def transport_h2_asyncio(self, tokens: list[str]) -> int:
        return self._through(self.sender_h2_asyncio, tokens)

    def transport_h1_asyncio(self, tokens: list[str]) -> int:
        return self._through(self.sender_h1_asyncio, tokens)

    def _through(self, sender: FcmSender, tokens: list[str]) -> int:
        items = [(t, t, self.kwargs) for t in tokens]
        results = sender.send_batch(items, concurrency=self.in_flight)
        return sum(1 for _, r in results if r.message_name)

    def aiohttp_h1(self, tokens: list[str]) -> int:
        import aiohttp

        bodies = self.bodies(tokens)

        async def run() -> int:
            gate = asyncio.Semaphore(self.in_flight)
            connector = aiohttp.TCPConnector(limit=self.in_flight, ssl=self.trust)
            async with aiohttp.ClientSession(connector=connector) as session:

                async def one(body: bytes) -> bool:
                    async with gate, session.post(self.url, data=body, headers=self.headers) as r:
                        await r.read()
                        return r.status == 200

                return sum(await asyncio.gather(*(one(b) for b in bodies)))

        return asyncio.run(run())

    def httpx_h2(self, tokens: list[str]) -> int:
        import httpx

        bodies = self.bodies(tokens)

        async def run() -> int:
            gate = asyncio.Semaphore(self.in_flight)
            limits = httpx.Limits(max_connections=max(1, self.in_flight // 100 + 1))
            async with httpx.AsyncClient(http2=True, verify=self.trust, limits=limits) as client:

                async def one(body: bytes) -> bool:
                    async with gate:
                        r = await client.post(self.url, content=body, headers=self.headers)
                        return r.status_code == 200 and r.http_version == "HTTP/2"

                return sum(await asyncio.gather(*(one(b) for b in bodies)))

        return asyncio.run(run())

    def firebase_admin(self, tokens: list[str]) -> int:
        import firebase_admin
        from firebase_admin import credentials as fa_credentials
        from firebase_admin import messaging

        app = getattr(self, "_app", None)
        if app is None:
            os.environ["SSL_CERT_FILE"] = str(self.folder / "cert.pem")  # httpx trusts the fake
            os.environ["REQUESTS_CA_BUNDLE"] = str(self.folder / "cert.pem")  # google-auth too
            # the SDK's endpoint is a class constant: pointed at the fake for the bench only
            messaging._MessagingService.FCM_URL = (
                f"https://localhost:{self.port}/v1/projects/{{0}}/messages:send"
            )
            cred = fa_credentials.Certificate(service_account(self.folder, self.port))
            name = f"bench-{self.port}"
            app = self._app = firebase_admin.initialize_app(cred, {"projectId": PROJECT}, name)
            self._loop = asyncio.new_event_loop()  # the SDK's client stays on its first loop
        post = self.kwargs
        warnings.simplefilter("ignore", DeprecationWarning)  # Message.token (renamed in 7.x)
        messages = [
            messaging.Message(
                token=t,
                notification=messaging.Notification(
                    post["notification_title"], post["notification_body"]
                ),
                data=post["data_payload"],
                android=messaging.AndroidConfig(
                    collapse_key="post-1",
                    priority="high",
                    ttl=86400,
                    notification=messaging.AndroidNotification(channel_id="notices", tag="1"),
                ),
            )
            for t in tokens
        ]

        async def run() -> int:
            sent = 0
            for start in range(0, len(messages), 500):
                chunk = messages[start : start + 500]
                answer = await messaging.send_each_async(chunk, app=app)
                sent += answer.success_count
            return sent

        return self._loop.run_until_complete(run())


def service_account(folder: Path, port: int) -> dict[str, str]:
    """A service-account dict whose tokens come from the fake's OAuth endpoint."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return {
        "type": "service_account",
        "project_id": PROJECT,
        "private_key_id": "bench",
        "private_key": pem,
        "client_email": "bench@bench.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": f"https://localhost:{port}/token",
    }


def measure(
    run: Callable[[list[str]], int], name: str, messages: int, rounds: int, fake_pid: int
) -> Any:
    """(push/s, the bench's CPU µs per push, the fake's CPU µs per push, pushes accepted)."""
    rates, cpus, fake_cpus, sent = [], [], [], 0
    for r in range(rounds):
        tokens = [f"{name}-{r}-{i}" for i in range(messages)]
        cpu, wall, fake = time.process_time(), time.perf_counter(), tree_cpu([fake_pid])
        sent = run(tokens)
        wall = time.perf_counter() - wall
        cpus.append((time.process_time() - cpu) / messages * 1e6)
        fake_cpus.append((tree_cpu([fake_pid]) - fake) / messages * 1e6)
        rates.append(messages / wall)
    return statistics.median(rates), statistics.median(cpus), statistics.median(fake_cpus), sent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay-ms", type=float, nargs="+", default=[5.0, 40.0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--in-flight", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", nargs="*", default=None, help="candidates to run")
    args = parser.parse_args()
    candidates = [
        "transport-h1",
        "aiohttp-h1",
        "httpx-h2",
        "transport-h1-asyncio",
        "transport-h2lib",
        "transport-h2",
        "transport-h2-asyncio",
        "firebase-admin",
    ]
    wanted = args.only or candidates
    with tempfile.TemporaryDirectory(prefix="bench-clients-") as tmp:
        folder = Path(tmp)
        cert, _ = self_signed_certificate(folder)
        trust = ssl.create_default_context(cafile=str(cert))
        ctx = multiprocessing.get_context("spawn")
        print(
            f"{args.messages} pushes per round (median of {args.rounds}), "
            f"at most {args.in_flight} in flight, fake FCM over TLS (ALPN h2, http/1.1)"
        )
        print(
            f"{'delay':>6} {'client':21}{'push/s':>9}{'CPU µs/push':>13}{'fake µs/push':>14}"
            f"{'ok':>7}{'conns':>7}   (load {' '.join(f'{x:.1f}' for x in os.getloadavg())})"
        )
        for delay in args.delay_ms:
            ready, stop = ctx.Queue(), ctx.Event()
            server = ctx.Process(target=serve, args=(delay / 1000, tmp, ready, stop))
            server.start()
            port = ready.get(timeout=30)
            bench = Bench(port, trust, args.in_flight, folder)
            runners = {
                "transport-h1": bench.transport_h1,
                "aiohttp-h1": bench.aiohttp_h1,
                "httpx-h2": bench.httpx_h2,
                "transport-h2": bench.transport_h2,
                "transport-h2lib": bench.transport_h2lib,
                "transport-h2-asyncio": bench.transport_h2_asyncio,
                "transport-h1-asyncio": bench.transport_h1_asyncio,
                "firebase-admin": bench.firebase_admin,
            }
            try:
                bench.transport_h1(["warm-up"] * 10)
                bench.transport_h2(["warm-up"] * 10)
                for warm_up in (bench.transport_h2lib, bench.transport_h2_asyncio):
                    warm_up(["warm-up"] * 10)
                for name in wanted:
                    run = runners.get(name)
                    if run is None:
                        continue
                    before = stats(port, trust)["connections"]
                    try:
                        rate, cpu, fake, sent = measure(
                            run, name, args.messages, args.rounds, server.pid
                        )
                    except ImportError as exc:  # pip install -e '.[bench]'
                        print(f"{delay:>4g}ms {name:21} not installed ({exc.name})")
                        continue
                    opened = (stats(port, trust)["connections"] - before) / args.rounds
                    print(
                        f"{delay:>4g}ms {name:21}{rate:9.0f}{cpu:13.0f}{fake:14.0f}{sent:7}"
                        f"{opened:7.0f}",
                        flush=True,
                    )
            finally:
                bench.sender.close()
                bench.sender_h2.close()
                for sender in (
                    bench.sender_h2lib,
                    bench.sender_h2_asyncio,
                    bench.sender_h1_asyncio,
                ):
                    sender.close()
                stop.set()
                server.join(timeout=10)


if __name__ == "__main__":
    main()
