"""The batched check (dispatch.check_due) through a real worker and beat: every board whose slot
passed is checked in the pool process, its run recorded, and a crawl forked only for a board
that changed; robots.txt and the per-host limits hold. Real Redis, PostgreSQL, Celery worker,
beat and HTTP servers on 127.0.0.1."""

from __future__ import annotations

import psycopg
import pytest

from dispatch.due import CLAIMED
from noticecrawler.demo.catalog import board_entry
from tests.dispatch_helpers import (
    Dispatch,
    RedisServer,
    make_dispatch,
    tagged_pids,
    wait_for,
)

pytestmark = pytest.mark.slow

LIMITS = {
    "CRAWL_SOFT_TIME_LIMIT": 6,
    "CRAWL_TIME_LIMIT": 12,
    "HOST_DELAY": 0.05,
    "CRAWL_CHECK_TICK": 1,
}


def dispatch_for(tmp_path, redis, database_url, demo_server, boards, extra="", **overrides):
    d = make_dispatch(
        tmp_path,
        broker_url=redis.url,
        result_url=redis.url,
        database_url=database_url,
        demo_url=demo_server.url,
        boards=boards,
        overrides={**LIMITS, **overrides},
    )
    with (tmp_path / "catalog.toml").open("a", encoding="utf-8") as f:
        f.write(extra)
    return d


def runs(db: psycopg.Connection, board: str) -> list[dict]:
    rows = db.execute(
        "SELECT * FROM crawl_runs WHERE board = %s AND finished_at IS NOT NULL ORDER BY id",
        (board,),
    ).fetchall()
    return [dict(r) for r in rows]


def check_due(d: Dispatch, redis: RedisServer, db, *boards: str) -> list[dict]:
    """Make ``boards`` due (their claims older than any slot), send one check_due and wait until
    each has one more finished run (checked here or crawled by the crawl_site it sent)."""
    before = {b: len(runs(db, b)) for b in boards}
    for board in boards:
        redis.run("HSET", CLAIMED, board, 0)
    d.app().send_task("dispatch.check_due")
    wait_for(
        lambda: all(len(runs(db, b)) > before[b] for b in boards), 40, f"runs of {boards}", 0.2
    )
    return [runs(db, b)[-1] for b in boards]


def crawls_received(log: str) -> int:
    return sum(
        1 for line in log.splitlines() if "Task dispatch.crawl_site[" in line and "received" in line
    )


def test_unchanged_board_is_checked_in_the_batch_without_a_crawl(
    tmp_path, redis, database_url, demo_server, db
) -> None:
    d = dispatch_for(tmp_path, redis, database_url, demo_server, {"plain": "10m"})
    try:
        worker = d.worker("crawler1", "crawl_tasks", 1)

        # nothing cached yet: the batch hands the board to crawl_site, which forks the crawl
        [first] = check_due(d, redis, db, "plain")
        assert first["finish_reason"] == "finished" and first["new"] == 33, first
        assert crawls_received(worker.log()) == 1

        # unchanged: one conditional GET answered 304 in the batch, the run recorded, no crawl
        demo_server.clear_log()
        [second] = check_due(d, redis, db, "plain")
        assert second["finish_reason"] == "finished" and second["errors"] == 0, second
        assert (second["pages"], second["requests"], second["not_modified"]) == (1, 1, 1)
        assert second["new"] == 0
        [sent] = demo_server.list_requests("plain")
        assert sent["status"] == 304 and sent["if_none_match"]
        wait_for(lambda: "1 checked without a crawl" in worker.log(), 10, "the batch line")
        assert crawls_received(worker.log()) == 1
        # quiet: one summary line per batch, no per-board line at INFO
        assert "board `plain`: not modified" not in worker.log()

        # a new post: the batch sees a 200 and sends crawl_site, which finds the post
        demo_server.add_post("plain", "새 공지: 장학금 신청 안내")
        [third] = check_due(d, redis, db, "plain")
        assert third["finish_reason"] == "finished" and third["new"] == 1, third
        assert crawls_received(worker.log()) == 2

        # robots.txt on the batch path: a disallowed page is not fetched; the crawl records it
        origin = demo_server.url
        redis.run("SET", f"noticecrawler:robots:{origin}", "User-agent: *\nDisallow: /plain/\n")
        demo_server.clear_log()
        [barred] = check_due(d, redis, db, "plain")
        assert barred["finish_reason"] == "robots_disallowed", barred
        assert demo_server.list_requests("plain") == []
        redis.run("DEL", f"noticecrawler:robots:{origin}")
        check_due(d, redis, db, "plain")  # a crawl catches up after the failed run

        # a host held (Retry-After, another crawl's delay) past the batch's wait: nothing sent;
        # crawl_site's own check waits the crawl's budget and records host_busy
        now_ms = int(redis.run("TIME")[0]) * 1000
        redis.run("SET", "noticecrawler:host:127.0.0.1:next", now_ms + 60_000, "PX", 60_000)
        demo_server.clear_log()
        [busy] = check_due(d, redis, db, "plain")
        assert busy["finish_reason"] == "host_busy", busy
        assert demo_server.list_requests("plain") == []
        assert "1 host busy" in worker.log()
    finally:
        d.stop_all()
    assert tagged_pids(d.tag) == set(), "a process of the test outlived it"


