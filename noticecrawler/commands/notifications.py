"""``noticecrawler notifications POST``: a post's push outcome per device
(POST: a post id or ``board:post_id``)."""

from __future__ import annotations

import argparse
from datetime import datetime, tzinfo
from typing import Any

from noticecrawler.clock import when, zone_of
from noticecrawler.commands import command, refs


def add_arguments(subparsers: Any) -> None:
    p = command(subparsers, "notifications", run, "a post's push outcomes")
    p.add_argument("post", help="post id, or board:post_id")


def run(args: argparse.Namespace, settings: Any) -> int:
    from noticecrawler.notify import accounts, outboxstore, store

    with refs.conn(settings) as conn:
        post_id = refs.post(conn, args.post)
        post = store.load_post(conn, post_id)
        assert post is not None
        outbox = outboxstore.outbox_row(conn, post_id)
        zone = zone_of(settings, post["board"])
        print(f"post {post_id}  [{post['board']}] {post['title']}")
        if outbox is None:
            print("  not in the outbox: not announced (first crawl of its board, or edited)")
        else:
            print(
                f"  outbox: written {when(outbox['created_at'], zone, seconds=True)}, "
                f"taken {_at(outbox['taken_at'], zone)}, "
                f"planned {_at(outbox['planned_at'], zone)}, "
                f"re-sent by the sweep {outbox['attempts']}x"
            )
        counts = store.status_counts(conn, post_id)
        print("  " + (", ".join(f"{k}={v}" for k, v in sorted(counts.items())) or "no devices"))
        for n in accounts.post_outcomes(conn, post_id):
            detail = n["message_name"] or n["error"] or ""
            print(
                f"  device {n['device_id']:<6} {n['platform']:8} {n['status']:12} "
                f"tries={n['attempts']}  {detail}"
            )
    return 0


def _at(moment: datetime | None, zone: tzinfo) -> str:
    return "-" if moment is None else when(moment, zone, seconds=True)
