"""``noticecrawler users add [--external-id ID] | list | remove USER``: the app's users."""

from __future__ import annotations

import argparse
from typing import Any

from noticecrawler.commands import command, refs
from noticecrawler.notify import accounts


def add_arguments(subparsers: Any) -> None:
    users = subparsers.add_parser("users", help="app users (notifications)")
    actions = users.add_subparsers(dest="action", required=True)
    command(actions, "add", add, "add a user").add_argument("--external-id")
    command(actions, "list", list_, "list users")
    command(actions, "remove", remove, "remove a user").add_argument("user")


def add(args: argparse.Namespace, settings: Any) -> int:
    with refs.conn(settings) as conn:
        print(f"user {accounts.add_user(conn, args.external_id)}")
    return 0


def list_(args: argparse.Namespace, settings: Any) -> int:
    with refs.conn(settings) as conn:
        for u in accounts.list_users(conn):
            print(
                f"{u['id']:>6}  {u['external_id'] or '-':20} devices={u['devices']} "
                f"subscriptions={u['subscriptions']}"
            )
    return 0


def remove(args: argparse.Namespace, settings: Any) -> int:
    with refs.conn(settings) as conn:
        user = refs.user(conn, args.user)
        return refs.removed("user", user, accounts.remove_user(conn, user))
