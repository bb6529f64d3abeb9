"""What a crawl process inherits ready-made from the parent it is forked from.

Every crawl is a fresh process, so whatever Scrapy builds at start-up is built again for each
board. Two things cost more than they need to and are prepared here instead: the spider loader
(one spider class per catalog board, built once per catalog in the parent) and the settings'
copies (Scrapy deep-copies the whole settings tree twice per crawl with :func:`copy.deepcopy`).
Nothing here holds a socket, a connection or a reactor: it is safe to share across a fork.
"""

from __future__ import annotations

import codecs
import copy
import types
from typing import Any, Self

from scrapy.settings import BaseSettings, Settings, SettingsAttribute

#: values copied by reference (immutable, or classes and functions deepcopy keeps as they are)
_ATOMIC = (
    str,
    bytes,
    int,
    float,
    bool,
    complex,
    type(None),
    type,
    range,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.ModuleType,
)


def _copy_settings(settings: BaseSettings, memo: dict[int, Any]) -> Any:
    """The copy :func:`copy.deepcopy` makes of ``settings``, without walking every immutable
    value through deepcopy's generic machinery (~4 ms for Scrapy's ~450 settings)."""
    new = object.__new__(type(settings))
    new.__dict__.update(settings.__dict__)
    new.attributes = {}
    for name, attr in settings.attributes.items():
        value = attr.value
        if isinstance(value, BaseSettings):
            value = _copy_settings(value, memo)
        elif not isinstance(value, _ATOMIC):
            value = copy.deepcopy(value, memo)
        twin = object.__new__(SettingsAttribute)
        twin.__dict__.update(attr.__dict__)
        twin.value = value
        new.attributes[name] = twin
    return new


class CrawlSettings(Settings):
    """Settings whose :meth:`copy` (used by every ``Crawler`` and spider loader Scrapy builds)
    is a deep copy that does not deep-copy strings and numbers."""

    def copy(self) -> Self:
        copied: Self = _copy_settings(self, {})
        return copied


class _Prebuilt:
    """The spider loader of one catalog, built in the parent and inherited by every crawl
    process forked from it: building one spider class per board (and walking the spider
    modules) in each crawl cost ~30 ms at 200 boards."""

    key: tuple[Any, ...] = ()
    boards: list[Any] = []
    loader: Any = None


def spider_loader_class(settings: BaseSettings) -> type | None:
    """A ``SPIDER_LOADER_CLASS`` that hands out the loader built here for the settings' catalog
    (built again when the catalog changed); None when the catalog does not load (the crawl
    process then builds its own and reports the error as before)."""
    from noticecrawler.catalog import catalog_from_settings
    from noticecrawler.spiders.loader import CatalogSpiderLoader

    try:
        boards = catalog_from_settings(settings)  # parsed once per catalog text (cached)
    except (OSError, ValueError):
        return None
    key = (tuple(settings.getlist("SPIDER_MODULES")), settings.getbool("SPIDER_LOADER_WARN_ONLY"))
    same = len(boards) == len(_Prebuilt.boards) and all(
        a is b for a, b in zip(boards, _Prebuilt.boards, strict=True)
    )
    if not same or key != _Prebuilt.key or _Prebuilt.loader is None:
        _Prebuilt.loader = CatalogSpiderLoader(settings)
        _Prebuilt.key, _Prebuilt.boards = key, boards
    loader = _Prebuilt.loader

    class PrebuiltSpiderLoader(CatalogSpiderLoader):
        @classmethod
        def from_settings(cls, settings: BaseSettings) -> Any:
            return loader

    return PrebuiltSpiderLoader


def warm_up(settings: BaseSettings) -> None:
    """Fill the caches that every crawl would otherwise fill for itself after the fork: the
    regular expressions the libraries compile on first use (the meta-refresh scan each response
    goes through, psycopg's quoting of the text arrays a page is stored with) and the codecs
    pages are decoded with."""
    from psycopg.adapt import PyFormat, Transformer
    from scrapy.http import HtmlResponse
    from scrapy.utils.response import get_meta_refresh

    page = b'<html><head><meta http-equiv="refresh" content="5; url=/next"></head></html>'
    response = HtmlResponse("http://127.0.0.1/", body=page, encoding="utf-8")
    get_meta_refresh(response, ignore_tags=settings.getlist("METAREFRESH_IGNORE_TAGS"))
    Transformer().get_dumper(["text"], PyFormat.AUTO).dump(["a text", "needing quotes"])
    # the boards' usual encodings (and charmap, which something looks up per crawl)
    for encoding in ("cp1252", "latin-1", "euc-kr", "cp949", "utf-8", "charmap"):
        codecs.lookup(encoding)  # a codec's module is imported on first lookup
