"""What a forked crawl costs PostgreSQL: the crawl process opens one session (its store), and
the process that forked it opens and finishes the run row on its kept connection."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import psycopg

from dispatch.crawl import crawl_settings, run_crawl
from noticecrawler.db import kept_connection
from tests.dispatch_helpers import wait_for


def sessions(url: str) -> int:
    """Sessions PostgreSQL has seen to the database (read on the kept connection: no new one)."""
    conn = kept_connection(url)
    conn.execute("SELECT pg_stat_clear_snapshot()")
    row = conn.execute(
        "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
    ).fetchone()
    assert row is not None
    return int(row["sessions"])


def runs(url: str) -> list[dict[str, Any]]:
    with psycopg.connect(url, row_factory=psycopg.rows.dict_row) as conn:
        return conn.execute("SELECT * FROM crawl_runs ORDER BY id").fetchall()


def settings_for(database_url: str, demo_url: str, tmp_path: Path, **more: Any) -> Any:
    return crawl_settings(
        {
            "DATABASE_URL": database_url,
            "DEMO_BOARD_URL": demo_url,
            "HTTPCACHE_DIR": str(tmp_path / "httpcache"),
            "NOTICECRAWLER_NOTIFY_SENDER": "",
            **more,
        }
    )


def test_a_forked_crawl_opens_one_database_session(database_url, demo_server, tmp_path) -> None:
    settings = settings_for(database_url, demo_server.url, tmp_path)
    first = run_crawl("demo", timeout=60, settings=settings)  # opens the kept connection
    assert first["finish_reason"] == "finished" and first["new"] == 33
    before = sessions(database_url)

    again = run_crawl("demo", timeout=60, settings=settings)
    assert again["finish_reason"] == "finished" and again["not_modified"] == 1
    wait_for(lambda: sessions(database_url) > before, 10, "the crawl's session counted")
    time.sleep(0.5)  # a second session would be counted by now too
    assert sessions(database_url) == before + 1  # the store's; none for the run row

    rows = runs(database_url)
    assert [r["finish_reason"] for r in rows] == ["finished", "finished"]
    assert rows[1]["finished_at"] is not None and rows[1]["not_modified"] == 1
    assert (rows[0]["new"], rows[1]["new"]) == (33, 0)


def test_a_crawl_process_that_fails_before_its_spider_opens_leaves_a_crashed_run(
    database_url, demo_server, tmp_path
) -> None:
    settings = settings_for(database_url, demo_server.url, tmp_path)
    summary = run_crawl("not_in_the_catalog", timeout=60, settings=settings)
    assert summary["finish_reason"] == "crashed" and summary["errors"] == 1
    (row,) = runs(database_url)
    assert row["board"] == "not_in_the_catalog" and row["finish_reason"] == "crashed"
    assert row["finished_at"] is not None and "Spider not found" in row["error_detail"]
