"""`noticecrawler health` reads the crawl-runs record: a changed layout is a loud failure."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT


def health(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "noticecrawler.cli", "health"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def lines(out: str) -> dict[str, str]:
    return {line.split()[1]: line for line in out.splitlines() if line.strip()}


def test_health_reports_ok_failing_stale_and_never(crawl, crawl_env, db, demo_server) -> None:
    assert crawl("demo").returncode == 0
    first = health(crawl_env)
    assert first.returncode == 0, first.stdout + first.stderr
    report = lines(first.stdout)
    assert report["demo"].startswith("ok")
    assert report["demo_euckr"].startswith("never")

    demo_server.set_layout_broken("demo")
    crawl("demo")
    # a board whose clean run is long past its interval: workers or beat are down
    db.execute(
        "INSERT INTO crawl_runs (board, started_at, finished_at, finish_reason, errors)"
        " VALUES ('demo_rss', now() - interval '2 days', now() - interval '2 days',"
        " 'finished', 0)"
    )
    second = health(crawl_env)
    assert second.returncode == 1
    report = lines(second.stdout)
    assert report["demo"].startswith("failing")
    assert "matched 0 rows" in report["demo"]
    assert report["demo_rss"].startswith("stale")
