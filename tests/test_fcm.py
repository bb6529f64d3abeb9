from __future__ import annotations

import asyncio
import email.utils
import json
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from google.oauth2.credentials import Credentials

from noticecrawler.notify.fcm_errors import Outcome, parse_retry_after
from noticecrawler.notify.senders import Push, SenderConfig, make_sender
from noticecrawler.notify.senders.console import ConsoleSender
from noticecrawler.notify.senders.fcm import FcmSender, build_message
from tests.fakefcm import FakeFcm
from tests.notify_helpers import service_account_file

POST = {"id": 42, "board": "cse", "title": "2학기 장학금 신청 안내", "url": "https://x.test/42"}


class TokenSource:
    """A refresh_handler handing out fixed tokens, offline, counting refreshes."""

    def __init__(self, *tokens: str) -> None:
        self.tokens = list(tokens)
        self.refreshes = 0

    def __call__(self, request: Any, scopes: Any = None) -> tuple[str, datetime]:
        token = self.tokens[min(self.refreshes, len(self.tokens) - 1)]
        self.refreshes += 1
        return token, datetime.now(UTC).replace(tzinfo=None) + timedelta(hours=1)

    def credentials(self) -> Credentials:
        return Credentials(token=None, refresh_handler=self)


@pytest.fixture
def fake() -> Iterator[FakeFcm]:
    with FakeFcm(token="test-token", project="proj") as server:
        yield server


def make(fake: FakeFcm, tokens: TokenSource | None = None, **kwargs: Any) -> FcmSender:
    source = tokens or TokenSource("test-token")
    return FcmSender(
        project_id=fake.project,
        credentials=source.credentials(),
        endpoint=fake.base_url,
        **kwargs,
    )


@pytest.fixture
def sender(fake: FakeFcm) -> Iterator[FcmSender]:
    s = make(fake)
    yield s
    s.close()


def android() -> dict[str, Any]:
    return build_message(POST, "android", "notices")


def test_android_push_shape(fake: FakeFcm, sender: FcmSender) -> None:
    result = sender.send_one("device-a", android())
    assert result.outcome is Outcome.SENT
    assert result.message_name == "projects/proj/messages/1"
    [message] = fake.messages_for("device-a")
    assert message["notification"] == {"title": "cse", "body": POST["title"]}
    assert message["data"] == {"post_id": "42", "board": "cse", "url": "https://x.test/42"}
    assert message["android"]["notification"] == {"channel_id": "notices", "tag": "42"}
    assert message["android"]["collapse_key"] == "post-42"
    assert "apns" not in message


def test_ios_push_shape(fake: FakeFcm, sender: FcmSender) -> None:
    kwargs = build_message(POST, "ios", "notices", board_title="컴퓨터학부")
    assert sender.send_one("device-i", kwargs).outcome is Outcome.SENT
    [message] = fake.messages_for("device-i")
    assert message["notification"]["title"] == "컴퓨터학부"
    assert message["apns"]["headers"] == {
        "apns-collapse-id": "42",
        "apns-push-type": "alert",
        "apns-priority": "10",
    }
    assert message["apns"]["payload"]["aps"]["sound"] == "default"
    assert all(isinstance(v, str) for v in message["data"].values())


def test_ios_settings_are_configurable(fake: FakeFcm, sender: FcmSender) -> None:
    kwargs = build_message(POST, "ios", "notices", apns_sound="", apns_topic="kr.ac.x.notice")
    assert sender.send_one("device-j", kwargs).outcome is Outcome.SENT
    [message] = fake.messages_for("device-j")
    assert message["apns"]["headers"]["apns-topic"] == "kr.ac.x.notice"
    assert "sound" not in message["apns"]["payload"]["aps"]  # silent


def test_web_push_and_bad_platform() -> None:
    web = build_message(POST, "web", "notices")
    assert web["webpush_config"]["notification"]["tag"] == "42"
    assert web["webpush_config"]["fcm_options"]["link"] == "https://x.test/42"
    with pytest.raises(ValueError, match="blackberry"):
        build_message(POST, "blackberry", "notices")


def test_long_title_is_clipped() -> None:
    kwargs = build_message({**POST, "title": "가" * 1000}, "android", "c")
    assert len(kwargs["notification_body"]) == 240


