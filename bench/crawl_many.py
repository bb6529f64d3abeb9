"""Crawl several boards in one Scrapy process and print each crawl's stats as JSON.

    python bench/crawl_many.py BOARD [BOARD ...] [-s NAME=VALUE ...]

Used by the benchmarks; settings come from the project plus the -s overrides.
"""

from __future__ import annotations

import argparse
import json
import sys

from scrapy.crawler import CrawlerProcess
from scrapy.utils.project import get_project_settings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("boards", nargs="+")
    parser.add_argument("-s", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    settings = get_project_settings()
    for pair in args.overrides:
        name, _, value = pair.partition("=")
        settings.set(name, value, priority="cmdline")
    process = CrawlerProcess(settings, install_root_handler=False)
    crawlers = []
    for board in args.boards:
        crawler = process.create_crawler(board)
        crawlers.append((board, crawler))
        process.crawl(crawler)
    process.start()
    out = {
        board: {k: v for k, v in c.stats.get_stats().items() if isinstance(v, int | float)}
        for board, c in crawlers
    }
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
