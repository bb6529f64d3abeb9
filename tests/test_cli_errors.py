"""The project's own errors end a command with one line on stderr and exit status 2: a
malformed catalog, an unreachable database, an empty database, an unknown board, a port that
does not speak HTTP. Never a traceback, never a password."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from noticecrawler.cli import main
from tests.conftest import ROOT

SECRET = "s3cr3t-pw"
NOWHERE = f"postgresql://nc:{SECRET}@127.0.0.1:9/nowhere"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture
def bad_catalog(tmp_path: Path) -> str:
    path = tmp_path / "catalog.toml"
    path.write_text('[[board]]\nname = "cse"\nengine = "table"\n')  # no start_url
    return str(path)


@pytest.mark.parametrize("argv", [["boards"], ["runs", "cse"], ["posts", "cse"], ["health"]])
def test_malformed_catalog_is_one_line(capsys, bad_catalog: str, argv: list[str]) -> None:
    status, _, err = run(capsys, "-s", f"NOTICECRAWLER_CATALOG={bad_catalog}", *argv)
    assert status == 2
    line = one_error_line(err)
    assert "cse" in line and "start_url" in line


@pytest.mark.parametrize("argv", [["runs", "demo"], ["health"], ["users", "list"], ["db", "url"]])
def test_unreachable_database_is_one_line_without_the_password(capsys, argv) -> None:
    status, out, err = run(capsys, "-s", f"DATABASE_URL={NOWHERE}", *argv)
    assert status == 2
    line = one_error_line(err)
    assert "cannot reach PostgreSQL" in line and "127.0.0.1:9" in line
    assert SECRET not in out + err


def test_unknown_board_is_one_line_naming_the_known_ones(capsys, database_url: str) -> None:
    for command in ("runs", "posts"):
        status, out, err = run(capsys, "-s", f"DATABASE_URL={database_url}", command, "nosuch")
        assert status == 2 and out == ""
        line = one_error_line(err)
        assert "unknown board 'nosuch'; known: " in line and "demo_rss" in line


def test_db_status_on_an_empty_database_lists_pending(capsys, empty_database_url: str) -> None:
    status, out, err = run(capsys, "-s", f"DATABASE_URL={empty_database_url}", "db", "status")
    assert status == 0, err
    assert out.startswith("pending  0001_core")
    # and a command that needs the schema says what to do
    status, _, err = run(capsys, "-s", f"DATABASE_URL={empty_database_url}", "runs", "demo")
    assert status == 2
    assert one_error_line(err).endswith("database not migrated: run noticecrawler db upgrade")


def test_db_url_masks_the_password_unless_asked(capsys, database_url: str) -> None:
    from noticecrawler.db import settings as db_settings

    parts = urlsplit(database_url)
    url = urlunsplit(parts._replace(netloc=f"nc_reader:{SECRET}@{parts.hostname}:{parts.port}"))
    db_settings._resolved[(url, "")] = url  # `db url` only prints: no login with this user
    base = ["-s", f"DATABASE_URL={url}", "-s", "NOTICECRAWLER_HOME=", "db", "url"]
    try:
        status, out, _ = run(capsys, *base)
        assert status == 0 and SECRET not in out and "nc_reader:***@" in out
        status, out, _ = run(capsys, *base, "--show-password")
        assert status == 0 and f"nc_reader:{SECRET}@" in out
    finally:
        del db_settings._resolved[(url, "")]


@pytest.fixture
def not_http() -> Iterator[int]:
    """A port that answers every connection with a line that is not HTTP."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join(5)
    server.close()


def test_detect_against_a_port_that_is_not_http(capsys, not_http: int) -> None:
    status, out, err = run(capsys, "detect", f"http://127.0.0.1:{not_http}/board")
    assert status == 2 and out == ""
    assert "cannot read" in one_error_line(err)


def scrapy_crawl(board: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scrapy", "crawl", board],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_scrapy_crawl_unknown_board_and_bad_catalog(crawl_env, bad_catalog: str) -> None:
    proc = scrapy_crawl("nosuchboard", crawl_env)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    [line] = [ln for ln in proc.stderr.splitlines() if ln.startswith("scrapy crawl:")]
    assert "unknown board 'nosuchboard'; known: " in line and "demo_euckr" in line

    proc = scrapy_crawl("cse", {**crawl_env, "NOTICECRAWLER_CATALOG": bad_catalog})
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "board `cse`" in proc.stderr and "start_url" in proc.stderr


def test_scrapy_crawl_of_an_unmigrated_database(crawl_env, empty_database_url: str) -> None:
    proc = scrapy_crawl("demo", {**crawl_env, "DATABASE_URL": empty_database_url})
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if " ERROR: " in ln]
    # under scrapyd, the first error line of the job's log names the cause
    assert errors and "database not migrated: run noticecrawler db upgrade" in errors[0]


def test_scrapy_crawl_exits_nonzero_when_the_board_failed(crawl, demo_server) -> None:
    demo_server.set_layout_broken("demo")
    result = crawl("demo")
    assert result.run["finish_reason"] == "empty_list"
    assert result.returncode == 1


def test_broker_errors_are_one_line_without_the_password() -> None:
    from kombu.exceptions import OperationalError
    from redis.exceptions import ConnectionError as RedisConnectionError

    from noticecrawler.errors import one_line

    kombu = OperationalError(f"Error 111 connecting to redis://:{SECRET}@127.0.0.1:1/0.\nmore")
    assert one_line(kombu) == (
        "cannot reach the Celery broker: Error 111 connecting to redis://:***@127.0.0.1:1/0."
    )
    assert "cannot reach the Celery broker" in (one_line(RedisConnectionError("refused")) or "")
    assert one_line(ValueError("a bug, not an expected failure")) is None


def test_a_reader_that_goes_away_ends_the_command_quietly(database_url: str) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "noticecrawler.cli", "-s", f"DATABASE_URL={database_url}",
         "boards"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # like `| head` exiting before the command writes
    with proc.stderr:
        err = proc.stderr.read().decode()
    assert proc.wait(60) == 141  # what a shell reports for SIGPIPE, not a failure of its own
    assert "Traceback" not in err and "BrokenPipeError" not in err


@pytest.mark.slow
def test_up_with_an_unreachable_broker_is_one_line(database_url: str, tmp_path: Path) -> None:
    import os

    from tests.dispatch_helpers import TAG, free_port, kill_tagged, tagged_pids, wait_for

    tag = f"up-broker-{os.getpid()}-{tmp_path.name}"
    env = {
        **os.environ,
        TAG: tag,
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": f"redis://:{SECRET}@127.0.0.1:1/0",
        "CELERY_RESULT_BACKEND": "",
        "NOTICECRAWLER_HOME": str(tmp_path / "home"),
        "DEMO_BOARD_PORT": str(free_port()),
        "DEMO_BOARD_URL": "",
        "NOTICECRAWLER_EXPORTER_PORT": str(free_port()),
        "PYTHONWARNINGS": "ignore",
    }
    try:
        done = subprocess.run(
            [sys.executable, "-m", "noticecrawler.cli", "up", "--add-every", "0"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=180,
        )  # fmt: skip
        assert done.returncode == 2, done.stdout + done.stderr
        line = one_error_line(done.stderr)
        assert "cannot reach the Celery broker at redis://:***@127.0.0.1:1/0" in line
        assert SECRET not in done.stdout + done.stderr
    finally:
        wait_for(lambda: not tagged_pids(tag), 30, "the worker and beat of `up` to exit")
        kill_tagged(tag)
