"""Guessing a board's structure from its list page alone: which container holds the rows, which
cell holds the title and the date, which URL parameter carries the id. The generic engines use
these as their defaults (``table`` and ``list`` with no ``row`` given), every specialised engine
falls back to them when its own selectors find no rows, and ``detect`` prints what they found.
Plain functions over parsel selectors: no Scrapy state."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from parsel import Selector, SelectorList

from noticecrawler.extract import clean_text
from noticecrawler.spiders.ids import ID_PARAMS

#: text that looks like a date or a relative time (a cheap test, not a parse)
DATE_LIKE = re.compile(
    r"\d{2,4}\s*[.\-/]\s*\d{1,2}\s*[.\-/]\s*\d{1,2}|\d{1,2}\s*[.\-/]\s*\d{1,2}\b"
    r"|\d{4}\s*년|\d{1,2}:\d{2}|\d+\s*(?:초|분|시간|일|주|개월)\s*전|어제|방금"
    r"|\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+\d{1,2}(?:st|nd|rd|th)?\b"
    r"|\b\d{1,2}\s+(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\b|\bago\b",
    re.IGNORECASE,
)
_AD = re.compile(r"(?:^|[-_])(?:ad|ads|advert|banner|promo|sponsor(?:ed)?)(?:$|[-_])", re.I)


def classes(node: Selector) -> list[str]:
    return (node.attrib.get("class") or "").split()


def is_ad(node: Selector) -> bool:
    """An advertisement or promotion block standing among the rows."""
    return any(_AD.search(c) for c in classes(node))


def has_link(node: Selector) -> bool:
    return bool(node.css("a[href]")) or (getattr(node.root, "tag", None) == "a")


def date_like(node: Selector) -> bool:
    return bool(DATE_LIKE.search(clean_text(node.xpath(".//text()").getall())))


def _name(node: Selector, index: int, same: SelectorList) -> str:
    """A selector that names ``node`` alone among the ``same`` nodes (innermost tables)."""
    tag = node.root.tag
    if node.attrib.get("id") and re.match(r"^[A-Za-z][\w-]*$", node.attrib["id"]):
        return f"{tag}#{node.attrib['id']}"
    for c in classes(node):
        if re.match(r"^[A-Za-z_][\w-]*$", c) and sum(c in classes(s) for s in same) == 1:
            return f"{tag}.{c}"
    return tag if len(same) == 1 else f"xpath:(//{tag}[not(.//{tag})])[{index + 1}]"


def table_rows(sel: Selector) -> tuple[str, list[Selector]] | None:
    """The rows of the table that holds most rows with a link or a date: ``(row selector, rows
    that look like posts)``; featured tables beside it hold fewer and are left out."""
    tables = sel.xpath("//table[not(.//table)]")
    best: tuple[int, str, list[Selector]] | None = None
    for index, table in enumerate(tables):
        trs = table.xpath("./tbody/tr | ./tr")
        rows = [tr for tr in trs if tr.xpath("./td") and (has_link(tr) or date_like(tr))]
        linked = [tr for tr in rows if has_link(tr)]
        if len(rows) < 2 or not linked or (best is not None and len(rows) <= best[0]):
            continue
        name = _name(table, index, tables)
        if name.startswith("xpath:"):
            row = name + ("/tbody/tr" if table.xpath("./tbody") else "/tr")
        else:
            row = name + (" > tbody > tr" if table.xpath("./tbody") else " > tr")
        best = (len(rows), row, rows)
    return (best[1], best[2]) if best else None


def table_fields(rows: list[Selector]) -> dict[str, Any]:
    """Title, link, date and id rules read off a table's post rows."""
    fields: dict[str, Any] = {}
    linked = [tr for tr in rows if has_link(tr)]
    if not linked:
        return fields
    title, link = link_columns(linked)
    if title:
        fields["title"], fields["link"] = title, link
    dates: Counter[str] = Counter()
    for tr in linked:
        cells = tr.xpath("./td")
        labelled = date_column(tr)
        for i, cell in enumerate(cells, 1):
            if labelled and i != labelled:
                continue
            text = clean_text(cell.xpath(".//text()").getall())
            if text and len(text) <= 40 and DATE_LIKE.search(text) and not cell.css("a[href]"):
                dates[_cell(cell, i, cells)] += 1
                break
    if dates:
        fields["date"] = dates.most_common(1)[0][0]
    hrefs = [tr.css(fields.get("link", "a") + "::attr(href)").get("") for tr in linked]
    fields["id"] = id_rule(hrefs)
    return fields


#: header labels of the column that holds a post's own date, most telling first
_DATE_LABELS = (
    re.compile(r"작성일|등록일|게시일$|date\s*posted|posted|published", re.I),
    re.compile(r"^(?:날짜|일자|일시|date|등록|작성)$", re.I),
)


def date_column(row: Selector) -> int:
    """The 1-based column of the post's date as the row's table header labels it
    (``작성일`` rather than ``게시시작일``), or 0 when the header says nothing."""
    table = next(row.root.iterancestors("table"), None)
    if table is None:
        return 0
    header = Selector(root=table).xpath("(.//thead//tr | .//tr[th])[1]/th | (.//thead//tr)[1]/td")
    labels = [clean_text(th.xpath(".//text()").getall()) for th in header]
    for pattern in _DATE_LABELS:
        for index, label in enumerate(labels, 1):
            if pattern.search(label):
                return index
    return 0


