"""The notification fan-out against a real PostgreSQL and the fake FCM over HTTP."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from google.oauth2.credentials import Credentials

from noticecrawler.db import connect
from noticecrawler.notify import batchstore, store
from noticecrawler.notify.fanout import FanoutOptions, matcher_cache, plan_post, send_batch
from noticecrawler.notify.fcm import FcmSender
from noticecrawler.notify.matching import Matcher
from tests.fakefcm import FakeFcm

Conn = psycopg.Connection[Any]
DEAD_WORKER = "00000000-0000-0000-0000-0000000000de"


def plan(*args: Any, **kwargs: Any) -> list[list[int]]:
    """plan_post's batches, all of them."""
    return list(plan_post(*args, **kwargs))


def one(db: Conn, sql: str, params: tuple[Any, ...] = ()) -> Any:
    row = db.execute(sql, params).fetchone()
    assert row is not None
    return row["id"]


def add_user(db: Conn, *devices: tuple[str, str]) -> tuple[int, list[int]]:
    user = one(db, "INSERT INTO users DEFAULT VALUES RETURNING id")
    sql = "INSERT INTO devices (user_id, fcm_token, platform) VALUES (%s, %s, %s) RETURNING id"
    return user, [one(db, sql, (user, token, platform)) for token, platform in devices]


def subscribe(db: Conn, user: int, keywords: list[str], boards: list[str] | None = None) -> int:
    sql = "INSERT INTO subscriptions (user_id, keywords, boards) VALUES (%s, %s, %s) RETURNING id"
    return int(one(db, sql, (user, keywords, boards)))


def add_post(db: Conn, title: str, board: str = "cse", body: str | None = None) -> int:
    sql = (
        "INSERT INTO posts (board, post_id, title, url, body) VALUES (%s, %s, %s, %s, %s)"
        " RETURNING id"
    )
    return int(one(db, sql, (board, title, title, f"https://x.test/{board}/{title}", body)))


def make_due(db: Conn) -> None:
    """Every row to retry is due now (as if its wait had passed)."""
    db.execute("UPDATE notifications SET next_attempt_at = now() WHERE status = 'retry'")


def rows(db: Conn, post_id: int) -> dict[int, dict[str, Any]]:
    result = db.execute(
        "SELECT * FROM notifications WHERE post_id = %s ORDER BY device_id", (post_id,)
    )
    return {r["device_id"]: r for r in result.fetchall()}


def matcher(db: Conn) -> Matcher:
    return Matcher(store.load_subscriptions(db)[1])


@pytest.fixture
def fake() -> Iterator[FakeFcm]:
    with FakeFcm(token="t", project="proj") as server:
        yield server


@pytest.fixture
def sender(fake: FakeFcm) -> Iterator[FcmSender]:
    def refresh(request: Any, scopes: Any = None) -> tuple[str, datetime]:
        return "t", datetime.now(UTC).replace(tzinfo=None) + timedelta(hours=1)

    s = FcmSender(
        project_id="proj",
        credentials=Credentials(token=None, refresh_handler=refresh),
        endpoint=fake.base_url,
        timeout=(2.0, 2.0),
    )
    yield s
    s.close()


def test_plan_inserts_one_row_per_active_device_of_matching_users(db: Conn) -> None:
    alice, (a1, a2) = add_user(db, ("alice-phone", "android"), ("alice-ipad", "ios"))
    bob, (b1,) = add_user(db, ("bob-phone", "android"))
    carol, (c1,) = add_user(db, ("carol-phone", "android"))
    _, (d1,) = add_user(db, ("dave-phone", "android"))
    subscribe(db, alice, ["장학금"])
    subscribe(db, alice, ["국가장학"])  # two matching subscriptions: still one push per device
    subscribe(db, bob, ["장학금"], boards=["ee"])  # other board
    subscribe(db, carol, [], boards=["cse"])  # everything from cse
    db.execute("UPDATE devices SET active = false WHERE id = %s", (c1,))
    post = add_post(db, "2학기 국가장학금 신청 안내")

    batches = plan(db, post, matcher(db), batch_size=1)
    assert batches == [[a1], [a2]]
    assert set(rows(db, post)) == {a1, a2}
    assert {r["status"] for r in rows(db, post).values()} == {"queued"}

    assert plan(db, post, matcher(db), batch_size=10) == [[a1, a2]]  # idempotent
    assert len(rows(db, post)) == 2
    assert b1 not in rows(db, post) and d1 not in rows(db, post)


