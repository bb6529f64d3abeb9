"""crawl_site through a real Redis and real Celery worker processes, into a real PostgreSQL."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

import psycopg
import pytest

from tests.dispatch_helpers import (
    Dispatch,
    descendants,
    make_dispatch,
    queued_task_ids,
    tagged_pids,
    wait_for,
)

pytestmark = pytest.mark.slow

# short limits so a hung board is killed within the test (soft: the crawl process is killed);
# beat with one crawl_site entry per board (the batched check_due: tests/test_check_due.py)
LIMITS = {"CRAWL_SOFT_TIME_LIMIT": 3, "CRAWL_TIME_LIMIT": 6, "CRAWL_CHECK_TICK": 0}


@pytest.fixture
def dispatch(tmp_path, redis, database_url, demo_server) -> Iterator[Dispatch]:
    d = make_dispatch(
        tmp_path,
        broker_url=redis.url,
        result_url=redis.url,
        database_url=database_url,
        demo_url=demo_server.url,
        boards={"demo": "10m", "hung": "10m", "calm": "10m", "twin": "10m", "tick": "2s"},
        overrides=LIMITS,
    )
    try:
        yield d
    finally:
        d.stop_all()
    assert tagged_pids(d.tag) == set(), "a process of the test outlived it"


def posts(db: psycopg.Connection, board: str) -> list[dict]:
    return db.execute(
        "SELECT post_id, count(*) AS n FROM posts WHERE board = %s GROUP BY post_id", (board,)
    ).fetchall()


def runs(db: psycopg.Connection, board: str) -> list[dict]:
    return db.execute("SELECT * FROM crawl_runs WHERE board = %s ORDER BY id", (board,)).fetchall()


def test_crawl_site_stores_posts_and_runs_twice_in_one_worker(dispatch, db) -> None:
    worker = dispatch.worker("crawler1")
    app = dispatch.app()
    first = app.send_task("dispatch.crawl_site", args=["demo"]).get(timeout=60)
    assert first["finish_reason"] == "finished", first
    assert first["new"] == 33 and first["pages"] == 3 and first["errors"] == 0
    second = app.send_task("dispatch.crawl_site", args=["demo"]).get(timeout=60)
    # unchanged: checked with one conditional GET in the pool process (a 304), nothing new
    assert second["finish_reason"] == "finished" and second["path"] == "not_modified", second
    assert second["not_modified"] == 1 and second["new"] == 0
    assert first["pid"] != second["pid"]
    assert set(first) >= {"pages", "requests", "not_modified", "items", "new", "errors"}
    assert set(first) >= {"finish_reason", "seconds"}
    assert len(posts(db, "demo")) == 33
    assert [r["finish_reason"] for r in runs(db, "demo")] == ["finished", "finished"]
    log = worker.log()
    # one log line per message: the crawl process logs through the worker's handlers only,
    # one summary line per run (Scrapy's own lines are DEBUG detail in a worker)
    assert log.count("board `demo`: finished —") == 1
    assert log.count("board `demo`: not modified — checked without a crawl") == 1
    assert "Spider opened" not in log and "Dumping Scrapy stats" not in log
    assert "Telnet" not in log


def test_hung_board_is_killed_at_the_time_limit_others_still_crawl(
    dispatch, db, demo_server
) -> None:
    worker = dispatch.worker("crawler2", concurrency=2)
    app = dispatch.app()
    pool = children_of(worker.proc.pid)
    demo_server.set_stall("hung", 60)
    hung = app.send_task("dispatch.crawl_site", args=["hung"])
    wait_for(lambda: descendants(worker.proc.pid) - pool, 20, "the hung crawl's process")
    calm = app.send_task("dispatch.crawl_site", args=["calm"]).get(timeout=30)
    assert calm["finish_reason"] == "finished" and calm["new"] == 33
    assert not hung.ready()

    summary = hung.get(timeout=30)
    assert summary["finish_reason"] == "time_limit" and summary["errors"] == 1
    assert "board `hung`" in summary["error_detail"]
    # killed at the 3 s limit, not run to the 60 s stall
    assert 2.5 < summary["seconds"] < 30
    # nothing left below the worker but its pool processes
    wait_for(lambda: descendants(worker.proc.pid) == children_of(worker.proc.pid), 5, "cleanup")
    assert [r["finish_reason"] for r in runs(db, "hung")] == ["time_limit"]

    # at the hard limit the pool kills its process: the crawl dies with it (parent-death signal)
    demo_server.set_stall("calm", 60)
    lost = app.send_task("dispatch.crawl_site", args=["calm"])
    pool = children_of(worker.proc.pid)
    crawl = wait_for(lambda: descendants(worker.proc.pid) - pool, 20, "the calm crawl's process")
    (pool_process,) = {p for p in pool if children_of(p) & crawl}
    os.kill(pool_process, signal.SIGKILL)
    assert "WorkerLostError" in repr(lost.get(timeout=30, propagate=False))
    wait_for(lambda: not (crawl & tagged_pids(dispatch.tag)), 10, "the orphaned crawl to die")
    assert tagged_pids(dispatch.tag) == {worker.proc.pid} | children_of(worker.proc.pid)
    demo_server.set_stall("calm", 0)
    demo_server.set_stall("hung", 0)
    # the lock of the lost crawl of `calm` holds until its expiry: other boards crawl on
    again = app.send_task("dispatch.crawl_site", args=["demo"]).get(timeout=30)
    assert again["finish_reason"] == "finished" and again["new"] == 33


def test_two_crawls_of_one_board_at_once_one_is_skipped(dispatch, db, demo_server) -> None:
    worker = dispatch.worker("crawler3", concurrency=2)
    app = dispatch.app()
    first = app.send_task("dispatch.crawl_site", args=["twin"]).get(timeout=30)
    assert first["new"] == 33  # later crawls read one (stalled) page
    demo_server.set_stall("twin", 1.5)
    a = app.send_task("dispatch.crawl_site", args=["twin"])
    b = app.send_task("dispatch.crawl_site", args=["twin"])
    results = [a.get(timeout=30), b.get(timeout=30)]
    skipped = [r for r in results if r["skipped"]]
    crawled = [r for r in results if not r["skipped"]]
    assert len(skipped) == 1 and len(crawled) == 1, results
    assert crawled[0]["finish_reason"] == "finished" and crawled[0]["pages"] == 1
    assert skipped[0]["reason"] == "locked" and skipped[0]["holder"] in (a.id, b.id)
    assert len(runs(db, "twin")) == 2
    assert "board `twin`: already being crawled by task" in worker.log()
    # the lock is released when the crawl ends
    demo_server.set_stall("twin", 0)
    assert app.send_task("dispatch.crawl_site", args=["twin"]).get(timeout=30)["skipped"] is False


def test_sigkilled_worker_task_is_delivered_again_posts_stored_once(
    tmp_path, redis, database_url, demo_server, db
) -> None:
    # a visibility timeout of a few seconds (above the lock's expiry, above the hard limit)
    # (the soft limit leaves room for the redelivered crawl's catch-up paging on a slow machine)
    limits = {"CRAWL_SOFT_TIME_LIMIT": 8, "CRAWL_TIME_LIMIT": 9, "CRAWL_LOCK_EXPIRE": 10}
    d = make_dispatch(
        tmp_path,
        broker_url=redis.url,
        result_url=redis.url,
        database_url=database_url,
        demo_url=demo_server.url,
        boards={"demo": "10m"},
        overrides={**limits, "CELERY_VISIBILITY_TIMEOUT": 11},
    )
    try:
        first = d.worker("victim", concurrency=1)
        app = d.app()
        demo_server.set_stall("demo", 30)
        sent = time.monotonic()
        task = app.send_task("dispatch.crawl_site", args=["demo"])
        wait_for(lambda: len(descendants(first.proc.pid)) >= 2, 20, "the crawl process")
        os.kill(first.proc.pid, signal.SIGKILL)
        first.proc.wait(5)
        # pool and crawl processes die with their parents
        wait_for(lambda: not tagged_pids(d.tag), 10, "the worker's processes to die")
        assert redis.run("HLEN", "unacked") == 1
        # a crawl killed inside its request keeps its host slot until the slot's lease runs out
        # (DOWNLOAD_TIMEOUT + 10 s, politeness.py), and one killed while fetching robots.txt
        # keeps its claim to fetch it (robots.py) as long; whether the kill lands before or
        # after either is a race, and this test is about the redelivery: free both
        for pattern in ("noticecrawler:host:*", "noticecrawler:robots:*"):
            for key in redis.run("KEYS", pattern) or []:
                redis.run("DEL", key)
        demo_server.set_stall("demo", 0)
        time.sleep(max(0.0, 11.5 - (time.monotonic() - sent)))
        second = d.worker("heir", concurrency=1)
        summary = task.get(timeout=30)  # the same task id, delivered again
        assert summary["finish_reason"] == "finished" and not summary["skipped"]
        assert f"Task dispatch.crawl_site[{task.id}] received" in second.log()
        stored = posts(db, "demo")
        assert len(stored) == 33 and all(p["n"] == 1 for p in stored)
        assert [r["finish_reason"] for r in runs(db, "demo")][-1] == "finished"
    finally:
        d.stop_all()
    assert tagged_pids(d.tag) == set()


def test_beat_crawls_repeatedly_and_drops_expired_entries(dispatch, db, redis) -> None:
    app = dispatch.app()
    # beat alone: crawls pile up in the queue while no worker runs
    beat = dispatch.beat()
    stale = wait_for(
        lambda: (ids := queued_task_ids(redis, "crawl_tasks")) and len(ids) >= 2 and ids,
        20,
        "beat to send two crawls of `tick`",
    )
    beat.terminate()
    beat.wait(10)
    stale = queued_task_ids(redis, "crawl_tasks")
    time.sleep(2.5)  # every queued entry is past its `expires` (the board's 2s interval)

    worker = dispatch.worker("crawler4")
    dispatch.beat("beat2")
    wait_for(lambda: len(runs(db, "tick")) >= 2, 20, "two beat-driven crawls of `tick`", 0.3)
    log = worker.log()
    for task_id in stale:
        assert app.AsyncResult(task_id).state == "REVOKED"
        assert f"crawl_site[{task_id}] succeeded" not in log
    finished = [r for r in runs(db, "tick") if r["finish_reason"]]
    assert finished and all(r["finish_reason"] == "finished" for r in finished)


def children_of(pid: int) -> set[int]:
    from tests.dispatch_helpers import children

    return children(pid)