def link_columns(rows: list[Selector]) -> tuple[str, str]:
    """``(title, link)`` selectors: the title is the column of the longest link texts; the
    post's link is the same column, unless its links repeat from row to row (a department, a
    category) while another column's differ on every row (``Meeting details``)."""
    texts: dict[str, list[int]] = {}
    targets: dict[str, list[str]] = {}
    for tr in rows:
        cells = tr.xpath("./td")
        for index, cell in enumerate(cells, 1):
            anchor = cell.css("a[href]")
            if not anchor:
                continue
            name = _cell(cell, index, cells) + " a"
            texts.setdefault(name, []).append(len(clean_text(anchor[0].css("::text").getall())))
            targets.setdefault(name, []).append(anchor[0].attrib.get("href", ""))
    if not texts:
        return "", ""
    length = {name: sum(v) / len(rows) for name, v in texts.items()}
    title = max(length, key=lambda name: length[name])

    def distinct(name: str) -> bool:
        seen = targets[name]
        return len(seen) == len(rows) and len(set(seen)) == len(seen)

    if distinct(title) or len(rows) < 2:
        return title, title
    others = [name for name in targets if distinct(name)]
    return (title, max(others, key=lambda name: length[name])) if others else (title, title)


def _cell(cell: Selector, index: int, cells: SelectorList) -> str:
    """``td.<class>`` by a class no other cell of the row has, else ``td:nth-child(i)``."""
    for c in classes(cell):
        if re.match(r"^[A-Za-z_][\w-]*$", c) and sum(c in classes(o) for o in cells) == 1:
            return f"td.{c}"
    return f"td:nth-child({index})"


def id_rule(hrefs: list[str]) -> str:
    """``query:<param>`` when every link carries a known id parameter, or else one parameter
    whose values are numbers, distinct on every row; empty (a guess per row) otherwise."""
    counts: Counter[str] = Counter()
    for href in hrefs:
        query = [(k, v) for k, v in parse_qsl(urlsplit(href).query) if v]
        keys = {k.lower(): k for k, _ in query}
        for key in ID_PARAMS:
            if key in keys:
                counts[keys[key]] += 1
                break
    if counts and counts.most_common(1)[0][1] == len(hrefs):
        return "query:" + counts.most_common(1)[0][0]
    if param := distinct_param(hrefs):
        return "query:" + param
    return ""


def distinct_param(hrefs: list[str]) -> str:
    """The query parameter whose value differs on every link and holds a digit (``doc=2013/04/
    24-roads.htm``, ``bdid=77012``): the post's id when no known id parameter is there."""
    values: dict[str, list[str]] = {}
    for href in hrefs:
        for k, v in parse_qsl(urlsplit(href).query):
            if v:
                values.setdefault(k, []).append(v)
    for key, seen in values.items():
        if (
            len(hrefs) >= 2
            and len(seen) == len(hrefs)
            and len(set(seen)) == len(seen)
            and all(any(c.isdigit() for c in v) for v in seen)
        ):
            return key
    return ""


def list_rows(sel: Selector) -> str | None:
    """The children of the element with most children that link somewhere or show a date:
    ``ul.news > li``, ``div.cards > a``. Menus (links without dates) count for less."""
    best: tuple[float, str] | None = None
    for parent in sel.xpath("//ul | //ol | //div | //section | //main | //dl"):
        children = parent.xpath("./*")
        if len(children) < 2:
            continue
        linked = [c for c in children if has_link(c)]
        dated = [c for c in children if date_like(c)]
        if len(dated) < 2 and len(linked) < 3:
            continue
        score = len(linked) + 2 * len(dated)
        if best is not None and score <= best[0]:
            continue
        tag = Counter(c.root.tag for c in (dated or linked)).most_common(1)[0][0]
        best = (score, f"{unique_name(sel, parent)} > {tag}")
    return best[1] if best else None


def _simple(node: Selector) -> str:
    tag = node.root.tag
    if node.attrib.get("id") and re.match(r"^[A-Za-z][\w-]*$", node.attrib["id"]):
        return f"{tag}#{node.attrib['id']}"
    cls = [c for c in classes(node) if re.match(r"^[A-Za-z_][\w-]*$", c)]
    return tag + (f".{cls[0]}" if cls else "")


def unique_name(sel: Selector, node: Selector) -> str:
    """A CSS selector that matches ``node`` alone on the page: its own name, else under the
    nearest ancestor that names it apart (``div.view-press-releases div.view-content``)."""
    name = _simple(node)
    if len(sel.css(name)) == 1:
        return name
    for element in node.root.iterancestors():
        ancestor = Selector(root=element)
        if element.tag in ("html", "body"):
            break
        scoped = f"{_simple(ancestor)} {name}"
        if _simple(ancestor) != element.tag and len(sel.css(scoped)) == 1:
            return scoped
        for c in classes(ancestor)[1:]:
            scoped = f"{element.tag}.{c} {name}"
            if re.match(r"^[A-Za-z_][\w-]*$", c) and len(sel.css(scoped)) == 1:
                return scoped
    # one of several like it under the same parent: by its place among them
    parent = node.root.getparent()
    if parent is not None:
        same = [c for c in parent if getattr(c, "tag", None) == node.root.tag]
        place = same.index(node.root) + 1
        scoped = f"{_simple(Selector(root=parent))} > {name}:nth-of-type({place})"
        if len(sel.css(scoped)) == 1:
            return scoped
    return name
