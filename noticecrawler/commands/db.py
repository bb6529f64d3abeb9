"""``noticecrawler db upgrade|url|status``: the database schema and where the database is."""

from __future__ import annotations

import argparse
from typing import Any

import psycopg

from noticecrawler.commands import command
from noticecrawler.db import connect, migrate
from noticecrawler.db.settings import database_url, redact


def add_arguments(subparsers: Any) -> None:
    p = command(subparsers, "db", run, "database schema")
    p.add_argument("action", choices=["upgrade", "url", "status"])
    p.add_argument(
        "--show-password", action="store_true", help="db url: print the password unmasked"
    )


def upgrade(url: str) -> None:
    with connect(url) as conn:
        for version in migrate.upgrade(conn):
            print(f"applied {version}")


def run(args: argparse.Namespace, settings: Any) -> int:
    url = database_url(settings)
    if args.action == "upgrade":
        upgrade(url)
        print("database is up to date")
    elif args.action == "url":
        print(url if args.show_password else redact(url))
    elif args.action == "status":
        with connect(url) as conn:
            try:
                done = set(migrate.applied(conn))
            except psycopg.errors.UndefinedTable:  # an empty database: everything pending
                done = set()
        for version, _ in migrate.available():
            print(f"{'applied' if version in done else 'pending'}  {version}")
    return 0
