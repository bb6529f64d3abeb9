"""A board's list page fetched from plain (blocking) code, as a crawl would fetch it: the same
per-host slots (:mod:`noticecrawler.politeness`' Lua scripts on the same Redis keys), the same
robots.txt rules (the shared cache :mod:`noticecrawler.robots` fills), the project's
User-Agent and headers. Used by the cheap check (:mod:`noticecrawler.revalidate`)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import urllib3
from protego import Protego
from scrapy.settings import BaseSettings

from noticecrawler import politeness, robots

logger = logging.getLogger(__name__)


class Slots:
    """The per-host slots of :mod:`noticecrawler.politeness`, taken from blocking code."""

    def __init__(self, client: Any, settings: BaseSettings):
        self.client = client
        concurrency = max(1, settings.getint("HOST_CONCURRENCY", 1))
        delay = max(0.0, settings.getfloat("HOST_DELAY", 1.0))
        lease = settings.getfloat("DOWNLOAD_TIMEOUT", 180) + 10
        self.args = (concurrency, int(delay * 1000), int(lease * 1000))
        self.delay = delay

    @staticmethod
    def keys(host: str) -> tuple[str, str]:
        return politeness.PREFIX + host + ":inflight", politeness.PREFIX + host + ":next"

    def try_acquire(self, host: str, token: str) -> float:
        """0 when ``token`` holds a slot of ``host`` now, else the seconds to wait before asking
        again (the host's delay or hold; a short poll when it is full)."""
        wait = int(self.client.eval(politeness._ACQUIRE, 2, *self.keys(host), token, *self.args))
        if wait == 0:
            return 0.0
        return politeness.POLL if wait < 0 else wait / 1000

    def release(self, host: str, token: str) -> None:
        """The answer is in: the slot is free, and the host's next request waits its delay."""
        self.client.eval(politeness._RELEASE, 2, *self.keys(host), token, self.args[1])

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


class RobotsRules:
    """robots.txt of the boards' sites from the shared cache, each site read once per batch."""

    def __init__(self, client: Any, settings: BaseSettings):
        self.client = client
        self.obey = settings.getbool("ROBOTSTXT_OBEY")
        self.parsed: dict[str, Protego | None] = {}

    def allow(self, board: Any) -> bool | None:
        """True/False when the shared robots.txt cache decides; None when it holds nothing (only
        a crawl fetches robots.txt)."""
        if not self.obey or getattr(board, "robots", "obey") == "ignore":
            return True
        url = urlsplit(board.start_url)
        origin = f"{url.scheme}://{url.netloc}"
        if origin not in self.parsed:
            body = self.client.get(robots.PREFIX + origin)
            if body is None:
                self.parsed[origin] = None
            else:
                text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
                self.parsed[origin] = Protego.parse(text)
        rules = self.parsed[origin]
        if rules is None:
            return None
        return bool(rules.can_fetch(board.start_url, robots.AGENT))


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
