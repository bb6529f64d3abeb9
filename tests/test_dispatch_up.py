"""`noticecrawler up` on a machine with nothing running: embedded PostgreSQL and Redis, the demo
board, a worker and beat; it shows crawls, then stops everything it started itself."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest

from noticecrawler.db import embedded
from tests.dispatch_helpers import ROOT, TAG, free_port, kill_tagged, tagged_pids, wait_for

pytestmark = pytest.mark.slow


def test_up_starts_everything_and_shows_crawls(tmp_path) -> None:
    home = tmp_path / "home"
    tag = uuid.uuid4().hex
    env = {
        **os.environ,
        TAG: tag,
        "NOTICECRAWLER_HOME": str(home),
        "DATABASE_URL": "",
        "CELERY_BROKER_URL": "",
        "DEMO_BOARD_PORT": str(free_port()),
        "DEMO_BOARD_URL": "",
        "NOTICECRAWLER_EXPORTER_PORT": str(free_port()),
        "PYTHONWARNINGS": "ignore",
    }
    try:
        done = subprocess.run(
            [sys.executable, "-m", "noticecrawler.cli", "up", "--crawls", "2", "--add-every", "0"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        lines = done.stdout.splitlines()
        assert any("demo/list" in line for line in lines)
        crawled = [line for line in lines if " finished " in line]
        assert len(crawled) >= 2, done.stdout
        assert any(" demo " in line and "new=33" in line for line in crawled), done.stdout
        # times carry the board's offset; the demo board's access log stays in its own file
        assert all(" +09:00  " in line for line in crawled), done.stdout
        assert "GET /demo/list" not in done.stdout + done.stderr
        assert "GET /demo/list" in (home / "demo-board.log").read_text()
        metrics = next(line for line in lines if line.startswith("metrics"))
        assert metrics.endswith(f":{env['NOTICECRAWLER_EXPORTER_PORT']}/metrics")
        # the worker, beat and crawl processes are gone; only the embedded servers stay up
        assert (home / "pgdata" / "postmaster.pid").exists()
    finally:
        embedded.stop_redis(home)
        embedded.stop_postgres(home)
        wait_for(lambda: not tagged_pids(tag), 20, "every process `up` started to exit")
        kill_tagged(tag)
