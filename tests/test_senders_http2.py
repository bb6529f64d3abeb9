"""FcmSender over HTTP/2 (h2 by ALPN over TLS, h2c with prior knowledge) against the fake FCM:
the same outcomes as over HTTP/1.1, many pushes per connection, GOAWAY loses and repeats
nothing."""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from noticecrawler.notify.fcm_errors import Outcome
from noticecrawler.notify.senders.fcm import FcmSender
from tests.fakefcm import FakeFcm, self_signed_certificate, server_tls
from tests.test_fcm import TokenSource, android

PROTOCOLS = ["http/1.1", "h2c", "h2-tls"]


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed_certificate(tmp_path_factory.mktemp("tls"))


def start(protocol: str, certificate: tuple[Path, Path], **fake: Any) -> FakeFcm:
    tls = server_tls(*certificate) if protocol == "h2-tls" else None
    return FakeFcm(token="test-token", project="proj", tls=tls, **fake).start()


def sender_for(
    fake: FakeFcm, protocol: str, certificate: tuple[Path, Path], **kwargs: Any
) -> FcmSender:
    return FcmSender(
        project_id=fake.project,
        credentials=TokenSource("test-token").credentials(),
        endpoint=fake.base_url,
        ssl_context=ssl.create_default_context(cafile=str(certificate[0])),
        h2c=protocol == "h2c",
        **kwargs,
    )


@pytest.fixture(params=PROTOCOLS)
def pair(
    request: pytest.FixtureRequest, certificate: tuple[Path, Path]
) -> Iterator[tuple[FakeFcm, FcmSender, str]]:
    protocol = request.param
    fake = start(protocol, certificate)
    sender = sender_for(fake, protocol, certificate, timeout=(2.0, 0.5))
    yield fake, sender, protocol
    sender.close()
    fake.stop()


@pytest.mark.parametrize(
    ("behaviour", "outcome", "status", "retry_after"),
    [
        ("unregistered", Outcome.UNREGISTERED, 404, None),
        ("404_not_found", Outcome.UNREGISTERED, 404, None),
        ("invalid", Outcome.INVALID, 400, None),
        ("sender_mismatch", Outcome.SENDER_MISMATCH, 403, None),
        ("403_iam", Outcome.RETRY, 403, None),
        (("429", 7), Outcome.RETRY, 429, 7.0),
        ("500", Outcome.RETRY, 500, None),
        (("503", 3), Outcome.RETRY, 503, 3.0),
        ("stall", Outcome.RETRY, None, None),
    ],
)
def test_the_error_contract_is_the_same_over_every_protocol(
    pair: tuple[FakeFcm, FcmSender, str],
    behaviour: Any,
    outcome: Outcome,
    status: int | None,
    retry_after: float | None,
) -> None:
    fake, sender, protocol = pair
    fake.set_token_behaviour("bad", behaviour)
    results = dict(sender.send_batch([("bad", "bad", android()), ("good", "good", android())]))
    bad = results["bad"]
    assert (bad.outcome, bad.http_status, bad.retry_after) == (outcome, status, retry_after)
    assert results["good"].outcome is Outcome.SENT
    assert len(fake.requests_for("bad")) == 1  # never re-sent by the client itself
    assert sender.send_one("after", android()).outcome is Outcome.SENT
    if protocol == "http/1.1":
        assert fake.h2_connections == 0
    else:  # both pushes, and the one after, went over one HTTP/2 connection
        assert fake.h2_connections == fake.connections_opened == 1


