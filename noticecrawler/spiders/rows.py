"""RowReader: how a list page becomes posts. The hooks every engine may override live here; the
crawl around them (paging, storing, details) is in ``base.py`` and ``details.py``.

Defaults that hold on the markup real boards serve:

* rows: the engine's ``row`` selector; when the catalog row leaves ``row`` at the engine's default
  and the rows stand in several containers (a "best of" table beside the board's own), only the
  container with most rows counts; when the default finds fewer than two posts, the generic
  guess (``guess.py``) is tried behind it;
* pinned only when marked: a ``pinned`` selector, a row class (``notice``, ``bo_notice``,
  ``sticky`` …), a "공지"/notice badge or icon in the row (engines add their own marks);
* the title from the title element: a link wrapping a whole card gives its heading, and the
  card's counts, dates and authors never reach the title;
* a row without a link but with a title and a date is a post (agenda, minutes), keyed by a
  digest of its title and date text, its URL the list page;
* the date's full form when the row holds one (a ``title`` attribute over ``22:18:06``), and a
  date with its year found in the row's loose text when the date selector finds nothing.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import replace
from datetime import datetime
from typing import Any, ClassVar

import scrapy
from parsel import Selector, SelectorList
from scrapy.http import TextResponse

from noticecrawler.catalog import BoardDef
from noticecrawler.dates import find_board_date, parse_board_date
from noticecrawler.encoding import fix_encoding
from noticecrawler.extract import (
    canonical_url,
    clean_text,
    derive_id,
    first_text,
    select,
    select_first,
)
from noticecrawler.items import Attachment, Post
from noticecrawler.spiders.guess import (
    DATE_LIKE,
    date_column,
    distinct_param,
    is_ad,
    list_rows,
    table_fields,
    table_rows,
)
from noticecrawler.spiders.ids import auto_id, keep_only, slug_id

#: row classes that mark a pinned ("공지") row
_PINNED_CLASS = re.compile(
    r"^(?:is[-_]?|bo_|row[-_]|list[-_])?(?:notice|noti|pinned|pin|fixed|sticky|top|important)"
    r"(?:[-_]?(?:row|item|tr|li|list|article))?$",
    re.IGNORECASE,
)
#: the whole text (or alt) of a badge or icon that marks a pinned row
_BADGE = re.compile(r"^[\[(]?\s*(?:공지(?:사항)?|필독|중요|notice|pinned|sticky)\s*[\])]?$", re.I)
_ICON_SRC = re.compile(
    r"(?:^|[/_-])(?:notice|icon_notice|ico_notice|noti)[\w-]*\.(?:gif|png|svg)", re.I
)
_LINK = re.compile(r"<a\s[^>]*href\s*=\s*[\"']?(?!\s*(?:javascript|#))", re.IGNORECASE)
_SEPARATOR = re.compile(r"\s+[–—-]+\s+|\s*[|·]\s*|:\s+")
_YEAR = re.compile(r"\b((?:19|20)\d{2})\b")
#: inside a title element: what is not title (counts, dates, authors, badges, icons)
_META_NOISE = (
    "contains(@class, 'count') or contains(@class, 'cnt') or contains(@class, 'hit')"
    " or contains(@class, 'view') or contains(@class, 'comment') or contains(@class, 'reply')"
    " or contains(@class, 'date') or contains(@class, 'time') or contains(@class, 'author')"
    " or contains(@class, 'writer') or contains(@class, 'meta') or contains(@class, 'info')"
    " or contains(@class, 'badge') or contains(@class, 'label') or contains(@class, 'sound_only')"
    " or contains(@class, 'blind') or contains(@class, 'cate') or self::time or self::img"
)
_HEADING = "h1, h2, h3, h4, h5, h6, [class*=tit], [class*=subject], [class*=headline]"


class RowReader(scrapy.Spider):
    board: BoardDef  # set on each board's spider class (spiders/loader.py)
    defaults: ClassVar[dict[str, Any]] = {}
    required: ClassVar[tuple[str, ...]] = ("row", "title", "link", "id")
    url_params: ClassVar[tuple[str, ...]] = ()
    #: XPath predicate of elements inside a title link that are not title (comment counts,
    #: "new" icons, screen-reader labels); their text is left out
    title_noise: ClassVar[str] = ""
    #: whether the generic guess may stand in when the engine's own rows find no posts
    falls_back: ClassVar[bool] = True

    clock: Any
    #: whether the rows are the generic guess's (the engine's own found too few)
    row_guessed = False
    #: the query parameter that carries the id on this page when no rule says (prepare_rows)
    id_param = ""

    # --- the page ----------------------------------------------------------------------------
    def extract_posts(self, response: TextResponse) -> list[Post]:
        """Every post of a list page (pinned ones included), as the page shows them."""
        return self.page_posts(fix_encoding(response))[1]

    def page_posts(self, response: TextResponse) -> tuple[SelectorList, list[Post]]:
        """The rows and the posts of a list page; the generic guess stands in behind an
        engine whose default rows give fewer than two posts."""
        rows = self.rows(response)
        posts = self.posts_from_rows(rows, response)
        if len(posts) < 2 and self.falls_back and self.uses_default("row"):
            guessed = self.generic_board(response)
            if guessed is not None:
                mine = self.board
                self.board, self.row_guessed = guessed, True
                more_rows = self.rows(response)
                more = self.posts_from_rows(more_rows, response)
                if len(more) > len(posts):
                    self.count("rows/generic_fallback")
                    return more_rows, more
                self.board, self.row_guessed = mine, False
        return rows, posts

    def uses_default(self, key: str) -> bool:
        return getattr(self.board, key) == type(self).defaults.get(key, getattr(self.board, key))

    def generic_board(self, response: TextResponse) -> BoardDef | None:
        """The board with the rows, title, date and id the generic guess finds on the page."""
        sel = Selector(text=response.text)
        found = table_rows(sel)
        if found is not None:
            row, rows = found
            return replace(self.board, row=row, **table_fields(rows))
        items = list_rows(sel)
        if items is not None:
            return replace(
                self.board,
                row=items,
                title=_HEADING + ", strong, a",
                link="a[href]",
                id="",
            )
        return None

    def posts_from_rows(self, rows: SelectorList, response: TextResponse) -> list[Post]:
        """The posts of the rows, each once: a pinned post repeated as a regular row further
        down keeps its first place and stays pinned."""
        self.prepare_rows(rows)
        posts: dict[str, Post] = {}
        for row in rows:
            post = self.post_from_row(row, response)
            if post is None:
                continue
            if post.post_id in posts:
                posts[post.post_id].pinned |= post.pinned
                self.count("rows/repeated")
                continue
            posts[post.post_id] = post
        return list(posts.values())

    def prepare_rows(self, rows: SelectorList) -> None:
        """Hook: look at the page's rows together before reading them one by one. Without an
        ``id`` rule, a query parameter that differs on every row's link is the id."""
        self.id_param = ""
        if not self.board.id:
            links = [(row, self.row_link(row)) for row in rows]
            hrefs = [self.row_href(row, link) for row, link in links if link is not None]
            known = [h for h in hrefs if auto_id(h, Selector(text="<a/>"), Selector(text="<a/>"))]
            if len(known) < len(hrefs):
                self.id_param = distinct_param(hrefs)

    def rows(self, response: TextResponse) -> SelectorList:
        found = select(response, self.board.row)
        if len(found) < 2 or not (self.uses_default("row") or self.row_guessed):
            return found
        # rows in several containers: the board's own is the one with most rows
        groups: dict[Any, list[Selector]] = {}
        for row in found:
            parent = row.root.getparent()
            if getattr(row.root, "tag", None) == "tr":
                parent = next(row.root.iterancestors("table"), parent)
            groups.setdefault(parent, []).append(row)
        if len(groups) == 1:
            return found
        biggest: list[Selector] = max(groups.values(), key=lambda rows: len(rows))
        return SelectorList(biggest)

    # --- one row -----------------------------------------------------------------------------
    def post_from_row(self, row: Selector, response: TextResponse) -> Post | None:
        board = self.board
        link = self.row_link(row)
        if link is None and _LINK.search(row.get()):
            self.count("rows/skipped")  # a link the selectors miss: not a linkless row
            return None
        if link is None:
            return self.linkless_post(row, response)
        href = self.row_href(row, link)
        post_id = self.row_id(row, link, href)
        title = self.title_of(link) if self.title_is_link(row, link) else self.row_title(row)
        if not post_id or not title:
            self.count("rows/skipped")
            return None
        published, source = self.row_date(row, response), "list"
        if published is None and not self.lists_dates():
            published, source = self.clock(), "first_seen"
        return Post(
            board=board.name,
            post_id=post_id,
            title=title,
            url=self.post_url(response, href, post_id),
            author=self.row_author(row) or None,
            published=published,
            published_source=source,
            category=self.row_category(row) or None,
            pinned=self.row_pinned(row),
            attachments=self.row_attachments(row, response),
        )

    def linkless_post(self, row: Selector, response: TextResponse) -> Post | None:
        """A row without a link (an agenda, minutes) is a post when it shows a title and a
        date: its id is a digest of both texts, its URL the list page. A row that is one
        line of text, ``January 21st, 8:30am – Commission meeting``, splits at the dash."""
        year = page_year(row)
        title, when = self.row_title(row), self.date_text(row)
        published = self.quiet_date(when, year) if when else None
        if published is None:
            for text in (own_text(row), when):
                if split := self.split_dated(text, year):
                    when, rest, published = split
                    title = title or rest
                    break
        title = title or self.loose_title(row)
        if not title or published is None or is_ad(row):
            self.count("rows/no_link")
            return None
        digest = hashlib.sha1(f"{title}\n{when}".encode()).hexdigest()[:16]
        return Post(
            board=self.board.name,
            post_id=f"t{digest}",
            title=title,
            url=canonical_url(response.url, ""),
            author=self.row_author(row) or None,
            published=published,
            published_source="list",
            category=self.row_category(row) or None,
            pinned=self.row_pinned(row),
        )

    def title_is_link(self, row: Selector, link: Selector) -> bool:
        """Whether the post's link is its title: the same selectors, or a title element that
        holds the link with other things (a category label, a count) beside it."""
        if link is row:
            return False
        if self.board.title == self.board.link:
            return True
        found = select_first(row, self.board.title)
        if not found or not hasattr(found[0].root, "tag"):
            return False
        return any(link.root is node for node in found[0].root.iterdescendants())

    def split_dated(self, text: str, year: int | None) -> tuple[str, str, datetime] | None:
        """``(date text, the rest, the date)`` of a line that is a date and a title joined by
        a dash, a bar or a colon, either way round."""
        for sep in _SEPARATOR.finditer(text):
            left, right = text[: sep.start()].strip(), text[sep.end() :].strip()
            for when, rest in ((left, right), (right, left)):
                if rest and (found := self.quiet_date(when, year)) is not None:
                    return when, rest, found
        return None

    def loose_title(self, row: Selector) -> str:
        """The longest text of a linkless row that is not its date."""
        when = self.date_text(row)
        texts = [clean_text([t]) for t in row.xpath(".//text()").getall()]
        texts = [t for t in texts if t and t != when and self.quiet_date(t) is None]
        return max(texts, key=lambda t: len(t)) if texts else ""

    def row_link(self, row: Selector) -> Selector | None:
        links = select_first(row, self.board.link)
        if len(links) > 1:
            # a category link before the title, a comment count after it: the post's link is
            # the one that carries an id, the longest text first
            def weight(a: Selector) -> tuple[bool, int]:
                href = self.row_href(row, a)
                return (bool(self.row_id(row, a, href)), len(clean_text(a.css("::text").getall())))

            return max(links, key=weight)
        if links:
            return links[0]
        if getattr(row.root, "tag", None) == "a" and row.attrib.get("href"):
            return row  # the link wraps the whole row
        return None

    def row_href(self, row: Selector, link: Selector) -> str:
        return (link.attrib.get("href") or "").strip()

    def row_id(self, row: Selector, link: Selector, href: str) -> str | None:
        if self.board.id:
            return derive_id(self.board.id, href, link, row)
        if self.id_param and (found := derive_id(f"query:{self.id_param}", href, link, row)):
            return found
        return auto_id(href, link, row) or slug_id(href)

    def post_url(self, response: TextResponse, href: str, post_id: str) -> str:
        if self.board.detail_url:
            return self.board.detail_url.replace("{id}", post_id)
        if not href or href.lower().startswith("javascript") or href.startswith("#"):
            return canonical_url(response.url, "")
        url = canonical_url(response.url, href, self.board.keep_params)
        return keep_only(url, self.url_params) if self.url_params else url

    def lists_dates(self) -> bool:
        """Whether the list shows dates (else posts take the first-seen time, marked so)."""
        return bool(self.board.date)

    def row_author(self, row: Selector) -> str:
        return first_text(row, self.board.author)

    def row_category(self, row: Selector) -> str:
        return first_text(row, self.board.category)

    def row_title(self, row: Selector) -> str:
        found = select_first(row, self.board.title)
        if not found and getattr(row.root, "tag", None) == "a":
            found = SelectorList([row])
        if not found:
            return ""
        if self.board.title.endswith(("::text", "/text()")) or not hasattr(found[0].root, "tag"):
            return clean_text(found[:1].getall())
        return self.title_of(found[0])

    def title_of(self, node: Selector) -> str:
        """The title text of a title element, without counts, dates, badges and labels."""
        # a link wrapping a whole card: its heading is the title, else its first line of text
        # that is not a date, a number or a label
        if node.root.tag == "a" and (heading := node.css(_HEADING)):
            node = heading[0]
        elif node.root.tag == "a" and (line := self.card_line(node)):
            return line
        noise = " or ".join(f"({p})" for p in (self.title_noise, _META_NOISE) if p)
        # a count after a screen-reader label: <span class="sound_only">댓글</span>12
        counted = "preceding-sibling::*[1][contains(@class, 'sound_only') or @class='blind']"
        texts = node.xpath(f".//text()[not(ancestor::*[{noise}]) and not({counted})]").getall()
        return clean_text(texts) or clean_text(node.xpath(".//text()").getall())

    def card_line(self, link: Selector) -> str:
        """The first real line of a link that wraps a card (three or more texts in elements of
        their own), or "" for an ordinary title link."""
        texts = [clean_text([t]) for t in link.xpath(".//*//text()").getall()]
        texts = [t for t in texts if t]
        if len(texts) < 3:
            return ""
        for text in texts:
            wordy = len(text) >= 2 and re.search(r"[^\W\d_]", text) and not _BADGE.match(text)
            if wordy and self.quiet_date(text) is None:
                return text
        return ""

    def row_pinned(self, row: Selector) -> bool:
        if self.board.pinned:
            return bool(select(row, self.board.pinned))
        return marked_pinned(row)

    # --- dates -------------------------------------------------------------------------------
    def date_text(self, row: Selector) -> str:
        """The row's date as written: the date element's text, or its ``title``/``datetime``
        attribute when that holds the fuller form."""
        if not self.board.date:
            return ""
        found = select_first(row, self.board.date)
        if not found:
            return ""
        if not hasattr(found[0].root, "tag"):  # ::attr() / ::text
            return clean_text(found[:1].getall())
        return self.fullest_date(found[0])

    def fullest_date(self, node: Selector) -> str:
        """The date text of ``node``, or its ``title``/``datetime`` attribute (or a child's)
        when that writes the same moment more fully: ``<td title="26.07.28 22:18:06">22:18:06``,
        ``<span title="2025년 03월 02일 10시 04분 51초">2025/03/02``."""
        text = clean_text(node.xpath(".//text()").getall())
        shown = self.quiet_date(text) if text else None
        for attr in node.xpath("./@title | ./@datetime | .//*/@title | .//*/@datetime").getall():
            full = clean_text([attr])
            if len(full) <= len(text) or (when := self.quiet_date(full)) is None:
                continue
            if shown is None or when.date() == shown.date() or when.time() == shown.time():
                return full
        return text

    def row_date(self, row: Selector, response: TextResponse) -> datetime | None:
        text = self.date_text(row)
        guessing = bool(self.board.date) and self.uses_default("date")
        if text and not guessing:
            return self.parse_date(text, response)
        if text and (found := self.quiet_date(text)) is not None:
            return found
        if guessing:
            # no date element (or one the defaults took by mistake, <i class="date">17 Nov):
            # a short element that reads as a date, else a full date in the row's loose text
            column = date_column(row) if getattr(row.root, "tag", None) == "tr" else 0
            cell = row.xpath(f"./td[{column}]") if column else None
            if cell and (found := self.quiet_date(self.fullest_date(cell[0]))) is not None:
                return found
            for attr in row.xpath(".//@datetime | .//@content").getall():
                if DATE_LIKE.search(attr) and (found := self.quiet_date(attr)) is not None:
                    return found
            title = self.row_title(row)
            leaves = [clean_text([t]) for t in row.xpath(".//text()").getall()]
            for leaf in (t for t in leaves if t != title and len(t) <= 30 and DATE_LIKE.search(t)):
                found = self.quiet_date(leaf)
                if found is not None:
                    return found
            loose = clean_text(row.xpath(".//text()").getall()).replace(title, " ")
            return find_board_date(loose, self.board.zone, now=self.clock())
        return None

    def quiet_date(self, text: str, year: int | None = None) -> datetime | None:
        try:
            return parse_board_date(text, self.board.zone, now=self.clock(), year=year)
        except ValueError:
            return None

    def parse_date(self, text: str, response: TextResponse) -> datetime | None:
        if not text:
            return None
        try:
            return parse_board_date(text, self.board.zone, now=self.clock())
        except ValueError as e:
            self.count("rows/bad_date")
            self.logger.warning("board `%s`: %s on %s", self.board.name, e, response.url)
            return None

    # --- attachments -------------------------------------------------------------------------
    def row_attachments(self, row: Selector, response: TextResponse) -> list[Attachment]:
        return self.attachments_in(row, self.board.attachments, response)

    @staticmethod
    def attachments_in(
        node: Selector | TextResponse, query: str, response: TextResponse
    ) -> list[Attachment]:
        if not query:
            return []
        found = []
        for a in select(node, query):
            href = a.attrib.get("href")
            name = clean_text(a.xpath(".//text()").getall()) or a.attrib.get("title", "")
            if href and name:
                found.append(Attachment(name=name, url=response.urljoin(href)))
        return found

    def count(self, key: str) -> None:
        stats = getattr(getattr(self, "crawler", None), "stats", None)
        if stats is not None:
            stats.inc_value(f"noticecrawler/{key}")


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
    years = set(_YEAR.findall(" ".join(heading)))
    return int(years.pop()) if len(years) == 1 else None


def marked_pinned(row: Selector) -> bool:
    """Whether the row carries a pinned mark: a row class, a "공지"/notice badge or icon."""
    # the row's class, or its one wrapping child's (<div class="views-row"><article class=sticky>)
    wrappers = [row, *row.xpath("./*")[:1]] if len(row.xpath("./*")) == 1 else [row]
    for node in wrappers:
        if any(_PINNED_CLASS.match(c) for c in (node.attrib.get("class") or "").split()):
            return True
    leaves = ".//*[not(self::a) and not(*) and not(ancestor-or-self::*[contains(@class, 'cate')])]"
    for node in row.xpath(f"{leaves} | .//img | .//i"):
        if node.root.tag in ("img", "i"):
            alt = clean_text([node.attrib.get("alt", ""), node.attrib.get("title", "")])
            if (alt and _BADGE.match(alt)) or _ICON_SRC.search(node.attrib.get("src", "")):
                return True
            continue
        text = clean_text(node.xpath(".//text()").getall())
        if text and len(text) <= 8 and _BADGE.match(text):
            return True
    return False
