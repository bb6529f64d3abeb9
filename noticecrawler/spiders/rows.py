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
from typing import Any, ClassVar
from urllib.parse import urlsplit

from parsel import Selector, SelectorList
from scrapy.http import TextResponse

from noticecrawler.catalog import BoardDef
from noticecrawler.encoding import fix_encoding
from noticecrawler.extract import (
    canonical_url,
    clean_text,
    derive_id,
    first_text,
    query_pieces,
    select,
    select_first,
)
from noticecrawler.items import Attachment, Post
from noticecrawler.spiders.guess import (
    distinct_param,
    is_ad,
    list_rows,
    table_fields,
    table_rows,
)
from noticecrawler.spiders.ids import auto_id, keep_only, slug_id
from noticecrawler.spiders.marks import (
    BADGE,
    HEADING,
    LINK,
    META_NOISE,
    marked_pinned,
    own_text,
    page_year,
)
from noticecrawler.spiders.rowdates import DateReader


class RowReader(DateReader):
    required: ClassVar[tuple[str, ...]] = ("row", "title", "link", "id")
    url_params: ClassVar[tuple[str, ...]] = ()
    #: XPath predicate of elements inside a title link that are not title (comment counts,
    #: "new" icons, screen-reader labels); their text is left out
    title_noise: ClassVar[str] = ""
    #: whether the generic guess may stand in when the engine's own rows find no posts
    falls_back: ClassVar[bool] = True

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
                title=HEADING + ", strong, a",
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
        if link is None and LINK.search(row.get()):
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
        # the engine's own URL scheme keeps only its identity parameters; another scheme (a
        # page the generic guess reads for it) keeps what it has
        names = {name for name, _ in query_pieces(urlsplit(url).query)}
        return keep_only(url, self.url_params) if names & set(self.url_params) else url

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
        if node.root.tag == "a" and (heading := node.css(HEADING)):
            node = heading[0]
        elif node.root.tag == "a" and (line := self.card_line(node)):
            return line
        noise = " or ".join(f"({p})" for p in (self.title_noise, META_NOISE) if p)
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
            wordy = len(text) >= 2 and re.search(r"[^\W\d_]", text) and not BADGE.match(text)
            if wordy and self.quiet_date(text) is None:
                return text
        return ""

    def row_pinned(self, row: Selector) -> bool:
        if self.board.pinned:
            return bool(select(row, self.board.pinned))
        return marked_pinned(row)

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