@pytest.mark.parametrize(
    ("protocol", "in_flight", "connections"),
    [("h2c", 100, 1), ("h2-tls", 100, 1), ("h2c", 300, 3)],
)
def test_many_pushes_share_a_connection_up_to_its_stream_limit(
    protocol: str, in_flight: int, connections: int, certificate: tuple[Path, Path]
) -> None:
    """100 streams at a time on a connection (the fake's MAX_CONCURRENT_STREAMS): 300 in flight
    take three connections, none opened beyond, none overrun (the fake would reset it) — also
    before the server's SETTINGS arrive, and with the bodies of 300 streams waiting for the
    flow-control window."""
    fake = start(protocol, certificate, delay=0.05, max_streams=100)
    sender = sender_for(fake, protocol, certificate, max_concurrency=in_flight)
    try:
        items = [(i, f"tok-{i}", android()) for i in range(4 * in_flight)]
        results = sender.send_batch(items, concurrency=in_flight)
    finally:
        sender.close()
        fake.stop()
    assert all(r.outcome is Outcome.SENT for _, r in results)
    assert sorted(m["token"] for m in fake.messages) == sorted(t for _, t, _ in items)
    assert fake.connections_opened == fake.h2_connections == connections


@pytest.mark.parametrize("protocol", ["h2c", "h2-tls"])
def test_goaway_mid_batch_loses_and_repeats_nothing(
    protocol: str, certificate: tuple[Path, Path]
) -> None:
    """The fake sends GOAWAY after every 37th request of a connection, with up to 64 streams in
    flight: the streams above its last_stream_id were never processed and go again on a new
    connection; the ones below are answered. Every device gets its push exactly once."""
    fake = start(protocol, certificate, delay=0.01)
    fake.requests_per_connection = 37
    sender = sender_for(fake, protocol, certificate, max_concurrency=64)
    try:
        items = [(i, f"tok-{i}", android()) for i in range(300)]
        results = sender.send_batch(items, concurrency=64)
    finally:
        sender.close()
        fake.stop()
    assert {r.outcome for _, r in results} == {Outcome.SENT}
    assert sorted(m["token"] for m in fake.messages) == sorted(f"tok-{i}" for i in range(300))
    assert fake.connections_opened >= 300 // 37  # it did go away every 37 requests


@pytest.mark.parametrize(
    ("behaviour", "problem"),
    [(("huge", 50_000_000), "body over 65536"), (("huge_length", 10**11), "announcing a body")],
)
def test_an_oversized_answer_resets_its_stream_only(
    behaviour: Any, problem: str, certificate: tuple[Path, Path]
) -> None:
    """A 50 MB answer (sent as fast as the client opens its window) or one announcing 100 GB:
    the stream is reset past 64 KiB, the push is a retry, memory stays flat, and the
    connection goes on serving the next pushes."""
    fake = start("h2c", certificate)
    sender = sender_for(fake, "h2c", certificate)
    fake.set_token_behaviour("big", behaviour)
    try:
        Path("/proc/self/clear_refs").write_text("5")  # the peak RSS starts again from now
        before = _rss_kib("VmRSS")
        result = sender.send_one("big", android())
        growth_mib = (_rss_kib("VmHWM") - before) / 1024
        after = sender.send_one("after", android())
    finally:
        sender.close()
        fake.stop()
    assert result.outcome is Outcome.RETRY and problem in (result.error or "")
    assert growth_mib < 20, f"grew by {growth_mib:.0f} MiB"
    assert after.outcome is Outcome.SENT
    assert fake.connections_opened == 1


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(field)


def test_pushes_go_through_https_proxy_over_http2(certificate: tuple[Path, Path]) -> None:
    """HTTPS_PROXY as make_sender hands it over: one CONNECT tunnel, TLS to the fake FCM inside
    it (verified against the fake's name), h2 chosen by ALPN through the tunnel."""
    from tests.test_transport import ConnectProxy

    proxy = ConnectProxy()
    fake = start("h2-tls", certificate)
    port = fake.port
    sender = sender_for(
        fake, "h2-tls", certificate, proxy=f"http://127.0.0.1:{proxy.port}", no_proxy="other.test"
    )
    try:
        results = sender.send_batch([(i, f"tok-{i}", android()) for i in range(20)])
    finally:
        sender.close()
        fake.stop()
        proxy.close()
    assert {r.outcome for _, r in results} == {Outcome.SENT}
    assert proxy.targets == [f"localhost:{port}"]
    assert fake.h2_connections == fake.connections_opened == 1


