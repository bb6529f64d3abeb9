"""BoardSpider: the base of every board engine, and the engine registry.

A board is a :class:`~noticecrawler.catalog.BoardDef` (one catalog entry). The spider reads the
board's list pages newest first, turns each row into a :class:`~noticecrawler.items.Post`
(``rows.py``: the row hooks and the defaults that hold on real boards; ``rowdates.py``: their
dates; ``marks.py``: pinned marks and title noise; ``guess.py``: the generic structure guess),
and pages on only while
a page still holds posts the database has not seen (at most ``first_crawl_max_pages`` on a
board's first crawl, ``max_pages`` after). With ``follow_details`` each NEW post's detail page is
read too (``details.py``).

An engine is a subclass that sets ``engine_name``: defining it registers the engine, with the
catalog (its defaults and required fields) and in ``ENGINES`` (for ``detect`` and the spider
loader). Engine (subclass) attributes:
    engine_name:  the ``engine`` a catalog row names; setting it registers the engine.
    defaults:     BoardDef field defaults for this board software (selectors, id rule, paging).
    required:     BoardDef fields a board of this engine must end up with.
    fingerprints: regular expressions whose match in a page says "this board software".
    url_params:   when set, the only query parameters a post URL keeps (e.g. ``("id", "no")``).
    title_noise:  XPath predicate of elements inside the title link whose text is not title.

Class methods an engine may override:
    detect(response)        -> a score in [0, 1]: how much the page looks like this software
    guess_fields(response)  -> catalog fields the engine's defaults need on this page (``row``…)

Hooks an engine may override (see ``rows.py``):
    rows(response), prepare_rows(rows), post_from_row(row, resp), row_link(row),
    row_href(row, link), row_id(row, link, href), row_title(row), row_pinned(row),
    row_date(row, resp), lists_dates(), row_author(row), row_category(row),
    post_url(resp, href, post_id), next_page_url(resp, page), parse_detail(resp, post)

Contracts: every enabled board's spider gets a ``check_list`` method whose docstring holds
``scrapy check`` contracts against its start URL (see docs/engines.md).
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import Any, ClassVar, NoReturn

import scrapy
from scrapy.exceptions import CloseSpider, DownloadTimeoutError
from scrapy.http import Response, TextResponse
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.internet import error as net_error

from noticecrawler.catalog import BoardDef, CatalogError, register_engine
from noticecrawler.encoding import fix_encoding
from noticecrawler.extract import select, with_query
from noticecrawler.items import Post
from noticecrawler.pages import PageTracker, StoreFailed
from noticecrawler.politeness import EndsCrawl
from noticecrawler.spiders.details import DetailReader, page_ids

logger = logging.getLogger(__name__)

LIST_META = "noticecrawler_list"


#: every registered engine by name, in the order they were defined
ENGINES: dict[str, type[BoardSpider]] = {}


class BoardSpider(DetailReader):
    engine_name: ClassVar[str] = ""
    fingerprints: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "engine_name" in cls.__dict__:
            ENGINES[cls.engine_name] = cls
            register_engine(cls.engine_name, cls)
        board = cls.__dict__.get("board")
        if board is None:
            return
        for key in cls.required:
            if not getattr(board, key):
                raise CatalogError(board.name, key, f"is required by engine `{board.engine}`")
        if board.enabled:
            cls.check_list = _contract_method(board)  # type: ignore[attr-defined]

    @classmethod
    def detect(cls, response: TextResponse) -> float:
        """How much the page looks like this engine's board software: the share of its
        fingerprints found in the page (0 for an engine without fingerprints)."""
        if not cls.fingerprints:
            return 0.0
        text = response.text
        found = sum(1 for f in cls.fingerprints if re.search(f, text, re.IGNORECASE))
        return found / len(cls.fingerprints)

    @classmethod
    def guess_fields(cls, response: TextResponse) -> dict[str, Any]:
        """Catalog fields this engine's defaults need on this page (none for most)."""
        return {}

    def __init__(self, *args: Any, **kwargs: Any):
        # scrapyd passes _job (and maybe other bookkeeping) as spider arguments
        self.job = kwargs.pop("_job", None)
        super().__init__(*args, **kwargs)
        self.emitted: set[str] = set()
        self.first_crawl = True
        #: the board's last run did not finish (killed, failed mid-paging): pages on past known
        #: rows, up to the page limit, so posts of pages that run never stored are not lost
        self.catch_up = False
        #: post ids stored before the unfinished run a catch-up crawl follows
        self.known_before: set[str] = set()
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
        rows, posts = self.page_posts(response)
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
        if not posts:
            stats.inc_value("noticecrawler/paging/end_of_board")
            return
        regular = [p for p in posts if not p.pinned]
        # newest first: once the page's oldest regular row is known, so is everything after it.
        # A page of pinned rows only: the first one may stand before the regular rows (notices
        # filling page 1), so the next page is read; after that, a pinned-only page that shows
        # nothing new ends the crawl, so a board whose every row is pinned stops at page 2.
        if regular:
            known = statuses.get(regular[-1].post_id, "seen") != "new"
        else:
            known = page > 1 and not any(statuses.get(p.post_id) == "new" for p in fresh)
        if known and self.catch_up and regular:
            # after an unfinished run: stop only where the rows were known before it
            known = regular[-1].post_id in self.known_before
        if known:
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

    # --- errors ----------------------------------------------------------------------------
    def fail_board(self, message: str, reason: str = "board_error") -> NoReturn:
        """Log once with the board name, count it, and end the crawl with ``reason``."""
        self.logger.error("board `%s`: %s", self.board.name, message)
        self.end_crawl(f"board `{self.board.name}`: {message}", reason)

    def end_crawl(self, detail: str, reason: str) -> NoReturn:
        """Count the error, keep its detail for the crawl-runs record, end with ``reason``."""
        stats = self.crawler.stats
        assert stats is not None
        stats.inc_value(f"noticecrawler/errors/{reason}")
        stats.set_value("noticecrawler/error_detail", detail)
        raise CloseSpider(reason)

    def list_failed(self, failure: Any) -> Iterator[Any]:
        """A list page that still failed after the retries ends the crawl as an error of the
        run: ``unreachable`` (refused, reset, DNS), ``timeout``, ``http_5xx`` or
        ``http_error``; the project's own stops (robots.txt, host busy, page too large) end it
        with their reason.
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


def _contract_method(board: BoardDef) -> Any:
    def check_list(self: BoardSpider, response: TextResponse) -> list[Post]:
        return self.extract_posts(response)

    check_list.__doc__ = (
        f"The posts of board `{board.name}`'s first list page (``scrapy check {board.name}``).\n"
        f"\n@url {board.start_url}\n@returns items 1\n@scrapes post_id title url\n"
    )
    return check_list
