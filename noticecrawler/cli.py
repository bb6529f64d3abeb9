"""The ``noticecrawler`` command.

noticecrawler demo            the main job: demo board → crawl → new posts → add one → crawl
noticecrawler db upgrade      apply the SQL migrations (idempotent)
noticecrawler db url          print the database URL in use (starts the embedded one)
noticecrawler boards          list the catalog
noticecrawler runs BOARD      the board's last crawl runs
noticecrawler health          every enabled board: ok / failing / stale / never (exit 1 if bad)
noticecrawler posts BOARD     the board's stored posts
noticecrawler detect URL|FILE guess a board's engine, print a catalog row
noticecrawler serve-demo      run the demo board server in the foreground
noticecrawler up              embedded servers, demo board, a worker and beat (development)
noticecrawler down            stop the embedded PostgreSQL and Redis
noticecrawler users|devices|subscriptions|notifications|push-test   notification operations
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

from scrapy.utils.project import get_project_settings

from noticecrawler.db import connect, migrate, queries
from noticecrawler.db.settings import database_url

COMMANDS: dict[str, Callable[[argparse.Namespace, Any], int]] = {}
#: modules with ``add_arguments(subparsers)`` whose parsers set ``handler=run``
PLUGGED = (
    "noticecrawler.detect",
    "noticecrawler.health",
    "noticecrawler.up",
    "noticecrawler.notify.cli",
)


def command(name: str) -> Callable[[Callable[[argparse.Namespace, Any], int]], Any]:
    def register(fn: Callable[[argparse.Namespace, Any], int]) -> Any:
        COMMANDS[name] = fn
        return fn

    return register


def upgrade_db(settings: Any) -> str:
    url = database_url(settings)
    with connect(url) as conn:
        for version in migrate.upgrade(conn):
            print(f"applied {version}")
    return url


@command("db")
def cmd_db(args: argparse.Namespace, settings: Any) -> int:
    if args.action == "upgrade":
        upgrade_db(settings)
        print("database is up to date")
    elif args.action == "url":
        print(database_url(settings))
    elif args.action == "status":
        with connect(database_url(settings)) as conn:
            done = set(migrate.applied(conn))
        for version, _ in migrate.available():
            print(f"{'applied' if version in done else 'pending'}  {version}")
    return 0


@command("boards")
def cmd_boards(args: argparse.Namespace, settings: Any) -> int:
    from noticecrawler.catalog import catalog_from_settings

    for b in catalog_from_settings(settings):
        state = "enabled " if b.enabled else "disabled"
        print(f"{b.name:24} {state} every {b.interval:>5}s  {b.engine:10} {b.start_url}")
    return 0


@command("runs")
def cmd_runs(args: argparse.Namespace, settings: Any) -> int:
    with connect(database_url(settings)) as conn:
        for r in queries.last_runs(conn, args.board, args.limit):
            print(
                f"{r['started_at']:%Y-%m-%d %H:%M:%S}  {r['finish_reason'] or 'running':14} "
                f"pages={r['pages']} requests={r['requests']} 304={r['not_modified']} "
                f"items={r['items']} new={r['new']} deleted={r.get('deleted', 0)} "
                f"throttled={r.get('throttled', 0)} errors={r['errors']} "
                f"{r['error_detail'] or ''}"
            )
    return 0


@command("posts")
def cmd_posts(args: argparse.Namespace, settings: Any) -> int:
    with connect(database_url(settings)) as conn:
        for p in queries.board_posts(conn, args.board):
            print(format_post(p))
    return 0


def format_post(p: dict[str, Any], mark: str = "") -> str:
    when = p["published_at"].strftime("%Y-%m-%d %H:%M") if p.get("published_at") else "?"
    pin = "[pinned] " if p.get("pinned") else ""
    gone = f"[deleted {p['deleted_at']:%Y-%m-%d %H:%M}] " if p.get("deleted_at") else ""
    return f"{mark:5}{p['post_id']:>6}  {when}  {pin}{gone}{p['title']}"


@command("serve-demo")
def cmd_serve_demo(args: argparse.Namespace, settings: Any) -> int:
    from noticecrawler.demo.server import run_forever

    run_forever(args.host, args.port or settings.getint("DEMO_BOARD_PORT"))
    return 0


@command("down")
def cmd_down(args: argparse.Namespace, settings: Any) -> int:
    from noticecrawler.db import embedded

    home = settings.get("NOTICECRAWLER_HOME")
    print("PostgreSQL stopped" if embedded.stop_postgres(home) else "no embedded PostgreSQL")
    print("Redis stopped" if embedded.stop_redis(home) else "no embedded Redis")
    return 0


@command("demo")
def cmd_demo(args: argparse.Namespace, settings: Any) -> int:
    from noticecrawler.demojob import run_demo

    return run_demo(settings, keep=args.keep)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="noticecrawler",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "-s", "--set", action="append", default=[], metavar="NAME=VALUE", help="override a setting"
    )
    sub = p.add_subparsers(dest="command", required=True)
    db = sub.add_parser("db", help="database schema")
    db.add_argument("action", choices=["upgrade", "url", "status"])
    sub.add_parser("boards", help="list the catalog")
    runs = sub.add_parser("runs", help="last crawl runs of a board")
    runs.add_argument("board")
    runs.add_argument("--limit", type=int, default=10)
    posts = sub.add_parser("posts", help="stored posts of a board")
    posts.add_argument("board")
    demo = sub.add_parser("serve-demo", help="serve the demo boards")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=0)
    sub.add_parser("down", help="stop the embedded servers")
    job = sub.add_parser("demo", help="the main job on the demo board")
    job.add_argument("--keep", action="store_true", help="keep the demo board's stored posts")
    for module in PLUGGED:
        # each module adds its own subcommands and sets `handler` on them
        try:
            importlib.import_module(module).add_arguments(sub)
        except ModuleNotFoundError as e:
            if e.name != module:
                raise
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    settings = get_project_settings()
    for pair in args.set:
        name, _, value = pair.partition("=")
        settings.set(name, value, priority="cmdline")
    logging.basicConfig(
        level=settings.get("LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    handler = getattr(args, "handler", None) or COMMANDS[args.command]
    return int(handler(args, settings) or 0)


if __name__ == "__main__":
    sys.exit(main())
