"""What crawl processes inherit ready-made: settings that copy like deepcopy, and the catalog's
spider loader built once in the parent."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from scrapy.settings import BaseSettings

from dispatch.crawl import crawl_settings
from dispatch.forkready import CrawlSettings, spider_loader_class
from noticecrawler.extensions import OpenedRun


def flat(settings: BaseSettings) -> dict[str, Any]:
    return {
        name: (
            (flat(attr.value), attr.priority)
            if isinstance(attr.value, BaseSettings)
            else (attr.value, attr.priority)
        )
        for name, attr in settings.attributes.items()
    }


def test_crawl_settings_copy_is_the_deep_copy_scrapy_makes() -> None:
    run = OpenedRun(7, "demo", catch_up=True, known_before={"1", "2"})
    settings = crawl_settings({"NOTICECRAWLER_OPENED_RUN": run, "FEEDS": {"x.json": {"a": [1]}}})
    assert isinstance(settings, CrawlSettings)
    fast, slow = settings.copy(), copy.deepcopy(settings)
    assert type(fast) is CrawlSettings and not fast.frozen
    assert flat(fast) == flat(slow) == flat(settings)
    assert len(fast.attributes) > 200  # Scrapy's defaults and the project's, all of them

    # nothing mutable is shared with the original
    fast["DOWNLOADER_MIDDLEWARES"]["x.Y"] = 1
    fast["FEEDS"]["x.json"]["a"].append(2)
    fast["NOTICECRAWLER_OPENED_RUN"].known_before.add("3")
    fast.set("HOST_DELAY", 9, priority="cmdline")
    assert "x.Y" not in settings["DOWNLOADER_MIDDLEWARES"]
    assert settings["FEEDS"]["x.json"]["a"] == [1]
    assert run.known_before == {"1", "2"}
    assert settings["HOST_DELAY"] != 9

    frozen = settings.frozencopy()
    assert frozen.frozen and not settings.frozen and flat(frozen) == flat(settings)


def test_spider_loader_is_built_once_per_catalog(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.toml"
    row = '[[board]]\nname = "{}"\nengine = "table"\nstart_url = "http://127.0.0.1:9/{}"\n\n'
    catalog.write_text(row.format("one", "one"), encoding="utf-8")
    settings = crawl_settings({"NOTICECRAWLER_CATALOG": str(catalog)})

    first = spider_loader_class(settings)
    assert first is not None
    loader = first.from_settings(settings.frozencopy())
    assert "one" in loader.list() and loader.load("one").board.name == "one"
    again = spider_loader_class(settings)
    assert again is not None and again.from_settings(settings) is loader  # not built again

    catalog.write_text(row.format("one", "one") + row.format("two", "two"), encoding="utf-8")
    changed = spider_loader_class(settings)
    assert changed is not None
    assert changed.from_settings(settings) is not loader
    assert {"one", "two"} <= set(changed.from_settings(settings).list())

    catalog.write_text("[[board]]\nname = 3\n", encoding="utf-8")
    assert spider_loader_class(settings) is None  # the crawl process reports the bad catalog


def test_preload_leaves_the_first_use_caches_filled_for_the_crawls() -> None:
    import sys

    import w3lib.html
    from psycopg.types import array

    import dispatch.crawl  # noqa: F401  (its import preloads and warms up)

    # compiled on first use, in every crawl process when nobody did it before the fork
    assert w3lib.html._build_meta_scan_pattern.cache_info().currsize >= 1
    assert array._get_needs_quotes_regexp.cache_info().currsize >= 1
    assert {"encodings.cp949", "encodings.euc_kr", "encodings.charmap"} <= set(sys.modules)
