"""BoardSpider: the base of every board engine.

A board is a :class:`~noticecrawler.catalog.BoardDef` (one catalog entry). The spider reads the
board's list pages newest first, turns each row into a :class:`~noticecrawler.items.Post`, and
pages on only while a page still holds posts the database has not seen (at most
``first_crawl_max_pages`` on a board's first crawl, ``max_pages`` after).

Engine (subclass) attributes:
    defaults:  BoardDef field defaults for this board software (selectors, id rule, paging).
    required:  BoardDef fields a board of this engine must end up with.

Hooks an engine may override:
    rows(response)              -> the row nodes of a list page
    post_from_row(row, resp)    -> a Post, or None for a row that is not a post
    row_title(row)              -> the title text (engines strip comment counts, badges …)
    row_pinned(row)             -> whether the row is a pinned notice
    next_page_url(resp, page)   -> URL of the page after ``page``, or None
    parse_detail(resp, post)    -> fill a Post from its detail page
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any, ClassVar

import scrapy
from parsel import Selector, SelectorList
from scrapy.exceptions import CloseSpider
from scrapy.http import Response, TextResponse

from noticecrawler.catalog import BoardDef
from noticecrawler.dates import parse_board_date
from noticecrawler.encoding import fix_encoding
from noticecrawler.extract import canonical_url, clean_text, derive_id, select, text_of, with_query
from noticecrawler.items import Attachment, Post
from noticecrawler.pages import PageTracker

logger = logging.getLogger(__name__)

LIST_META = "noticecrawler_list"


class BoardSpider(scrapy.Spider):
    board: ClassVar[BoardDef]
    defaults: ClassVar[dict[str, Any]] = {}
    required: ClassVar[tuple[str, ...]] = ("row", "title", "link", "id")

    def __init__(self, *args: Any, **kwargs: Any):
        # scrapyd passes _job (and maybe other bookkeeping) as spider arguments
        self.job = kwargs.pop("_job", None)
        super().__init__(*args, **kwargs)
        self.emitted: set[str] = set()
        self.first_crawl = True
        self.clock = lambda: datetime.now(self.board.zone)

    # --- paging ----------------------------------------------------------------------------
    def page_limit(self) -> int:
        settings = self.crawler.settings if hasattr(self, "crawler") else None
        if self.first_crawl:
            return self.board.first_crawl_max_pages or (
                settings.getint("NOTICECRAWLER_FIRST_CRAWL_MAX_PAGES", 3) if settings else 3
            )
        return self.board.max_pages or (
            settings.getint("NOTICECRAWLER_MAX_PAGES", 10) if settings else 10
        )

    def list_request(self, url: str, page: int) -> scrapy.Request:
        # the cache policy (httpcache.RevalidatingPolicy) revalidates every list request
        return scrapy.Request(
            url,
            callback=self.parse,
            errback=self.list_failed,
            cb_kwargs={"page": page},
            meta={LIST_META: True},
            dont_filter=True,
        )

    async def start(self) -> AsyncIterator[Any]:
        yield self.list_request(self.board.start_url, 1)

    async def parse(self, response: Response, page: int = 1) -> AsyncIterator[Any]:
        stats = self.crawler.stats
        assert stats is not None
        stats.inc_value("noticecrawler/pages")
        if not isinstance(response, TextResponse):
            kind = response.headers.get("Content-Type")
            self.fail_board(f"list page {response.url} is not text ({kind!r})")
        response = fix_encoding(response)
        rows = self.rows(response)
        posts = self.posts_from_rows(rows, response)
        if not rows and page == 1:
            self.fail_board(
                f"row selector `{self.board.row}` matched 0 rows on {response.url}", "empty_list"
            )
        if rows and not posts and page == 1:
            self.fail_board(
                f"{len(rows)} rows matched `{self.board.row}` on {response.url} but none had a "
                f"post id (link `{self.board.link}`, id `{self.board.id}`)",
                "no_posts",
            )
        fresh = [p for p in posts if p.post_id not in self.emitted]
        self.emitted.update(p.post_id for p in fresh)
        tracker = self.crawler.get_extension(PageTracker)
        batch = tracker.expect(response.url, len(fresh)) if tracker is not None else None
        for post in fresh:
            post.list_url = response.url
            yield post
        statuses = await batch.done if batch is not None else {p.post_id: "new" for p in fresh}
        regular = [p for p in posts if not p.pinned]
        for post in fresh:
            if statuses.get(post.post_id) == "new" and self.board.follow_details:
                yield self.detail_request(post)
        if not regular:
            stats.inc_value("noticecrawler/paging/end_of_board")
            return
        # newest first: once the page's oldest regular row is known, so is everything after it
        if statuses.get(regular[-1].post_id, "seen") != "new":
            stats.inc_value("noticecrawler/paging/stopped_at_known")
            return
        if page >= self.page_limit():
            stats.inc_value("noticecrawler/paging/page_limit")
            return
        next_url = self.next_page_url(response, page)
        if next_url:
            yield self.list_request(next_url, page + 1)

    def next_page_url(self, response: TextResponse, page: int) -> str | None:
        kind, _, arg = self.board.next.partition(":")
        if kind == "param":
            return with_query(self.board.start_url, **{arg: page + 1})
        if kind == "link":
            href = select(response, arg).attrib.get("href") or select(response, arg).get()
            if href and not href.lower().startswith("javascript"):
                return response.urljoin(href)
        return None

    # --- rows ------------------------------------------------------------------------------
    def extract_posts(self, response: TextResponse) -> list[Post]:
        """Every post of a list page (pinned ones included), as the page shows them."""
        response = fix_encoding(response)
        return self.posts_from_rows(self.rows(response), response)

    def posts_from_rows(self, rows: SelectorList, response: TextResponse) -> list[Post]:
        return [p for p in (self.post_from_row(row, response) for row in rows) if p is not None]

    def rows(self, response: TextResponse) -> SelectorList:
        return select(response, self.board.row)

    def post_from_row(self, row: Selector, response: TextResponse) -> Post | None:
        board = self.board
        links = select(row, board.link)
        link = links[0] if links else None
        href = "" if link is None else (link.attrib.get("href") or "")
        post_id = derive_id(board.id, href, link, row)
        title = self.row_title(row)
        if not post_id or not title:
            self.crawler.stats.inc_value("noticecrawler/rows/skipped")  # type: ignore[union-attr]
            return None
        if board.detail_url:
            url = board.detail_url.replace("{id}", post_id)
        elif href and not href.lower().startswith("javascript"):
            url = canonical_url(response.url, href, board.keep_params)
        else:
            url = canonical_url(response.url, "")
        return Post(
            board=board.name,
            post_id=post_id,
            title=title,
            url=url,
            author=text_of(row, board.author) or None,
            published=self.row_date(row, response),
            published_source="list" if board.date else "first_seen",
            category=text_of(row, board.category) or None,
            pinned=self.row_pinned(row),
            attachments=self.row_attachments(row, response),
        )

    def row_title(self, row: Selector) -> str:
        return text_of(row, self.board.title)

    def row_pinned(self, row: Selector) -> bool:
        if self.board.pinned:
            return bool(select(row, self.board.pinned))
        return False

    def row_date(self, row: Selector, response: TextResponse) -> datetime | None:
        text = text_of(row, self.board.date)
        if not text:
            return None if self.board.date else self.clock()
        try:
            return parse_board_date(text, self.board.zone, now=self.clock())
        except ValueError as e:
            self.crawler.stats.inc_value("noticecrawler/rows/bad_date")  # type: ignore[union-attr]
            self.logger.warning("board `%s`: %s on %s", self.board.name, e, response.url)
            return None

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

    # --- details ---------------------------------------------------------------------------
    def detail_request(self, post: Post) -> scrapy.Request:
        return scrapy.Request(
            post.url,
            callback=self.parse_detail_page,
            cb_kwargs={"post": post},
            meta={"dont_cache": True},
        )

    def parse_detail_page(self, response: Response, post: Post) -> Any:
        if isinstance(response, TextResponse):
            yield self.parse_detail(fix_encoding(response), post)

    def parse_detail(self, response: TextResponse, post: Post) -> Post:
        """Fill ``post`` from its detail page; the item goes through the pipelines again."""
        board = self.board
        if board.detail_body:
            post.body = text_of(response, board.detail_body) or None
        if board.detail_date and (text := text_of(response, board.detail_date)):
            try:
                post.published = parse_board_date(text, board.zone, now=self.clock())
                post.published_source = "detail"
            except ValueError:
                pass
        if board.detail_attachments:
            post.attachments = self.attachments_in(response, board.detail_attachments, response)
        post.list_url = None
        return post

    # --- errors ----------------------------------------------------------------------------
    def fail_board(self, message: str, reason: str = "board_error") -> None:
        """Log once with the board name, count it, and end the crawl with ``reason``."""
        stats = self.crawler.stats
        assert stats is not None
        stats.inc_value(f"noticecrawler/errors/{reason}")
        stats.set_value("noticecrawler/error_detail", f"board `{self.board.name}`: {message}")
        self.logger.error("board `%s`: %s", self.board.name, message)
        raise CloseSpider(reason)

    def list_failed(self, failure: Any) -> None:
        request = failure.request
        stats = self.crawler.stats
        assert stats is not None
        stats.inc_value("noticecrawler/errors/list_request")
        detail = f"list page {request.url} failed: {failure.getErrorMessage()}"
        stats.set_value("noticecrawler/error_detail", f"board `{self.board.name}`: {detail}")
        self.logger.error("board `%s`: %s", self.board.name, detail)