def test_send_batch_pushes_records_and_never_resends(
    db: Conn, fake: FakeFcm, sender: FcmSender
) -> None:
    user, _ = add_user(db, ("tok-a", "android"), ("tok-i", "ios"))
    subscribe(db, user, ["휴강"])
    post = add_post(db, "자료구조 휴강 안내")
    [batch] = plan(db, post, matcher(db))

    summary = send_batch(db, post, batch, sender, FanoutOptions(board_titles={"cse": "컴퓨터"}))
    assert summary["claimed"] == 2 and summary["sent"] == 2 and summary["retry"] == []
    assert {r["status"] for r in rows(db, post).values()} == {"sent"}
    assert all(r["message_name"].startswith("projects/proj/") for r in rows(db, post).values())
    [android] = fake.messages_for("tok-a")
    assert android["android"]["notification"]["tag"] == str(post)
    assert android["notification"]["title"] == "컴퓨터"
    assert fake.messages_for("tok-i")[0]["apns"]["headers"]["apns-collapse-id"] == str(post)

    again = send_batch(db, post, batch, sender)  # a redelivered task
    assert again["claimed"] == 0
    assert plan(db, post, matcher(db)) == []
    assert len(fake.messages) == 2


def test_outcomes_are_recorded_and_dead_devices_deactivated(
    db: Conn, fake: FakeFcm, sender: FcmSender
) -> None:
    tokens = ["ok", "gone", "other-sender", "bad", "busy"]
    user, ids = add_user(db, *[(t, "android") for t in tokens])
    device = dict(zip(tokens, ids, strict=True))
    subscribe(db, user, ["공지"])
    post = add_post(db, "학사 공지")
    fake.set_token_behaviour("gone", "unregistered")
    fake.set_token_behaviour("other-sender", "sender_mismatch")
    fake.set_token_behaviour("bad", "invalid")
    fake.set_token_behaviour("busy", ("429", 12))
    [batch] = plan(db, post, matcher(db))

    summary = send_batch(db, post, batch, sender)
    assert summary["sent"] == 1
    assert summary["unregistered"] == 1
    assert summary["failed"] == 1
    assert summary["invalid"] == 1
    assert summary["retry"] == [device["busy"]]
    assert summary["retry_after"] == 12
    assert summary["deactivated"] == 2
    status = {t: rows(db, post)[device[t]]["status"] for t in tokens}
    assert status == {
        "ok": "sent",
        "gone": "unregistered",
        "other-sender": "failed",
        "bad": "invalid",
        "busy": "retry",
    }
    active = {
        r["fcm_token"]: (r["active"], r["last_error"])
        for r in db.execute("SELECT fcm_token, active, last_error FROM devices").fetchall()
    }
    assert active["gone"][0] is False and "UNREGISTERED" in active["gone"][1]
    assert active["other-sender"][0] is False
    assert active["bad"][0] is True and "INVALID_ARGUMENT" in active["bad"][1]
    assert active["ok"] == (True, None)

    fake.set_token_behaviour("busy", None)
    assert plan(db, post, matcher(db)) == [[device["busy"]]]
    wait = rows(db, post)[device["busy"]]["next_attempt_at"] - datetime.now(UTC)
    assert 11 < wait.total_seconds() <= 12  # its own Retry-After
    assert send_batch(db, post, summary["retry"], sender)["claimed"] == 0  # not before its time
    make_due(db)
    retried = send_batch(db, post, summary["retry"], sender)
    assert retried["sent"] == 1
    assert rows(db, post)[device["busy"]]["attempts"] == 2
    assert len(fake.messages_for("ok")) == 1


def test_retries_end_in_failed_after_max_attempts(
    db: Conn, fake: FakeFcm, sender: FcmSender
) -> None:
    user, (dev,) = add_user(db, ("flaky", "android"))
    subscribe(db, user, ["공지"])
    post = add_post(db, "공지")
    fake.set_token_behaviour("flaky", "503")
    plan(db, post, matcher(db))
    options = FanoutOptions(max_attempts=2)
    assert send_batch(db, post, [dev], sender, options)["retry"] == [dev]
    make_due(db)
    last = send_batch(db, post, [dev], sender, options)
    assert last["retry"] == [] and last["failed"] == 1
    assert rows(db, post)[dev]["status"] == "failed"
    assert send_batch(db, post, [dev], sender, options)["claimed"] == 0


def test_rows_of_a_dead_worker_are_reclaimed_after_the_lease(
    db: Conn, fake: FakeFcm, sender: FcmSender
) -> None:
    user, (done, stuck) = add_user(db, ("done", "android"), ("stuck", "android"))
    subscribe(db, user, ["공지"])
    post = add_post(db, "공지")
    plan(db, post, matcher(db))
    send_batch(db, post, [done], sender)
    # a worker claims the other row and dies before recording anything
    with db.transaction():
        assert len(batchstore.claim(db, post, [done, stuck], DEAD_WORKER, 600)) == 1
    assert send_batch(db, post, [done, stuck], sender)["claimed"] == 0  # lease still valid
    assert plan(db, post, matcher(db)) == []

    db.execute("UPDATE notifications SET lease_until = now() - interval '1 second'")
    assert plan(db, post, matcher(db)) == [[stuck]]  # the sent row is not offered
    summary = send_batch(db, post, [done, stuck], sender)
    assert summary["claimed"] == 1 and summary["sent"] == 1
    assert len(fake.messages_for("done")) == 1
    assert len(fake.messages_for("stuck")) == 1
    assert rows(db, post)[stuck]["attempts"] == 2