def test_fake_rejects_non_string_data(fake: FakeFcm, sender: FcmSender) -> None:
    kwargs = {**android(), "data_payload": {"post_id": 42}}
    result = sender.send_one("device-a", kwargs)
    assert result.outcome is Outcome.INVALID
    assert result.http_status == 400
    assert fake.messages == []


def test_wrong_bearer_token_is_refused(fake: FakeFcm) -> None:
    tokens = TokenSource("not-the-token")
    s = make(fake, tokens)
    try:
        result = s.send_one("device-a", android())
    finally:
        s.close()
    assert result.outcome is Outcome.RETRY  # the sender is broken, not the device
    assert result.http_status == 401
    assert "UNAUTHENTICATED" in (result.error or "")
    assert tokens.refreshes == 2  # refreshed once after the first 401, then gave up
    assert len(fake.seen) == 2
    assert fake.messages == []


def test_expired_token_is_refreshed_and_sent(fake: FakeFcm, sender: FcmSender) -> None:
    fake.fail_next(1, "unauthenticated")
    result = sender.send_one("device-a", android())
    assert result.outcome is Outcome.SENT
    assert [s.status for s in fake.seen] == [401, 200]
    assert len(fake.messages_for("device-a")) == 1


def test_rotated_token(fake: FakeFcm) -> None:
    tokens = TokenSource("tok-1", "tok-2")
    fake.expected_token = "tok-1"
    s = make(fake, tokens)
    try:
        assert s.send_one("device-a", android()).outcome is Outcome.SENT
        fake.expected_token = "tok-2"  # the first token expired server-side
        assert s.send_one("device-b", android()).outcome is Outcome.SENT
        assert s.send_one("device-c", android()).outcome is Outcome.SENT
    finally:
        s.close()
    assert tokens.refreshes == 2
    assert [s.status for s in fake.seen] == [200, 401, 200, 200]


@pytest.mark.parametrize(
    ("behaviour", "outcome", "status", "deactivate"),
    [
        ("unregistered", Outcome.UNREGISTERED, 404, True),
        ("invalid", Outcome.INVALID, 400, False),
        ("sender_mismatch", Outcome.SENDER_MISMATCH, 403, True),
        ("third_party_auth", Outcome.INVALID, 401, False),
        # no details[].errorCode: the canonical status decides (issue 9, item 8)
        ("404_not_found", Outcome.UNREGISTERED, 404, True),
        ("404_unregistered", Outcome.UNREGISTERED, 404, True),
        ("403_denied", Outcome.SENDER_MISMATCH, 403, True),
        # errorCode UNSPECIFIED_ERROR and no status: the HTTP status decides
        ("unspecified_404", Outcome.UNREGISTERED, 404, True),
        # a 403 about the project's IAM permission is the sender's problem, not the token's
        ("403_iam", Outcome.RETRY, 403, False),
        ("500", Outcome.RETRY, 500, False),
        ("503", Outcome.RETRY, 503, False),
        (("429", 7), Outcome.RETRY, 429, False),
    ],
)
def test_error_classification(
    fake: FakeFcm,
    sender: FcmSender,
    behaviour: Any,
    outcome: Outcome,
    status: int,
    deactivate: bool,
) -> None:
    fake.set_token_behaviour("bad", behaviour)
    result = sender.send_one("bad", android())
    assert result.outcome is outcome
    assert result.http_status == status
    assert result.deactivate is deactivate
    assert len(fake.requests_for("bad")) == 1  # never re-sent by the client itself
    assert sender.send_one("good", android()).outcome is Outcome.SENT


def test_429_retry_after_is_reported_not_slept(fake: FakeFcm, sender: FcmSender) -> None:
    fake.set_token_behaviour("busy", ("429", 30))
    started = time.monotonic()
    result = sender.send_one("busy", android())
    assert time.monotonic() - started < 5  # pyfcm alone would sleep 30 s (and again...)
    assert result.outcome is Outcome.RETRY
    assert result.retry_after == 30
    assert "QUOTA_EXCEEDED" in (result.error or "")


def test_retry_after_as_http_date(fake: FakeFcm, sender: FcmSender) -> None:
    when = email.utils.formatdate(time.time() + 120, usegmt=True)
    fake.fail_next(1, ("503", when))
    result = sender.send_one("device-a", android())
    assert result.outcome is Outcome.RETRY
    assert result.retry_after is not None
    assert 100 < result.retry_after <= 120


