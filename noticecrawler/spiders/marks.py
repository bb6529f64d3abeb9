"""What marks a row on real boards: pinned ("공지") marks, title noise, headings, the line
of a linkless row. Plain functions and patterns over parsel selectors."""

from __future__ import annotations

import re

from parsel import Selector

from noticecrawler.extract import clean_text

#: row classes that mark a pinned ("공지") row
PINNED_CLASS = re.compile(
    r"^(?:is[-_]?|bo_|row[-_]|list[-_])?(?:notice|noti|pinned|pin|fixed|sticky|top|important)"
    r"(?:[-_]?(?:row|item|tr|li|list|article))?$",
    re.IGNORECASE,
)
#: the whole text (or alt) of a badge or icon that marks a pinned row
BADGE = re.compile(r"^[\[(]?\s*(?:공지(?:사항)?|필독|중요|notice|pinned|sticky)\s*[\])]?$", re.I)
ICON_SRC = re.compile(
    r"(?:^|[/_-])(?:notice|icon_notice|ico_notice|noti)[\w-]*\.(?:gif|png|svg)", re.I
)
LINK = re.compile(r"<a\s[^>]*href\s*=\s*[\"']?(?!\s*(?:javascript|#))", re.IGNORECASE)
SEPARATOR = re.compile(r"\s+[–—-]+\s+|\s*[|·]\s*|:\s+")
YEAR = re.compile(r"\b((?:19|20)\d{2})\b")
#: inside a title element: what is not title (counts, dates, authors, badges, icons)
META_NOISE = (
    "contains(@class, 'count') or contains(@class, 'cnt') or contains(@class, 'hit')"
    " or contains(@class, 'view') or contains(@class, 'comment') or contains(@class, 'reply')"
    " or contains(@class, 'date') or contains(@class, 'time') or contains(@class, 'author')"
    " or contains(@class, 'writer') or contains(@class, 'meta') or contains(@class, 'info')"
    " or contains(@class, 'badge') or contains(@class, 'label') or contains(@class, 'sound_only')"
    " or contains(@class, 'blind') or contains(@class, 'cate') or self::time or self::img"
)
HEADING = "h1, h2, h3, h4, h5, h6, [class*=tit], [class*=subject], [class*=headline]"


def own_text(row: Selector) -> str:
    """The row's own text, without lists or blocks nested in it (``<li>…<ul><li>Cancelled``)."""
    nested = "self::ul or self::ol or self::table or self::div"
    return clean_text(row.xpath(f"./text() | ./*[not({nested})]//text()").getall())


def page_year(row: Selector) -> int | None:
    """The one year the heading just before the row's list names ("2026 Meeting Dates"): the
    year of the list's dates that leave it out."""
    heading = row.xpath(
        "../preceding-sibling::*[self::h1 or self::h2 or self::h3 or self::h4 or self::h5"
        " or self::h6][1]//text()"
    ).getall()
    years = set(YEAR.findall(" ".join(heading)))
    return int(years.pop()) if len(years) == 1 else None


def marked_pinned(row: Selector) -> bool:
    """Whether the row carries a pinned mark: a row class, a "공지"/notice badge or icon."""
    # the row's class, or its one wrapping child's (<div class="views-row"><article class=sticky>)
    wrappers = [row, *row.xpath("./*")[:1]] if len(row.xpath("./*")) == 1 else [row]
    for node in wrappers:
        if any(PINNED_CLASS.match(c) for c in (node.attrib.get("class") or "").split()):
            return True
    leaves = ".//*[not(self::a) and not(*) and not(ancestor-or-self::*[contains(@class, 'cate')])]"
    for node in row.xpath(f"{leaves} | .//img | .//i"):
        if node.root.tag in ("img", "i"):
            alt = clean_text([node.attrib.get("alt", ""), node.attrib.get("title", "")])
            if (alt and BADGE.match(alt)) or ICON_SRC.search(node.attrib.get("src", "")):
                return True
            continue
        text = clean_text(node.xpath(".//text()").getall())
        if text and len(text) <= 8 and BADGE.match(text):
            return True
    return False
