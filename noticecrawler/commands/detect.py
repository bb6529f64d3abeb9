"""``noticecrawler detect <URL or saved page>``: guess the board engine and print a ready
catalog row with the first posts it would extract, or say why it cannot."""

from __future__ import annotations

import argparse
import sys
from http.client import HTTPException
from typing import Any

from noticecrawler.clock import when
from noticecrawler.commands import command


def add_arguments(subparsers: Any) -> None:
    p = command(subparsers, "detect", run, "guess a board's engine and print a catalog row")
    p.add_argument("target", help="a list page URL, or a saved list page / feed file")
    p.add_argument("--url", default="", help="the URL a saved page came from")
    p.add_argument("--name", default="new_board", help="the board name for the printed row")


def run(args: argparse.Namespace, settings: Any) -> int:
    from noticecrawler.catalog import CatalogError
    from noticecrawler.detect import catalog_row, guess_engine, load, try_guess

    try:
        response = load(args.target, args.url)
    except (OSError, ValueError, HTTPException) as e:
        print(f"detect: cannot read {args.target}: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    guess = guess_engine(response)
    if guess is None:
        print(
            f"detect: {response.url}: no board found: no table rows, list items or feed "
            "entries with links; write the row by hand (docs/engines.md)"
        )
        return 1
    try:
        raw, posts = try_guess(args.name, response, guess)
    except CatalogError as e:
        print(f"detect: {response.url}: looks like `{guess.engine}` ({guess.reason}) but {e}")
        return 1
    if not posts:
        print(
            f"detect: {response.url}: looks like `{guess.engine}` ({guess.reason}) but the "
            "engine's selectors find no posts; set `row`/`title`/`link` by hand"
        )
        return 1
    print(f"# engine `{guess.engine}`: {guess.reason}")
    print(catalog_row(raw))
    print(f"# first {min(5, len(posts))} of {len(posts)} posts:")
    for post in posts[:5]:
        time = when(post.published, post.published.tzinfo) if post.published else "-"
        pin = " [pinned]" if post.pinned else ""
        print(f"#   {post.post_id:>10}  {time:22}  {post.title}{pin}  <{post.url}>")
    return 0
