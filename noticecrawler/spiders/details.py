"""Detail pages: body text, exact time and attachments of a post.

A board opts in with ``follow_details`` (each NEW post's page is read once) and, on top,
``check_edits`` (known posts' pages are read on every crawl, so an edited body is noticed).
Detail pages are never cached (``dont_cache``). The filled post goes through the pipelines
again: the store finds the row already there, updates it (body, detail time, attachments) and
reports it "seen" — or "edited" when a body it already had changed — so a detail page never
makes a post new and never announces it twice.

Form-POST boards (egovframework ``fn_view`` submitting a hidden form) name the form fields in
``options.detail_form``, values may use ``{id}``; the request then POSTs them to ``detail_url``
(without its query), while the post keeps ``detail_url`` as its link.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import scrapy
from scrapy.http import Response, TextResponse

from noticecrawler.encoding import fix_encoding
from noticecrawler.extract import clean_text, select, text_of
from noticecrawler.items import Post
from noticecrawler.spiders.rows import RowReader

DETAIL_META = "noticecrawler_detail"


class DetailReader(RowReader):
    def wants_detail(self, status: str | None) -> bool:
        if status == "new":
            return self.board.follow_details or self.board.check_edits
        return status in ("seen", "edited") and self.board.check_edits

    def detail_request(self, post: Post) -> scrapy.Request:
        # a copy: the list item may still be on its way through the pipelines
        post = dataclasses.replace(post, list_url=None, status=None, db_id=None, announced=False)
        meta = {"dont_cache": True, DETAIL_META: True}
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
        if isinstance(response, TextResponse):
            yield self.parse_detail(fix_encoding(response), post)

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

    def detail_failed(self, failure: Any) -> None:
        self.count("errors/detail_request")
        self.logger.warning(
            "board `%s`: detail page %s failed: %s",
            self.board.name,
            failure.request.url,
            failure.getErrorMessage(),
        )
