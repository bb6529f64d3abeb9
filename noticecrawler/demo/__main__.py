"""``python -m noticecrawler.demo [--host 127.0.0.1] [--port 8765]``: serve the demo boards."""

from __future__ import annotations

import argparse
import logging

from noticecrawler.demo.server import run_forever
from noticecrawler.settings import DEMO_BOARD_PORT


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m noticecrawler.demo",
        description="Serve demo Korean notice boards: any /<board>/list is a board.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEMO_BOARD_PORT)
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    run_forever(args.host, args.port)


if __name__ == "__main__":
    main()
