"""``noticecrawler runs BOARD``: the board's last crawl runs."""

from __future__ import annotations

import argparse
from typing import Any

from noticecrawler.clock import when
from noticecrawler.commands import command, refs
from noticecrawler.db import connect, queries
from noticecrawler.db.settings import database_url


def add_arguments(subparsers: Any) -> None:
    p = command(subparsers, "runs", run, "last crawl runs of a board")
    p.add_argument("board")
    p.add_argument("--limit", type=int, default=10)


def run(args: argparse.Namespace, settings: Any) -> int:
    zone = refs.board(settings, args.board).zone
    with connect(database_url(settings)) as conn:
        for r in queries.last_runs(conn, args.board, args.limit):
            print(
                f"{when(r['started_at'], zone, seconds=True)}  "
                f"{r['finish_reason'] or 'running':14} "
                f"pages={r['pages']} requests={r['requests']} 304={r['not_modified']} "
                f"items={r['items']} new={r['new']} deleted={r.get('deleted', 0)} "
                f"throttled={r.get('throttled', 0)} errors={r['errors']} "
                f"{r['error_detail'] or ''}"
            )
    return 0
