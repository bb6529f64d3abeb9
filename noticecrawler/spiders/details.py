"""Detail pages: body text, exact time and attachments of a post.

A board opts in with ``follow_details`` (each NEW post's page is read once) and, on top,
``check_edits`` (known posts' pages are revalidated, so an edited body is noticed). Detail pages go
through the HTTP cache like list pages: an edit check is a conditional GET, and an unchanged page
costs a 304 and no body (and no store). Edits are checked only for posts younger than the board's
``check_edits_days`` that appear on the list pages this run read in full; when the list page
itself is answered 304, no detail page is requested. The filled post goes through the pipelines
again: the store finds the row already there, updates it (body, detail time, attachments) and
reports it "seen" — or "edited" when a body it already had changed — so a detail page never
makes a post new and never announces it twice.

On ``follow_details`` boards a new post is announced once its detail page is stored (or its fetch
failed: then from the list data), so the push and the keyword matching see the whole post.

Form-POST boards (egovframework ``fn_view`` submitting a hidden form) name the form fields in
``options.detail_form``, values may use ``{id}``; the request then POSTs them to ``detail_url``
(without its query), while the post keeps ``detail_url`` as its link.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import scrapy
from scrapy.http import Response, TextResponse

from noticecrawler.encoding import fix_encoding
from noticecrawler.extract import clean_text, select, text_of
from noticecrawler.items import Post
from noticecrawler.politeness import EndsCrawl
from noticecrawler.robots import RobotsDisallowed
from noticecrawler.spiders.rows import RowReader

DETAIL_META = "noticecrawler_detail"


def page_ids(posts: Sequence[Post]) -> tuple[list[str], list[str]]:
    """(every post id of a list page, the regular ones): what the store needs to tell which
    known posts the page no longer shows."""
    return [p.post_id for p in posts], [p.post_id for p in posts if not p.pinned]


class DetailReader(RowReader):
    if TYPE_CHECKING:  # BoardSpider's

        def fail_board(self, message: str, reason: str = "board_error") -> None: ...

    def wants_detail(
        self, status: str | None, post: Post | None = None, revalidated: bool = False
    ) -> bool:
        if status == "new":
            return self.board.follow_details or self.board.check_edits
        if status not in ("seen", "edited") or not self.board.check_edits or revalidated:
            return False
        return post is None or self.young(post.published)

    def young(self, published: datetime | None) -> bool:
        """Whether a post published then is still checked for edits (unknown time: yes)."""
        if published is None:
            return True
        return self.clock() - published < timedelta(days=self.board.check_edits_days)

    def detail_request(self, post: Post) -> scrapy.Request:
        # a copy: the list item may still be on its way through the pipelines
        after = self.board.follow_details and post.status == "new" and post.announced
        post = dataclasses.replace(
            post,
            list_url=None,
            status=None,
            db_id=post.db_id if after else None,
            announced=False,
            notify_after_detail=after,
        )
        # cached like list pages, so that an edit check is a conditional GET
        meta = {DETAIL_META: True}
        kwargs: dict[str, Any] = {
            "callback": self.parse_detail_page,
            "errback": self.detail_failed,
            "cb_kwargs": {"post": post},
            "meta": meta,
            "dont_filter": True,
        }
        form = self.board.options.get("detail_form")
        if form:
            action = urlunsplit(urlsplit(post.url)._replace(query="", fragment=""))
            data = {str(k): str(v).replace("{id}", post.post_id) for k, v in form.items()}
            return scrapy.FormRequest(action, formdata=data, **kwargs)
        return scrapy.Request(post.url, **kwargs)

    def parse_detail_page(self, response: Response, post: Post) -> Iterator[Post]:
        self.count("details/pages")
        if "cached" in response.flags and not post.notify_after_detail:
            self.count("details/not_modified")  # a 304: the stored post is the page
            return
        if isinstance(response, TextResponse):
            yield self.parse_detail(fix_encoding(response), post)
        elif post.notify_after_detail:
            yield post

    def parse_detail(self, response: TextResponse, post: Post) -> Post:
        """Fill ``post`` from its detail page; the item goes through the pipelines again."""
        board = self.board
        if board.detail_body:
            found = select(response, board.detail_body)
            post.body = clean_text(found.xpath(".//text()").getall()) or None
        if board.detail_date and (text := text_of(response, board.detail_date)):
            published = self.parse_date(text, response)
            if published is not None:
                post.published = published
                post.published_source = "detail"
        if board.detail_attachments:
            post.attachments = self.attachments_in(response, board.detail_attachments, response)
        post.list_url = None
        return post

    def detail_failed(self, failure: Any) -> Iterator[Post]:
        exc = failure.value
        if isinstance(exc, EndsCrawl) and not isinstance(exc, RobotsDisallowed):
            self.fail_board(str(exc), exc.reason)  # host busy, page too large
        self.count("errors/detail_request")
        self.logger.warning(
            "board `%s`: detail page %s failed: %s",
            self.board.name,
            failure.request.url,
            failure.getErrorMessage(),
        )
        post = failure.request.cb_kwargs.get("post")
        if post is not None and post.notify_after_detail:
            yield post  # announced from the list data
