"""The Post item: one notice as its board lists it.

Pipelines read items through itemadapter, so spiders may also yield plain dicts with these keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass
class Attachment:
    name: str
    url: str


@dataclass
class Post:
    #: the board's catalog name (also its spider name)
    board: str
    #: the id the board itself gives the post (``wr_id``, ``document_srl``, ``fn_view('123')``…)
    post_id: str
    title: str
    #: absolute URL of the post, without session or paging junk
    url: str
    author: str | None = None
    #: timezone-aware publication time in the board's timezone
    published: datetime | None = None
    #: where ``published`` came from: "list", "detail" or "first_seen" (list shows no date)
    published_source: str = "list"
    category: str | None = None
    #: a "공지"/notice row repeated at the top of every page
    pinned: bool = False
    attachments: list[Attachment] = field(default_factory=list)
    #: body text, when the board's detail pages are followed
    body: str | None = None
    #: the list page the post was seen on
    list_url: str | None = None
    #: the title as the board wrote it, when control or bidi characters were stripped from it
    #: (set by the normalize pipeline; kept as a revision of the new post)
    raw_title: str | None = None
    # --- set by the pipelines -----------------------------------------------------------------
    #: "new", "seen" or "edited", decided by the database
    status: str | None = None
    #: the ``posts.id`` row key
    db_id: int | None = None
    #: queued for announcement (new, and not the silent first crawl of the board)
    announced: bool = False
    #: a new post of a follow_details board: announced once its detail page is stored
    notify_after_detail: bool = False