def test_late_write_of_a_superseded_claim_is_dropped(db: Conn) -> None:
    user, (dev,) = add_user(db, ("late", "android"))
    subscribe(db, user, ["공지"])
    post = add_post(db, "공지")
    plan(db, post, matcher(db))
    [row] = batchstore.claim(db, post, [dev], "00000000-0000-0000-0000-000000000001", 0)
    batchstore.claim(db, post, [dev], "00000000-0000-0000-0000-000000000002", 600)  # expired: taken
    outcome = {"id": row["id"], "status": "retry", "error": "late"}
    assert batchstore.record_outcomes(db, "00000000-0000-0000-0000-000000000001", [outcome]) == 0
    assert rows(db, post)[dev]["status"] == "sending"


def test_last_attempt_lost_with_its_worker_is_failed(db: Conn, sender: FcmSender) -> None:
    user, (dev,) = add_user(db, ("lost", "android"))
    subscribe(db, user, ["공지"])
    post = add_post(db, "공지")
    plan(db, post, matcher(db))
    batchstore.claim(db, post, [dev], "00000000-0000-0000-0000-000000000003", 0)
    summary = send_batch(db, post, [dev], sender, FanoutOptions(max_attempts=1))
    assert summary["closed"] == 1 and summary["claimed"] == 0
    assert rows(db, post)[dev]["status"] == "failed"


def test_device_deactivated_between_plan_and_send(
    db: Conn, fake: FakeFcm, sender: FcmSender
) -> None:
    user, (dev,) = add_user(db, ("old-phone", "android"))
    subscribe(db, user, ["공지"])
    post = add_post(db, "공지")
    [batch] = plan(db, post, matcher(db))
    db.execute("UPDATE devices SET active = false")
    summary = send_batch(db, post, batch, sender)
    assert summary["claimed"] == 0 and summary["closed"] == 1
    assert rows(db, post)[dev]["status"] == "unregistered"
    assert fake.messages == []


def test_concurrent_workers_push_each_device_once(
    db: Conn, database_url: str, fake: FakeFcm, sender: FcmSender
) -> None:
    user, _ = add_user(db, *[(f"dev-{i}", "android") for i in range(60)])
    subscribe(db, user, ["공지"])
    post = add_post(db, "공지")
    [batch] = plan(db, post, matcher(db))
    fake.delay = 0.002
    summaries: list[dict[str, Any]] = []

    def worker() -> None:
        with connect(database_url, autocommit=True) as conn:
            summaries.append(send_batch(conn, post, batch, sender))

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sum(s["sent"] for s in summaries) == 60
    assert sorted(m["token"] for m in fake.messages) == sorted(f"dev-{i}" for i in range(60))
    assert store.status_counts(db, post) == {"sent": 60}


def test_send_batch_refuses_an_open_transaction(database_url: str, sender: FcmSender) -> None:
    with connect(database_url) as conn:  # not autocommit
        conn.execute("SELECT 1")
        with pytest.raises(RuntimeError, match="inside a transaction"):
            send_batch(conn, 1, [1], sender)


def test_send_batch_commits_on_a_non_autocommit_connection(
    db: Conn, database_url: str, fake: FakeFcm, sender: FcmSender
) -> None:
    user, (dev,) = add_user(db, ("tx", "android"))
    subscribe(db, user, ["공지"])
    post = add_post(db, "공지")
    with connect(database_url) as conn:
        cache = matcher_cache(conn)
        [batch] = plan(conn, post, cache.get())
        assert send_batch(conn, post, batch, sender)["sent"] == 1
    assert rows(db, post)[dev]["status"] == "sent"  # seen from another connection


def test_matcher_cache_follows_subscription_changes(db: Conn) -> None:
    cache = matcher_cache(db)
    user, _ = add_user(db, ("u", "android"))
    first = cache.get()
    assert first.match("장학금", "cse") == set()
    assert cache.get() is first
    sub = subscribe(db, user, ["장학금"])
    second = cache.get()
    assert second is not first and second.match("장학금", "cse") == {sub}
    db.execute("UPDATE subscriptions SET keywords = '{등록금}'")
    third = cache.get()
    assert third.match("장학금", "cse") == set() and third.match("등록금", "cse") == {sub}
    db.execute("DELETE FROM subscriptions")
    assert cache.get().match("등록금", "cse") == set()
    assert cache.builds == 4
