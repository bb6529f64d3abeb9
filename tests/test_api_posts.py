"""The HTTP API's reading side over real HTTP (uvicorn on 127.0.0.1, real PostgreSQL): boards,
posts and their keyset pages, the user's pushes, the OpenAPI docs; and the API's systemd unit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.test_api_helpers import (
    ApiServer,
    add_posts,
    add_user,
    api_config,
    api_server,
    assert_problem,
    user_token,
)

Conn = psycopg.Connection[Any]
#: the `api` and `catalog` fixtures
pytest_plugins = ["tests.test_api_helpers"]


# --- boards and posts ---------------------------------------------------------------------------


def test_boards_and_unknown_board(api: ApiServer, db: Conn) -> None:
    _, token = user_token(db, "alice")
    add_posts(db, "demo", 3)
    with api.client(token) as c:
        boards = {b["name"]: b for b in c.get("/v1/boards").json()}
        assert set(boards) == {"demo", "cse"}
        assert boards["demo"]["posts"] == 3 and boards["cse"]["posts"] == 0
        assert boards["demo"]["url"].endswith("/demo/list")
        assert_problem(c.get("/v1/boards/nope/posts"), 404, "nope")
        assert_problem(c.get("/v1/posts/999999"), 404)
        assert_problem(c.get("/v1/posts/abc"), 422)


def test_keyset_pages_walk_every_post_once_in_order(api: ApiServer, db: Conn) -> None:
    _, token = user_token(db, "alice")
    ids = add_posts(db, "demo", 95)
    # two posts published at the same instant: the id breaks the tie, none is skipped
    same = datetime(2026, 11, 30, 11, 0, 30, tzinfo=UTC)
    db.execute("UPDATE posts SET published_at = %s WHERE id = ANY(%s)", (same, ids[40:42]))
    expected = [
        r["id"]
        for r in db.execute("SELECT id FROM posts ORDER BY published_at DESC, id DESC").fetchall()
    ]
    seen: list[int] = []
    cursor = None
    with api.client(token) as c:
        for _ in range(20):
            params: dict[str, Any] = {"limit": 10}
            if cursor:
                params["cursor"] = cursor
            page = c.get("/v1/boards/demo/posts", params=params).json()
            seen += [p["id"] for p in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        first = c.get("/v1/boards/demo/posts").json()["items"]
    assert seen == expected and len(seen) == 95
    assert len(first) == 20  # the default page size
    assert set(first[0]) >= {"id", "title", "url", "published_at", "edited", "deleted"}


def test_posts_since_q_and_flags(api: ApiServer, db: Conn) -> None:
    _, token = user_token(db, "alice")
    start = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    ids = add_posts(db, "demo", 10, start)
    db.execute(
        "UPDATE posts SET title = %s, state = 'edited' WHERE id = %s", ("장학금 100%_안내", ids[3])
    )
    db.execute("UPDATE posts SET title = '장학금 1000 안내' WHERE id = %s", (ids[5],))
    with api.client(token) as c:
        since = (start - timedelta(minutes=4)).isoformat()
        recent = c.get("/v1/boards/demo/posts", params={"since": since}).json()["items"]
        assert [p["id"] for p in recent] == ids[:5]
        found = c.get("/v1/boards/demo/posts", params={"q": "100%_"}).json()["items"]
        assert [(p["id"], p["edited"], p["deleted"]) for p in found] == [(ids[3], True, False)]
        both = c.get("/v1/boards/demo/posts", params={"q": "장학금"}).json()["items"]
        assert [p["id"] for p in both] == [ids[3], ids[5]]
        db.execute("UPDATE posts SET deleted_at = now() WHERE id = %s", (ids[5],))
        gone = c.get("/v1/boards/demo/posts", params={"q": "1000"}).json()["items"]
        assert [(p["id"], p["deleted"]) for p in gone] == [(ids[5], True)]
        detail = c.get(f"/v1/posts/{ids[3]}").json()
        assert detail["title"] == "장학금 100%_안내" and detail["edited"] is True
        assert detail["revisions"] == 0 and detail["board"] == "demo"
        naive = c.get("/v1/boards/demo/posts", params={"since": "2026-11-30T12:00:00"})
        assert_problem(naive, 422, "time zone")


@pytest.mark.parametrize(
    "cursor", ["garbage", "!!!", "MjAyNi0xMS0zMA", "bm90IGEgZGF0ZXwxMg", "MjAyNi0xMS0zMFQxMjowMHwx"]
)
def test_invalid_cursor(api: ApiServer, db: Conn, cursor: str) -> None:
    _, token = user_token(db, "alice")
    with api.client(token) as c:
        r = c.get("/v1/boards/demo/posts", params={"cursor": cursor})
        assert_problem(r, 422, "cursor")


def test_bad_query_parameters(api: ApiServer, db: Conn) -> None:
    _, token = user_token(db, "alice")
    with api.client(token) as c:
        assert_problem(c.get("/v1/boards/demo/posts", params={"limit": 0}), 422, "limit")
        assert_problem(c.get("/v1/boards/demo/posts", params={"since": "soon"}), 422, "since")
        assert_problem(c.get("/v1/notifications", params={"limit": 1000}), 422, "limit")
        assert_problem(c.get("/v1/nothing-here"), 404)


def test_notifications_show_only_the_users_pushes(api: ApiServer, db: Conn) -> None:
    alice_id, alice = user_token(db, "alice")
    bob_id = add_user(db, "bob")
    [post] = add_posts(db, "demo", 1)
    devices = {}
    for user, token in [(alice_id, "fcm-a"), (bob_id, "fcm-b")]:
        row = db.execute(
            "INSERT INTO devices (user_id, fcm_token, platform) VALUES (%s, %s, 'android') "
            "RETURNING id",
            (user, token),
        ).fetchone()
        assert row is not None
        devices[user] = row["id"]
    db.execute(
        "INSERT INTO notifications (post_id, device_id, status, attempts, error) VALUES "
        "(%s, %s, 'sent', 1, NULL), (%s, %s, 'failed', 5, 'INTERNAL')",
        (post, devices[alice_id], post, devices[bob_id]),
    )
    with api.client(alice) as c:
        rows = c.get("/v1/notifications").json()
    assert [(r["post_id"], r["device_id"], r["status"], r["board"]) for r in rows] == [
        (post, devices[alice_id], "sent", "demo")
    ]


def test_openapi_docs(api: ApiServer) -> None:
    with api.client() as c:
        spec = c.get("/openapi.json").json()
        assert c.get("/docs").status_code == 200
    paths = set(spec["paths"])
    assert {
        "/v1/devices",
        "/v1/devices/{token}",
        "/v1/subscriptions",
        "/v1/boards",
        "/v1/boards/{board}/posts",
        "/v1/posts/{post_id}",
        "/v1/notifications",
        "/v1/admin/boards/{board}/crawl",
        "/v1/admin/health",
    } <= paths
    assert not any(p.startswith("/admin") for p in paths)
    assert "HTTPBearer" in spec["components"]["securitySchemes"]


def test_httpx_is_a_real_client(api: ApiServer) -> None:
    # the server is a real socket: a raw HTTP/1.1 request gets a real answer
    r = httpx.get(f"{api.url}/healthz", timeout=10)
    assert r.http_version == "HTTP/1.1" and r.status_code == 200


# --- deployment ---------------------------------------------------------------------------------


def test_systemd_unit_runs_the_api_and_is_valid(tmp_path: Path) -> None:
    """The unit's hardening and security rating are checked with every unit's
    (tests/test_deploy_units.py); here: it runs `noticecrawler api` and systemd accepts it."""
    import shutil
    import subprocess

    from tests.dispatch_helpers import ROOT

    text = (ROOT / "deploy" / "systemd" / "noticecrawler-api.service").read_text()
    assert "ExecStart=/bin/sh -c 'exec ${NOTICECRAWLER_BIN} api --workers 2'" in text
    assert "EnvironmentFile=/etc/noticecrawler/celery.env" in text  # the workers' settings
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    # verify needs the environment file to exist: make it optional for the check
    unit = tmp_path / "noticecrawler-api.service"
    unit.write_text(text.replace("EnvironmentFile=/", "EnvironmentFile=-/"))
    verify = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True)
    assert verify.returncode == 0, verify.stderr


def test_first_page_is_cached_briefly_and_only_the_first(
    database_url: str, catalog: Path, db: Conn
) -> None:
    _, token = user_token(db, "alice")
    add_posts(db, "demo", 3)
    cached = api_config(database_url, catalog, "http://127.0.0.1:9", page_cache_seconds=600)
    with api_server(cached) as server, server.client(token) as c:
        before = c.get("/v1/boards/demo/posts").json()["items"]
        db.execute(
            "INSERT INTO posts (board, post_id, title, url, published_at) "
            "VALUES ('demo', 'new', '방금 올라온 공지', 'http://b/new', now())"
        )
        assert c.get("/v1/boards/demo/posts").json()["items"] == before  # from memory
        other_size = c.get("/v1/boards/demo/posts", params={"limit": 5}).json()["items"]
        assert other_size[0]["title"] == "방금 올라온 공지"  # another page: queried
        searched = c.get("/v1/boards/demo/posts", params={"q": "방금"}).json()["items"]
        assert [p["title"] for p in searched] == ["방금 올라온 공지"]
    uncached = api_config(database_url, catalog, "http://127.0.0.1:9", page_cache_seconds=0)
    with api_server(uncached) as server, server.client(token) as c:
        assert c.get("/v1/boards/demo/posts").json()["items"][0]["title"] == "방금 올라온 공지"
