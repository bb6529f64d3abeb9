"""The notify service functions and the operations commands, on a real PostgreSQL and the fake
FCM over HTTP, without Celery (the tasks are tested with real workers in test_notify_worker)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

import noticecrawler.settings
from noticecrawler.cli import main
from noticecrawler.notify import batchstore, outboxstore, service, store
from noticecrawler.notify.config import NotifyConfig, from_settings
from noticecrawler.notify.console import ConsoleSender
from noticecrawler.notify.fcm import FcmSender, make_sender
from noticecrawler.notify.matching import Matcher
from tests.fakefcm import FakeFcm
from tests.notify_helpers import ACCESS_TOKEN, PROJECT, add_users, count, fcm_env

Conn = psycopg.Connection[Any]
CONFIG = NotifyConfig(batch_size=2, max_attempts=3, retry_base_delay=1.0, retry_max_delay=60)


def add_post(db: Conn, title: str, board: str = "cse", *, outbox: bool = True) -> int:
    row = db.execute(
        "INSERT INTO posts (board, post_id, title, url) VALUES (%s, %s, %s, %s) RETURNING id",
        (board, title, title, f"https://x.test/{board}/{title}"),
    ).fetchone()
    assert row is not None
    if outbox:
        db.execute("INSERT INTO notify_outbox (post_id) VALUES (%s)", (row["id"],))
    return int(row["id"])


def matcher(db: Conn) -> Matcher:
    return Matcher(store.load_subscriptions(db)[1])


def age_outbox(db: Conn, seconds: int) -> None:
    db.execute(
        "UPDATE notify_outbox SET created_at = created_at - make_interval(secs => %s)", (seconds,)
    )


@pytest.fixture
def fake() -> Iterator[FakeFcm]:
    with FakeFcm(token=ACCESS_TOKEN, project=PROJECT) as server:
        yield server


@pytest.fixture
def fcm_settings(fake: FakeFcm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """noticecrawler.settings as a deployment with a service-account file would have it."""
    for name, value in fcm_env(fake, tmp_path).items():
        monkeypatch.setattr(noticecrawler.settings, name, value)


@pytest.fixture
def sender(fcm_settings: None) -> Iterator[FcmSender]:
    s = make_sender(timeout=(2.0, 2.0))
    assert isinstance(s, FcmSender)
    yield s
    s.close()


def test_retry_delay_is_backoff_or_retry_after_whichever_longer_capped() -> None:
    config = NotifyConfig(retry_base_delay=10, retry_max_delay=300)
    assert [config.retry_delay(n, None) for n in (1, 2, 3, 4)] == [10, 20, 40, 80]
    assert config.retry_delay(1, 45) == 45
    assert config.retry_delay(3, 5) == 40
    assert config.retry_delay(9, None) == 300 and config.retry_delay(1, 3600) == 300
    with pytest.raises(ValueError, match="NOTIFY_BATCH_SIZE"):
        NotifyConfig(batch_size=0)


def test_config_reads_settings_with_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    assert from_settings().batch_size == 2000
    monkeypatch.setattr(noticecrawler.settings, "NOTIFY_BATCH_SIZE", 250, raising=False)
    assert from_settings().batch_size == 250


def test_only_posts_in_the_outbox_are_announced(db: Conn) -> None:
    devices = add_users(db, ["a", "b", "c"], ["장학금"])
    silent = add_post(db, "국가장학금 안내", outbox=False)  # first crawl / edited post
    result = service.announce_post(db, silent, matcher(db), CONFIG)
    assert result == {"post_id": silent, "announced": False, "devices": 0, "batches": []}
    assert count(db, "SELECT count(*) FROM notifications") == 0

    post = add_post(db, "2학기 국가장학금 신청")
    result = service.announce_post(db, post, matcher(db), CONFIG)
    assert result["announced"] and result["batches"] == [devices[:2], devices[2:]]
    assert outboxstore.outbox_row(db, post)["taken_at"] is not None  # type: ignore[index]
    again = service.announce_post(db, post, matcher(db), CONFIG)  # redelivered: same plan
    assert again["batches"] == result["batches"]
    assert count(db, "SELECT count(*) FROM notifications") == 3


def test_push_batch_postpones_retries_and_replanning_waits_for_them(
    db: Conn, fake: FakeFcm, sender: FcmSender
) -> None:
    _, busy = add_users(db, ["ok", "busy"], ["휴강"])
    fake.set_token_behaviour("busy", ("429", 7))
    post = add_post(db, "자료구조 휴강")
    [batch] = service.announce_post(db, post, matcher(db), NotifyConfig())["batches"]
    summary = service.push_batch(db, post, batch, sender, CONFIG)
    assert summary["sent"] == 1 and summary["retry"] == [busy]
    assert summary["retry_after"] == 7
    row = db.execute(
        "SELECT status, next_attempt_at - now() AS wait FROM notifications WHERE device_id = %s",
        (busy,),
    ).fetchone()
    assert row is not None and row["status"] == "retry"
    assert 6 < row["wait"].total_seconds() <= 7
    # a re-sent notify_post (sweep, redelivery) does not push it before its time
    assert service.announce_post(db, post, matcher(db), CONFIG)["batches"] == []
    db.execute("UPDATE notifications SET next_attempt_at = now() WHERE device_id = %s", (busy,))
    assert service.announce_post(db, post, matcher(db), CONFIG)["batches"] == [[busy]]
    assert len(fake.messages_for("ok")) == 1


def test_sweep_resends_untaken_posts_once_per_age(db: Conn) -> None:
    [dev] = add_users(db, ["a"], ["공지"])
    config = NotifyConfig(sweep_age=30, sweep_max_sends=2)
    fresh = add_post(db, "공지 1")
    assert service.sweep(db, config) == []  # younger than the age: the pipeline's task may come
    age_outbox(db, 60)
    late = add_post(db, "공지 2")
    assert service.sweep(db, config) == [fresh]
    assert service.sweep(db, config) == []  # sent just now
    db.execute("UPDATE notify_outbox SET sent_at = sent_at - interval '1 minute'")
    assert service.sweep(db, config) == [fresh]
    db.execute("UPDATE notify_outbox SET sent_at = sent_at - interval '1 minute'")
    assert service.sweep(db, config) == []  # max sends reached
    assert outboxstore.outbox_row(db, fresh)["attempts"] == 2  # type: ignore[index]
    service.announce_post(db, late, matcher(db), config)
    assert service.sweep(db, config) == []
    assert service.due_batches(db, config) == []  # its batch was just enqueued
    db.execute("UPDATE notifications SET requeue_at = now() - interval '1 second'")
    assert service.due_batches(db, config) == [(late, [dev])]  # that task was lost
    assert service.due_batches(db, config) == []  # enqueued again just now
    assert service.sweep(db, config) == []  # the outbox is not involved


def test_due_batches_take_a_dead_workers_rows_only(db: Conn, sender: FcmSender) -> None:
    [dev] = add_users(db, ["a"], ["공지"])
    config = NotifyConfig(sweep_age=30)
    done, stalled = add_post(db, "공지 done"), add_post(db, "공지 stalled")
    for post in (done, stalled):
        service.announce_post(db, post, matcher(db), config)
    service.push_batch(db, done, [dev], sender, config)
    with db.transaction():  # a worker claims and dies: its lease runs out
        batchstore.claim(db, stalled, [dev], "00000000-0000-0000-0000-0000000000de", 0)
    age_outbox(db, 60)
    assert service.due_batches(db, config) == [(stalled, [dev])]
    assert service.sweep(db, config) == []  # planned posts are not re-announced
    assert store.status_counts(db, done) == {"sent": 1}


def test_batches_are_enqueued_as_their_slice_commits(db: Conn, database_url: str) -> None:
    """A large fan-out starts pushing before it is fully planned: each batch is handed on as
    soon as its rows are committed (seen from another connection), and the outbox row is
    marked planned only after the last one."""
    devices = add_users(db, [f"d{i}" for i in range(45)], ["장학금"])
    post = add_post(db, "국가장학금 안내")
    config = NotifyConfig(batch_size=2)  # slices of 2, 4, 8, 16 and then 20 subscriptions
    seen: list[tuple[list[int], int, bool]] = []
    with psycopg.connect(database_url, autocommit=True) as other:

        def enqueue(batch: list[int]) -> None:
            committed = other.execute(
                "SELECT count(*) FROM notifications WHERE post_id = %s", (post,)
            ).fetchone()
            planned = other.execute(
                "SELECT planned_at IS NOT NULL FROM notify_outbox WHERE post_id = %s", (post,)
            ).fetchone()
            assert committed is not None and planned is not None
            seen.append((batch, committed[0], planned[0]))

        result = service.announce_post(db, post, matcher(db), config, enqueue=enqueue)
    batches = [batch for batch, _, _ in seen]
    assert batches == result["batches"] and [d for b in batches for d in b] == devices
    assert [len(b) for b in batches] == [2] * 22 + [1]
    # rows committed when each batch was handed on: after each slice (2, 6, 14, 30), then all
    assert [n for _, n, _ in seen] == [2] + [6] * 2 + [14] * 4 + [30] * 8 + [45] * 8
    assert not any(planned for _, _, planned in seen)
    assert outboxstore.outbox_row(db, post)["planned_at"] is not None  # type: ignore[index]


def test_each_device_keeps_its_lowest_matching_subscription_across_slices(db: Conn) -> None:
    [user_a, user_b] = [
        one["id"]
        for one in db.execute(
            "INSERT INTO users (external_id) VALUES ('a'), ('b') RETURNING id"
        ).fetchall()
    ]
    device = db.execute(
        "INSERT INTO devices (user_id, fcm_token, platform) VALUES (%s, 'tok', 'android') "
        "RETURNING id",
        (user_a,),
    ).fetchone()["id"]  # type: ignore[index]
    subscribe = "INSERT INTO subscriptions (user_id, keywords) VALUES (%s, %s) RETURNING id"
    first = db.execute(subscribe, (user_a, ["공지"])).fetchone()["id"]  # type: ignore[index]
    db.execute(subscribe, (user_b, ["공지"]))  # no device: fills the first slice
    db.execute(subscribe, (user_a, ["학사"]))  # the same device again, in the second slice
    post = add_post(db, "학사 공지")
    batches = list(service.fanout.plan_post(db, post, matcher(db), slice_size=2))
    assert batches == [[device]]
    row = db.execute("SELECT subscription_id FROM notifications").fetchone()
    assert row is not None and row["subscription_id"] == first


def test_sweep_resends_a_post_whose_planning_died(db: Conn) -> None:
    add_users(db, ["a"], ["공지"])
    config = NotifyConfig(sweep_age=30)
    post = add_post(db, "공지")
    with db.transaction():  # notify_post took the row, then its worker was killed
        outboxstore.take_outbox(db, post)
    assert service.sweep(db, config) == []  # it may still be planning
    db.execute("UPDATE notify_outbox SET taken_at = taken_at - interval '1 minute'")
    assert service.sweep(db, config) == [post]
    result = service.announce_post(db, post, matcher(db), config)  # the re-sent notify_post
    assert result["devices"] == 1
    db.execute("UPDATE notify_outbox SET sent_at = sent_at - interval '1 minute'")
    assert service.sweep(db, config) == []  # planned now (its rows are fresh, queued)


def test_drain_outbox_prints_each_push(db: Conn) -> None:
    add_users(db, ["console-device-1"], ["장학금"])
    add_users(db, ["console-device-2"], ["졸업"])
    post = add_post(db, "동계 계절학기 및 장학금 안내")
    out = io.StringIO()
    results = service.drain_outbox(db, matcher(db), ConsoleSender(out), CONFIG)
    assert results == [{"post_id": post, "devices": 1, "sent": 1}]
    assert out.getvalue() == "push [cse] 동계 계절학기 및 장학금 안내 -> console-devi…\n"
    assert service.drain_outbox(db, matcher(db), ConsoleSender(out), CONFIG) == []


def run(database_url: str, *argv: str) -> int:
    return main(["-s", f"DATABASE_URL={database_url}", *argv])


def test_operations_commands(
    db: Conn,
    database_url: str,
    fake: FakeFcm,
    fcm_settings: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run(database_url, "users", "add", "--external-id", "alice") == 0
    assert run(database_url, "devices", "add", "alice", "tok-alice", "--platform", "ios") == 0
    assert run(database_url, "devices", "add", "alice", "tok-dead") == 0
    assert run(database_url, "subscriptions", "add", "alice", "-k", "장학금", "-n", "대학원") == 0
    assert run(database_url, "subscriptions", "add", "alice", "-b", "demo") == 0
    capsys.readouterr()
    run(database_url, "users", "list")
    assert "alice" in (out := capsys.readouterr().out) and "devices=2 subscriptions=2" in out
    run(database_url, "subscriptions", "list", "--user", "alice")
    out = capsys.readouterr().out
    assert "[every board] 장학금  not: 대학원" in out and "[demo] (every post)" in out

    assert run(database_url, "push-test", "tok-alice") == 0
    assert "sent  projects/nc-test/messages/" in capsys.readouterr().out
    assert fake.messages_for("tok-alice")[0]["apns"]["headers"]["apns-push-type"] == "alert"
    assert fake.token_requests == 1  # the service-account file's token, from its token_uri
    fake.set_token_behaviour("tok-dead", "unregistered")
    assert run(database_url, "push-test", "tok-dead") == 1
    run(database_url, "devices", "list")
    assert "inactive" in (out := capsys.readouterr().out) and "UNREGISTERED" in out

    post = add_post(db, "국가장학금 안내", board="cse")
    sender = make_sender()
    try:
        [batch] = service.announce_post(db, post, matcher(db), CONFIG)["batches"]
        service.push_batch(db, post, batch, sender, CONFIG)
    finally:
        sender.close()
    run(database_url, "notifications", "cse:국가장학금 안내")  # board:post_id
    assert run(database_url, "notifications", "cse:nope") == 2  # one line on stderr
    assert "no post `cse:nope`" in capsys.readouterr().err
    run(database_url, "notifications", str(post))
    out = capsys.readouterr().out
    assert "sent=1" in out and "ios" in out and "projects/nc-test/messages/" in out
    assert "planned 20" in out and "re-sent by the sweep 0x" in out

    assert run(database_url, "subscriptions", "add", "alice") == 2
    assert "needs keywords" in capsys.readouterr().err
    assert run(database_url, "users", "remove", "alice") == 0
    assert count(db, "SELECT count(*) FROM devices") == 0
    assert run(database_url, "users", "remove", "999") == 2
    assert "no user `999`" in capsys.readouterr().err
