"""The cheap check of a board whose list page has not changed: no crawl process at all.

A crawl of an unchanged board forks a process, starts a reactor, a Scrapy engine and its
components, revalidates page 1 (a 304) and stops at its first known row. This module does the
part that matters, in the calling process: one conditional GET of the board's start URL with the
validators the Scrapy HTTP cache stored for it (``If-None-Match`` / ``If-Modified-Since``), under
the same robots.txt rules and per-host slots as crawls (the same Redis keys), and one
``crawl_runs`` row in one statement. Anything it cannot settle means "crawl": it returns ``None``
and the caller forks the crawl as before.

Boards without validators (no ``ETag``, no ``Last-Modified``) are fetched in full and their rows
digested: the post ids, URLs, titles and pinned flags the board's own engine reads, not dates,
counters or anything outside the rows. When the digest equals the one of the page the last crawl
stored in the HTTP cache, nothing is new; the crawl is not run. The same holds for a page that
has validators but answers 200 (an ETag that changes with a view counter).

Boards are checked in batches (:func:`check_boards`: one task checks every board due at a beat
tick, dispatch/runs.py) or one at a time (:func:`check`: ``crawl_site``'s own check). A batch
reads the boards' last runs in one query, waits for each host in turn while the other hosts'
boards are fetched, and records its runs in one statement.

The cheap path never writes the HTTP cache; the next crawl finds it as the last crawl left it. It
only runs when the board's last run finished cleanly (a failed or killed run is followed by a
crawl that catches up), and a board that checks its posts for edits (``check_edits``) is checked
cheaply only by a 304. It does not touch the posts: ``posts.last_seen_at`` moves when a crawl
reads the page; the board's last run says when it was last checked.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import psycopg
from scrapy.http import HtmlResponse
from scrapy.settings import BaseSettings

from noticecrawler import politeness
from noticecrawler.cachedpage import Cached, cached_digest, cached_page, rows_digest
from noticecrawler.db import kept_connection, queries
from noticecrawler.plainfetch import Fetched, RobotsRules, Slots, fetch

logger = logging.getLogger(__name__)

#: the last runs after which a cheap check may stand in for a crawl
CLEAN = ("finished",)


def summary(outcome: str, *, not_modified: int, started: float) -> dict[str, Any]:
    """The task summary of a cheap check (the keys of a crawl's, ``path`` added)."""
    return {
        "pages": 1,
        "requests": 1,
        "not_modified": not_modified,
        "items": 0,
        "new": 0,
        "edited": 0,
        "deleted": 0,
        "throttled": 0,
        "errors": 0,
        "error_detail": None,
        "finish_reason": "finished",
        "path": outcome,
        "seconds": round(time.monotonic() - started, 3),
        "pid": os.getpid(),
    }


@dataclass
class Batch:
    """What a batch of cheap checks found: the runs it recorded (board -> summary), the boards
    a crawl must read (changed, no validators, anything unsettled) and the boards whose host
    stayed busy past the batch's wait (nothing recorded, no request sent)."""

    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    crawl: list[str] = field(default_factory=list)
    busy: list[str] = field(default_factory=list)


@dataclass
class _Pending:
    board: Any
    cached: Cached
    host: str
    started: float
    started_at: datetime


def _prepare(board: Any, settings: BaseSettings, last: dict[str, Any] | None) -> Cached | None:
    """The cached page a cheap check of ``board`` compares with; None: a crawl must run."""
    if not last or last["finish_reason"] not in CLEAN or last["errors"]:
        return None  # after a failed or killed run (or none) the crawl catches up
    cached = cached_page(settings, board)
    if cached is None:
        return None
    if not cached.validators and (board.check_edits or not cached_digest(board, cached)):
        # a crawl of a page read in full re-reads young posts of a check_edits board for body
        # edits the rows do not show; only a 304 says that nothing changed there
        return None
    return cached


def _decide(
    item: _Pending, fetched: Fetched | None, slots: Slots, cap: float
) -> dict[str, Any] | None:
    """The run of a fetched page, or None when a crawl must read it."""
    board, validators = item.board, item.cached.validators
    if fetched is None:
        return None
    if fetched.status in (429, 503):
        seconds = politeness.retry_after_seconds(fetched.headers.get("Retry-After"))
        if seconds is not None:
            slots.hold(item.host, min(seconds, cap))
        return None
    if fetched.status == 304 and validators:
        return summary("not_modified", not_modified=1, started=item.started)
    if fetched.status == 200 and not board.check_edits:
        # no validators, or a page whose validators change with its counters: the rows decide
        page = HtmlResponse(board.start_url, status=200, headers=fetched.headers, body=fetched.body)
        digest = rows_digest(board, page)
        if digest is None or digest != cached_digest(board, item.cached):
            return None
        return summary("rows_unchanged", not_modified=0, started=item.started)
    return None  # changed (or anything else): the crawl reads it


def check_boards(
    boards: list[Any],
    settings: BaseSettings,
    client: Any,
    conn: psycopg.Connection[Any],
    *,
    wait: float,
) -> Batch:
    """Check ``boards`` without crawls, in this process: one query for their last runs, one
    conditional GET each under the per-host slots (a host's boards one after the other, spaced
    by its delay; the other hosts' boards meanwhile), one statement recording every run.
    A board whose host is not free within ``wait`` seconds is returned in ``busy``."""
    batch = Batch()
    started = time.monotonic()
    last = queries.last_run_states(conn, [b.name for b in boards])
    rules = RobotsRules(client, settings)
    pending: list[_Pending] = []
    for board in boards:
        cached = _prepare(board, settings, last.get(board.name))
        if cached is None or not rules.allow(board):
            batch.crawl.append(board.name)  # unknown or disallowing rules: the crawl records why
            continue
        host = urlsplit(board.start_url).hostname or ""
        pending.append(_Pending(board, cached, host, time.monotonic(), datetime.now(UTC)))
    slots = Slots(client, settings)
    token = uuid.uuid4().hex
    cap = settings.getfloat("HOST_RETRY_AFTER_MAX", 600)
    deadline = started + wait
    started_at: dict[str, datetime] = {}
    while pending:
        waiting: list[_Pending] = []
        wake = deadline
        full: set[str] = set()  # hosts that said "wait" in this pass: their boards wait too
        for item in pending:
            if item.host in full:
                waiting.append(item)
                continue
            seconds = slots.try_acquire(item.host, token)
            if seconds > 0:
                full.add(item.host)
                if time.monotonic() + seconds > deadline:
                    batch.busy.append(item.board.name)
                else:
                    waiting.append(item)
                    wake = min(wake, time.monotonic() + seconds)
                continue
            # a slow answer leaves the crawl its time: the GET gets a share of the budget, and
            # never more than what is left of it
            timeout = min(
                settings.getfloat("DOWNLOAD_TIMEOUT", 20),
                max(wait / 4, 1.0),
                max(0.1, deadline - time.monotonic()),
            )
            try:
                fetched = fetch(settings, item.board.start_url, item.cached.validators, timeout)
            finally:
                slots.release(item.host, token)
            # the host's next request waits its delay from now (politeness._RELEASE)
            full.add(item.host)
            wake = min(wake, time.monotonic() + slots.delay)
            run = _decide(item, fetched, slots, cap)
            if run is None:
                batch.crawl.append(item.board.name)
            else:
                batch.runs[item.board.name] = run
                started_at[item.board.name] = item.started_at
        pending = waiting
        if pending:
            time.sleep(max(0.0, wake - time.monotonic()))
    if batch.runs:
        queries.record_runs(conn, [(n, started_at[n], run) for n, run in batch.runs.items()])
    for name, run in batch.runs.items():
        logger.debug("board `%s`: %s — checked without a crawl", name, run["path"])
    return batch


def check(
    board: Any, settings: BaseSettings, client: Any, conn: psycopg.Connection[Any]
) -> dict[str, Any] | None:
    """Check ``board`` without a crawl. Returns the summary of the run it recorded, or None
    when a crawl must run (it then recorded nothing, and held no host slot). A host that stays
    busy past the crawl's wait budget ends the run as ``host_busy``, as the crawl would."""
    started, started_at = time.monotonic(), datetime.now(UTC)
    wait_max = settings.getfloat("HOST_WAIT_MAX", 0) or 0.8 * settings.getfloat(
        "CRAWL_SOFT_TIME_LIMIT", 240
    )
    batch = check_boards([board], settings, client, conn, wait=wait_max)
    if batch.busy:
        # what the crawl would record after the same wait (politeness.HostBusy)
        result = summary("host_busy", not_modified=0, started=started)
        detail = (
            f"board `{board.name}`: host {urlsplit(board.start_url).hostname} stayed busy: "
            f"{board.start_url} could not start within the crawl's wait budget of {wait_max:g}s"
        )
        result.update(requests=0, pages=0, errors=1, error_detail=detail, finish_reason="host_busy")
        queries.record_run(conn, board.name, started_at, result)
        logger.warning("%s", detail)
        return result
    run = batch.runs.get(board.name)
    if run is not None:
        logger.info(
            "board `%s`: %s — checked without a crawl (1 request, %d not modified)",
            board.name,
            "not modified" if run["not_modified"] else "rows unchanged",
            run["not_modified"],
        )
    return run


def check_without_crawl(
    board: Any, settings: BaseSettings, redis_url: str
) -> dict[str, Any] | None:
    """:func:`check` with this process's Redis client and database connection; None (crawl)
    when the check is off (``NOTICECRAWLER_CHEAP_CHECK``) or fails in any way."""
    if board is None or not settings.getbool("NOTICECRAWLER_CHEAP_CHECK", True) or not redis_url:
        return None
    from noticecrawler.boardlock import client
    from noticecrawler.db.settings import database_url

    try:
        return check(board, settings, client(redis_url), kept_connection(database_url(settings)))
    except Exception as exc:  # the crawl meets the same problem and records it
        logger.info("board `%s`: cheap check not possible (%s); crawling", board.name, exc)
        return None
