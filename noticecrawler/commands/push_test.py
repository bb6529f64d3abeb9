"""``noticecrawler push-test DEVICE``: one test push to a device (id or token), its outcome."""

from __future__ import annotations

import argparse
from typing import Any

from noticecrawler.commands import command, refs


def add_arguments(subparsers: Any) -> None:
    p = command(subparsers, "push-test", run, "send one test push to a device")
    p.add_argument("device", help="device id or FCM token")


def run(args: argparse.Namespace, settings: Any) -> int:
    from noticecrawler.notify import service, store
    from noticecrawler.notify.config import from_settings
    from noticecrawler.notify.senders import make_sender

    config = from_settings()
    with refs.conn(settings) as conn:
        device = refs.device(conn, args.device)
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
