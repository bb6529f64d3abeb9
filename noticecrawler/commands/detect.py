"""``noticecrawler detect <URL or saved page>``: guess the board engine and print a ready
catalog row with the first posts it would extract, or say why it cannot."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC
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
    from noticecrawler.catalog import NAME_RE
    from noticecrawler.detect import catalog_row, detect_board, load
    from noticecrawler.sizes import PageTooLarge

    try:
        response = load(args.target, args.url)
    except PageTooLarge as e:  # read under the crawl's own cap, never whole
        print(f"detect: {e}")
        return 2
    except (OSError, ValueError, HTTPException) as e:
        print(f"detect: cannot read {args.target}: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    ranked = detect_board(response, args.name if NAME_RE.match(args.name) else "new_board")
    best = ranked[0] if ranked else None
    if best is None or len(best.posts) < 2:
        tried = ", ".join(f"`{c.engine}` {c.error or len(c.posts)}" for c in ranked) or "none"
        print(
            f"detect: {response.url}: no board found: no engine extracts two posts "
            f"(posts per engine tried: {tried}); write the row by hand (docs/engines.md)"
        )
        return 1
    if not NAME_RE.match(args.name):
        print(f"detect: --name {args.name!r} must match {NAME_RE.pattern}")
        return 2
    runner = ranked[1] if len(ranked) > 1 else None
    second = (
        f"; runner-up `{runner.engine}` ({len(runner.posts)} posts, {runner.complete:.0%} complete)"
        if runner
        else "; no runner-up"
    )
    print(
        f"# engine `{best.engine}`: {len(best.posts)} posts, {best.complete:.0%} complete "
        f"(id, title, URL, date), fingerprints {best.score:.0%}; confidence {best.confidence:.2f}"
        + second
    )
    print(catalog_row(best.raw))
    posts = best.posts
    print(f"# first {min(5, len(posts))} of {len(posts)} posts:")
    for post in posts[:5]:
        time = when(post.published, post.published.tzinfo or UTC) if post.published else "-"
        pin = " [pinned]" if post.pinned else ""
        print(f"#   {post.post_id:>10}  {time:22}  {post.title}{pin}  <{post.url}>")
    return 0
