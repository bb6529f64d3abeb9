"""The ``noticecrawler`` command.

noticecrawler demo            the main job: demo board → crawl → new posts → add one → crawl
noticecrawler up              embedded servers, demo board, a worker and beat (development)
noticecrawler down            stop the embedded PostgreSQL and Redis
noticecrawler db upgrade      apply the SQL migrations (idempotent)
noticecrawler db url          print the database URL in use, password masked (--show-password)
noticecrawler db status       applied and pending migrations
noticecrawler boards          list the catalog
noticecrawler runs BOARD      the board's last crawl runs
noticecrawler posts BOARD     the board's stored posts
noticecrawler health          every enabled board: ok / failing / stale / never (exit 1 if bad)
noticecrawler detect URL|FILE guess a board's engine, print a catalog row
noticecrawler exporter        Prometheus metrics on :9808/metrics (--once: print them)
noticecrawler serve-demo      run the demo board server in the foreground
noticecrawler users|devices|subscriptions|notifications|push-test   notification operations
noticecrawler api             the HTTP API and the operator page (/admin/)
noticecrawler users token USER   an API token for a user (--admin: for /v1/admin)

The project's own errors (catalog, database, broker, unknown board) end the command with one
line on stderr and exit status 2. Each command is a module of noticecrawler/commands/.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from scrapy.utils.project import get_project_settings

from noticecrawler.commands import COMMANDS, add_all
from noticecrawler.errors import EXIT_FAILURE, one_line
from noticecrawler.redaction import install_log_redaction

#: exit status of a command whose reader went away (128 + SIGPIPE), as a shell reports it
EXIT_PIPE_CLOSED = 141
#: command modules that live outside noticecrawler/commands/ (full dotted paths)
PLUGGED: tuple[str, ...] = ("noticecrawler.api.command",)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="noticecrawler",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "-s", "--set", action="append", default=[], metavar="NAME=VALUE", help="override a setting"
    )
    add_all(p.add_subparsers(dest="command", required=True), COMMANDS + PLUGGED)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    install_log_redaction()
    try:
        settings = get_project_settings()
        for pair in args.set:
            name, _, value = pair.partition("=")
            settings.set(name, value, priority="cmdline")
        logging.basicConfig(
            level=settings.get("LOG_LEVEL", "INFO"),
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
        status = int(args.handler(args, settings) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not at the interpreter's final flush
        return status
    except BrokenPipeError:
        # the reader went away (`noticecrawler posts demo | head`): stop quietly, with the
        # status a shell reports for SIGPIPE (stdout pointed at /dev/null for the final flush)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_PIPE_CLOSED
    except Exception as exc:
        line = one_line(exc)
        if line is None:
            raise
        print(f"noticecrawler {args.command}: {line}", file=sys.stderr)
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
