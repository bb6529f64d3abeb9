"""The notify tasks in real worker processes: real PostgreSQL, real Redis, real crawls of the
demo board, a fake FCM HTTP v1 server on 127.0.0.1 that the workers reach with a
service-account file (FCM_CREDENTIALS_FILE / FCM_PROJECT_ID / FCM_ENDPOINT)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from noticecrawler.notify import outboxstore, store
from noticecrawler.notify.port import send_notify_task
from tests.dispatch_helpers import wait_for
from tests.notify_helpers import (
    PROJECT,
    Stack,
    add_users,
    count,
    messages_by_token,
    notify_stack,
    notify_worker,
    settle,
)

pytestmark = pytest.mark.slow
Conn = psycopg.Connection[Any]
TITLE = "2026학년도 동계 계절학기 수강신청 및 장학금 안내"
OPEN = "SELECT count(*) FROM notifications WHERE status IN ('queued', 'sending', 'retry')"


@pytest.fixture
def stack(tmp_path: Path, database_url: str, demo_server: Any) -> Iterator[Stack]:
    with notify_stack(tmp_path, database_url, demo_server.url) as s:
        yield s


def test_new_post_on_the_demo_board_is_pushed_once_to_each_matching_device(
    stack: Stack, db: Conn, crawl: Any, crawl_env: dict[str, str], demo_server: Any
) -> None:
    stack.broker.start()
    crawl_env["CELERY_BROKER_URL"] = stack.broker.url
    [match] = add_users(db, ["match"], ["장학금"])
    [match_ios] = add_users(db, ["match-ios"], ["수강신청"], platform="ios")
    [whole_board] = add_users(db, ["whole-board"], boards=["demo"])
    add_users(db, ["other-keyword"], ["졸업"])
    add_users(db, ["negative"], ["장학금"], negative=["계절학기"])
    add_users(db, ["other-board"], ["장학금"], boards=["cse"])
    [inactive] = add_users(db, ["inactive"], ["장학금"])
    db.execute("UPDATE devices SET active = false WHERE id = %s", (inactive,))
    notify_worker(stack.dispatch())

    first = crawl("demo")  # a new board: its backlog is stored, not announced
    assert first.returncode == 0 and first.run["new"] > 0, first.log
    assert count(db, "SELECT count(*) FROM notify_outbox") == 0
    assert "notify_post" not in first.log

    demo_server.add_post("demo", title=TITLE)
    second = crawl("demo")
    assert second.returncode == 0 and second.run["new"] == 1, second.log
    row = db.execute("SELECT id, url FROM posts WHERE title = %s", (TITLE,)).fetchone()
    assert row is not None
    post = row["id"]
    expected = {"match": 1, "match-ios": 1, "whole-board": 1}
    wait_for(lambda: sum(messages_by_token(stack.fake).values()) >= 3, 30, "3 pushes")
    settle(lambda: messages_by_token(stack.fake) == expected or pytest.fail(str(stack.fake)), 1)

    android = stack.fake.messages_for("match")[0]
    assert android["notification"] == {"title": "demo", "body": TITLE}
    assert android["data"] == {"post_id": str(post), "board": "demo", "url": row["url"]}
    assert android["android"]["notification"]["tag"] == str(post)
    assert stack.fake.messages_for("match-ios")[0]["apns"]["headers"]["apns-collapse-id"] == str(
        post
    )
    assert store.status_counts(db, post) == {"sent": 3}
    recipients = {r["device_id"] for r in db.execute("SELECT device_id FROM notifications")}
    assert recipients == {match, match_ios, whole_board}
    taken = outboxstore.outbox_row(db, post)
    assert taken is not None and taken["taken_at"] is not None and taken["attempts"] == 0
    assert taken["planned_at"] is not None


def test_broker_down_when_the_post_is_stored_then_the_sweep_announces_it_once(
    stack: Stack, db: Conn, crawl: Any, crawl_env: dict[str, str], demo_server: Any
) -> None:
    crawl_env["CELERY_BROKER_URL"] = stack.broker.url  # nothing listens there yet
    add_users(db, ["whole-board"], boards=["demo"])
    add_users(db, ["keyword"], ["장학금"])
    assert crawl("demo").returncode == 0
    demo_server.add_post("demo", title=TITLE)
    stored = crawl("demo")
    assert stored.returncode == 0 and stored.run["new"] == 1, stored.log
    assert "the outbox sweep will" in stored.log
    [row] = db.execute("SELECT post_id, taken_at FROM notify_outbox").fetchall()
    assert row["taken_at"] is None

    stack.broker.start()
    dispatch = stack.dispatch(NOTIFY_SWEEP_INTERVAL=0.5, NOTIFY_SWEEP_AGE=1)
    notify_worker(dispatch)
    dispatch.beat()
    expected = {"whole-board": 1, "keyword": 1}
    wait_for(lambda: messages_by_token(stack.fake) == expected, 30, "the swept post's pushes")

    def once() -> None:
        assert messages_by_token(stack.fake) == expected
        outbox = outboxstore.outbox_row(db, row["post_id"])
        assert outbox is not None and outbox["attempts"] == 1 and outbox["taken_at"]

    settle(once, 3)  # six more sweeps: nothing is announced again
    assert store.status_counts(db, row["post_id"]) == {"sent": 2}


def test_fcm_error_outcomes_through_the_worker(stack: Stack, db: Conn) -> None:
    stack.broker.start()
    tokens = ["ok", "gone", "bad", "other", "busy", "flaky500", "flaky503", "stall"]
    device = dict(zip(tokens, add_users(db, tokens, ["공지"]), strict=True))
    fake = stack.fake
    fake.set_token_behaviour("gone", "unregistered")
    fake.set_token_behaviour("bad", "invalid")
    fake.set_token_behaviour("other", "sender_mismatch")
    fake.set_token_behaviour("busy", ("429", 3))
    fake.set_token_behaviour("flaky500", "500")
    fake.set_token_behaviour("flaky503", "503")
    fake.set_token_behaviour("stall", "stall")
    fake.fail_next(1, "unauthenticated")  # an expired access token: refreshed, sent again
    post = db.execute(
        "INSERT INTO posts (board, post_id, title, url) VALUES ('cse', '1', '공지', "
        "'https://x.test/1') RETURNING id"
    ).fetchone()["id"]  # type: ignore[index]
    db.execute("INSERT INTO notify_outbox (post_id) VALUES (%s)", (post,))
    dispatch = stack.dispatch(
        NOTIFY_MAX_ATTEMPTS=3,
        NOTIFY_RETRY_BASE_DELAY=1,
        NOTIFY_FCM_READ_TIMEOUT=1,
        NOTIFY_SWEEP_INTERVAL=0.5,  # the sweep enqueues the retries once due
    )
    notify_worker(dispatch)
    dispatch.beat()
    send_notify_task(post, {"CELERY_BROKER_URL": stack.broker.url})

    def tries(token: str) -> list[float]:  # the 401 answered to one push was not a try
        return [s.at for s in fake.requests_for(token) if s.status != 401]

    for token in ("flaky500", "flaky503"):  # fail once, then recover
        wait_for(lambda t=token: tries(t), 20, f"first try of {token}")  # type: ignore[misc]
        fake.set_token_behaviour(token, None)
    wait_for(lambda: count(db, OPEN) == 0, 60, "every row closed", step=0.3)

    rows = {
        r["device_id"]: r
        for r in db.execute("SELECT * FROM notifications WHERE post_id = %s", (post,))
    }
    devices = {r["id"]: r for r in db.execute("SELECT * FROM devices")}
    outcome = {t: (rows[d]["status"], rows[d]["attempts"]) for t, d in device.items()}
    assert outcome == {
        "ok": ("sent", 1),
        "gone": ("unregistered", 1),
        "bad": ("invalid", 1),
        "other": ("failed", 1),
        "busy": ("failed", 3),
        "flaky500": ("sent", 2),
        "flaky503": ("sent", 2),
        "stall": ("failed", 3),
    }
    assert rows[device["ok"]]["message_name"].startswith(f"projects/{PROJECT}/messages/")
    assert fake.token_requests >= 2  # the 401 made the worker fetch a new access token
    active = {t: devices[d]["active"] for t, d in device.items()}
    assert active["gone"] is False and active["other"] is False
    assert active["bad"] is True and "INVALID_ARGUMENT" in devices[device["bad"]]["last_error"]
    assert "UNREGISTERED" in rows[device["gone"]]["error"]
    assert "SENDER_ID_MISMATCH" in rows[device["other"]]["error"]
    assert "QUOTA_EXCEEDED" in rows[device["busy"]]["error"]
    assert "Timeout" in rows[device["stall"]]["error"]

    for token in ("gone", "bad", "other"):  # never retried
        assert len(tries(token)) == 1
    busy = tries("busy")
    assert len(busy) == 3
    gaps = [b - a for a, b in itertools.pairwise(busy)]
    assert all(gap >= 2.9 for gap in gaps), gaps  # Retry-After: 3 (longer than the backoff)
    settle(lambda: len(tries("busy")) == 3 or pytest.fail("retried past the bound"), 2)
