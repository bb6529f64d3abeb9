"""The whole flow over HTTP, with every part real: the API (uvicorn on 127.0.0.1), PostgreSQL,
a Redis broker, a crawl worker and a notify worker (Celery processes), the demo board server
and the fake FCM server. Register a device, subscribe, add a post on the demo board, trigger
the board's crawl through the admin endpoint, see the push at FCM and in /v1/notifications."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import redis

from noticecrawler.api import tokens
from tests.dispatch_helpers import ROOT, make_dispatch, wait_for
from tests.fakefcm import FakeFcm
from tests.notify_helpers import ACCESS_TOKEN, PROJECT, Broker, fcm_env, notify_worker
from tests.test_api_helpers import ApiServer, api_config, api_server, assert_problem

pytestmark = pytest.mark.slow
Conn = psycopg.Connection[Any]
TITLE = "2026학년도 동계 계절학기 장학금 신청 안내"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    b = Broker(tmp_path / "redis").start()
    try:
        yield b
    finally:
        b.stop()


def test_register_subscribe_crawl_push_over_http(
    tmp_path: Path, database_url: str, db: Conn, demo_server: Any, broker: Broker
) -> None:
    (tmp_path / "dispatch").mkdir()
    dispatch = make_dispatch(
        tmp_path / "dispatch",
        broker_url=broker.url,
        result_url=broker.url,
        database_url=database_url,
        demo_url=demo_server.url,
        boards={"demo": "1h"},
    )
    with FakeFcm(token=ACCESS_TOKEN, project=PROJECT) as fake:
        dispatch.env.update(fcm_env(fake, tmp_path))
        try:
            dispatch.worker("crawler", "crawl_tasks", 1)
            notify_worker(dispatch)
            cfg = api_config(
                database_url,
                Path(dispatch.env["NOTICECRAWLER_CATALOG"]),
                demo_server.url,
                broker_url=broker.url,
                lock_url=broker.url,
            )
            with api_server(cfg) as api:
                _flow(api, db, demo_server, fake, broker, dispatch.app())
        finally:
            dispatch.stop_all()


def _crawled(db: Conn, runs: int) -> bool:
    row = db.execute(
        "SELECT count(*) AS n FROM crawl_runs WHERE board = 'demo' AND finished_at IS NOT NULL"
    ).fetchone()
    return row is not None and row["n"] >= runs


def _flow(api: ApiServer, db: Conn, demo: Any, fake: FakeFcm, broker: Broker, app: Any) -> None:
    user = db.execute("INSERT INTO users (external_id) VALUES ('u1') RETURNING id").fetchone()
    assert user is not None
    token = tokens.issue(db, user["id"])
    admin = tokens.issue(db, None, admin=True)
    with api.client(token) as me, api.client(admin) as ops:
        registered = me.post("/v1/devices", json={"token": "phone-1", "platform": "android"})
        assert registered.status_code == 201, registered.text
        subscribed = me.put("/v1/subscriptions", json={"subscriptions": [{"keywords": ["장학금"]}]})
        assert subscribed.status_code == 200, subscribed.text

        # the board's first crawl stores its backlog silently
        first = ops.post("/v1/admin/boards/demo/crawl")
        assert first.status_code == 202, first.text
        summary = app.AsyncResult(first.json()["task_id"]).get(timeout=90)
        assert summary["board"] == "demo" and not summary["skipped"] and summary["new"] > 0
        wait_for(lambda: _crawled(db, 1), 30, "the first crawl's record")

        demo.add_post("demo", title=TITLE)
        second = ops.post("/v1/admin/boards/demo/crawl")
        assert second.status_code == 202, second.text
        assert second.json()["task_id"] != first.json()["task_id"]
        summary = app.AsyncResult(second.json()["task_id"]).get(timeout=90)
        assert summary["new"] == 1, summary

        wait_for(lambda: fake.messages_for("phone-1"), 60, "the push at FCM")
        [push] = fake.messages_for("phone-1")
        assert push["notification"] == {"title": "demo", "body": TITLE}

        def sent() -> list[dict[str, Any]]:
            rows = me.get("/v1/notifications").json()
            return [r for r in rows if r["status"] == "sent"]

        [mine] = wait_for(sent, 30, "the push recorded as sent")
        assert mine["title"] == TITLE and mine["board"] == "demo"
        assert mine["post_id"] == int(push["data"]["post_id"])
        page = me.get("/v1/boards/demo/posts", params={"q": "장학금 신청"}).json()
        assert [p["id"] for p in page["items"]] == [mine["post_id"]]

        health = ops.get("/v1/admin/health").json()
        assert health == {
            "ok": True,
            "boards": [{"board": "demo", "status": "ok", "detail": health["boards"][0]["detail"]}],
        }

        # a crawl running now (its lock held): 409, nothing queued; an unknown board: 404
        with redis.Redis.from_url(broker.url) as r:
            r.set("noticecrawler:crawl-lock:demo", "task-running-now", px=60_000)
            queued_before = r.llen("crawl_tasks")
            busy = assert_problem(ops.post("/v1/admin/boards/demo/crawl"), 409, "being crawled")
            assert busy["task_id"] == "task-running-now"
            assert r.llen("crawl_tasks") == queued_before
            r.delete("noticecrawler:crawl-lock:demo")
        assert_problem(ops.post("/v1/admin/boards/nope/crawl"), 404, "nope")


def test_cli_issues_tokens_and_serves_the_api(
    tmp_path: Path, database_url: str, db: Conn, demo_server: Any
) -> None:
    """`noticecrawler users token` and `noticecrawler api` as a deployment runs them."""
    from tests.dispatch_helpers import free_port

    db.execute("INSERT INTO users (external_id) VALUES ('cli-user')")
    port = free_port()
    env = {
        **dispatch_env(tmp_path, database_url, demo_server.url),
        "NOTICECRAWLER_API_PORT": str(port),
    }
    cli = [sys.executable, "-m", "noticecrawler.cli"]
    issued = subprocess.run(
        [*cli, "users", "token", "cli-user"], env=env, capture_output=True, text=True, timeout=60
    )
    assert issued.returncode == 0, issued.stderr
    token = issued.stdout.strip()
    assert token.startswith("nct_") and len(token) > 40
    stored = db.execute("SELECT prefix, token_sha256 FROM api_tokens").fetchall()
    assert len(stored) == 1 and token.startswith(stored[0]["prefix"])
    assert token.encode() not in bytes(stored[0]["token_sha256"])
    missing = subprocess.run(
        [*cli, "users", "token", "nobody"], env=env, capture_output=True, text=True, timeout=60
    )
    assert missing.returncode == 2 and missing.stderr.strip() == (
        "noticecrawler users: no user `nobody` (give a user id or external id)"
    )
    admin = subprocess.run(
        [*cli, "users", "token", "--admin", "--label", "ops"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert admin.returncode == 0, admin.stderr
    row = db.execute("SELECT user_id, admin, label FROM api_tokens WHERE admin").fetchone()
    assert row == {"user_id": None, "admin": True, "label": "ops"}

    proc = subprocess.Popen(
        [*cli, "api"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}/v1" in first

        def up() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(up, 60, "noticecrawler api")
        headers = {"Authorization": f"Bearer {token}"}
        boards = httpx.get(f"http://127.0.0.1:{port}/v1/boards", headers=headers, timeout=10)
        assert [b["name"] for b in boards.json()] == ["demo"]
        ops = {"Authorization": f"Bearer {admin.stdout.strip()}"}
        health = httpx.get(f"http://127.0.0.1:{port}/v1/admin/health", headers=ops, timeout=10)
        assert health.json()["boards"] == [
            {"board": "demo", "status": "never", "detail": "no crawl recorded yet"}
        ]
    finally:
        proc.terminate()
        _, log = proc.communicate(timeout=20)
    # uvicorn shuts down cleanly, then dies of the SIGTERM it caught (as systemd expects)
    assert "Finished server process" in log, log
    assert proc.returncode in (0, -15), log

    listed = subprocess.run(
        [*cli, "users", "tokens"], env=env, capture_output=True, text=True, timeout=60
    )
    prefix = stored[0]["prefix"]
    assert prefix in listed.stdout and token not in listed.stdout, listed.stdout
    revoked = subprocess.run(
        [*cli, "users", "revoke", prefix], env=env, capture_output=True, text=True, timeout=60
    )
    assert revoked.returncode == 0 and "1 token(s) revoked" in revoked.stdout
    row = db.execute("SELECT revoked_at FROM api_tokens WHERE prefix = %s", (prefix,)).fetchone()
    assert row is not None and row["revoked_at"] is not None


def dispatch_env(tmp: Path, database_url: str, demo_url: str) -> dict[str, str]:
    import os

    catalog = tmp / "catalog.toml"
    from noticecrawler.demo.catalog import board_entry

    catalog.write_text(board_entry("demo", interval="1h"), encoding="utf-8")
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "PYTHONWARNINGS": "ignore",
        "DATABASE_URL": database_url,
        "DEMO_BOARD_URL": demo_url,
        "NOTICECRAWLER_HOME": str(tmp / "home"),
        "NOTICECRAWLER_CATALOG": str(catalog),
        "CELERY_BROKER_URL": "memory://",
        "CRAWL_LOCK_URL": "redis://127.0.0.1:9/0",
    }


def test_up_starts_the_api_and_prints_its_url(
    tmp_path: Path, database_url: str, demo_server: Any, broker: Broker
) -> None:
    from tests.dispatch_helpers import TAG, free_port, kill_tagged

    # a tag of this run only: tmp_path.name is the same in every pytest session on the machine,
    # and another session's kill_tagged() then SIGKILLed this run's `up` and children
    tag = uuid.uuid4().hex
    port = free_port()
    env = {
        **dispatch_env(tmp_path, database_url, demo_server.url),
        "CELERY_BROKER_URL": broker.url,
        "CRAWL_LOCK_URL": "",
        "NOTICECRAWLER_API_PORT": str(port),
        "DEMO_BOARD_PORT": str(free_port()),
        TAG: tag,
    }
    up = subprocess.Popen(
        [sys.executable, "-m", "noticecrawler.cli", "up", "--add-every", "0", "--duration", "120"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        assert up.stdout is not None
        printed: list[str] = []
        while not any("/admin/" in line for line in printed) and len(printed) < 80:
            printed.append(up.stdout.readline())
        assert any(f"http://127.0.0.1:{port}/admin/" in line for line in printed), printed
        assert any(f"http://127.0.0.1:{port}/v1" in line for line in printed), printed

        def healthy() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        # the URLs are told once the API answers (it takes seconds to start): no wait here
        assert healthy(), "`up` printed the API's URL before the API answered"
    finally:
        up.send_signal(2)  # Ctrl-C: up stops what it started
        up.communicate(timeout=60)
        kill_tagged(tag)
    assert not healthy(), "the API outlived `noticecrawler up`"
