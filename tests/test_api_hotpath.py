"""The posts endpoint's fast path, over real HTTP (uvicorn on 127.0.0.1) and a real PostgreSQL:
its statements are prepared and survive the database dropping the API's session, a revoked
token stops working within the token cache's bound, and the plain route in front of FastAPI's
keeps the app's errors and CORS."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

from noticecrawler.api import tokens
from noticecrawler.api.state import AppState
from tests.dispatch_helpers import wait_for
from tests.test_api_helpers import (
    add_posts,
    api_config,
    api_server,
    assert_problem,
    user_token,
)

Conn = psycopg.Connection[Any]
#: the `api` and `catalog` fixtures
pytest_plugins = ["tests.test_api_helpers"]


async def _session(state: AppState) -> tuple[int, list[str]]:
    """The API's (only) pooled session: its backend pid and its prepared statements."""
    async with state.pool.connection() as conn:
        cur = await conn.execute("SELECT statement FROM pg_prepared_statements")
        return conn.info.backend_pid, [r[0] for r in await cur.fetchall()]


def _page_statements(statements: list[str]) -> list[str]:
    return [s for s in statements if "json_agg(page.s" in s]


def test_page_statements_are_prepared_and_survive_a_lost_session(
    database_url: str, catalog: Path, db: Conn
) -> None:
    _, token = user_token(db, "alice")
    add_posts(db, "demo", 12)
    cfg = api_config(database_url, catalog, "http://127.0.0.1:9", pool_size=1)
    with api_server(cfg) as server, server.client(token) as c:
        first = c.get("/v1/boards/demo/posts", params={"limit": 5}).json()
        second = c.get("/v1/boards/demo/posts", params={"limit": 5, "cursor": first["next_cursor"]})
        assert second.status_code == 200
        pid, statements = server.run(_session)
        assert len(_page_statements(statements)) == 2, statements  # first page, a later page

        killed = db.execute("SELECT pg_terminate_backend(%s) AS done", (pid,)).fetchone()
        assert killed is not None and killed["done"]

        # the next page's request meets the dead session, and is answered from a new one
        again = c.get("/v1/boards/demo/posts", params={"limit": 5, "cursor": first["next_cursor"]})
        assert again.status_code == 200, again.text
        assert again.json() == second.json()
        new_pid, statements = server.run(_session)
        assert new_pid != pid
        assert len(_page_statements(statements)) == 1, statements  # prepared anew


def test_a_revoked_token_stops_working_within_the_token_cache_bound(
    database_url: str, catalog: Path, db: Conn
) -> None:
    _, token = user_token(db, "alice")
    [prefix] = [r["prefix"] for r in db.execute("SELECT prefix FROM api_tokens").fetchall()]
    long = api_config(database_url, catalog, "http://127.0.0.1:9", token_cache_seconds=3600)
    with api_server(long) as server, server.client(token) as c:
        assert c.get("/v1/boards/demo/posts").status_code == 200
        assert tokens.revoke(db, prefix) == 1
        # within the bound the cached verdict stands: no database round trip per request
        assert c.get("/v1/boards/demo/posts").status_code == 200
    _, token = user_token(db, "bob")
    [prefix] = [
        r["prefix"]
        for r in db.execute("SELECT prefix FROM api_tokens WHERE revoked_at IS NULL").fetchall()
    ]
    short = api_config(database_url, catalog, "http://127.0.0.1:9", token_cache_seconds=0.5)
    with api_server(short) as server, server.client(token) as c:
        assert c.get("/v1/boards/demo/posts").status_code == 200
        assert c.get("/v1/subscriptions").status_code == 200
        assert tokens.revoke(db, prefix) == 1
        wait_for(
            lambda: c.get("/v1/boards/demo/posts").status_code == 401, 15, "the revoked token's 401"
        )
        assert_problem(c.get("/v1/subscriptions"), 401, "revoked")


@pytest.mark.parametrize(
    ("params", "status", "word"),
    [
        ({"limit": "abc"}, 422, "limit"),
        ({"limit": "-1"}, 422, "limit"),
        ({"q": "x" * 201}, 422, "q"),
        ({"since": "2026-11-30T11:00:00Z"}, 200, ""),
        ({"since": "2026-11-30T12:00"}, 422, "time zone"),
        ({"limit": "500"}, 200, ""),  # at most API_MAX_PAGE_SIZE
    ],
)
def test_posts_parameters_read_by_hand(
    api: Any, db: Conn, params: dict[str, str], status: int, word: str
) -> None:
    _, token = user_token(db, "alice")
    add_posts(db, "demo", 3)
    with api.client(token) as c:
        r = c.get("/v1/boards/demo/posts", params=params)
    if status == 200:
        assert r.status_code == 200 and len(r.json()["items"]) == 3, r.text
    else:
        body = assert_problem(r, status, word)
        assert body["type"].endswith("invalid-input")


def test_the_plain_posts_route_keeps_cors_and_methods(
    database_url: str, catalog: Path, db: Conn
) -> None:
    _, token = user_token(db, "alice")
    cfg = api_config(
        database_url, catalog, "http://127.0.0.1:9", cors_origins=("https://app.example",)
    )
    with api_server(cfg) as server, server.client(token) as c:
        r = c.get("/v1/boards/demo/posts", headers={"Origin": "https://app.example"})
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == "https://app.example"
        assert c.post("/v1/boards/demo/posts", json={}).status_code == 405
        assert_problem(c.get("/v1/boards/nope/posts"), 404, "nope")
        # FastAPI's route, behind the plain one, still describes it in /docs
        op = c.get("/openapi.json").json()["paths"]["/v1/boards/{board}/posts"]["get"]
    assert [p["name"] for p in op["parameters"]] == ["board", "limit", "cursor", "since", "q"]
    assert op["security"] == [{"HTTPBearer": []}]
    assert op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "PostPage"
    )
