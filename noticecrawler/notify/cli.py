"""Operations commands of the notifier (plugged into ``noticecrawler`` by noticecrawler.cli).

noticecrawler users add [--external-id ID] | list | remove USER
noticecrawler devices add USER TOKEN [--platform android|ios|web] | list [--user U] | remove DEVICE
noticecrawler subscriptions add USER [-k KEYWORD]… [-n NEGATIVE]… [-b BOARD]…
                            | list [--user U] | remove ID
noticecrawler notifications POST     a post's outcome per device (POST: id or board:post_id)
noticecrawler push-test DEVICE       one test push to a device (id or token), printed outcome

USER is a user id or external id; DEVICE a device id or FCM token.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import psycopg

from noticecrawler.db import connect
from noticecrawler.db.settings import database_url
from noticecrawler.notify import accounts, store

Handler = Callable[[argparse.Namespace, Any], int]


def _conn(settings: Any) -> psycopg.Connection[Any]:
    return connect(database_url(settings), autocommit=True)


def _user(conn: psycopg.Connection[Any], ref: str) -> int:
    user = accounts.find_user(conn, ref)
    if user is None:
        raise SystemExit(f"no user `{ref}` (give a user id or external id)")
    return user


def _device(conn: psycopg.Connection[Any], ref: str) -> dict[str, Any]:
    device = accounts.find_device(conn, ref)
    if device is None:
        raise SystemExit(f"no device `{ref}` (give a device id or FCM token)")
    return device


def _optional_user(conn: psycopg.Connection[Any], ref: str | None) -> int | None:
    return None if ref is None else _user(conn, ref)


def _removed(what: str, ref: Any, done: bool) -> int:
    print(f"{what} {ref} removed" if done else f"no {what} {ref}")
    return 0 if done else 1


def users_add(args: argparse.Namespace, settings: Any) -> int:
    with _conn(settings) as conn:
        print(f"user {accounts.add_user(conn, args.external_id)}")
    return 0


def users_list(args: argparse.Namespace, settings: Any) -> int:
    with _conn(settings) as conn:
        for u in accounts.list_users(conn):
            print(
                f"{u['id']:>6}  {u['external_id'] or '-':20} devices={u['devices']} "
                f"subscriptions={u['subscriptions']}"
            )
    return 0


def users_remove(args: argparse.Namespace, settings: Any) -> int:
    with _conn(settings) as conn:
        user = _user(conn, args.user)
        return _removed("user", user, accounts.remove_user(conn, user))


def devices_add(args: argparse.Namespace, settings: Any) -> int:
    with _conn(settings) as conn:
        device = accounts.add_device(conn, _user(conn, args.user), args.token, args.platform)
        print(f"device {device}")
    return 0


def devices_list(args: argparse.Namespace, settings: Any) -> int:
    with _conn(settings) as conn:
        for d in accounts.list_devices(conn, _optional_user(conn, args.user)):
            state = "active  " if d["active"] else "inactive"
            error = f"  last error: {d['last_error']}" if d["last_error"] else ""
            print(
                f"{d['id']:>6}  user {d['user_id']:<6} {d['platform']:8} {state} "
                f"{d['fcm_token'][:24]}{error}"
            )
    return 0


def devices_remove(args: argparse.Namespace, settings: Any) -> int:
    with _conn(settings) as conn:
        device = _device(conn, args.device)["id"]
        return _removed("device", device, accounts.remove_device(conn, device))


def subscriptions_add(args: argparse.Namespace, settings: Any) -> int:
    with _conn(settings) as conn:
        try:
            sub = accounts.add_subscription(
                conn, _user(conn, args.user), args.keyword, args.negative, args.board
            )
        except ValueError as exc:
            raise SystemExit(f"subscription not added: {exc}") from None
        print(f"subscription {sub}")
    return 0


def subscriptions_list(args: argparse.Namespace, settings: Any) -> int:
    with _conn(settings) as conn:
        for s in accounts.list_subscriptions(conn, _optional_user(conn, args.user)):
            boards = ",".join(s["boards"] or []) or "every board"
            negative = ", ".join(s["negative_keywords"])
            negative = f"  not: {negative}" if negative else ""
            keywords = ", ".join(s["keywords"]) or "(every post)"
            print(f"{s['id']:>6}  user {s['user_id']:<6} [{boards}] {keywords}{negative}")
    return 0


def subscriptions_remove(args: argparse.Namespace, settings: Any) -> int:
    with _conn(settings) as conn:
        return _removed("subscription", args.id, accounts.remove_subscription(conn, args.id))


def _post_id(conn: psycopg.Connection[Any], ref: str) -> int:
    board, sep, board_post = ref.partition(":")
    if sep:
        row = conn.execute(
            "SELECT id FROM posts WHERE board = %s AND post_id = %s", (board, board_post)
        ).fetchone()
    elif ref.isdigit():
        row = conn.execute("SELECT id FROM posts WHERE id = %s", (int(ref),)).fetchone()
    else:
        row = None
    if row is None:
        raise SystemExit(f"no post `{ref}` (give a post id or board:post_id)")
    return int(row["id"])


def notifications_show(args: argparse.Namespace, settings: Any) -> int:
    with _conn(settings) as conn:
        post_id = _post_id(conn, args.post)
        post = store.load_post(conn, post_id)
        assert post is not None
        outbox = store.outbox_row(conn, post_id)
        print(f"post {post_id}  [{post['board']}] {post['title']}")
        if outbox is None:
            print("  not in the outbox: not announced (first crawl of its board, or edited)")
        else:
            print(
                f"  outbox: written {outbox['created_at']:%Y-%m-%d %H:%M:%S}, "
                f"taken {outbox['taken_at'] or '-'}, planned {outbox['planned_at'] or '-'}, "
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


def push_test(args: argparse.Namespace, settings: Any) -> int:
    from noticecrawler.notify import service
    from noticecrawler.notify.config import from_settings
    from noticecrawler.notify.senders import make_sender

    config = from_settings()
    with _conn(settings) as conn:
        device = _device(conn, args.device)
        sender = make_sender(max_concurrency=1, timeout=config.fcm_timeout)
        try:
            result = service.push_test(device, sender, config)
        finally:
            sender.close()
        if result.outcome != "sent" and result.error:
            errors = [(device["id"], device["fcm_token"], result.error, result.deactivate)]
            with conn.transaction():
                store.note_device_errors(conn, errors)
    detail = result.message_name or result.error or ""
    print(f"device {device['id']}: {result.outcome}  {detail}")
    return 0 if result.outcome == "sent" else 1


def _sub(parent: Any, name: str, handler: Handler, help: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = parent.add_parser(name, help=help)
    parser.set_defaults(handler=handler)
    return parser


def add_arguments(subparsers: Any) -> None:
    users = subparsers.add_parser("users", help="app users (notifications)")
    actions = users.add_subparsers(dest="action", required=True)
    _sub(actions, "add", users_add, "add a user").add_argument("--external-id")
    _sub(actions, "list", users_list, "list users")
    _sub(actions, "remove", users_remove, "remove a user").add_argument("user")

    devices = subparsers.add_parser("devices", help="users' phones (FCM tokens)")
    actions = devices.add_subparsers(dest="action", required=True)
    add = _sub(actions, "add", devices_add, "register an FCM token")
    add.add_argument("user")
    add.add_argument("token")
    add.add_argument("--platform", choices=accounts.PLATFORMS, default="android")
    _sub(actions, "list", devices_list, "list devices").add_argument("--user")
    _sub(actions, "remove", devices_remove, "remove a device").add_argument("device")

    subs = subparsers.add_parser("subscriptions", help="keyword subscriptions")
    actions = subs.add_subparsers(dest="action", required=True)
    add = _sub(actions, "add", subscriptions_add, "add a subscription")
    add.add_argument("user")
    add.add_argument("-k", "--keyword", action="append", default=[])
    add.add_argument("-n", "--not", dest="negative", action="append", default=[])
    add.add_argument("-b", "--board", action="append", default=[])
    _sub(actions, "list", subscriptions_list, "list subscriptions").add_argument("--user")
    _sub(actions, "remove", subscriptions_remove, "remove one").add_argument("id", type=int)

    show = _sub(subparsers, "notifications", notifications_show, "a post's push outcomes")
    show.add_argument("post", help="post id, or board:post_id")
    test = _sub(subparsers, "push-test", push_test, "send one test push to a device")
    test.add_argument("device", help="device id or FCM token")
