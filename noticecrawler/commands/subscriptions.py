"""``noticecrawler subscriptions add USER [-k KEYWORD]… [-n NEGATIVE]… [-b BOARD]…
| list [--user U] | remove ID``: keyword subscriptions."""

from __future__ import annotations

import argparse
from typing import Any

from noticecrawler.catalog import catalog_from_settings
from noticecrawler.commands import command, refs
from noticecrawler.errors import Refused
from noticecrawler.notify import accounts


def add_arguments(subparsers: Any) -> None:
    subs = subparsers.add_parser("subscriptions", help="keyword subscriptions")
    actions = subs.add_subparsers(dest="action", required=True)
    p = command(actions, "add", add, "add a subscription")
    p.add_argument("user")
    p.add_argument("-k", "--keyword", action="append", default=[])
    p.add_argument("-n", "--not", dest="negative", action="append", default=[])
    p.add_argument("-b", "--board", action="append", default=[])
    command(actions, "list", list_, "list subscriptions").add_argument("--user")
    command(actions, "remove", remove, "remove one").add_argument("id", type=int)


def add(args: argparse.Namespace, settings: Any) -> int:
    known = {b.name for b in catalog_from_settings(settings)}
    with refs.conn(settings) as conn:
        try:
            sub = accounts.add_subscription(
                conn, refs.user(conn, args.user), args.keyword, args.negative, args.board, known
            )
        except ValueError as exc:
            raise Refused(f"subscription not added: {exc}") from None
        print(f"subscription {sub}")
    return 0


def list_(args: argparse.Namespace, settings: Any) -> int:
    with refs.conn(settings) as conn:
        for s in accounts.list_subscriptions(conn, refs.optional_user(conn, args.user)):
            boards = ",".join(s["boards"] or []) or "every board"
            negative = ", ".join(s["negative_keywords"])
            negative = f"  not: {negative}" if negative else ""
            keywords = ", ".join(s["keywords"]) or "(every post)"
            print(f"{s['id']:>6}  user {s['user_id']:<6} [{boards}] {keywords}{negative}")
    return 0


def remove(args: argparse.Namespace, settings: Any) -> int:
    with refs.conn(settings) as conn:
        return refs.removed("subscription", args.id, accounts.remove_subscription(conn, args.id))
