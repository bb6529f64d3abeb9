"""``noticecrawler down``: stop the embedded PostgreSQL and Redis."""

from __future__ import annotations

import argparse
from typing import Any

from noticecrawler.commands import command


def add_arguments(subparsers: Any) -> None:
    command(subparsers, "down", run, "stop the embedded servers")


def run(args: argparse.Namespace, settings: Any) -> int:
    from noticecrawler.db import embedded

    home = settings.get("NOTICECRAWLER_HOME")
    print("PostgreSQL stopped" if embedded.stop_postgres(home) else "no embedded PostgreSQL")
    print("Redis stopped" if embedded.stop_redis(home) else "no embedded Redis")
    return 0