def test_503_is_not_retried_by_the_adapter(fake: FakeFcm, sender: FcmSender) -> None:
    fake.fail_next(1, ("503", 60))
    started = time.monotonic()
    result = sender.send_one("device-a", android())
    assert time.monotonic() - started < 5
    assert result.outcome is Outcome.RETRY
    assert len(fake.seen) == 1


def test_stalled_request_times_out_as_retry(fake: FakeFcm) -> None:
    s = make(fake, timeout=(1.0, 0.3))
    fake.set_token_behaviour("slow", "stall")
    started = time.monotonic()
    try:
        result = s.send_one("slow", android())
    finally:
        s.close()
    assert time.monotonic() - started < 5
    assert result.outcome is Outcome.RETRY
    assert "Timeout" in (result.error or "")


def test_connection_refused_is_retry() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    tokens = TokenSource("t")
    s = FcmSender(
        project_id="p",
        credentials=tokens.credentials(),
        endpoint=f"http://127.0.0.1:{port}/v1/projects",
        timeout=(1.0, 1.0),
    )
    try:
        result = s.send_one("device-a", android())
    finally:
        s.close()
    assert result.outcome is Outcome.RETRY
    assert "connect" in (result.error or "").lower()


def test_bare_404_from_a_wrong_endpoint_does_not_deactivate(fake: FakeFcm) -> None:
    s = FcmSender(
        project_id="p",
        credentials=TokenSource("test-token").credentials(),
        endpoint=f"http://127.0.0.1:{fake.port}/v2/wrong",
    )
    try:
        result = s.send_one("device-a", android())
    finally:
        s.close()
    assert result.http_status == 404
    assert result.outcome is Outcome.RETRY
    assert not result.deactivate


def test_batch_of_200(fake: FakeFcm, sender: FcmSender) -> None:
    fake.set_token_behaviour("tok-7", "unregistered")
    fake.set_token_behaviour("tok-8", ("429", 3))
    items = [(i, f"tok-{i}", android()) for i in range(200)]
    results = sender.send_batch(items, concurrency=16)
    assert [key for key, _ in results] == list(range(200))
    by_key = dict(results)
    assert by_key[7].outcome is Outcome.UNREGISTERED
    assert by_key[8].retry_after == 3
    sent = [k for k, r in results if r.outcome is Outcome.SENT]
    assert len(sent) == 198
    tokens = [m["token"] for m in fake.messages]
    assert sorted(tokens) == sorted(f"tok-{k}" for k in sent)  # each recorded exactly once
    assert len(set(r.message_name for r in by_key.values() if r.message_name)) == 198


def test_stream_hands_results_back_in_chunks_and_never_runs_ahead_of_the_window(
    fake: FakeFcm, sender: FcmSender
) -> None:
    """Pushes go on while the caller handles a chunk, but never more than ``window`` are sent
    and not yet handled: what a worker killed mid-stream may push again."""
    items = [(i, f"tok-{i}", android()) for i in range(120)]
    handled: list[int] = []
    ahead = []
    for chunk in sender.send_stream(items, concurrency=8, window=20):
        assert len(chunk) == 10 or len(handled) + len(chunk) == 120
        time.sleep(0.05)  # a slow recording: the sending runs ahead as far as it may
        ahead.append(len(fake.messages) - len(handled))
        handled.extend(key for key, result in chunk if result.outcome is Outcome.SENT)
    assert sorted(handled) == list(range(120))
    assert max(ahead) <= 20
    assert max(ahead) > 10  # the next pushes did go out while a chunk was being handled


def test_stream_stopped_early_cancels_the_rest(fake: FakeFcm, sender: FcmSender) -> None:
    fake.delay = 0.02
    items = [(i, f"tok-{i}", android()) for i in range(200)]
    stream = sender.send_stream(items, concurrency=4, window=8)
    first = next(stream)
    assert len(first) == 4
    stream.close()  # the caller failed (say, its database went away)
    time.sleep(0.3)
    sent = len(fake.messages)
    assert sent <= 8 + 4  # the window, plus the ones answered while the stream closed
    time.sleep(0.2)
    assert len(fake.messages) == sent  # nothing more goes out

    async def others() -> int:
        return len(asyncio.all_tasks()) - 1

    assert sender.transport.run(others()) == 0  # no push left waiting for its turn forever


