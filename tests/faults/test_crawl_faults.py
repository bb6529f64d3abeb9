"""Faults on the crawl side, with real processes on 127.0.0.1: a board that refuses
connections, stalls or answers 5xx, a database or lock store that is not there, crawl
processes and workers that are killed. Every test here failed before issue 9 was fixed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from noticecrawler.health import board_health
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