def test_batch_spaces_one_hosts_boards_and_reads_rows_without_validators(
    tmp_path, redis, database_url, demo_server, proxy, db
) -> None:
    extra = "".join(
        board_entry(name, start_url=f"{proxy.url}/{name}/list", interval="10m")
        for name in ("c1", "c2")
    )
    d = dispatch_for(tmp_path, redis, database_url, demo_server, {}, extra, HOST_DELAY=0.3)
    try:
        worker = d.worker("crawler1", "crawl_tasks", 1)
        check_due(d, redis, db, "c1", "c2")  # first crawls (forked)
        assert crawls_received(worker.log()) == 2

        seen = len(proxy.times)
        one, two = check_due(d, redis, db, "c1", "c2")
        for run in (one, two):
            assert run["finish_reason"] == "finished" and run["new"] == 0, run
            assert (run["requests"], run["not_modified"]) == (1, 0)  # read by its rows
        assert crawls_received(worker.log()) == 2  # counters and clock changed; no crawl
        # both boards in one batch, one host: the second GET waited the host's delay
        (_, a), (_, b) = proxy.times[seen:]
        assert b - a >= 0.28, proxy.times[seen:]

        demo_server.add_post("c2", "새 공지: 기숙사 입사 안내")
        one, two = check_due(d, redis, db, "c1", "c2")
        assert one["new"] == 0 and two["new"] == 1, (one, two)
        assert crawls_received(worker.log()) == 3  # only the changed board was crawled
    finally:
        d.stop_all()
    assert tagged_pids(d.tag) == set(), "a process of the test outlived it"


def test_beat_sends_batched_checks(tmp_path, redis, database_url, demo_server, db) -> None:
    d = dispatch_for(tmp_path, redis, database_url, demo_server, {"tick": "2s"})
    try:
        worker = d.worker("crawler1", "crawl_tasks", 2)
        beat = d.beat()
        wait_for(lambda: len(runs(db, "tick")) >= 3, 40, "3 runs of `tick`", 0.3)
        log = worker.log()
        assert "Task dispatch.check_due[" in log
        # the first crawl (one more when a check came while it was still queued); every other
        # run was a check in the batch, answered 304
        done = runs(db, "tick")
        assert 1 <= crawls_received(log) <= 2 < len(done), (crawls_received(log), len(done))
        assert sum(r["not_modified"] for r in done) >= 1
        beat_log = (tmp_path / "beat.log").read_text()
        assert "Sending due task check-due (dispatch.check_due)" in beat_log
        assert "dispatch.crawl_site" not in beat_log
        beat.terminate()
        beat.wait(10)
    finally:
        d.stop_all()
    assert tagged_pids(d.tag) == set(), "a process of the test outlived it"
