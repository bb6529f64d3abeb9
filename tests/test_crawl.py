"""End to end: the demo board through real pipelines into a real PostgreSQL, each crawl in its
own process, as `scrapy crawl demo` runs it."""

from __future__ import annotations

import psycopg

from tests.conftest import run_crawl


def posts(db: psycopg.Connection, board: str) -> list[dict]:
    return db.execute(
        "SELECT post_id, title, pinned FROM posts WHERE board = %s ORDER BY id", (board,)
    ).fetchall()


def test_first_run_stores_then_304_then_exactly_the_new_post(crawl, db, demo_server) -> None:
    first = crawl("demo")
    assert first.returncode == 0, first.log
    stored = posts(db, "demo")
    # first crawl: at most NOTICECRAWLER_FIRST_CRAWL_MAX_PAGES (3) pages of 10 + 3 pinned rows
    assert len(stored) == 33
    assert sum(p["pinned"] for p in stored) == 3
    assert first.run["new"] == 33 and first.run["pages"] == 3
    assert first.run["finish_reason"] == "finished" and first.run["errors"] == 0

    demo_server.clear_log()
    second = crawl("demo")
    assert second.returncode == 0, second.log
    assert second.run["new"] == 0 and second.run["pages"] == 1
    assert second.run["not_modified"] == 1
    log = demo_server.list_requests("demo")
    assert [r["status"] for r in log] == [304]
    assert log[0]["if_none_match"]
    assert len(posts(db, "demo")) == 33

    new_id = demo_server.add_post("demo", title="2026학년도 동계 계절학기 수강신청 안내")
    demo_server.clear_log()
    third = crawl("demo")
    assert third.returncode == 0, third.log
    assert third.run["new"] == 1
    assert [r["path"] for r in demo_server.list_requests("demo")] == ["/demo/list"]
    new_rows = db.execute(
        "SELECT post_id, title FROM posts WHERE board = 'demo' AND first_seen_at > %s",
        (second.run["finished_at"],),
    ).fetchall()
    assert new_rows == [{"post_id": new_id, "title": "2026학년도 동계 계절학기 수강신청 안내"}]


def test_first_crawl_is_silent_later_posts_are_queued(crawl, db, demo_server) -> None:
    assert crawl("demo").returncode == 0
    assert db.execute("SELECT count(*) AS n FROM notify_outbox").fetchone()["n"] == 0
    new_id = demo_server.add_post("demo", title="새 공지")
    assert crawl("demo").returncode == 0
    queued = db.execute(
        "SELECT p.post_id FROM notify_outbox o JOIN posts p ON p.id = o.post_id"
    ).fetchall()
    assert queued == [{"post_id": new_id}]


def test_changed_layout_is_an_error_for_that_board(crawl, db, demo_server) -> None:
    demo_server.set_layout_broken("demo")
    result = crawl("demo")
    run = result.run
    assert run["finish_reason"] == "empty_list"
    assert run["errors"] >= 1
    assert "board `demo`" in run["error_detail"]
    assert "table.board-list tbody tr" in run["error_detail"]
    assert "/demo/list" in run["error_detail"]
    errors = [line for line in result.log.splitlines() if " ERROR: " in line]
    assert len(errors) == 1 and "matched 0 rows" in errors[0]  # logged once
    assert posts(db, "demo") == []


def test_euckr_board_titles_come_out_right(crawl, db) -> None:
    assert crawl("demo_euckr").returncode == 0
    titles = [p["title"] for p in posts(db, "demo_euckr")]
    assert "[동아리] 똠방각하 연극동아리 신입회원 모집 (뷁·햏 환영)" in titles


def test_timeout_is_retried_then_recorded_as_error(crawl, db, demo_server) -> None:
    demo_server.set_stall("demo", 30)
    result = crawl("demo", "DOWNLOAD_TIMEOUT=1", "RETRY_TIMES=1")
    run = result.run
    assert run["errors"] >= 1
    assert "failed" in run["error_detail"]
    assert "'retry/count': 1" in result.log  # Scrapy's retry middleware tried once more
    assert "'retry/max_reached': 1" in result.log
    assert run["finish_reason"] == "timeout"
    assert posts(db, "demo") == []


def test_unreachable_database_fails_the_crawl_at_start_with_a_clear_message(crawl_env) -> None:
    from tests.conftest import run_crawl_process

    env = {**crawl_env, "DATABASE_URL": "postgresql://nc:secret@127.0.0.1:9/nowhere"}
    proc = run_crawl_process("demo", env)
    assert proc.returncode != 0
    assert "cannot reach PostgreSQL at postgresql://nc:***@127.0.0.1:9/nowhere" in proc.stderr
    assert "secret" not in proc.stderr


def test_a_page_larger_than_concurrent_items_is_stored_in_chunks(crawl, db) -> None:
    # 13 rows per page with room for 4 items in flight: batches of 2, none may deadlock
    result = crawl("demo", "CONCURRENT_ITEMS=4")
    assert result.returncode == 0, result.log
    assert result.run["new"] == 33 and result.run["finish_reason"] == "finished"
    assert len(posts(db, "demo")) == 33


def test_a_store_that_fails_ends_the_crawl_loudly_and_loses_nothing(crawl, crawl_env, db) -> None:
    # a role that may record crawl runs but not write posts: the page's INSERT really fails
    db.execute("CREATE ROLE nc_limited LOGIN")
    db.execute("GRANT SELECT ON ALL TABLES IN SCHEMA public TO nc_limited")
    db.execute("GRANT INSERT, UPDATE ON crawl_runs TO nc_limited")
    db.execute("GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO nc_limited")
    limited = crawl_env["DATABASE_URL"].replace("postgres:@", "nc_limited:@", 1)
    assert limited != crawl_env["DATABASE_URL"]

    failed = run_crawl("demo", {**crawl_env, "DATABASE_URL": limited})
    assert failed.run["finish_reason"] == "store_failed"
    assert failed.run["errors"] >= 1
    assert "permission denied" in failed.run["error_detail"]
    assert "the next crawl stores them" in failed.run["error_detail"]
    errors = [line for line in failed.log.splitlines() if " ERROR: " in line]
    assert len(errors) == 1, errors  # one line, not a traceback per post
    assert posts(db, "demo") == []

    # page 1 is now in the HTTP cache: the next crawl gets a 304 for it and still stores its
    # posts (it is the board's first stored crawl, so it reads its 3 pages)
    again = crawl("demo")
    assert again.run["finish_reason"] == "finished"
    assert again.run["not_modified"] == 1 and again.run["new"] == 33
    assert len(posts(db, "demo")) == 33
