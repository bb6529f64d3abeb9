"""``noticecrawler detect <URL or saved page>``: try every engine on the page and print a ready
catalog row for the one whose posts come out most complete, with its confidence, the runner-up
and the first posts it would extract, or say why no engine reads the page.

Each engine scores the page by its own fingerprints (``BoardSpider.detect``); every engine that
scores above zero runs its defaults (plus the fields its ``guess_fields`` reads off the page) on
the page, and the posts are judged: id, title, a URL of their own and a date, present and
distinct. The most complete extraction wins; the fingerprint score breaks ties, so a
specialised engine stands before the generic table it falls back to. "No board found" only
when no engine extracts two posts. The command itself is
``noticecrawler.commands.detect``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from scrapy.http import HtmlResponse, TextResponse, XmlResponse

from noticecrawler.catalog import CatalogError, build_board
from noticecrawler.encoding import fix_encoding
from noticecrawler.extract import canonical_url
from noticecrawler.items import Post
from noticecrawler.settings import DOWNLOAD_MAXSIZE
from noticecrawler.sizes import fetch_capped
from noticecrawler.spiders.engines import ENGINES
from noticecrawler.spiders.engines.jsboard import PLACEHOLDER_DETAIL
from noticecrawler.spiders.loader import spider_class

USER_AGENT = "noticecrawler/0.1 (+notice board watcher; detect)"
PLACEHOLDER_URL = "https://example.invalid/board"


@dataclass
class Candidate:
    """One engine's reading of the page."""

    engine: str
    score: float  # the engine's fingerprint score
    raw: dict[str, Any] = field(default_factory=dict)
    posts: list[Post] = field(default_factory=list)
    complete: float = 0.0  # share of (id, title, URL, date) present and distinct
    error: str = ""

    @property
    def rank(self) -> tuple[bool, float, float, int]:
        return (len(self.posts) >= 2, round(self.complete, 2), self.score, len(self.posts))

    @property
    def confidence(self) -> float:
        return round(self.complete * (0.6 + 0.4 * self.score), 2)


def detect_board(
    response: TextResponse,
    name: str = "new_board",
    now: datetime | None = None,
    extra: dict[str, Any] | None = None,
) -> list[Candidate]:
    """Every engine that recognises the page, best reading first. ``now`` freezes the clock;
    ``extra`` fields (a known ``detail_url``…) join every engine's row."""
    found = []
    for engine_name, engine in ENGINES.items():
        score = engine.detect(response)
        if score <= 0:
            continue
        raw = {
            "name": name,
            "engine": engine_name,
            "start_url": response.url,
            **engine.guess_fields(response),
            **(extra or {}),
        }
        candidate = Candidate(engine_name, score, raw)
        try:
            candidate.posts = try_row(raw, response, now)
        except CatalogError as e:
            candidate.error = str(e)
        candidate.complete = completeness(candidate.posts, response.url)
        found.append(candidate)
    return sorted(found, key=lambda c: c.rank, reverse=True)


def completeness(posts: list[Post], list_url: str) -> float:
    """The share of (id, title, URL, date) present and distinct over the posts."""
    if not posts:
        return 0.0
    page = canonical_url(list_url, "")
    urls = [p.url for p in posts]
    titles = [p.title for p in posts]
    points = 0
    for post in posts:
        points += bool(post.post_id)
        points += bool(post.title) and titles.count(post.title) == 1
        points += post.url != page and urls.count(post.url) == 1 and not placeholder(post.url)
        points += post.published is not None and post.published_source == "list"
    return points / (4 * len(posts))


def load(target: str, url: str = "") -> TextResponse:
    path = Path(target)
    headers: dict[str, str] = {}
    if path.exists():
        body = path.read_bytes()
        sibling = path.parent / "url.txt"
        url = url or (sibling.read_text().strip() if sibling.exists() else PLACEHOLDER_URL)
        meta = path.parent / "meta.json"
        if meta.exists() and (kind := json.loads(meta.read_text()).get("content_type")):
            headers["Content-Type"] = kind
    elif re.match(r"^https?://", target):
        fetched = fetch_capped(target, limit=DOWNLOAD_MAXSIZE, user_agent=USER_AGENT)
        body, url, headers["Content-Type"] = fetched.body, fetched.url, fetched.content_type
    else:
        raise ValueError("neither an existing file nor an http(s) URL")
    looks_xml = body.lstrip()[:200].lower().startswith((b"<?xml", b"<rss", b"<feed"))
    cls = XmlResponse if looks_xml else HtmlResponse
    return fix_encoding(cls(url=url, body=body, headers=headers))


def placeholder(url: str) -> bool:
    """A URL made from the placeholder detail URL: no post's own."""
    return url.startswith(PLACEHOLDER_DETAIL.partition("?")[0])


def try_row(raw: dict[str, Any], response: TextResponse, now: datetime | None = None) -> list[Post]:
    """The posts the catalog row ``raw`` extracts from the page."""
    board = build_board(raw, {}, {})
    spider = spider_class(board)()
    spider.clock = (lambda: now) if now is not None else (lambda: datetime.now(board.zone))
    return spider.extract_posts(response)


def catalog_row(raw: dict[str, Any]) -> str:
    lines = ["[[board]]"]
    for key, value in raw.items():
        lines.append(f"{key} = {json.dumps(value, ensure_ascii=False)}")
    if raw.get("detail_url", "") == PLACEHOLDER_DETAIL:
        lines.append("# detail_url: replace with the board's detail page URL, {id} for the id")
    return "\n".join(lines)
