"""Faults on the crawl side, with real processes on 127.0.0.1: a board that refuses
connections, stalls or answers 5xx, a database or lock store that is not there, crawl
processes and workers that are killed. Every test here failed before issue 9 was fixed."""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import billiard
import psycopg
import pytest

from dispatch import config
from dispatch import runs as runs_module
from noticecrawler.health import board_health
from noticecrawler.preflight import CrawlNotStarted
from tests.dispatch_helpers import RedisServer, free_port, redis_server
from tests.faults.crawl_support import Crawler, FaultBoard

pytestmark = pytest.mark.slow


@pytest.fixture
def boards() -> Iterator[FaultBoard]:
    with FaultBoard() as server:
        yield server


@pytest.fixture
def crawl(tmp_path: Path, boards: FaultBoard, database_url: str) -> Crawler:
    """Crawls of the boards `alpha` and `beta` of ``boards``, forked like a worker's."""
    catalog = boards.write_catalog(tmp_path / "catalog.toml", "alpha", "beta")
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
    assert health(crawl) == ["ok", "ok"]
    # the list page is in the HTTP cache now: none of these may be answered from it

    with boards.refusing():
        refused = crawl("alpha")
    assert refused.reason == "unreachable", refused.log
    assert refused.summary["errors"] >= 1 and refused.summary["items"] == 0
    assert "board `alpha`: list page" in refused.summary["error_detail"]
    assert "httpcache/errorrecovery" not in refused.log
    assert health(crawl) == ["failing", "ok"]

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
    assert health(crawl) == ["ok", "ok"]
    assert [r["finish_reason"] for r in runs(db, "alpha")] == [
        "finished", "unreachable", "http_5xx", "timeout", "finished",
    ]  # fmt: skip


# --- 3: every way a crawl cannot start says so ----------------------------------------------


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    with redis_server(tmp_path / "redis") as server:
        yield server


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
    assert health(crawl) == ["failing", "failing"]
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
            assert signal.pthread_sigmask(signal.SIG_BLOCK, []) == set()
    finally:
        signal.signal(signal.SIGUSR1, previous)
        boards.heal("alpha")