def test_server_closing_connections_now_and_then_loses_and_repeats_nothing(
    fake: FakeFcm, sender: FcmSender
) -> None:
    fake.requests_per_connection = 7
    items = [(i, f"tok-{i}", android()) for i in range(300)]
    results = sender.send_batch(items, concurrency=16)
    assert all(r.outcome is Outcome.SENT for _, r in results)
    assert sorted(m["token"] for m in fake.messages) == sorted(f"tok-{i}" for i in range(300))
    assert fake.connections_opened >= 300 // 7  # it did hang up on every 7th answer


def test_slow_fcm_with_a_small_backlog_gets_every_push_once() -> None:
    """Issue 9, item 7: FCM answering in 15 s behind a listen backlog of 5. The default read
    timeout (30 s) outlasts the answer, so nothing is timed out and sent again, and the
    connections of the batch are opened a few at a time, not 100 at once."""
    with FakeFcm(token="test-token", project="proj", delay=15.0, backlog=5) as slow:
        s = FcmSender(
            project_id=slow.project,
            credentials=TokenSource("test-token").credentials(),
            endpoint=slow.base_url,
        )
        try:
            tokens = [f"dev-{i}" for i in range(60)]
            results = s.send_batch([(t, t, android()) for t in tokens], concurrency=100)
            pools = list(s.transport._pools.values())
        finally:
            s.close()
        assert {key: r.outcome for key, r in results} == dict.fromkeys(tokens, Outcome.SENT)
        assert sorted(m["token"] for m in slow.messages) == sorted(tokens)  # each one once
        assert len(slow.seen) == len(tokens)
    assert [p.peak_connecting for p in pools] and max(p.peak_connecting for p in pools) <= 4


def test_console_sender(capsys: pytest.CaptureFixture[str]) -> None:
    console = ConsoleSender()
    push = Push.of_post(POST, "android", "abcdefghijklmnopqrstuvwxyz", "컴퓨터학부")
    results = [r for chunk in console.send([("k", push)]) for r in chunk]
    out = capsys.readouterr().out
    assert out == f"push [컴퓨터학부] {POST['title']} -> abcdefghijkl…\n"
    assert results[0][0] == "k"
    assert results[0][1].outcome is Outcome.SENT


def test_make_sender(tmp_path: Any, fake: FakeFcm) -> None:
    assert isinstance(make_sender("", "", ""), ConsoleSender)
    creds = service_account_file(tmp_path / "sa.json", fake)
    real = make_sender(str(creds), "proj", "http://127.0.0.1:9/v1/projects")
    assert isinstance(real, FcmSender)
    real.close()
    with pytest.raises(ValueError, match="FCM_PROJECT_ID"):
        make_sender(str(creds), "", "")
    with pytest.raises(FileNotFoundError):  # checked when the configuration loads
        make_sender(str(tmp_path / "missing.json"), "proj", "")
    config = SenderConfig(backend="console", credentials_file=str(creds), project_id="proj")
    assert isinstance(make_sender(config), ConsoleSender)
    with pytest.raises(ValueError, match="NOTIFY_SENDER 'apns'"):
        make_sender(SenderConfig(backend="apns"))


def test_a_push_reaches_fcm_as_pyfcm_builds_it_with_the_board_title(
    fake: FakeFcm, sender: FcmSender
) -> None:
    """The neutral Push (what the fan-out hands every backend) becomes the message pyfcm's
    public parse_payload builds on the installed pyfcm, with the catalog's title as title."""
    pushes = [
        (p, Push.of_post(POST, p, f"{p}-tok", board_title="컴퓨터학부 공지"))
        for p in ("android", "ios", "web")
    ]
    results = dict(r for chunk in sender.send(pushes) for r in chunk)
    assert {r.outcome for r in results.values()} == {Outcome.SENT}
    for platform in ("android", "ios", "web"):
        (got,) = fake.messages_for(f"{platform}-tok")
        kwargs = build_message(POST, platform, "notices", board_title="컴퓨터학부 공지")
        built = json.loads(sender.fcm.parse_payload(fcm_token=f"{platform}-tok", **kwargs))
        assert got == built["message"]
        assert got["notification"] == {"title": "컴퓨터학부 공지", "body": POST["title"]}
        assert got["data"]["post_id"] == "42"
    bad = sender.send_push(Push.of_post(POST, "blackberry", "bb-tok"))
    assert bad.outcome is Outcome.INVALID and "platform" in (bad.error or "")