def test_a_connection_lost_mid_batch_fails_only_its_unanswered_streams(
    certificate: tuple[Path, Path],
) -> None:
    """The fake drops its HTTP/2 connections (no GOAWAY) while 5 streams of a batch stall:
    those 5 are retries (the server may have seen them), the 15 answered stay sent, nothing
    escapes the send loop, and the next push opens a new connection."""
    fake = start("h2c", certificate)
    sender = sender_for(fake, "h2c", certificate, timeout=(2.0, 10.0))
    for i in range(5):
        fake.set_token_behaviour(f"stall-{i}", "stall")
    items = [(f"ok-{i}", f"ok-{i}", android()) for i in range(15)]
    items += [(f"stall-{i}", f"stall-{i}", android()) for i in range(5)]
    try:

        def drop_when_stalled() -> None:
            deadline = time.monotonic() + 5
            while len(fake.seen) < 20 and time.monotonic() < deadline:
                time.sleep(0.02)
            assert fake._loop is not None
            for connection in list(fake._connections):
                fake._loop.call_soon_threadsafe(connection.close)

        dropper = threading.Thread(target=drop_when_stalled)
        dropper.start()
        results = dict(sender.send_batch(items))
        dropper.join()
        after = sender.send_one("after", android())
    finally:
        sender.close()
        fake.stop()
    assert {k for k, r in results.items() if r.outcome is Outcome.SENT} == {
        f"ok-{i}" for i in range(15)
    }
    stalled = [results[f"stall-{i}"] for i in range(5)]
    assert all(r.outcome is Outcome.RETRY and "closed" in (r.error or "") for r in stalled)
    assert after.outcome is Outcome.SENT
    assert fake.connections_opened == 2


def test_fcm_ca_file_is_trusted_for_pushes_and_the_token_endpoint(
    certificate: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FCM_CA_FILE: FCM's certificate (and Google's OAuth endpoint's) is checked against that
    bundle instead of the system's — verification stays on: without it the fake's
    self-signed certificate is refused and nothing is pushed."""
    from noticecrawler import settings
    from noticecrawler.notify.senders import Push, SenderConfig, make_sender
    from tests.notify_helpers import ACCESS_TOKEN, PROJECT, service_account_file

    fake = FakeFcm(token=ACCESS_TOKEN, project=PROJECT, tls=server_tls(*certificate)).start()
    account = str(service_account_file(tmp_path / "sa.json", fake))
    push = Push.of_post({"id": 7, "board": "cse", "title": "t", "url": ""}, "android", "dev-1")
    monkeypatch.setattr(settings, "FCM_CA_FILE", str(certificate[0]))
    config = SenderConfig.from_settings(
        backend="fcm", credentials_file=account, project_id=PROJECT, endpoint=fake.base_url
    )
    assert config.ca_file == str(certificate[0])
    trusting = make_sender(config)
    untrusting = make_sender(SenderConfig(**{**config.__dict__, "ca_file": ""}))
    try:
        assert trusting.send_push(push).outcome is Outcome.SENT
        assert fake.token_requests == 1 and fake.h2_connections == 1
        refused = untrusting.send_push(push)
        assert refused.outcome is Outcome.RETRY and "CERTIFICATE_VERIFY_FAILED" in (
            refused.error or ""
        )
        assert len(fake.messages_for("dev-1")) == 1
    finally:
        trusting.close()
        untrusting.close()
        fake.stop()
    with pytest.raises(ValueError, match="FCM_CA_FILE"):
        make_sender(SenderConfig(**{**config.__dict__, "ca_file": str(tmp_path / "none.pem")}))
