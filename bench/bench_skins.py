"""Zero-configuration reading of real board skins (tests/fixtures/skins/), side by side with
one hand-written catalog row per skin.

For every skin: the share of fields right (each expected post present, and its id, title, URL,
date and pinned flag; every extra post one more field wrong) when ``detect`` alone picks the
engine and reads the page with its defaults, and when the skin's ``board.toml`` row reads it.
Clock frozen at each skin's ``now``. Goals (issue 10): >= 97% of fields right with zero
configuration over the corpus and no skin below 90%; 100% with one row per skin. "Zero
configuration" is told one thing: the board's time zone when it is not Asia/Seoul (no markup
says in which zone a bare ``2026-11-20`` is meant); nothing else of the skin's row.

    .venv/bin/python bench/bench_skins.py [--markdown]
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from noticecrawler.detect import detect_board  # noqa: E402
from noticecrawler.encoding import fix_encoding  # noqa: E402
from tests.fixturecases import response_for  # noqa: E402
from tests.skincases import (  # noqa: E402
    Score,
    board_row,
    expected_of,
    extract_with,
    now_of,
    score,
    skin_dirs,
    zone_of,
)


def zero_config(folder: Path) -> tuple[str, Score]:
    response = fix_encoding(response_for(folder))
    ranked = detect_board(response, folder.name, now=now_of(folder), extra=zone_of(folder))
    if not ranked or len(ranked[0].posts) < 2:
        return "-", score([], expected_of(folder))
    return ranked[0].engine, score(ranked[0].posts, expected_of(folder))


def cell(part: Score) -> str:
    return f"{part.right}/{part.total} {part.share:6.1%}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    parser.add_argument("--wrong", action="store_true", help="list the fields read wrong")
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # a zero-config reading may log unreadable dates

    rows = []
    totals = [Score(), Score()]
    for folder in skin_dirs():
        engine, zero = zero_config(folder)
        row = score(extract_with(board_row(folder), folder), expected_of(folder))
        rows.append((folder.name, expected_of(folder)["engine"], engine, zero, row))
        for total, part in zip(totals, (zero, row), strict=True):
            total.right += part.right
            total.total += part.total
    if args.markdown:
        print("| skin | program's engine | detect's choice | zero config | one catalog row |")
        print("|---|---|---|---:|---:|")
        for name, named, engine, zero, row in rows:
            print(
                f"| `{name}` | {named} | {engine} | {zero.right}/{zero.total} "
                f"({zero.share:.1%}) | {row.right}/{row.total} ({row.share:.1%}) |"
            )
        z, r = totals
        print(
            f"| **all {len(rows)} skins** | | | **{z.right}/{z.total} ({z.share:.1%})** "
            f"| **{r.right}/{r.total} ({r.share:.1%})** |"
        )
    else:
        print(f"{'skin':28} {'engine':10} {'detect':10} {'zero config':>18} {'catalog row':>18}")
        for name, named, engine, zero, row in rows:
            print(f"{name:28} {named:10} {engine:10} {cell(zero):>18} {cell(row):>18}")
            if args.wrong:
                for line in zero.wrong + [f"(row) {w}" for w in row.wrong]:
                    print(f"    {line}")
        z, r = totals
        label = f"all {len(rows)} skins"
        print(f"{label:28} {'':10} {'':10} {cell(z):>18} {cell(r):>18}")
    worst = min((zero.share for *_, zero, _ in rows), default=1.0)
    perfect = sum(1 for *_, row in rows if row.share == 1.0)
    z = totals[0]
    print(
        f"\ngoals: zero config {z.share:.1%} (>= 97%: {'met' if z.share >= 0.97 else 'NOT met'}), "
        f"worst skin {worst:.1%} (>= 90%: {'met' if worst >= 0.9 else 'NOT met'}), "
        f"one row 100% on {perfect}/{len(rows)} skins"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
