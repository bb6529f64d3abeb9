"""Faults on the crawl side, with real processes on 127.0.0.1: a board that refuses
connections, stalls or answers 5xx, a database or lock store that is not there, crawl
processes and workers that are killed. Every test here failed before issue 9 was fixed."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.conftest import ROOT, run_crawl
from tests.faults.crawl_support import FaultBoard

pytestmark = pytest.mark.slow


@pytest.fixture
def boards() -> Iterator[FaultBoard]:
    with FaultBoard() as server:
        yield server


@pytest.fixture
def fault_env(crawl_env: dict[str, str], boards: FaultBoard, tmp_path: Path) -> dict[str, str]:
    """A crawl environment whose catalog holds the boards `alpha` and `beta` of ``boards``."""
    catalog = boards.write_catalog(tmp_path / "catalog.toml", "alpha", "beta")
    return {**crawl_env, "NOTICECRAWLER_CATALOG": str(catalog)}


def health(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "noticecrawler.cli", "health"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def runs(db: psycopg.Connection, board: str) -> list[dict]:
    return db.execute("SELECT * FROM crawl_runs WHERE board = %s ORDER BY id", (board,)).fetchall()


# --- 1: a board that is down is an error of the run, never a cached copy ----------------------

FAST = ("DOWNLOAD_TIMEOUT=1", "RETRY_TIMES=1")


def test_a_board_down_or_stalled_or_5xx_is_an_error_even_with_a_cached_page(
    boards, fault_env, db
) -> None:
    first = run_crawl("alpha", fault_env, *FAST)
    assert first.run["finish_reason"] == "finished" and first.run["new"] == 5, first.log
    assert run_crawl("beta", fault_env, *FAST).run["finish_reason"] == "finished"
    assert health(fault_env).returncode == 0
    # the list page is in the HTTP cache now: none of these may be answered from it

    with boards.refusing():
        refused = run_crawl("alpha", fault_env, *FAST)
    assert refused.run["finish_reason"] == "unreachable", refused.log
    assert refused.run["errors"] >= 1 and refused.run["items"] == 0
    assert "board `alpha`: list page" in refused.run["error_detail"]
    assert "httpcache/errorrecovery" not in refused.log
    report = health(fault_env)
    assert report.returncode == 1
    assert [line.split()[0] for line in report.stdout.splitlines()] == ["failing", "ok"]

    boards.fail("alpha", 503)
    down = run_crawl("alpha", fault_env, *FAST)
    assert down.run["finish_reason"] == "http_5xx" and down.run["items"] == 0, down.log
    assert "HTTP 503" in down.run["error_detail"]
    boards.heal("alpha")

    boards.stall("alpha", 30)
    stalled = run_crawl("alpha", fault_env, *FAST)
    boards.heal("alpha")
    assert stalled.run["finish_reason"] == "timeout" and stalled.run["items"] == 0, stalled.log
    ours = [line for line in stalled.log.splitlines() if "ERROR: board `alpha`" in line]
    assert len(ours) == 1 and "Traceback" not in stalled.log, stalled.log  # one line

    # the board is back: a 304, a clean run, health ok again
    back = run_crawl("alpha", fault_env, *FAST)
    assert back.run["finish_reason"] == "finished" and back.run["not_modified"] == 1, back.log
    assert health(fault_env).returncode == 0
    assert [r["finish_reason"] for r in runs(db, "alpha")] == [
        "finished", "unreachable", "http_5xx", "timeout", "finished",
    ]  # fmt: skip
