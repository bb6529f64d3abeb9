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
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import psycopg
import urllib3
from protego import Protego
from scrapy.http import HtmlResponse
from scrapy.settings import BaseSettings

from noticecrawler import politeness, robots
from noticecrawler.cachedpage import cached_digest, cached_page, rows_digest
from noticecrawler.db import kept_connection, queries

logger = logging.getLogger(__name__)

#: the last runs after which a cheap check may stand in for a crawl
CLEAN = ("finished",)


# --- the fetch ----------------------------------------------------------------------------------


class Slots:
    """The per-host slots of :mod:`noticecrawler.politeness`, taken from plain (blocking) code."""

    def __init__(self, client: Any, settings: BaseSettings):
        self.client = client
        concurrency = max(1, settings.getint("HOST_CONCURRENCY", 1))
        delay = max(0.0, settings.getfloat("HOST_DELAY", 1.0))
        lease = settings.getfloat("DOWNLOAD_TIMEOUT", 180) + 10
        self.args = (concurrency, int(delay * 1000), int(lease * 1000))

    def acquire(self, host: str, token: str, deadline: float) -> bool:
        keys = (politeness.PREFIX + host + ":inflight", politeness.PREFIX + host + ":next")
        while True:
            wait = int(self.client.eval(politeness._ACQUIRE, 2, *keys, token, *self.args))
            if wait == 0:
                return True
            seconds = politeness.POLL if wait < 0 else min(wait / 1000, 5.0)
            if time.monotonic() + max(seconds, 0) > deadline:
                return False
            time.sleep(seconds)

    def release(self, host: str, token: str) -> None:
        self.client.zrem(politeness.PREFIX + host + ":inflight", token)

    def hold(self, host: str, seconds: float) -> None:
        key = politeness.PREFIX + host + ":next"
        self.client.eval(politeness._HOLD, 1, key, int(seconds * 1000))


_pools: dict[int, urllib3.PoolManager] = {}


def _pool() -> urllib3.PoolManager:
    """This process's connection pool (keep-alive across checks; never one from before a fork)."""
    pid = os.getpid()
    if pid not in _pools:
        _pools[pid] = urllib3.PoolManager(
            num_pools=50,
            maxsize=1,
            # one more try only when a kept-alive connection turns out closed; never a sleep on
            # Retry-After (the host is held in Redis instead) nor a redirect followed
            retries=urllib3.Retry(
                total=1, read=0, redirect=0, status=0, other=0, respect_retry_after_header=False
            ),
        )
    return _pools[pid]


def robots_allow(client: Any, settings: BaseSettings, board: Any) -> bool | None:
    """True/False when the shared robots.txt cache decides; None when it holds nothing (only a
    crawl fetches robots.txt)."""
    if not settings.getbool("ROBOTSTXT_OBEY") or getattr(board, "robots", "obey") == "ignore":
        return True
    url = urlsplit(board.start_url)
    body = client.get(robots.PREFIX + f"{url.scheme}://{url.netloc}")
    if body is None:
        return None
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
    return bool(Protego.parse(text).can_fetch(board.start_url, robots.AGENT))


@dataclass
class Fetched:
    status: int
    headers: dict[str, str]
    body: bytes


def fetch(
    settings: BaseSettings, url: str, headers: dict[str, str], timeout: float
) -> Fetched | None:
    """GET ``url``; None on a network error or a body over ``DOWNLOAD_MAXSIZE`` (the crawl then
    meets the same and records it)."""
    limit = settings.getint("DOWNLOAD_MAXSIZE", 0)
    sent = {
        **{str(k): str(v) for k, v in settings.getdict("DEFAULT_REQUEST_HEADERS").items()},
        "User-Agent": settings.get("USER_AGENT", ""),
        "Accept-Encoding": "gzip, deflate",
        **headers,
    }
    try:
        response = _pool().request(
            "GET",
            url,
            headers=sent,
            preload_content=False,
            redirect=False,
            timeout=urllib3.Timeout(total=timeout),
        )
        try:
            chunks, size = [], 0
            for chunk in response.stream(65536):
                size += len(chunk)
                if limit and size > limit:
                    return None
                chunks.append(chunk)
        finally:
            response.release_conn()
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        logger.debug("%s: cheap check failed: %s", url, exc)
        return None
    return Fetched(response.status, dict(response.headers), b"".join(chunks))


# --- the check -------------------------------------------------------------------------------


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


def check(
    board: Any, settings: BaseSettings, client: Any, conn: psycopg.Connection[Any]
) -> dict[str, Any] | None:
    """Check ``board`` without a crawl. Returns the summary of the run it recorded, or None
    when a crawl must run (it then recorded nothing, and held no host slot)."""
    started, started_at = time.monotonic(), datetime.now(UTC)
    last = queries.last_runs(conn, board.name, 1)
    if not last or last[0]["finish_reason"] not in CLEAN or last[0]["errors"]:
        return None
    cached = cached_page(settings, board)
    if cached is None:
        return None
    validators = cached.validators
    if not validators and (board.check_edits or not cached_digest(board, cached)):
        # a crawl of a page read in full re-reads young posts of a check_edits board for body
        # edits the rows do not show; only a 304 says that nothing changed there
        return None
    if not robots_allow(client, settings, board):
        return None  # unknown rules or a disallowed page: the crawl records why
    host = urlsplit(board.start_url).hostname or ""
    token = uuid.uuid4().hex
    slots = Slots(client, settings)
    wait_max = settings.getfloat("HOST_WAIT_MAX", 0) or 0.8 * settings.getfloat(
        "CRAWL_SOFT_TIME_LIMIT", 240
    )
    if not slots.acquire(host, token, started + wait_max):
        # what the crawl would record after the same wait (politeness.HostBusy)
        result = summary("host_busy", not_modified=0, started=started)
        detail = (
            f"board `{board.name}`: host {host} stayed busy: {board.start_url} could not start "
            f"within the crawl's wait budget of {wait_max:g}s"
        )
        result.update(requests=0, pages=0, errors=1, error_detail=detail, finish_reason="host_busy")
        queries.record_run(conn, board.name, started_at, result)
        logger.warning("%s", detail)
        return result
    # the task's time limit is held back meanwhile: a slow answer leaves the crawl its time
    timeout = min(
        settings.getfloat("DOWNLOAD_TIMEOUT", 20),
        wait_max / 4,
        max(0.1, started + wait_max - time.monotonic()),
    )
    try:
        fetched = fetch(settings, board.start_url, validators, timeout)
    finally:
        slots.release(host, token)
    if fetched is None:
        return None
    if fetched.status in (429, 503):
        seconds = politeness.retry_after_seconds(fetched.headers.get("Retry-After"))
        if seconds is not None:
            slots.hold(host, min(seconds, settings.getfloat("HOST_RETRY_AFTER_MAX", 600)))
        return None
    if fetched.status == 304 and validators:
        result = summary("not_modified", not_modified=1, started=started)
    elif fetched.status == 200 and not board.check_edits:
        # no validators, or a page whose validators change with its counters: the rows decide
        page = HtmlResponse(board.start_url, status=200, headers=fetched.headers, body=fetched.body)
        digest = rows_digest(board, page)
        if digest is None or digest != cached_digest(board, cached):
            return None
        result = summary("rows_unchanged", not_modified=0, started=started)
    else:
        return None  # changed (or anything else): the crawl reads it
    queries.record_run(conn, board.name, started_at, result)
    logger.info(
        "board `%s`: %s — checked without a crawl (1 request, %d not modified)",
        board.name,
        "not modified" if result["not_modified"] else "rows unchanged",
        result["not_modified"],
    )
    return result


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
