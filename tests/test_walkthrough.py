"""The README's walkthrough, command by command, after `make demo` (`noticecrawler demo`): the
demo board served again from scratch, two crawls (the second answered 304, nothing new), a post
added by hand, and a third crawl that stores exactly that post as NEW and queues its pushes —
not as an edit of the demo's own post of the same number."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from noticecrawler.db import connect
from tests.conftest import ROOT
from tests.dispatch_helpers import free_port, wait_for

pytestmark = pytest.mark.slow


def run(env: dict[str, str], *cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *cmd], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=180,
    )  # fmt: skip


def test_readme_walkthrough_after_make_demo(database_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "NOTICECRAWLER_HOME": str(tmp_path / "home"),
        "DEMO_BOARD_PORT": str(port),
        "DEMO_BOARD_URL": f"http://127.0.0.1:{port}",
        "CELERY_BROKER_URL": "memory://",
        "PYTHONWARNINGS": "ignore",
    }
    demo = run(env, "noticecrawler.cli", "demo")  # make demo
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "new posts in the last crawl: ['36']" in demo.stdout

    server = subprocess.Popen(
        [sys.executable, "-m", "noticecrawler.cli", "serve-demo"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for(lambda: _answers(f"http://127.0.0.1:{port}/demo/list"), 30, "serve-demo")
        first = run(env, "scrapy", "crawl", "demo")
        assert first.returncode == 0, first.stderr
        second = run(env, "scrapy", "crawl", "demo")
        assert second.returncode == 0 and "'noticecrawler/http/304': 1" in second.stderr
        added = urllib.request.Request(
            f"http://127.0.0.1:{port}/demo/admin/add",
            data=json.dumps({"title": "새 공지"}).encode(),
            method="POST",
        )
        with urllib.request.urlopen(added, timeout=10) as answer:
            post_id = json.loads(answer.read())["post_id"]
        assert int(post_id) > 36  # numbers keep growing across demo server restarts
        third = run(env, "scrapy", "crawl", "demo")
        assert third.returncode == 0, third.stderr
    finally:
        server.terminate()
        server.wait(10)
    with connect(database_url) as conn:
        runs = conn.execute(
            "SELECT new, not_modified FROM crawl_runs WHERE board = 'demo' ORDER BY id"
        ).fetchall()
        post = conn.execute(
            "SELECT p.title, p.state, o.post_id IS NOT NULL AS queued FROM posts p"
            " LEFT JOIN notify_outbox o ON o.post_id = p.id"
            " WHERE p.board = 'demo' AND p.post_id = %s",
            (post_id,),
        ).fetchone()
    assert [r["new"] for r in runs[-3:]] == [0, 0, 1]
    assert runs[-2]["not_modified"] == 1
    assert post == {"title": "새 공지", "state": "new", "queued": True}


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except OSError:
        return False
