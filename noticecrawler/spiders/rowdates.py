"""DateReader: the dates of a list page's rows, the fullest form each row holds. The base of
``RowReader`` (``rows.py``), which reads the rest of a row."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

import scrapy
from parsel import Selector
from scrapy.http import TextResponse

from noticecrawler.catalog import BoardDef
from noticecrawler.dates import find_board_date, parse_board_date
from noticecrawler.extract import clean_text, select_first
from noticecrawler.spiders.guess import DATE_LIKE, date_column
from noticecrawler.spiders.marks import SEPARATOR


class DateReader(scrapy.Spider):
    board: BoardDef  # set on each board's spider class (spiders/loader.py)
    defaults: ClassVar[dict[str, Any]] = {}
    clock: Any

    def row_title(self, row: Selector) -> str:
        """The row's title (``RowReader``); a row's date scan leaves it out."""
        return ""

    def uses_default(self, key: str) -> bool:
        return getattr(self.board, key) == type(self).defaults.get(key, getattr(self.board, key))

    def split_dated(self, text: str, year: int | None) -> tuple[str, str, datetime] | None:
        """``(date text, the rest, the date)`` of a line that is a date and a title joined by
        a dash, a bar or a colon, either way round."""
        for sep in SEPARATOR.finditer(text):
            left, right = text[: sep.start()].strip(), text[sep.end() :].strip()
            for when, rest in ((left, right), (right, left)):
                if rest and (found := self.quiet_date(when, year)) is not None:
                    return when, rest, found
        return None

    def date_text(self, row: Selector) -> str:
        """The row's date as written: the date element's text, or its ``title``/``datetime``
        attribute when that holds the fuller form."""
        if not self.board.date:
            return ""
        found = select_first(row, self.board.date)
        if not found:
            return ""
        if not hasattr(found[0].root, "tag"):  # ::attr() / ::text
            return clean_text(found[:1].getall())
        return self.fullest_date(found[0])

    def fullest_date(self, node: Selector) -> str:
        """The date text of ``node``, or its ``title``/``datetime`` attribute (or a child's)
        when that writes the same moment more fully: ``<td title="26.07.28 22:18:06">22:18:06``,
        ``<span title="2025년 03월 02일 10시 04분 51초">2025/03/02``."""
        text = clean_text(node.xpath(".//text()").getall())
        shown = self.quiet_date(text) if text else None
        for attr in node.xpath("./@title | ./@datetime | .//*/@title | .//*/@datetime").getall():
            full = clean_text([attr])
            if len(full) <= len(text) or (when := self.quiet_date(full)) is None:
                continue
            if shown is None or when.date() == shown.date() or when.time() == shown.time():
                return full
        return text

    def row_date(self, row: Selector, response: TextResponse) -> datetime | None:
        text = self.date_text(row)
        guessing = bool(self.board.date) and self.uses_default("date")
        if text and not guessing:
            return self.parse_date(text, response)
        if text and (found := self.quiet_date(text)) is not None:
            return found
        if guessing:
            # no date element (or one the defaults took by mistake, <i class="date">17 Nov):
            # a short element that reads as a date, else a full date in the row's loose text
            column = date_column(row) if getattr(row.root, "tag", None) == "tr" else 0
            cell = row.xpath(f"./td[{column}]") if column else None
            if cell and (found := self.quiet_date(self.fullest_date(cell[0]))) is not None:
                return found
            for attr in row.xpath(".//@datetime | .//@content").getall():
                if DATE_LIKE.search(attr) and (found := self.quiet_date(attr)) is not None:
                    return found
            title = self.row_title(row)
            leaves = [clean_text([t]) for t in row.xpath(".//text()").getall()]
            for leaf in (t for t in leaves if t != title and len(t) <= 30 and DATE_LIKE.search(t)):
                found = self.quiet_date(leaf)
                if found is not None:
                    return found
            loose = clean_text(row.xpath(".//text()").getall()).replace(title, " ")
            return find_board_date(loose, self.board.zone, now=self.clock())
        return None

    def quiet_date(self, text: str, year: int | None = None) -> datetime | None:
        try:
            return parse_board_date(text, self.board.zone, now=self.clock(), year=year)
        except ValueError:
            return None

    def parse_date(self, text: str, response: TextResponse) -> datetime | None:
        if not text:
            return None
        try:
            return parse_board_date(text, self.board.zone, now=self.clock())
        except ValueError as e:
            self.count("rows/bad_date")
            self.logger.warning("board `%s`: %s on %s", self.board.name, e, response.url)
            return None

    def count(self, key: str) -> None:
        stats = getattr(getattr(self, "crawler", None), "stats", None)
        if stats is not None:
            stats.inc_value(f"noticecrawler/{key}")
