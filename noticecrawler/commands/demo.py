"""``noticecrawler demo``: the main job, shown end to end on the demo board with nothing installed.

Starts the demo board server, crawls the `demo` board into PostgreSQL (the embedded one unless
DATABASE_URL is set) and prints the posts it found and which are new; then adds a post on the
board and crawls again, showing exactly that one as new, and the pushes it would send.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from noticecrawler.clock import when
from noticecrawler.commands import command
from noticecrawler.commands.db import upgrade
from noticecrawler.db import connect, queries
from noticecrawler.db.settings import database_url, redact
from noticecrawler.errors import ProjectError
from noticecrawler.settings import child_env

BOARD = "demo"
DEMO_USER = "demo-user"
DEMO_DEVICE = "console-demo-device"
DEMO_KEYWORD = "장학금"
ZONE = ZoneInfo("Asia/Seoul")  # the demo boards' timezone (noticecrawler/catalog.toml)
SHOWN = 12


def add_arguments(subparsers: Any) -> None:
    p = command(subparsers, "demo", run, "the main job on the demo board")
    p.add_argument("--keep", action="store_true", help="keep the demo board's stored posts")


def run(args: argparse.Namespace, settings: Any) -> int:
    return run_demo(settings, keep=args.keep)


def crawl(board: str, env: dict[str, str]) -> dict[str, Any]:
    """Run ``scrapy crawl <board>`` in its own process; its crawl_runs row."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "scrapy",
            "crawl",
            board,
            "-s",
            "LOG_LEVEL=WARNING",
            # the demo announces in this process instead of through a Celery broker
            "-s",
            "NOTICECRAWLER_NOTIFY_SENDER=",
        ],
        env=env,
        text=True,
        capture_output=True,
        check=False,
    )
    if proc.returncode:
        sys.stderr.write(proc.stderr)
        raise ProjectError(f"crawl of `{board}` failed (exit {proc.returncode})")
    with connect(env["DATABASE_URL"]) as conn:
        return queries.last_runs(conn, board, 1)[0]


def show(url: str, run: dict[str, Any]) -> list[dict[str, Any]]:
    with connect(url) as conn:
        posts = queries.board_posts(conn, BOARD)
    new = [p for p in posts if p["first_seen_at"] >= run["started_at"]]
    new_ids = {p["id"] for p in new}
    print(
        f"  {run['pages']} page(s), {run['requests']} request(s) "
        f"({run['not_modified']} answered 304), {len(posts)} posts stored, "
        f"{run['new']} new, finish: {run['finish_reason']}"
    )
    for p in posts[:SHOWN]:
        mark = "NEW" if p["id"] in new_ids else ""
        pin = "[pinned] " if p["pinned"] else ""
        print(f"  {mark:4}{p['post_id']:>5}  {when(p['published_at'], ZONE)}  {pin}{p['title']}")
    if len(posts) > SHOWN:
        print(f"  … and {len(posts) - SHOWN} older posts (noticecrawler posts {BOARD})")
    return new


def run_demo(settings: Any, keep: bool = False) -> int:
    from noticecrawler.demo.server import DemoServer
    from noticecrawler.demo.state import state_file

    url = database_url(settings)
    upgrade(url)
    seed_subscriber(url)
    home = Path(settings.get("NOTICECRAWLER_HOME"))
    if not keep:
        with connect(url, autocommit=True) as conn:
            queries.forget_board(conn, BOARD)
        shutil.rmtree(home / "httpcache" / BOARD, ignore_errors=True)
    logging.getLogger("noticecrawler.demo").setLevel(logging.WARNING)
    # post numbers keep growing across runs (state under NOTICECRAWLER_HOME): a post added
    # later, by this job or by hand, is never taken for an edit of an earlier one
    with DemoServer(state_file=state_file(home)) as server:
        env = child_env(DATABASE_URL=url, DEMO_BOARD_URL=server.url, NOTICECRAWLER_HOME=str(home))
        print(f"demo board: {server.url}/{BOARD}/list   database: {redact(url)}\n")
        print("1) first crawl of the board (stored silently: no alert flood for a new board)")
        show(url, crawl(BOARD, env))
        print("\n2) crawl again, nothing changed on the board")
        show(url, crawl(BOARD, env))
        post_id = server.add_post(BOARD, title="2026학년도 동계 계절학기 수강신청 및 장학금 안내")
        print(f"\n3) a post was added on the board (no {post_id}); crawl again")
        new = show(url, crawl(BOARD, env))
        print(f"\nnew posts in the last crawl: {[p['post_id'] for p in new]}")
    print("\n4) the pushes it would send (console backend: no FCM credentials configured)")
    announce(url)
    return 0


def seed_subscriber(url: str) -> None:
    """A demo user with a console device, subscribed to the keyword 장학금 (idempotent)."""
    from noticecrawler.notify import accounts

    with connect(url, autocommit=True) as conn:
        user = accounts.add_user(conn, DEMO_USER)
        accounts.add_device(conn, user, DEMO_DEVICE, "android")
        subscriptions = accounts.list_subscriptions(conn, user)
        if not any(s["keywords"] == [DEMO_KEYWORD] for s in subscriptions):
            accounts.add_subscription(conn, user, [DEMO_KEYWORD])


def announce(url: str) -> None:
    """Run the board's outbox through the notify service in this process."""
    from noticecrawler.notify import service, store
    from noticecrawler.notify.config import from_settings
    from noticecrawler.notify.console import ConsoleSender
    from noticecrawler.notify.matching import Matcher

    with connect(url, autocommit=True) as conn:
        matcher = Matcher(store.load_subscriptions(conn)[1])
        results = service.drain_outbox(conn, matcher, ConsoleSender(), from_settings(), BOARD)
    sent = sum(r["sent"] for r in results)
    print(f"  {sent} push(es) for {len(results)} announced post(s) (noticecrawler notifications)")
