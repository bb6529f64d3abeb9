"""Passwords stay secret: one redaction covers URL userinfo, ``?password=`` and libpq's
``key=value``; commands, worker logs and the Redis result backend never show one; the
embedded Redis needs its generated password and keeps its files private."""

from __future__ import annotations

import socket
import stat
from pathlib import Path

import pytest

from noticecrawler.cli import main
from noticecrawler.db import embedded
from noticecrawler.redaction import redact
from tests.dispatch_helpers import make_dispatch, redis_server

SECRET = "Tr0ub4dor-secret"
FORMS = {
    "userinfo": f"postgresql://nc:{SECRET}@127.0.0.1:9/nowhere",
    "query": f"postgresql://nc@127.0.0.1:9/nowhere?connect_timeout=2&password={SECRET}",
    "libpq": f"host=127.0.0.1 port=9 dbname=nowhere user=nc password={SECRET}",
}


@pytest.mark.parametrize("form", FORMS)
def test_redact_masks_each_form(form: str) -> None:
    clean = redact(f"cannot reach {FORMS[form]} now")
    assert SECRET not in clean and "***" in clean
    assert "127.0.0.1" in clean  # only the password goes


def test_redact_masks_quoted_libpq_values_and_leaves_plain_text() -> None:
    assert redact("host=h password='two words' user=u") == "host=h password=*** user=u"
    assert redact("redis://:pw@127.0.0.1:6379/0") == "redis://:***@127.0.0.1:6379/0"
    plain = "board `demo`: row selector `tr.a` matched 0 rows on https://x.invalid/list?page=2"
    assert redact(plain) == plain


@pytest.mark.parametrize("form", FORMS)
def test_commands_never_print_the_password(form: str, capsys) -> None:
    assert main(["-s", f"DATABASE_URL={FORMS[form]}", "runs", "demo"]) == 2
    out, err = capsys.readouterr()
    assert "cannot reach PostgreSQL" in err and SECRET not in out + err


@pytest.mark.slow
def test_worker_logs_and_result_backend_hold_no_password(tmp_path, demo_server) -> None:
    with redis_server(tmp_path / "redis") as redis:
        d = make_dispatch(
            tmp_path,
            broker_url=redis.url,
            result_url=redis.url,
            database_url=FORMS["libpq"],
            demo_url=demo_server.url,
            boards={"demo": "10m"},
        )
        try:
            worker = d.worker("crawler", concurrency=1)
            result = d.app().send_task("dispatch.crawl_site", args=["demo"])
            outcome = result.get(timeout=60, propagate=False)
            assert result.state in ("FAILURE", "SUCCESS")
            assert "cannot reach PostgreSQL" in str(outcome)
            assert SECRET not in str(outcome)
            log = worker.log()
            assert "cannot reach PostgreSQL" in log and SECRET not in log
            client = redis.client()
            stored = b"".join(
                client.dump(key) or b"" for key in client.keys("*")
            )  # every key: results, queues, locks
            assert stored and SECRET.encode() not in stored
        finally:
            d.stop_all()


def test_embedded_redis_requires_its_password_and_keeps_files_private(tmp_path: Path) -> None:
    home = tmp_path / "home"
    url = embedded.redis_url(home)
    try:
        password = (home / "redis" / "password").read_text().strip()
        assert url.startswith(f"redis://:{password}@127.0.0.1:") and len(password) >= 24
        assert embedded.redis_url(home) == url  # every later client finds it there
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"LPUSH celery stranger\r\n")
            assert s.recv(64).startswith(b"-NOAUTH")
        rdir = home / "redis"
        assert stat.S_IMODE(rdir.stat().st_mode) == 0o700
        for name in ("password", "redis.conf", "appendonly.aof"):
            assert stat.S_IMODE((rdir / name).stat().st_mode) == 0o600, name
    finally:
        embedded.stop_redis(home)
