"""``noticecrawler serve-demo``: the demo board server in the foreground."""

from __future__ import annotations

import argparse
from typing import Any

from noticecrawler.commands import command


def add_arguments(subparsers: Any) -> None:
    p = command(subparsers, "serve-demo", run, "serve the demo boards")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)


def run(args: argparse.Namespace, settings: Any) -> int:
    from noticecrawler.demo.server import run_forever
    from noticecrawler.demo.state import state_file

    port = args.port or settings.getint("DEMO_BOARD_PORT")
    run_forever(args.host, port, state_file(settings.get("NOTICECRAWLER_HOME")))
    return 0
