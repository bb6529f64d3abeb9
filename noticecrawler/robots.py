"""robots.txt, obeyed by default and fetched at most once per site per ``HOST_ROBOTS_TTL``.

Replaces Scrapy's RobotsTxtMiddleware, which fetches robots.txt again in every crawl process.
The file is kept in the lock Redis (``HOST_LIMITS_REDIS_URL``: shared by every process and
machine) or, without one, under ``NOTICECRAWLER_HOME/robots``. A 4xx answer means "no rules"
and is kept too; a 5xx or a network error is not kept (the request goes ahead, the next crawl
asks again). A board whose catalog row says ``robots = "ignore"`` (with a ``reason``) is not
checked. A list page robots.txt disallows fails with :class:`RobotsDisallowed`; the crawl ends
as ``robots_disallowed`` with one error line naming the rule.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
from pathlib import Path
from typing import Any

from protego import Protego
from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from scrapy.http.request import NO_CALLBACK
from scrapy.utils.httpobj import urlparse_cached

from noticecrawler.politeness import EndsCrawl, SharedRedis

logger = logging.getLogger(__name__)

AGENT = "noticecrawler"
PREFIX = "noticecrawler:robots:"


class RobotsDisallowed(EndsCrawl):
    reason = "robots_disallowed"


def matching_rule(body: str, agent: str, path: str) -> str | None:
    """The robots.txt line that disallows ``path`` for ``agent`` (longest match wins, Allow
    wins a tie), or None when none does. Names the rule for the error line."""
    groups: list[tuple[list[str], list[tuple[str, str]]]] = []
    agents: list[str] = []
    rules: list[tuple[str, str]] = []
    for raw in body.splitlines():
        line = raw.split("#", 1)[0].strip()
        key, _, value = line.partition(":")
        key, value = key.strip().lower(), value.strip()
        if key == "user-agent":
            if rules:
                groups.append((agents, rules))
                agents, rules = [], []
            agents.append(value.lower())
        elif key in ("allow", "disallow") and agents:
            rules.append((key, value))
    if agents:
        groups.append((agents, rules))
    mine = [r for a, r in groups if any(x != "*" and x in agent.lower() for x in a)]
    chosen = [rule for r in (mine or [r for a, r in groups if "*" in a]) for rule in r]
    best: tuple[int, int, str] | None = None
    for kind, pattern in chosen:
        if not pattern:
            continue
        regex = re.escape(pattern).replace(r"\*", ".*")
        regex = regex[:-2] + "$" if regex.endswith(r"\$") else regex
        if re.match(regex, path):
            rank = (len(pattern), 1 if kind == "allow" else 0, f"{kind.title()}: {pattern}")
            if best is None or rank[:2] > best[:2]:
                best = rank
    return best[2] if best and best[2].startswith("Disallow") else None


class RobotsCache:
    def __init__(self, shared: SharedRedis | None, folder: Path, ttl: float):
        self.ttl = ttl
        self.folder = folder
        self.shared = shared
        self.redis: Any = shared.client if shared is not None else None

    def _file(self, origin: str) -> Path:
        return self.folder / hashlib.sha1(origin.encode()).hexdigest()

    async def get(self, origin: str) -> str | None:
        if self.redis is not None:
            value = await self.redis.get(PREFIX + origin)
            return None if value is None else value.decode("utf-8", "replace")
        path = self._file(origin)
        try:
            if time.time() - path.stat().st_mtime < self.ttl:
                return path.read_text(encoding="utf-8")
        except OSError:
            pass  # not on disk: asked of Redis, else fetched
        return None

    async def put(self, origin: str, body: str) -> None:
        if self.redis is not None:
            await self.redis.set(PREFIX + origin, body.encode(), ex=int(self.ttl))
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self._file(origin).with_suffix(".tmp")
        tmp.write_text(body, encoding="utf-8")
        tmp.replace(self._file(origin))

    async def claim(self, origin: str, seconds: float) -> bool:
        """Whether this process fetches the file now (False: another one is fetching it)."""
        if self.redis is None:
            return True
        return bool(
            await self.redis.set(PREFIX + origin + ":fetching", 1, nx=True, ex=int(seconds))
        )

    async def unclaim(self, origin: str) -> None:
        if self.redis is not None:
            await self.redis.delete(PREFIX + origin + ":fetching")

    async def wait_for(self, origin: str, seconds: float) -> str | None:
        """The file another process is fetching, once it is in (None: it never came)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            body = await self.get(origin)
            if body is not None or not await self.redis.exists(PREFIX + origin + ":fetching"):
                return body
        return None

    async def close(self) -> None:
        if self.shared is not None:
            await self.shared.release()


