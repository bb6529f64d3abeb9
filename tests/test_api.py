"""The HTTP API over real HTTP (uvicorn on 127.0.0.1) against a real PostgreSQL: auth, rate
limits, CORS, devices, subscriptions and their limits, bad input, concurrency."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Any

import psycopg
import pytest

from noticecrawler.api import tokens
from tests.test_api_helpers import (
    ApiServer,
    api_config,
    api_server,
    assert_problem,
    count,
    user_token,
)

Conn = psycopg.Connection[Any]
#: the `api` and `catalog` fixtures
pytest_plugins = ["tests.test_api_helpers"]


# --- auth -------------------------------------------------------------------------------------


def test_healthz_needs_no_token_and_everything_else_does(api: ApiServer, db: Conn) -> None:
    with api.client() as c:
        assert c.get("/healthz").json() == {"status": "ok"}
        for method, path in [
            ("GET", "/v1/boards"),
            ("GET", "/v1/boards/demo/posts"),
            ("GET", "/v1/posts/1"),
            ("GET", "/v1/subscriptions"),
            ("PUT", "/v1/subscriptions"),
            ("POST", "/v1/devices"),
            ("DELETE", "/v1/devices/abc"),
            ("GET", "/v1/notifications"),
            ("POST", "/v1/admin/boards/demo/crawl"),
            ("GET", "/v1/admin/health"),
        ]:
            r = c.request(method, path, json={})
            assert_problem(r, 401, "no bearer token")
            assert r.headers["www-authenticate"].startswith("Bearer")
    with api.client("nct_not-a-token") as c:
        assert_problem(c.get("/v1/boards"), 401, "unknown or revoked")


def test_tokens_are_stored_hashed_and_revocable(api: ApiServer, db: Conn) -> None:
    _, token = user_token(db, "alice")
    stored = db.execute("SELECT * FROM api_tokens").fetchall()
    assert len(stored) == 1
    assert token not in repr(stored)
    assert bytes(stored[0]["token_sha256"]) == hashlib.sha256(token.encode()).digest()
    with api.client(token) as c:
        assert c.get("/v1/subscriptions").status_code == 200
    assert tokens.revoke(db, stored[0]["prefix"]) == 1
    api.server.config.app.state.nc._tokens.clear()  # the 10 s token cache, for the test
    with api.client(token) as c:
        assert_problem(c.get("/v1/subscriptions"), 401, "revoked")


def test_non_admin_on_admin_endpoints_and_admin_token_on_user_endpoints(
    api: ApiServer, db: Conn
) -> None:
    _, token = user_token(db, "alice")
    admin = tokens.issue(db, None, admin=True)
    with api.client(token) as c:
        assert_problem(c.post("/v1/admin/boards/demo/crawl"), 403, "admin token")
        assert_problem(c.get("/v1/admin/health"), 403, "admin token")
    with api.client(admin) as c:
        assert_problem(c.get("/v1/subscriptions"), 403, "no user")
        assert c.get("/v1/boards").status_code == 200
        health = c.get("/v1/admin/health").json()
        assert {b["board"]: b["status"] for b in health["boards"]} == {
            "demo": "never",
            "cse": "never",
        }


def test_a_users_token_on_another_users_device(api: ApiServer, db: Conn) -> None:
    _, alice = user_token(db, "alice")
    _, bob = user_token(db, "bob")
    with api.client(alice) as c:
        assert c.post("/v1/devices", json={"token": "fcm-a", "platform": "ios"}).status_code == 201
    with api.client(bob) as c:
        assert_problem(c.delete("/v1/devices/fcm-a"), 403, "another user")
        assert_problem(c.delete("/v1/devices/fcm-none"), 404)
        assert c.get("/v1/devices").json() == []
    assert count(db, "SELECT count(*) FROM devices WHERE fcm_token = 'fcm-a'") == 1
    with api.client(alice) as c:
        assert c.delete("/v1/devices/fcm-a").status_code == 204
    assert count(db, "SELECT count(*) FROM devices") == 0


def test_rate_limit_per_token(database_url: str, catalog: Path, db: Conn) -> None:
    _, alice = user_token(db, "alice")
    _, bob = user_token(db, "bob")
    cfg = api_config(database_url, catalog, "http://127.0.0.1:9", rate_limit=0.5, rate_burst=3)
    with api_server(cfg) as server, server.client(alice) as a, server.client(bob) as b:
        assert [a.get("/v1/boards").status_code for _ in range(3)] == [200, 200, 200]
        limited = assert_problem(a.get("/v1/boards"), 429, "rate limit")
        assert limited["type"].endswith("rate-limited")
        assert int(a.get("/v1/boards").headers["retry-after"]) >= 1
        assert b.get("/v1/boards").status_code == 200  # another token, its own bucket


def test_cors_is_off_unless_configured(database_url: str, catalog: Path, db: Conn) -> None:
    preflight = {
        "Origin": "https://app.example",
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization",
    }
    base = api_config(database_url, catalog, "http://127.0.0.1:9")
    with api_server(base) as server, server.client() as c:
        r = c.options("/v1/boards", headers=preflight)
        assert "access-control-allow-origin" not in r.headers
    allowed = api_config(
        database_url, catalog, "http://127.0.0.1:9", cors_origins=("https://app.example",)
    )
    with api_server(allowed) as server, server.client() as c:
        r = c.options("/v1/boards", headers=preflight)
        assert r.headers["access-control-allow-origin"] == "https://app.example"


# --- devices and subscriptions -----------------------------------------------------------------


def test_device_registration_refresh_and_move(api: ApiServer, db: Conn) -> None:
    alice_id, alice = user_token(db, "alice")
    bob_id, bob = user_token(db, "bob")
    with api.client(alice) as c:
        first = c.post("/v1/devices", json={"token": "fcm-1", "platform": "android"})
        assert first.status_code == 201 and first.json()["platform"] == "android"
        db.execute("UPDATE devices SET active = false, last_error = 'UNREGISTERED'")
        again = c.post("/v1/devices", json={"token": "fcm-1", "platform": "android"})
        assert again.status_code == 200 and again.json()["active"] is True
        assert again.json()["id"] == first.json()["id"]
    with api.client(bob) as c:
        moved = c.post("/v1/devices", json={"token": "fcm-1", "platform": "ios"})
        assert moved.status_code == 200 and moved.json()["id"] == first.json()["id"]
        assert [d["token"] for d in c.get("/v1/devices").json()] == ["fcm-1"]
    rows = db.execute("SELECT user_id, platform FROM devices").fetchall()
    assert rows == [{"user_id": bob_id, "platform": "ios"}]
    with api.client(alice) as c:
        assert c.get("/v1/devices").json() == []
    assert alice_id != bob_id


def test_subscriptions_round_trip(api: ApiServer, db: Conn) -> None:
    _, token = user_token(db, "alice")
    body = {
        "subscriptions": [
            {"keywords": [" 장학금 ", "장학금", "수강  신청"], "negative_keywords": ["대학원"]},
            {"keywords": [], "boards": ["cse"]},
        ]
    }
    with api.client(token) as c:
        assert c.get("/v1/subscriptions").json() == {"subscriptions": []}
        put = c.put("/v1/subscriptions", json=body)
        assert put.status_code == 200, put.text
        first = {"keywords": ["장학금", "수강 신청"], "negative_keywords": ["대학원"], "boards": []}
        expected = {
            "subscriptions": [
                first,
                {"keywords": [], "negative_keywords": [], "boards": ["cse"]},
            ]
        }
        assert put.json() == expected
        assert c.get("/v1/subscriptions").json() == expected
        assert c.put("/v1/subscriptions", json={"subscriptions": []}).status_code == 200
    assert count(db, "SELECT count(*) FROM subscriptions") == 0


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"subscriptions": [{"keywords": [""]}]}, "subscriptions.0.keywords.0", "empty"),
        ({"subscriptions": [{"keywords": ["   "]}]}, "subscriptions.0.keywords.0", "empty"),
        ({"subscriptions": [{"keywords": ["가" * 51]}]}, "subscriptions.0.keywords.0", "51"),
        (
            {"subscriptions": [{"keywords": [f"k{i}" for i in range(10_000)]}]},
            "subscriptions",
            "10000 keywords",
        ),
        ({"subscriptions": [{"keywords": ["a"]}] * 21}, "subscriptions", "21 subscriptions"),
        ({"subscriptions": [{"keywords": ["a"], "boards": ["nope"]}]}, "boards.0", "nope"),
        ({"subscriptions": [{"negative_keywords": ["a"]}]}, "subscriptions.0", "needs keywords"),
        ({"subscriptions": [{"keywords": "장학금"}]}, "subscriptions.0.keywords", ""),
        ({"subscriptions": [{"keywords": ["a"], "colour": 1}]}, "colour", ""),
        ({}, "subscriptions", ""),
    ],
)
def test_bad_subscriptions_are_refused_whole(
    api: ApiServer, db: Conn, body: dict[str, Any], field: str, words: str
) -> None:
    _, token = user_token(db, "alice")
    with api.client(token) as c:
        c.put("/v1/subscriptions", json={"subscriptions": [{"keywords": ["그대로"]}]})
        problem = assert_problem(c.put("/v1/subscriptions", json=body), 422, words)
        assert field in problem["detail"] and problem["errors"][0]["field"].endswith(
            field.rsplit(".", 1)[-1]
        )
    rows = db.execute("SELECT keywords FROM subscriptions").fetchall()
    assert rows == [{"keywords": ["그대로"]}]  # nothing written


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"token": "fcm", "platform": "windows"}, "platform"),
        ({"token": "", "platform": "android"}, "token"),
        ({"token": "x" * 4097, "platform": "android"}, "token"),
        ({"platform": "android"}, "token"),
    ],
)
def test_bad_devices_are_refused(api: ApiServer, db: Conn, body: Any, field: str) -> None:
    _, token = user_token(db, "alice")
    with api.client(token) as c:
        problem = assert_problem(c.post("/v1/devices", json=body), 422, field)
        assert problem["errors"][0]["field"] == field
        bad_json = c.post(
            "/v1/devices", content=b"{not json", headers={"content-type": "application/json"}
        )
        assert_problem(bad_json, 422)
    assert count(db, "SELECT count(*) FROM devices") == 0


def _register_at_once(api: ApiServer, calls: list[tuple[str, str, str]]) -> list[int]:
    """Every (api token, FCM token, platform) registration sent at the same moment."""
    barrier = threading.Barrier(len(calls))
    statuses: list[int] = []

    def register(api_token: str, fcm_token: str, platform: str) -> None:
        with api.client(api_token) as c:
            barrier.wait()
            r = c.post("/v1/devices", json={"token": fcm_token, "platform": platform})
            statuses.append(r.status_code)

    threads = [threading.Thread(target=register, args=call) for call in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return statuses


def test_same_token_registered_by_two_users_at_once_is_one_row(api: ApiServer, db: Conn) -> None:
    users = [user_token(db, f"user-{i}") for i in range(2)]
    for round_ in range(10):
        fcm = f"shared-{round_}"
        calls = [(t, fcm, p) for (_, t), p in zip(users, ["android", "ios"], strict=True)]
        statuses = _register_at_once(api, calls)
        assert sorted(statuses) == [200, 201], statuses
        rows = db.execute("SELECT user_id FROM devices WHERE fcm_token = %s", (fcm,)).fetchall()
        assert len(rows) == 1 and rows[0]["user_id"] in {u for u, _ in users}
