"""``noticecrawler health``: is every enabled board being crawled cleanly?

A board is
    ok        its last run finished without error, and a clean run is recent
    failing   its last run ended with an error (layout changed, HTTP errors, time limit …)
    stale     no clean run within a few crawl intervals (workers or beat down)
    never     no run recorded yet
Exit status 1 when any board is failing or stale, so cron or a monitor can alert on it.
"""

from __future__ import annotations

import argparse
from typing import Any

from noticecrawler.commands import command


def add_arguments(subparsers: Any) -> None:
    command(
        subparsers, "health", run, "is every enabled board crawled cleanly?",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip


def run(args: argparse.Namespace, settings: Any) -> int:
    from noticecrawler.health import board_health

    report = board_health(settings)
    for h in report:
        print(f"{h.status:8} {h.board:24} {h.detail}")
    return 1 if any(h.status in ("failing", "stale") for h in report) else 0
