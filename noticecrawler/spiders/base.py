"""BoardSpider: the base of every board engine.

A board is a :class:`~noticecrawler.catalog.BoardDef` (one catalog entry). The spider reads the
board's list pages newest first, turns each row into a :class:`~noticecrawler.items.Post`, and
pages on only while a page still holds posts the database has not seen (at most
``first_crawl_max_pages`` on a board's first crawl, ``max_pages`` after). With
``follow_details`` each NEW post's detail page is read too (body, exact time, attachments); with
``check_edits`` the detail pages of known posts as well, so that an edited body is noticed.

Engine (subclass) attributes:
    defaults:    BoardDef field defaults for this board software (selectors, id rule, paging).
    required:    BoardDef fields a board of this engine must end up with.
    url_params:  when set, the only query parameters a post URL keeps (e.g. ``("id", "no")``).
    title_noise: XPath predicate of elements inside the title link whose text is not title
                 (comment counts, "new" icons, screen-reader labels).

Hooks an engine may override:
    rows(response)                  -> the row nodes of a list page
    post_from_row(row, resp)        -> a Post, or None for a row that is not a post
    row_link(row)                   -> the row's link node (None: the row is skipped, counted)
    row_href(row, link)             -> the link's target
    row_id(row, link, href)         -> the post id (``id`` rule; empty rule: a guess, see auto_id)
    row_title(row)                  -> the title text (engines strip comment counts, badges …)
    row_pinned(row)                 -> whether the row is a pinned notice
    row_date(row, resp)             -> the published time (None when the row shows none)
    lists_dates()                   -> whether rows show dates at all (else: first-seen time)
    row_author(row), row_category(row)  -> author and category text
    post_url(resp, href, post_id)   -> the absolute post URL
    next_page_url(resp, page)       -> URL of the page after ``page``, or None
    parse_detail(resp, post)        -> fill a Post from its detail page

Contracts: every enabled board's spider gets a ``check_list`` method whose docstring holds
``scrapy check`` contracts against its start URL (see docs/engines.md).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import Any, ClassVar

import scrapy
from parsel import Selector, SelectorList
from scrapy.exceptions import CloseSpider, DownloadTimeoutError
from scrapy.http import Response, TextResponse
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.internet import error as net_error

from noticecrawler.catalog import BoardDef, CatalogError
from noticecrawler.dates import parse_board_date
from noticecrawler.encoding import fix_encoding
from noticecrawler.extract import (
    canonical_url,
    clean_text,
    derive_id,
    is_xpath,
    select,
    text_of,
    with_query,
)
from noticecrawler.items import Attachment, Post
from noticecrawler.pages import PageTracker, StoreFailed
from noticecrawler.politeness import EndsCrawl
from noticecrawler.spiders.details import DetailsMixin, page_ids
from noticecrawler.spiders.ids import auto_id, keep_only

logger = logging.getLogger(__name__)

LIST_META = "noticecrawler_list"


class BoardSpider(DetailsMixin, scrapy.Spider):
    board: ClassVar[BoardDef]
    defaults: ClassVar[dict[str, Any]] = {}
    required: ClassVar[tuple[str, ...]] = ("row", "title", "link", "id")
    url_params: ClassVar[tuple[str, ...]] = ()
    #: XPath predicate of elements inside a title link that are not title (comment counts,
    #: "new" icons, screen-reader labels); their text is left out
    title_noise: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        board = cls.__dict__.get("board")
        if board is None:
            return
        for key in cls.required:
            if not getattr(board, key):
                raise CatalogError(board.name, key, f"is required by engine `{board.engine}`")
        if board.enabled:
            cls.check_list = _contract_method(board)  # type: ignore[attr-defined]

    def __init__(self, *args: Any, **kwargs: Any):
        # scrapyd passes _job (and maybe other bookkeeping) as spider arguments
        self.job = kwargs.pop("_job", None)
        super().__init__(*args, **kwargs)
        self.emitted: set[str] = set()
        self.first_crawl = True
        #: the board's last run did not finish (killed, failed mid-paging): pages on past known
        #: rows, up to the page limit, so posts of pages that run never stored are not lost
        self.catch_up = False
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
                f"post id (link `{self.board.link}`, id `{self.board.id or 'auto'}`)",
                "no_posts",
            )
        fresh = [p for p in posts if p.post_id not in self.emitted]
        self.emitted.update(p.post_id for p in fresh)
        tracker = self.crawler.get_extension(PageTracker)
        statuses: dict[str, str] = {}
        # a batch waits in the pipelines until it is whole, so it must fit CONCURRENT_ITEMS
        size = max(1, self.crawler.settings.getint("CONCURRENT_ITEMS", 100) // 2)
        for start in range(0, len(fresh), size):
            chunk = fresh[start : start + size]
            batch = tracker.expect(response.url, len(chunk)) if tracker is not None else None
            if batch is not None and start == 0 and "cached" not in response.flags:
                # read in full (not a 304): the store marks posts the page no longer shows
                batch.page_ids = page_ids(posts)
            for post in chunk:
                post.list_url = response.url
                yield post
            try:
                statuses.update(
                    await batch.done if batch is not None else {p.post_id: "new" for p in chunk}
                )
            except StoreFailed as exc:  # already logged by the store pipeline
                self.end_crawl(str(exc), "store_failed")
        revalidated = "cached" in response.flags  # a 304: no detail page changed either
        for post in fresh:
            if self.wants_detail(statuses.get(post.post_id), post, revalidated):
                yield self.detail_request(post)
        regular = [p for p in posts if not p.pinned]
        if not regular:
            stats.inc_value("noticecrawler/paging/end_of_board")
            return
        # newest first: once the page's oldest regular row is known, so is everything after it
        if statuses.get(regular[-1].post_id, "seen") != "new" and not self.catch_up:
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
            found = select(response, arg)
            href = found.attrib.get("href") or found.get()
            if href and not href.lower().startswith("javascript"):
                return response.urljoin(href)
        return None

    # --- rows ------------------------------------------------------------------------------
    def extract_posts(self, response: TextResponse) -> list[Post]:
        """Every post of a list page (pinned ones included), as the page shows them."""
        response = fix_encoding(response)
        return self.posts_from_rows(self.rows(response), response)

    def posts_from_rows(self, rows: SelectorList, response: TextResponse) -> list[Post]:
        """The posts of the rows, each once: a pinned post repeated as a regular row further
        down keeps its first place and stays pinned."""
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

    def rows(self, response: TextResponse) -> SelectorList:
        return select(response, self.board.row)

    def post_from_row(self, row: Selector, response: TextResponse) -> Post | None:
        board = self.board
        link = self.row_link(row)
        if link is None:
            self.count("rows/no_link")
            return None
        href = self.row_href(row, link)
        post_id = self.row_id(row, link, href)
        title = self.row_title(row)
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

    def row_link(self, row: Selector) -> Selector | None:
        links = select_first(row, self.board.link)
        if links:
            return links[0]
        if getattr(row.root, "tag", None) == "a":
            return row  # the link wraps the whole row
        return None

    def row_href(self, row: Selector, link: Selector) -> str:
        return (link.attrib.get("href") or "").strip()

    def row_id(self, row: Selector, link: Selector, href: str) -> str | None:
        if self.board.id:
            return derive_id(self.board.id, href, link, row)
        return auto_id(href, link, row)

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
        if not self.title_noise:
            return first_text(row, self.board.title)
        links = select_first(row, self.board.title)
        if not links:
            return ""
        noise = f".//text()[not(ancestor::*[{self.title_noise}])]"
        return clean_text(links[0].xpath(noise).getall())

    def row_pinned(self, row: Selector) -> bool:
        if self.board.pinned:
            return bool(select(row, self.board.pinned))
        return False

    def row_date(self, row: Selector, response: TextResponse) -> datetime | None:
        return self.parse_date(text_of(row, self.board.date), response)

    def parse_date(self, text: str, response: TextResponse) -> datetime | None:
        if not text:
            return None
        try:
            return parse_board_date(text, self.board.zone, now=self.clock())
        except ValueError as e:
            self.count("rows/bad_date")
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

    # --- errors ----------------------------------------------------------------------------
    def count(self, key: str) -> None:
        stats = getattr(getattr(self, "crawler", None), "stats", None)
        if stats is not None:
            stats.inc_value(f"noticecrawler/{key}")

    def fail_board(self, message: str, reason: str = "board_error") -> None:
        """Log once with the board name, count it, and end the crawl with ``reason``."""
        self.logger.error("board `%s`: %s", self.board.name, message)
        self.end_crawl(f"board `{self.board.name}`: {message}", reason)

    def end_crawl(self, detail: str, reason: str) -> None:
        """Count the error, keep its detail for the crawl-runs record, end with ``reason``."""
        stats = self.crawler.stats
        assert stats is not None
        stats.inc_value(f"noticecrawler/errors/{reason}")
        stats.set_value("noticecrawler/error_detail", detail)
        raise CloseSpider(reason)

    def list_failed(self, failure: Any) -> Iterator[Any]:
        """A list page that still failed after the retries ends the crawl as an error of the
        run: ``unreachable`` (refused, reset, DNS), ``timeout``, ``http_5xx`` or ``http_error``; the project's own stops (robots.txt, host
        busy, page too large) end it with their reason.
        (A generator: the crawl is closed from the errback's output, without a second log line
        and traceback from Scrapy.)"""
        if isinstance(failure.value, EndsCrawl):  # robots.txt, host busy, page too large
            self.fail_board(str(failure.value), failure.value.reason)
        reason, why = list_failure(failure)
        detail = f"list page {failure.request.url} failed: {why}"
        self.logger.error("board `%s`: %s", self.board.name, detail)
        self.end_crawl(f"board `{self.board.name}`: {detail}", reason)
        yield from ()


def list_failure(failure: Any) -> tuple[str, str]:
    """(finish reason, what happened) of a failed list request."""
    if failure.check(HttpError):
        status = failure.value.response.status
        return ("http_5xx" if status >= 500 else "http_error"), f"HTTP {status}"
    message = failure.getErrorMessage() or type(failure.value).__name__
    if failure.check(DownloadTimeoutError, net_error.TimeoutError, net_error.TCPTimedOutError):
        return "timeout", message
    return "unreachable", message


def alternatives(query: str) -> list[str]:
    """A CSS selector list split at its top-level commas (XPath: the query itself)."""
    if not query or is_xpath(query):
        return [query] if query else []
    parts, depth, quote, start = [], 0, "", 0
    for i, ch in enumerate(query):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(query[start:i].strip())
            start = i + 1
    parts.append(query[start:].strip())
    return [p for p in parts if p]


def select_first(node: Selector, query: str) -> SelectorList:
    """The nodes of the first alternative of ``query`` that matches anything: ``.tit, a``
    prefers ``.tit`` even when an ``a`` wrapping it comes first in the document."""
    for alternative in alternatives(query):
        found = select(node, alternative)
        if found:
            return found
    return SelectorList([])


def first_text(node: Selector, query: str) -> str:
    """The text of the first node the first matching alternative of ``query`` selects."""
    found = select_first(node, query)
    if not found:
        return ""
    if query.endswith(("::text", "/text()")) or "::attr(" in query or "/@" in query:
        return clean_text(found[:1].getall())
    return clean_text(found[0].xpath(".//text()").getall())


def _contract_method(board: BoardDef) -> Any:
    def check_list(self: BoardSpider, response: TextResponse) -> list[Post]:
        return self.extract_posts(response)

    check_list.__doc__ = (
        f"The posts of board `{board.name}`'s first list page (``scrapy check {board.name}``).\n"
        f"\n@url {board.start_url}\n@returns items 1\n@scrapes post_id title url\n"
    )
    return check_list