def test_make_sender_takes_the_proxy_from_settings(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from noticecrawler import settings

    monkeypatch.setattr(settings, "FCM_HTTPS_PROXY", "http://proxy.test:3128")
    monkeypatch.setattr(settings, "FCM_NO_PROXY", "internal.test")
    with FakeFcm() as fake:
        creds = service_account_file(tmp_path / "sa.json", fake)
    real = make_sender(str(creds), "proj", "")
    try:
        assert isinstance(real, FcmSender)
        proxy = real.transport.proxy
        assert proxy is not None and (proxy.host, proxy.port) == ("proxy.test", 3128)
        assert proxy.applies_to("fcm.googleapis.com", 443)
        assert not proxy.applies_to("fcm.internal.test", 443)
    finally:
        real.close()


@pytest.mark.parametrize(
    ("header", "expected"),
    [(None, None), ("", None), ("30", 30.0), ("0", 0.0), ("-5", 0.0), ("soon", None)],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header) == expected


def test_parse_retry_after_date() -> None:
    now = 1_700_000_000.0
    header = email.utils.formatdate(now + 90, usegmt=True)
    assert parse_retry_after(header, now=now) == pytest.approx(90, abs=1)


def test_a_batch_sends_each_device_exactly_what_pyfcm_builds_for_it(
    fake: FakeFcm, sender: FcmSender
) -> None:
    # the batch reuses one payload per platform with the token spliced in: every device must
    # still get pyfcm's own message, whatever its token holds
    tokens = ['quo"te', "back\\slash", "한글토큰", "line\u2028sep", "plain-token:APA91b"]
    messages = {p: build_message(POST, p, "notices") for p in ("android", "ios", "web")}
    items = [(f"{p}-{t}", f"{p}-{t}", messages[p]) for p in messages for t in tokens]
    results = sender.send_batch(items)
    assert all(r.outcome is Outcome.SENT for _, r in results)
    for platform, kwargs in messages.items():
        for token in tokens:
            [got] = fake.messages_for(f"{platform}-{token}")
            pyfcm = json.loads(sender.fcm.parse_payload(fcm_token=f"{platform}-{token}", **kwargs))
            assert got == pyfcm["message"]


@pytest.mark.parametrize("token", ["a\r\nb", "tok\x00en", "tok en", "tok\x0ben", ""])
def test_a_token_that_cannot_be_sent_is_invalid_and_the_batch_goes_on(
    fake: FakeFcm, sender: FcmSender, token: str
) -> None:
    results = sender.send_batch([("bad", token, android()), ("good", "good-token", android())])
    outcomes = dict((key, r.outcome) for key, r in results)
    assert outcomes == {"bad": Outcome.INVALID, "good": Outcome.SENT}
    assert [m["token"] for m in fake.messages] == ["good-token"]


def test_an_access_token_with_a_newline_is_a_clear_retry_not_a_crash(fake: FakeFcm) -> None:
    s = make(fake, TokenSource("test-token\r\nX-Evil: 1"))
    try:
        results = s.send_batch([(i, f"dev-{i}", android()) for i in range(3)])
    finally:
        s.close()
    assert {r.outcome for _, r in results} == {Outcome.RETRY}
    assert "control character" in (results[0][1].error or "")
    assert fake.seen == []


@pytest.mark.parametrize(
    ("project", "endpoint", "problem"),
    [
        ("my project", None, "not a Google Cloud project id"),
        ("proj/../x", None, "not a Google Cloud project id"),
        ("proj", "https://fcm.example/v1/projects?x=1", "no user, query or fragment"),
        ("proj", "http://fcm.example/v1/projects", "only to a loopback"),
        ("proj", "https://fcm.example/v1/pro jects", "spaces or control"),
        ("proj", "ftp://fcm.example/v1", "not an http"),
    ],
)
def test_project_id_and_endpoint_are_checked_when_the_sender_is_made(
    project: str, endpoint: str | None, problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        FcmSender(
            project_id=project,
            credentials=TokenSource("t").credentials(),
            endpoint=endpoint,
        )
