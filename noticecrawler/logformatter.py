"""Log lines name a post, never print it: Scrapy's stock formatter writes the whole item into
"Scraped from …", "Dropped: …" and "Error processing …" lines, so one 100 KB title made a
282 KB log line (and pushed control characters into the log). Here an item is its board and
post id (and row id once stored), and an exception message is cut to a bounded length."""

from __future__ import annotations

from typing import Any

from itemadapter import ItemAdapter, is_item
from scrapy import Spider
from scrapy.http import Response
from scrapy.logformatter import LogFormatter, LogFormatterResult
from twisted.python.failure import Failure

#: at most this many characters of a message that may quote an item
MAX_MESSAGE = 300


def item_ref(item: Any) -> str:
    """``post demo/123 (#45)``: what a log line says about an item."""
    if not is_item(item):
        return f"item of type {type(item).__name__}"
    adapter = ItemAdapter(item)
    ref = f"post {short(str(adapter.get('board')), 60)}/{short(str(adapter.get('post_id')), 60)}"
    db_id = adapter.get("db_id")
    return f"{ref} (#{db_id})" if db_id else ref


def short(text: str, limit: int = MAX_MESSAGE) -> str:
    text = text.replace("\n", " ").replace("\r", " ")
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} characters)"


class PostLogFormatter(LogFormatter):
    def scraped(
        self, item: Any, response: Response | Failure | None, spider: Spider
    ) -> LogFormatterResult:
        result = super().scraped(item, response, spider)
        result["msg"] = "Scraped %(item)s from %(src)s"
        result["args"] = {**dict(result["args"]), "item": item_ref(item)}
        return result

    def dropped(
        self,
        item: Any,
        exception: BaseException,
        response: Response | Failure | None,
        spider: Spider,
    ) -> LogFormatterResult:
        result = super().dropped(item, exception, response, spider)
        result["msg"] = "Dropped %(item)s: %(exception)s"
        result["args"] = {"item": item_ref(item), "exception": short(str(exception))}
        return result

    def item_error(
        self,
        item: Any,
        exception: BaseException,
        response: Response | Failure | None,
        spider: Spider,
    ) -> LogFormatterResult:
        result = super().item_error(item, exception, response, spider)
        result["args"] = {**dict(result["args"]), "item": item_ref(item)}
        return result
