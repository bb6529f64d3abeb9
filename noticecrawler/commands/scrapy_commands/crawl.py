"""``scrapy crawl <board>`` with honest endings.

* an unknown board, a malformed catalog, an unreachable or unmigrated database: one line
  (``unknown board 'x'; known: …``), logged as the crawl's first error, and exit status 2;
* a crawl whose finish reason is not ``finished``, or that recorded errors: exit status 1.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from scrapy.commands.crawl import Command as ScrapyCrawl

from noticecrawler.errors import EXIT_FAILURE, MIGRATE_HINT, ProjectError, UnknownBoard, one_line
from noticecrawler.redaction import install_log_redaction

logger = logging.getLogger("noticecrawler.crawl")


class NotMigrated(ProjectError):
    pass


def check_database(settings: Any) -> None:
    """Refuse to crawl into a database that is unreachable or lacks a migration."""
    from noticecrawler.db import connect, migrate
    from noticecrawler.db.settings import database_url

    with connect(database_url(settings)) as conn:
        try:
            done = set(migrate.applied(conn))
        except Exception as exc:
            if one_line(exc) == MIGRATE_HINT:
                raise NotMigrated(MIGRATE_HINT) from None
            raise
    missing = [v for v, _ in migrate.available() if v not in done]
    if missing:
        raise NotMigrated(f"{MIGRATE_HINT} (missing {', '.join(missing)})")


class Command(ScrapyCrawl):
    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        install_log_redaction()
        if len(args) != 1:
            super().run(args, opts)
            return
        try:
            self.exitcode = self._crawl(args[0], opts)
        except Exception as exc:
            line = one_line(exc)
            if line is None:
                raise
            logger.error("%s", line)
            print(f"scrapy crawl: {line}", file=sys.stderr)
            self.exitcode = EXIT_FAILURE

    def _crawl(self, name: str, opts: argparse.Namespace) -> int:
        assert self.crawler_process is not None and self.settings is not None
        known = self.crawler_process.spider_loader.list()
        if name not in known:
            raise UnknownBoard(name, known)
        if self.settings.getbool("NOTICECRAWLER_RECORD_RUNS", True):
            check_database(self.settings)
        crawler = self._create_crawler(name)
        self.crawler_process.crawl(crawler, **opts.spargs)
        self.crawler_process.start()
        if self.crawler_process.bootstrap_failed:
            return 1
        stats = crawler.stats.get_stats() if crawler.stats else {}
        from noticecrawler.extensions import run_summary

        summary = run_summary(stats, str(stats.get("finish_reason", "")))
        # the spider and the run recorder have logged the cause already
        return 0 if summary["finish_reason"] == "finished" and not summary["errors"] else 1
