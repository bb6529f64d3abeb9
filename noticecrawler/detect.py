"""``noticecrawler detect <URL or saved page>``: guess the board engine from the page's
fingerprints and print a ready catalog row with the first posts it would extract, or say why
it cannot. The command itself is ``noticecrawler.commands.detect``."""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from parsel import Selector
from scrapy.http import HtmlResponse, TextResponse, XmlResponse

from noticecrawler.catalog import build_board
from noticecrawler.dates import parse_board_date
from noticecrawler.encoding import fix_encoding
from noticecrawler.items import Post
from noticecrawler.settings import DOWNLOAD_MAXSIZE
from noticecrawler.sizes import PageTooLarge, fetch_capped
from noticecrawler.spiders.ids import ID_PARAMS

USER_AGENT = "noticecrawler/0.1 (+notice board watcher; detect)"
PLACEHOLDER_URL = "https://example.invalid/board"


@dataclass
class Guess:
    engine: str
    reason: str
    fields: dict[str, Any] = field(default_factory=dict)


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


def guess_engine(response: TextResponse) -> Guess | None:
    text = response.text
    head = text[:3000].lower()
    if re.search(r"<(rss|feed|rdf:rdf)\b", head) and "<html" not in head:
        return Guess("feed", "an RSS/Atom document")
    sel = Selector(text=text)
    hrefs = " ".join(sel.css("a::attr(href)").getall())
    generator = " ".join(
        sel.css("meta[name=generator]::attr(content), meta[name=Generator]::attr(content)").getall()
    ).lower()
    if "bo_table=" in hrefs and ("wr_id=" in hrefs or sel.css("#bo_list")):
        return Guess("gnuboard", "bo_table/wr_id links (Gnuboard)")
    if "document_srl=" in hrefs or "xpressengine" in generator or "rhymix" in generator:
        return Guess("xe", "document_srl links or an XE/Rhymix generator tag")
    if re.search(r"view\.php\?id=[^\"'&]+&[^\"']*\bno=\d+", hrefs) or "zboard.php" in hrefs:
        return Guess("zeroboard", "zboard.php / view.php?id=…&no=… links (ZeroBoard)")
    if "wordpress" in generator or sel.css("article[id^='post-'], li.wp-block-post"):
        return Guess("wordpress", "WordPress generator tag or post-<id> articles")
    rows = _table_rows(sel)
    if rows is not None:
        js = [a for a in rows[1] if _is_js(a)]
        if len(js) * 2 >= len(rows[1]):
            return Guess(
                "jsboard",
                "table rows whose links are JavaScript calls",
                {"row": rows[0], "detail_url": PLACEHOLDER_URL + "?id={id}"},
            )
        return Guess("table", "a table of rows with links", _table_fields(sel, rows[0], response))
    items = _list_rows(sel)
    if items is not None:
        return Guess("list", "list items / cards with links", {"row": items})
    return None


def _is_js(a: Selector) -> bool:
    href = (a.attrib.get("href") or "").strip().lower()
    return href.startswith("javascript") or href in ("#", "#none", "#link") or "onclick" in a.attrib


def _table_rows(sel: Selector) -> tuple[str, list[Selector]] | None:
    best: tuple[int, str, list[Selector]] | None = None
    for table in sel.css("table"):
        links = [tr.css("a")[0] for tr in table.css("tbody > tr, :scope > tr") if tr.css("a")]
        if len(links) < 2 or (best is not None and len(links) <= best[0]):
            continue
        cls = (table.attrib.get("class") or "").split()
        name = (
            f"table#{table.attrib['id']}"
            if table.attrib.get("id")
            else (f"table.{cls[0]}" if cls else "table")
        )
        body = " tbody" if table.css("tbody") else ""
        best = (len(links), f"{name}{body} tr", links)
    return (best[1], best[2]) if best else None


def _table_fields(sel: Selector, row: str, response: TextResponse) -> dict[str, Any]:
    fields: dict[str, Any] = {"row": row}
    rows = [tr for tr in sel.css(row) if tr.css("a")]
    sample = rows[len(rows) // 2]
    cells = sample.xpath("./td")
    link_cells = [
        (len(" ".join(c.css("a ::text").getall()).strip()), i, c)
        for i, c in enumerate(cells, 1)
        if c.css("a")
    ]
    if link_cells:
        _, index, cell = max(link_cells)
        cls = (cell.attrib.get("class") or "").split()
        fields["title"] = fields["link"] = f"td.{cls[0]} a" if cls else f"td:nth-child({index}) a"
    for i, c in enumerate(cells, 1):
        text = " ".join(c.css("::text").getall()).strip()
        try:
            if text and re.search(r"\d", text) and parse_board_date(text, "Asia/Seoul"):
                cls = (c.attrib.get("class") or "").split()
                fields["date"] = f"td.{cls[0]}" if cls else f"td:nth-child({i})"
                break
        except ValueError:
            continue
    hrefs = [tr.css(fields.get("link", "a") + "::attr(href)").get("") for tr in rows]
    fields["id"] = _id_rule(hrefs)
    return fields


def _id_rule(hrefs: list[str]) -> str:
    counts: Counter[str] = Counter()
    for href in hrefs:
        keys = {k.lower(): k for k, v in parse_qsl(urlsplit(href).query) if v}
        for key in ID_PARAMS:
            if key in keys:
                counts[keys[key]] += 1
                break
    if counts:
        return "query:" + counts.most_common(1)[0][0]
    return "path:-1"


def _list_rows(sel: Selector) -> str | None:
    best: tuple[int, str] | None = None
    for parent in sel.css("ul, ol, div"):
        children = parent.xpath("./*")
        linked = [c for c in children if c.css("a[href]") or c.root.tag == "a"]
        if len(linked) < 3 or (best is not None and len(linked) <= best[0]):
            continue
        tag = Counter(c.root.tag for c in linked).most_common(1)[0][0]
        cls = (parent.attrib.get("class") or "").split()
        name = parent.root.tag + (f".{cls[0]}" if cls else "")
        best = (len(linked), f"{name} > {tag}")
    return best[1] if best else None


def try_guess(name: str, response: TextResponse, guess: Guess) -> tuple[dict[str, Any], list[Post]]:
    from noticecrawler.spiders.loader import spider_class

    raw = {"name": name, "engine": guess.engine, "start_url": response.url, **guess.fields}
    board = build_board(raw, {}, {})
    spider = spider_class(board)()
    spider.clock = lambda: datetime.now(board.zone)
    return raw, spider.extract_posts(response)


def catalog_row(raw: dict[str, Any]) -> str:
    lines = ["[[board]]"]
    for key, value in raw.items():
        lines.append(f"{key} = {json.dumps(value, ensure_ascii=False)}")
    if raw.get("detail_url", "").startswith(PLACEHOLDER_URL):
        lines.append("# detail_url: replace with the board's detail page URL, {id} for the id")
    return "\n".join(lines)
