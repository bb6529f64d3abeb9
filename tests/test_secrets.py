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
from tests.dispatch_helpers import make_dispatch, redis_server, wait_for

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
            # the worker logs the task's end after storing its result
            wait_for(lambda: "cannot reach PostgreSQL" in worker.log(), 30, "the task's log line")
            assert SECRET not in worker.log()
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


def test_task_results_and_errors_are_masked_before_the_backend_sees_them() -> None:
    from celery import Celery

    from dispatch.celery_app import RedactingTask, SecretRedacted

    app = Celery("nc-redaction-test", set_as_current=False, task_cls=RedactingTask)

    @app.task(name="t.leaky_result")
    def leaky_result() -> dict:
        return {"detail": f"connected to {FORMS['query']}", "n": 1}

    @app.task(name="t.leaky_error")
    def leaky_error() -> None:
        raise ValueError(f"invalid dsn: {FORMS['libpq']}")

    @app.task(name="t.plain_error")
    def plain_error() -> None:
        raise KeyError("board")

    result = leaky_result()
    assert SECRET not in result["detail"] and result["n"] == 1
    with pytest.raises(SecretRedacted) as caught:
        leaky_error()
    assert SECRET not in str(caught.value) and "ValueError: invalid dsn" in str(caught.value)
    with pytest.raises(KeyError):  # nothing to hide: the exception is untouched
        plain_error()


def test_log_records_are_masked_whoever_logs(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from noticecrawler.redaction import install_log_redaction

    install_log_redaction()
    log = logging.getLogger("some.library")
    with caplog.at_level(logging.INFO, logger="some.library"):
        log.info("connecting to %s", FORMS["userinfo"])
        try:
            raise ConnectionError(f"lost {FORMS['query']}")
        except ConnectionError:
            log.exception("gave up")
    text = "\n".join(
        [r.getMessage() for r in caplog.records] + [r.exc_text or "" for r in caplog.records]
    )
    assert "nc:***@127.0.0.1" in text and "password=***" in text
    assert SECRET not in text and SECRET not in caplog.text
