"""The ``noticecrawler`` commands: one module per command, as Scrapy's ``scrapy/commands/``.

A command module has

    add_arguments(subparsers)      adds its parser(s) and sets ``handler=run`` on each
    run(args, settings) -> int     does the work and returns the exit status

and is listed once in ``COMMANDS`` below (a module outside this folder, e.g. an API's command,
is listed by its full dotted path). Logic lives outside: commands parse and print.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from typing import Any

Handler = Callable[[argparse.Namespace, Any], int]

#: every command module, in the order ``--help`` lists them
COMMANDS: tuple[str, ...] = (
    "noticecrawler.commands.demo",
    "noticecrawler.commands.up",
    "noticecrawler.commands.down",
    "noticecrawler.commands.db",
    "noticecrawler.commands.boards",
    "noticecrawler.commands.runs",
    "noticecrawler.commands.posts",
    "noticecrawler.commands.health",
    "noticecrawler.commands.exporter",
    "noticecrawler.commands.detect",
    "noticecrawler.commands.serve_demo",
    "noticecrawler.commands.users",
    "noticecrawler.commands.devices",
    "noticecrawler.commands.subscriptions",
    "noticecrawler.commands.notifications",
    "noticecrawler.commands.push_test",
)


def add_all(subparsers: Any, modules: tuple[str, ...] = COMMANDS) -> None:
    for module in modules:
        importlib.import_module(module).add_arguments(subparsers)


def command(
    subparsers: Any, name: str, handler: Handler, help: str, **kwargs: Any
) -> argparse.ArgumentParser:
    """A sub-parser ``name`` whose ``handler`` runs when it is chosen."""
    parser: argparse.ArgumentParser = subparsers.add_parser(name, help=help, **kwargs)
    parser.set_defaults(handler=handler)
    return parser
