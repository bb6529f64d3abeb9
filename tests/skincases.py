"""The corpus of real board skins (``tests/fixtures/skins/<skin>/``) and how a reading of one is
scored field by field. Shared by tests/test_skins.py and bench/bench_skins.py.

A skin folder holds the saved page, ``url.txt``, ``meta.json``, ``expected.json`` (the engine and
every post a human reads on the page: post_id, title, url, published, pinned; a linkless row has
``post_id: null``), ``board.toml`` (one hand-written catalog row) and ``SOURCE.md``.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from noticecrawler.catalog import SELECTOR_FIELDS, BoardDef, build_board, parse_catalog
from noticecrawler.detect import detect_board
from noticecrawler.encoding import fix_encoding
from noticecrawler.items import Post
from tests.fixturecases import FIXTURES, response_for, spider_for

SKINS = FIXTURES / "skins"
#: engine names the corpus may use for the engines' modules
ALIASES = {"listboard": "list"}
#: the fields of a post that are checked, besides the post being there at all
FIELDS = ("post_id", "title", "url", "published", "pinned")
#: catalog fields that are not selectors: the named engine's reading takes them from the skin's
#: row (a JS-link board's detail URL, the detail form)
NOT_SELECTORS = ("detail_url", "options", "timezone", "keep_params")


def skin_dirs() -> list[Path]:
    if not SKINS.exists():
        return []
    return sorted(p for p in SKINS.iterdir() if (p / "expected.json").exists())


def expected_of(folder: Path) -> dict[str, Any]:
    expected: dict[str, Any] = json.loads((folder / "expected.json").read_text(encoding="utf-8"))
    expected["engine"] = ALIASES.get(expected["engine"], expected["engine"])
    return expected


def now_of(folder: Path) -> datetime:
    return datetime.fromisoformat(expected_of(folder)["now"])


def board_row(folder: Path) -> BoardDef:
    (board,) = parse_catalog((folder / "board.toml").read_text(encoding="utf-8"), str(folder))
    return board


def extract_with(board: BoardDef, folder: Path) -> list[Post]:
    spider = spider_for(board, now_of(folder))
    return spider.extract_posts(response_for(folder))


def engine_defaults_posts(folder: Path, engine: str = "") -> list[Post]:
    """The posts the engine (expected.json's unless named) reads with no selector overrides."""
    engine = engine or expected_of(folder)["engine"]
    raw = tomllib.loads((folder / "board.toml").read_text(encoding="utf-8"))["board"][0]
    kept = {k: v for k, v in raw.items() if k in NOT_SELECTORS and k not in SELECTOR_FIELDS}
    url = (folder / "url.txt").read_text().strip()
    board = build_board({"name": folder.name, "engine": engine, "start_url": url, **kept}, {}, {})
    return extract_with(board, folder)


def zone_of(folder: Path) -> dict[str, str]:
    """The board's time zone when it is not the default: the one thing a zero-configuration
    reading is told, since no markup says in which zone a bare ``2026-11-20`` is meant."""
    raw = tomllib.loads((folder / "board.toml").read_text(encoding="utf-8"))["board"][0]
    return {"timezone": raw["timezone"]} if "timezone" in raw else {}


def detected_posts(folder: Path) -> tuple[str, list[Post]]:
    """The engine ``detect`` picks on the saved page, and its posts (clock frozen): zero
    configuration but the board's time zone."""
    response = fix_encoding(response_for(folder))
    ranked = detect_board(response, folder.name, now=now_of(folder), extra=zone_of(folder))
    if not ranked or len(ranked[0].posts) < 2:
        return "", []
    return ranked[0].engine, ranked[0].posts


@dataclass
class Score:
    right: int = 0
    total: int = 0
    wrong: list[str] = field(default_factory=list)

    @property
    def share(self) -> float:
        return self.right / self.total if self.total else 1.0


def score(posts: list[Post], expected: dict[str, Any]) -> Score:
    """Fields right: for every expected post, that it is there and its id, title, URL, date and
    pinned flag; every extra post is one more field wrong."""
    result = Score()
    by_id = {p.post_id: p for p in posts}
    used: set[str] = set()
    for want in expected["posts"]:
        key = want["post_id"] or want["title"]
        got = by_id.get(want["post_id"]) if want["post_id"] else _linkless(posts, want, used)
        result.total += 1 + len(FIELDS)
        if got is None:
            result.wrong.append(f"{key}: missing")
            continue
        used.add(got.post_id)
        result.right += 1
        for name in FIELDS:
            if _same(name, getattr(got, name), want[name], got):
                result.right += 1
            else:
                result.wrong.append(f"{key}: {name} {getattr(got, name)!r} != {want[name]!r}")
    for post in posts:
        if post.post_id not in used:
            result.total += 1
            result.wrong.append(f"{post.post_id}: not a post ({post.title!r})")
    return result


def _linkless(posts: list[Post], want: dict[str, Any], used: set[str]) -> Post | None:
    """The post read from a linkless row: same title (and date, when titles repeat)."""
    same = [p for p in posts if p.title == want["title"] and p.post_id not in used]
    dated = [p for p in same if _same("published", p.published, want["published"], p)]
    return (dated or same or [None])[0]


def _same(name: str, got: Any, want: Any, post: Post) -> bool:
    if name == "post_id" and want is None:
        return bool(got)  # a linkless row: any stable digest
    if name == "published":
        if want is None:
            return got is None or post.published_source == "first_seen"
        return got is not None and got == datetime.fromisoformat(want)
    return bool(got == want)