class RobotsMiddleware:
    def __init__(self, crawler: Crawler, cache: RobotsCache):
        self.crawler = crawler
        self.cache = cache
        self.parsed: dict[str, asyncio.Future[tuple[Protego, str] | None]] = {}
        self.fetch_timeout = crawler.settings.getfloat("DOWNLOAD_TIMEOUT", 180) + 10
        assert crawler.stats is not None
        self.stats = crawler.stats

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RobotsMiddleware:
        s = crawler.settings
        if not s.getbool("ROBOTSTXT_OBEY"):
            raise NotConfigured
        folder = Path(s.get("NOTICECRAWLER_HOME") or ".noticecrawler") / "robots"
        url = s.get("HOST_LIMITS_REDIS_URL", "")
        shared = SharedRedis.of(crawler, url) if url else None
        cache = RobotsCache(shared, folder, s.getfloat("HOST_ROBOTS_TTL", 86400))
        mw = cls(crawler, cache)
        from scrapy import signals

        crawler.signals.connect(mw.spider_closed, signal=signals.spider_closed)
        return mw

    async def spider_closed(self) -> None:
        await self.cache.close()

    async def process_request(self, request: Request) -> None:
        if request.meta.get("dont_obey_robotstxt") or not request.url.startswith("http"):
            return
        board = getattr(self.crawler.spider, "board", None)
        if board is not None and getattr(board, "robots", "obey") == "ignore":
            return
        parsed = await self.rules(request)
        if parsed is None:
            return
        rules, body = parsed
        if rules.can_fetch(request.url, AGENT):
            return
        self.stats.inc_value("noticecrawler/robots/disallowed")
        url = urlparse_cached(request)
        path = url.path or "/"
        path += f"?{url.query}" if url.query else ""
        rule = matching_rule(body, AGENT, path) or "a rule for all agents"
        raise RobotsDisallowed(
            f"robots.txt of {url.scheme}://{url.netloc} disallows {request.url} (`{rule}`)"
        )

    async def rules(self, request: Request) -> tuple[Protego, str] | None:
        url = urlparse_cached(request)
        origin = f"{url.scheme}://{url.netloc}"
        if origin not in self.parsed:
            future: asyncio.Future[tuple[Protego, str] | None] = (
                asyncio.get_running_loop().create_future()
            )
            self.parsed[origin] = future
            try:
                body = await self._body(origin)
                future.set_result(None if body is None else (Protego.parse(body), body))
            except BaseException as exc:
                del self.parsed[origin]
                future.set_exception(exc)
                future.exception()  # retrieved: the caller gets it through raise below
                raise
        return await asyncio.shield(self.parsed[origin])

    async def _body(self, origin: str) -> str | None:
        body = await self.cache.get(origin)
        if body is None and not await self.cache.claim(origin, self.fetch_timeout):
            body = await self.cache.wait_for(origin, self.fetch_timeout)  # once per site
        if body is not None:
            self.stats.inc_value("noticecrawler/robots/cached")
            return body
        try:
            return await self._fetch(origin)
        finally:
            await self.cache.unclaim(origin)

    async def _fetch(self, origin: str) -> str | None:
        request = Request(
            f"{origin}/robots.txt",
            priority=1000,
            meta={"dont_obey_robotstxt": True, "dont_cache": True, "dont_retry": True},
            callback=NO_CALLBACK,
        )
        assert self.crawler.engine is not None
        try:
            response = await self.crawler.engine.download_async(request)
        except EndsCrawl:
            raise
        except Exception as exc:
            logger.warning(
                "%s/robots.txt could not be read (%s); not obeyed this time", origin, exc
            )
            return None
        self.stats.inc_value("noticecrawler/robots/fetched")
        if response.status >= 500:
            logger.warning(
                "%s/robots.txt answered %d; not obeyed this time", origin, response.status
            )
            return None
        text = response.body.decode("utf-8", "replace") if response.status < 400 else ""
        await self.cache.put(origin, text)
        return text
