"""Loading fixture folders: ``tests/fixtures/<board>/`` with the saved page, its URL and
``expected.json``. A folder named after a catalog board uses that entry; any other folder
carries its own ``board.toml`` (one catalog entry)."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

from scrapy.http import HtmlResponse, TextResponse, XmlResponse
from scrapy.utils.test import get_crawler

from noticecrawler.catalog import BoardDef, load_catalog, parse_catalog
from noticecrawler.items import Post
from noticecrawler.spiders.base import BoardSpider
from noticecrawler.spiders.loader import spider_class

FIXTURES = Path(__file__).parent / "fixtures"
PAGE_NAMES = ("page.html", "page.xml", "feed.xml")


def fixture_dirs() -> list[Path]:
    return sorted(p for p in FIXTURES.iterdir() if (p / "expected.json").exists())


def board_for(folder: Path) -> BoardDef:
    own = folder / "board.toml"
    if own.exists():
        (board,) = parse_catalog(own.read_text(encoding="utf-8"), str(own))
        return board
    by_name = {b.name: b for b in load_catalog(substitutions={"demo": "http://127.0.0.1:8765"})}
    return by_name[folder.name]


def spider_for(board: BoardDef, now: datetime) -> BoardSpider:
    crawler = get_crawler(spider_class(board))
    crawler._apply_settings()
    spider = crawler._create_spider()
    spider.clock = lambda: now
    return spider


def response_for(folder: Path) -> TextResponse:
    meta = json.loads((folder / "meta.json").read_text()) if (folder / "meta.json").exists() else {}
    page = next(folder / n for n in PAGE_NAMES if (folder / n).exists())
    url = (folder / "url.txt").read_text().strip()
    headers = {"Content-Type": meta["content_type"]} if meta.get("content_type") else {}
    cls = XmlResponse if page.suffix == ".xml" else HtmlResponse
    return cls(url=url, body=page.read_bytes(), headers=headers)


def post_json(post: Post) -> dict[str, Any]:
    d = asdict(post)
    d["published"] = post.published.isoformat() if post.published else None
    for key in ("list_url", "status", "db_id", "announced", "body"):
        d.pop(key)
    return d


def extract(folder: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    expected = json.loads((folder / "expected.json").read_text(encoding="utf-8"))
    now = datetime.fromisoformat(expected["now"])
    spider = spider_for(board_for(folder), now)
    posts = spider.extract_posts(response_for(folder))
    return [post_json(p) for p in posts], expected
