"""``noticecrawler posts BOARD``: the board's stored posts, newest first."""

from __future__ import annotations

import argparse
from datetime import tzinfo
from typing import Any

from noticecrawler.clock import when
from noticecrawler.commands import command, refs
from noticecrawler.db import connect, queries
from noticecrawler.db.settings import database_url


def add_arguments(subparsers: Any) -> None:
    command(subparsers, "posts", run, "stored posts of a board").add_argument("board")


def run(args: argparse.Namespace, settings: Any) -> int:
    zone = refs.board(settings, args.board).zone
    with connect(database_url(settings)) as conn:
        for p in queries.board_posts(conn, args.board):
            print(format_post(p, zone))
    return 0


def format_post(p: dict[str, Any], zone: tzinfo, mark: str = "") -> str:
    pin = "[pinned] " if p.get("pinned") else ""
    gone = f"[deleted {when(p['deleted_at'], zone)}] " if p.get("deleted_at") else ""
    return (
        f"{mark:5}{p['post_id']:>6}  {when(p.get('published_at'), zone)}  {pin}{gone}{p['title']}"
    )
