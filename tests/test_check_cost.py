"""The cheap path of an unchanged board (noticecrawler/revalidate.py) through a real worker:
no crawl process forked, the run recorded, a new post still found, robots.txt and the host
limits obeyed. Real Redis, PostgreSQL, Celery worker and HTTP servers on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from noticecrawler.demo.catalog import board_entry
from tests.dispatch_helpers import (
    Dispatch,
    children,
    make_dispatch,
    tagged_pids,
)

pytestmark = pytest.mark.slow

LIMITS = {"CRAWL_SOFT_TIME_LIMIT": 6, "CRAWL_TIME_LIMIT": 12, "HOST_DELAY": 0.05}


@pytest.fixture
def dispatch(tmp_path, redis, database_url, demo_server, proxy) -> Iterator[Dispatch]:
    d = make_dispatch(
        tmp_path,
        broker_url=redis.url,
        result_url=redis.url,
        database_url=database_url,
        demo_url=demo_server.url,
        boards={"plain": "10m"},
        overrides=LIMITS,
    )
    with (tmp_path / "catalog.toml").open("a", encoding="utf-8") as f:
        f.write(board_entry("counted", start_url=f"{proxy.url}/counted/list", interval="10m"))
    try:
        yield d
    finally:
        d.stop_all()
    assert tagged_pids(d.tag) == set(), "a process of the test outlived it"


def last_run(db: psycopg.Connection, board: str) -> dict:
    row = db.execute(
        "SELECT * FROM crawl_runs WHERE board = %s ORDER BY id DESC LIMIT 1", (board,)
    ).fetchone()
    assert row is not None
    return dict(row)


def test_unchanged_board_is_checked_in_the_pool_process(dispatch, db, demo_server, redis) -> None:
    worker = dispatch.worker("crawler1", "crawl_tasks", 1)
    app = dispatch.app()

    def crawl_site() -> dict:
        result: dict = app.send_task("dispatch.crawl_site", args=["plain"]).get(timeout=60)
        return result

    first = crawl_site()
    assert first["new"] == 33 and first["finish_reason"] == "finished", first
    assert "path" not in first  # the first crawl has no validators yet: a crawl process
    pool = children(worker.proc.pid)

    demo_server.clear_log()
    second = crawl_site()
    assert second["path"] == "not_modified", second
    assert second["pid"] in pool  # checked in the pool process: no crawl forked
    assert (second["requests"], second["not_modified"], second["new"]) == (1, 1, 0)
    run = last_run(db, "plain")
    assert run["finish_reason"] == "finished" and run["finished_at"] is not None
    assert (run["requests"], run["not_modified"], run["errors"]) == (1, 1, 0)
    [sent] = demo_server.list_requests("plain")
    assert sent["status"] == 304 and sent["if_none_match"]

    demo_server.add_post("plain", "새 공지: 장학금 신청 안내")
    third = crawl_site()
    assert "path" not in third and third["pid"] not in pool, third  # changed: a crawl
    assert third["new"] == 1 and third["finish_reason"] == "finished", third

    # quiet: one summary line per run, no Scrapy start-up lines or stats dump at INFO
    log = worker.log()
    assert "Dumping Scrapy stats" not in log and "Spider opened" not in log
    assert log.count("board `plain`: finished —") == 2
    assert log.count("board `plain`: not modified — checked without a crawl") == 1

    # the host's slots hold on the cheap path: with the host held (another process' delay or a
    # Retry-After) past the wait budget, nothing is sent and the run ends as host_busy
    demo_server.clear_log()
    now_ms = int(redis.run("TIME")[0]) * 1000
    redis.run("SET", "noticecrawler:host:127.0.0.1:next", now_ms + 60_000, "PX", 60_000)
    busy = crawl_site()
    assert busy["finish_reason"] == "host_busy" and busy["pid"] in pool, busy
    assert "stayed busy" in busy["error_detail"]
    assert last_run(db, "plain")["finish_reason"] == "host_busy"
    assert demo_server.list_requests("plain") == []
    redis.run("DEL", "noticecrawler:host:127.0.0.1:next")

    # robots.txt on the cheap path: a page robots.txt disallows is not fetched
    crawl_site()  # after host_busy: a crawl catches up; the next check is cheap again
    origin = demo_server.url
    redis.run("SET", f"noticecrawler:robots:{origin}", "User-agent: *\nDisallow: /plain/\n")
    demo_server.clear_log()
    barred = crawl_site()
    assert barred["finish_reason"] == "robots_disallowed", barred
    assert demo_server.list_requests("plain") == []


def test_board_without_validators_is_checked_by_its_rows(dispatch, db, demo_server, proxy) -> None:
    worker = dispatch.worker("crawler1", "crawl_tasks", 1)
    app = dispatch.app()

    def crawl_site() -> dict:
        result: dict = app.send_task("dispatch.crawl_site", args=["counted"]).get(timeout=60)
        return result

    first = crawl_site()
    assert first["new"] == 33 and first["finish_reason"] == "finished", first
    pool = children(worker.proc.pid)
    seen = len(proxy.lists)

    second = crawl_site()
    assert second["path"] == "rows_unchanged", second
    assert second["pid"] in pool  # no crawl process, no parse by a spider's crawl
    assert (second["requests"], second["not_modified"], second["new"]) == (1, 0, 0)
    assert len(proxy.lists) == seen + 1
    assert proxy.lists[-1] != proxy.lists[seen - 1]  # the counters and clock did change
    assert last_run(db, "counted")["finish_reason"] == "finished"

    demo_server.add_post("counted", "새 공지: 기숙사 입사 안내")
    third = crawl_site()
    assert "path" not in third and third["pid"] not in pool, third
    assert third["new"] == 1, third
    # the crawl stored the changed page: the next check compares with it, no crawl again
    fourth = crawl_site()
    assert fourth["path"] == "rows_unchanged" and fourth["new"] == 0, fourth
