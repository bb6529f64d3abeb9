"""``noticecrawler devices add USER TOKEN [--platform P] | list [--user U] | remove DEVICE``."""

from __future__ import annotations

import argparse
from typing import Any

from noticecrawler.commands import command, refs
from noticecrawler.errors import Refused
from noticecrawler.notify import accounts


def add_arguments(subparsers: Any) -> None:
    devices = subparsers.add_parser("devices", help="users' phones (FCM tokens)")
    actions = devices.add_subparsers(dest="action", required=True)
    p = command(actions, "add", add, "register an FCM token")
    p.add_argument("user")
    p.add_argument("token")
    p.add_argument("--platform", choices=accounts.PLATFORMS, default="android")
    command(actions, "list", list_, "list devices").add_argument("--user")
    command(actions, "remove", remove, "remove a device").add_argument("device")


def add(args: argparse.Namespace, settings: Any) -> int:
    with refs.conn(settings) as conn:
        try:
            device = accounts.add_device(
                conn, refs.user(conn, args.user), args.token, args.platform
            )
        except ValueError as exc:
            raise Refused(f"device not added: {exc}") from None
        print(f"device {device}")
    return 0


def list_(args: argparse.Namespace, settings: Any) -> int:
    with refs.conn(settings) as conn:
        for d in accounts.list_devices(conn, refs.optional_user(conn, args.user)):
            state = "active  " if d["active"] else "inactive"
            error = f"  last error: {d['last_error']}" if d["last_error"] else ""
            print(
                f"{d['id']:>6}  user {d['user_id']:<6} {d['platform']:8} {state} "
                f"{d['fcm_token'][:24]}{error}"
            )
    return 0


def remove(args: argparse.Namespace, settings: Any) -> int:
    with refs.conn(settings) as conn:
        device = refs.device(conn, args.device)["id"]
        return refs.removed("device", device, accounts.remove_device(conn, device))
