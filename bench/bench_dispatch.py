"""Cost of one crawl of a 1-page local board: `crawl_site` (a fresh process forked from a
pre-imported Celery worker) vs `scrapy crawl` run as a subprocess (what most Celery + Scrapy
setups do).

One run, side by side, same machine, same board, same PostgreSQL (embedded) and Redis
(embedded): after one warm-up crawl each, ``--runs`` crawls of each kind, alternating. Reported
per crawl (median): wall time and the crawl process's peak RSS. For `crawl_site` the wall time
is the task's, from sending it to reading its result through Redis; the crawl process's own time
is shown too. Peak RSS of a forked process counts the pages it shares with the worker; the
memory it does not share (private) is shown beside it.

    python bench/bench_dispatch.py [--runs 10]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from noticecrawler.db import connect, embedded, migrate  # noqa: E402
from noticecrawler.demo.catalog import board_entry  # noqa: E402
from noticecrawler.demo.server import DemoServer  # noqa: E402

GOAL_RATIO = 0.25
GOAL_RSS_MB = 150.0

CATALOG = board_entry("bench_one", "bench-one", first_crawl_max_pages=1, max_pages=1)


def scrapy_subprocess(env: dict[str, str]) -> dict[str, float]:
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "scrapy", "crawl", "bench_one", "-s", "LOG_LEVEL=WARNING"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - started
    if proc.returncode:
        raise SystemExit(
            f"scrapy crawl failed:\n{proc.stderr.read().decode() if proc.stderr else ''}"
        )
    return {"wall": wall, "rss_mb": usage.ru_maxrss / 1024}


def crawl_site_task(app: Any) -> dict[str, float]:
    started = time.monotonic()
    summary = app.send_task("dispatch.crawl_site", args=["bench_one"]).get(timeout=120)
    wall = time.monotonic() - started
    if summary.get("finish_reason") != "finished":
        raise SystemExit(f"crawl_site failed: {summary}")
    return {
        "wall": wall,
        "crawl": summary["seconds"],
        "rss_mb": summary["max_rss_mb"],
        "private_mb": summary["private_mb"] or 0.0,
    }


def median(rows: list[dict[str, float]], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-dispatch-"))
    home = tmp / "home"
    demo = DemoServer().start()
    worker: subprocess.Popen[bytes] | None = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            database = embedded.postgres_url(home)
        broker = embedded.redis_url(home)
        with connect(database) as conn:
            migrate.upgrade(conn)
        (tmp / "catalog.toml").write_text(CATALOG)
        env = {
            **os.environ,
            "DATABASE_URL": database,
            "CELERY_BROKER_URL": broker,
            "NOTICECRAWLER_HOME": str(home),
            "NOTICECRAWLER_CATALOG": str(tmp / "catalog.toml"),
            "DEMO_BOARD_URL": demo.url,
            "NOTICECRAWLER_LOG_LEVEL": "WARNING",
            "PYTHONWARNINGS": "ignore",
        }
        worker = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "dispatch.celery_app", "worker",
                "-Q", "crawl_tasks", "-c", "1", "-l", "WARNING", "-n", "bench@127.0.0.1",
                "--without-mingle", "--without-gossip", f"--logfile={tmp / 'worker.log'}",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        from celery import Celery

        app = Celery("bench", broker=broker, backend=broker, set_as_current=False)
        app.conf.update(task_serializer="json", accept_content=["json"])
        app.conf.task_routes = {"dispatch.crawl_site": {"queue": "crawl_tasks"}}

        crawl_site_task(app)  # warm-up: first crawl of the board, worker started
        scrapy_subprocess(env)
        forked: list[dict[str, float]] = []
        spawned: list[dict[str, float]] = []
        for _ in range(args.runs):
            forked.append(crawl_site_task(app))
            spawned.append(scrapy_subprocess(env))
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(30)
        demo.stop()
        embedded.stop_redis(home)
        embedded.stop_postgres(home)
        shutil.rmtree(tmp, ignore_errors=True)

    fork_wall, sub_wall = median(forked, "wall"), median(spawned, "wall")
    fork_rss, sub_rss = median(forked, "rss_mb"), median(spawned, "rss_mb")
    ratio = fork_wall / sub_wall
    print(f"1-page board, {args.runs} crawls each (median), {os.cpu_count()} CPUs")
    print(f"{'':38}{'crawl_site':>14}{'scrapy crawl':>16}")
    print(f"{'wall time per crawl (s)':38}{fork_wall:>14.3f}{sub_wall:>16.3f}")
    print(
        f"{'  of which the crawl process (s)':38}{median(forked, 'crawl'):>14.3f}{sub_wall:>16.3f}"
    )
    print(f"{'peak RSS of the crawl process (MB)':38}{fork_rss:>14.1f}{sub_rss:>16.1f}")
    print(f"{'  not shared with the worker (MB)':38}{median(forked, 'private_mb'):>14.1f}{'-':>16}")
    print(f"ratio (crawl_site / scrapy crawl wall time): {ratio:.3f}  (goal <= {GOAL_RATIO})")
    ok = ratio <= GOAL_RATIO and fork_rss <= GOAL_RSS_MB
    verdict = "met" if ok else "NOT met"
    print(f"goals (ratio <= {GOAL_RATIO}, peak RSS <= {GOAL_RSS_MB:.0f} MB): {verdict}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
