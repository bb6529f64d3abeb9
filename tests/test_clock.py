"""One clock: every command prints a board's times in the board's timezone with the offset,
so post 901 reads `2026-11-19 00:00 +09:00` everywhere (not 15:00 unlabelled in one place)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from noticecrawler.cli import main
from noticecrawler.clock import when

MIDNIGHT_KST_IN_UTC = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)


def test_when_prints_local_time_with_offset() -> None:
    seoul = ZoneInfo("Asia/Seoul")
    assert when(MIDNIGHT_KST_IN_UTC, seoul) == "2026-11-19 00:00 +09:00"
    assert when(MIDNIGHT_KST_IN_UTC, seoul, seconds=True) == "2026-11-19 00:00:00 +09:00"
    assert when(MIDNIGHT_KST_IN_UTC, ZoneInfo("America/New_York")) == "2026-11-18 10:00 -05:00"
    assert when(None, seoul) == "?"


def test_posts_runs_and_health_agree(db, database_url: str, capsys) -> None:
    db.execute(
        "INSERT INTO posts (board, post_id, title, url, published_at) VALUES"
        " ('demo', '901', '동계 계절학기 안내', 'u', %s)",
        (MIDNIGHT_KST_IN_UTC,),
    )
    db.execute(
        "INSERT INTO crawl_runs (board, started_at, finished_at, finish_reason)"
        " VALUES ('demo', %s, %s, 'finished')",
        (MIDNIGHT_KST_IN_UTC, MIDNIGHT_KST_IN_UTC),
    )
    base = ["-s", f"DATABASE_URL={database_url}"]
    assert main([*base, "posts", "demo"]) == 0
    assert "901  2026-11-19 00:00 +09:00  동계 계절학기 안내" in capsys.readouterr().out
    assert main([*base, "runs", "demo"]) == 0
    assert capsys.readouterr().out.startswith("2026-11-19 00:00:00 +09:00  finished")
    main([*base, "health"])
    demo = next(line for line in capsys.readouterr().out.splitlines() if " demo " in line)
    assert "last clean run: 2026-11-19 00:00:00 +09:00" in demo
