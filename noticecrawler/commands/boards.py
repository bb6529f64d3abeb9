"""``noticecrawler boards``: the catalog, one line per board."""

from __future__ import annotations

import argparse
from typing import Any

from noticecrawler.commands import command


def add_arguments(subparsers: Any) -> None:
    command(subparsers, "boards", run, "list the catalog")


def run(args: argparse.Namespace, settings: Any) -> int:
    from noticecrawler.catalog import catalog_from_settings

    for b in catalog_from_settings(settings):
        state = "enabled " if b.enabled else "disabled"
        print(f"{b.name:24} {state} every {b.interval:>5}s  {b.engine:10} {b.start_url}")
    return 0
