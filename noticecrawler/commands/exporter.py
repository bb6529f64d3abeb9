"""``noticecrawler exporter``: Prometheus metrics on http://HOST:PORT/metrics (see
noticecrawler/metrics.py for the list). ``--once`` prints them and exits."""

from __future__ import annotations

import argparse
import threading
from typing import Any

from noticecrawler.commands import command


def add_arguments(subparsers: Any) -> None:
    p = command(subparsers, "exporter", run, "serve Prometheus metrics", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="default: NOTICECRAWLER_EXPORTER_PORT")
    p.add_argument("--once", action="store_true", help="print the metrics once and exit")


def run(args: argparse.Namespace, settings: Any) -> int:
    from prometheus_client import generate_latest

    from noticecrawler import metrics
    from noticecrawler.db.settings import database_url

    url = database_url(settings)
    if args.once:
        print(generate_latest(metrics.registry(url)).decode(), end="")
        return 0
    port = args.port or settings.getint("NOTICECRAWLER_EXPORTER_PORT")
    metrics.serve(url, args.host, port)
    print(f"metrics on http://{args.host}:{port}/metrics", flush=True)
    threading.Event().wait()
    return 0
