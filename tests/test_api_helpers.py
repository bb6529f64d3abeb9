"""The API under test: a real uvicorn serving the app on 127.0.0.1 (in a thread of the test
process), talked to over real HTTP with httpx. Shared by tests/test_api*.py."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psycopg
import pytest

from noticecrawler.api import tokens
from noticecrawler.api.app import create_app
from noticecrawler.api.config import ApiConfig
from noticecrawler.api.state import AppState
from noticecrawler.catalog import load_catalog
from noticecrawler.demo.catalog import board_entry
from tests.dispatch_helpers import wait_for

PROBLEM = "application/problem+json"
T = TypeVar("T")


def test_catalog(path: Path, *names: str) -> Path:
    """A catalog of demo-server boards (each under its own path of the demo server)."""
    path.write_text("".join(board_entry(n, interval="1h") for n in names), encoding="utf-8")
    return path


test_catalog.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


def api_config(database_url: str, catalog: Path, demo_url: str, **overrides: Any) -> ApiConfig:
    cfg = ApiConfig(
        database_url=database_url,
        broker_url="memory://",
        lock_url="redis://127.0.0.1:9/0",  # nothing listens: tests needing Redis pass theirs
        boards=tuple(load_catalog(str(catalog), {"demo": demo_url})),
        rate_limit=0,
    )
    return replace(cfg, **overrides)


class ApiServer:
    """uvicorn serving ``create_app(config)`` on a socket of 127.0.0.1, in a thread."""

    def __init__(self, config: ApiConfig) -> None:
        import uvicorn

        self.config = config
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.server = uvicorn.Server(
            uvicorn.Config(create_app(config), log_level="warning", access_log=False, lifespan="on")
        )
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ApiServer:
        self.thread.start()
        wait_for(lambda: self.server.started or not self.thread.is_alive(), 30, "uvicorn")
        if not self.server.started:
            raise AssertionError("the API did not start (see the log above)")
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)
        self.sock.close()

    def run(self, work: Callable[[AppState], Awaitable[T]], timeout: float = 30) -> T:
        """``work(app state)`` on the server's own event loop (where its pool lives)."""
        loop = self.server.servers[0].get_loop()
        state = self.server.config.app.state.nc
        return asyncio.run_coroutine_threadsafe(work(state), loop).result(timeout)

    def client(self, token: str | None = None, **kwargs: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, **kwargs)


@contextmanager
def api_server(config: ApiConfig) -> Iterator[ApiServer]:
    server = ApiServer(config).start()
    try:
        yield server
    finally:
        server.stop()


def add_user(conn: psycopg.Connection[Any], external_id: str) -> int:
    row = conn.execute(
        "INSERT INTO users (external_id) VALUES (%s) RETURNING id", (external_id,)
    ).fetchone()
    assert row is not None
    return int(row["id"])


def user_token(conn: psycopg.Connection[Any], external_id: str) -> tuple[int, str]:
    user = add_user(conn, external_id)
    return user, tokens.issue(conn, user)


def assert_problem(response: httpx.Response, status: int, *words: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM), response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["title"] and body["detail"], body
    for word in words:
        assert word in body["detail"], body
    return body


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    return test_catalog(tmp_path / "catalog.toml", "demo", "cse")


@pytest.fixture
def api(database_url: str, catalog: Path) -> Iterator[ApiServer]:
    with api_server(api_config(database_url, catalog, "http://127.0.0.1:9")) as server:
        yield server


def count(db: psycopg.Connection[Any], sql: str, params: Any = ()) -> int:
    row = db.execute(sql, params).fetchone()
    assert row is not None
    return int(next(iter(row.values())))


def add_posts(
    db: psycopg.Connection[Any], board: str, n: int, start: datetime | None = None
) -> list[int]:
    """``n`` posts, one minute apart, the newest at ``start``; their ids, newest first."""
    start = start or datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    rows = db.execute(
        """
        INSERT INTO posts (board, post_id, title, url, published_at)
        SELECT %s, i::text, '공지 ' || i, 'http://b/' || i, %s - make_interval(mins => i)
        FROM generate_series(0, %s - 1) AS i
        RETURNING id
        """,
        (board, start, n),
    ).fetchall()
    return [r["id"] for r in rows]
