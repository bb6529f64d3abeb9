"""The board catalog: a TOML file in which each board is one ``[[board]]`` entry.

A board names an engine (the board software it runs) and a start URL; selectors and the rest
default to the engine's and may be overridden per board. Loading checks every entry and refuses
a malformed one with a message naming the board and the field.

The catalog imports no spider: engines are handed to it. Each engine registers its defaults and
required fields when its class is defined (``register_engine``, called by
``BoardSpider.__init_subclass__``); ``known_engines`` loads the engine package by name the first
time a catalog is read, as Scrapy loads ``SPIDER_MODULES``. ``build_board`` also takes the
engines explicitly.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from noticecrawler.catalog_check import CatalogError, CatalogInvalid, Problem, check, parse_toml

NAME_RE = re.compile(r"^[a-z][a-z0-9_]{1,63}$")
ID_RULE_RE = re.compile(r"^(query:\w+|js(:\d+)?|attr:[\w-]+|path:-?\d+|regex:.+)$")
NEXT_RULE_RE = re.compile(r"^(param:\w+|link:.+|none)$")
_INTERVAL_RE = re.compile(r"^(\d+)\s*(s|m|h|d)?$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}

SELECTOR_FIELDS = ("row", "title", "link", "date", "author", "category", "pinned", "attachments")

#: the package whose modules define the board engines; importing it registers them
ENGINE_PACKAGE = "noticecrawler.spiders.engines"


class EngineSpec(Protocol):
    """What the catalog needs of a board engine: its field defaults and required fields."""

    @property
    def defaults(self) -> Mapping[str, Any]: ...

    @property
    def required(self) -> tuple[str, ...]: ...


_ENGINES: dict[str, EngineSpec] = {}


def register_engine(name: str, spec: EngineSpec) -> None:
    """Hand an engine to the catalog (engines call this when they are defined)."""
    _ENGINES[name] = spec


def known_engines() -> Mapping[str, EngineSpec]:
    """The registered engines; the engine package is loaded by name on first use (as Scrapy
    loads ``SPIDER_MODULES``), so the catalog imports no spider and stays a leaf."""
    if not _ENGINES:
        importlib.import_module(ENGINE_PACKAGE)
    return _ENGINES


@dataclass(frozen=True)
class BoardDef:
    """One board of the catalog, with the engine's defaults already filled in."""

    name: str
    start_url: str
    engine: str = "table"
    title_text: str = ""
    enabled: bool = True
    interval: int = 600
    timezone: str = "Asia/Seoul"
    # selectors (CSS, or XPath when starting with / ./ ( or xpath:)
    row: str = ""
    title: str = ""
    link: str = ""
    date: str = ""
    author: str = ""
    category: str = ""
    #: selector that matches inside a pinned ("공지") row; empty: the number cell is not a number
    pinned: str = ""
    #: selector of attachment links inside a row
    attachments: str = ""
    #: how the id is derived: query:<param> | js[:<n>] | attr:<name> | path:<i> | regex:<re>
    id: str = ""
    #: how to reach the next page: param:<name> | link:<selector> | none
    next: str = "none"
    #: detail URL from the id, e.g. "https://x/view.do?nttId={id}" (JS-link boards)
    detail_url: str = ""
    #: query parameters that must stay in post URLs even though they look like junk
    keep_params: tuple[str, ...] = ()
    max_pages: int = 0  # 0: the NOTICECRAWLER_MAX_PAGES setting
    first_crawl_max_pages: int = 0  # 0: the NOTICECRAWLER_FIRST_CRAWL_MAX_PAGES setting
    #: announce the posts of the board's very first crawl (default: store them silently)
    announce_first_crawl: bool = False
    #: follow NEW posts to their detail page (body, exact time, attachments)
    follow_details: bool = False
    #: re-fetch known posts' detail pages to detect edits of the body
    check_edits: bool = False
    #: selectors on the detail page
    detail_title: str = ""
    detail_date: str = ""
    detail_body: str = ""
    detail_attachments: str = ""
    #: with ``check_edits``: only posts younger than this many days are revalidated
    check_edits_days: int = 14
    #: "obey" (default) or "ignore" robots.txt; "ignore" needs a ``reason``
    robots: str = "obey"
    #: why this board may ignore robots.txt (required with ``robots = "ignore"``)
    reason: str = ""
    #: engine-specific extras (documented by each engine)
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


_FIELD_TYPES: dict[str, type | tuple[type, ...]] = {
    f.name: (
        bool if f.type == "bool" else int if f.type == "int" else dict if "Mapping" in str(f.type)
        else tuple if "tuple" in str(f.type) else str
    )
    for f in fields(BoardDef)
}  # fmt: skip


def parse_interval(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    if isinstance(value, str):
        m = _INTERVAL_RE.match(value.strip())
        if m and int(m.group(1)) > 0:
            return int(m.group(1)) * _UNITS[m.group(2)]
    raise ValueError(f"{value!r} is not an interval like 90, '90s', '10m', '1h'")


def build_board(
    raw: Mapping[str, Any],
    defaults: Mapping[str, Any],
    substitutions: Mapping[str, str],
    engines: Mapping[str, EngineSpec] | None = None,
) -> BoardDef:
    """Validate one raw entry (merged over the catalog defaults and its engine's defaults)."""
    registry = known_engines() if engines is None else engines
    name = raw.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name):
        label = name if isinstance(name, str) and name else "?"
        raise CatalogError(label, "name", f"must match {NAME_RE.pattern}, got {name!r}")
    engine_name = raw.get("engine", defaults.get("engine", "table"))
    engine = registry.get(engine_name)
    if engine is None:
        raise CatalogError(
            name, "engine", f"unknown engine {engine_name!r}; known: {sorted(registry)}"
        )
    values: dict[str, Any] = {**engine.defaults, **defaults, **raw, "engine": engine_name}
    for key, value in values.items():
        expected = _FIELD_TYPES.get(key)
        if expected is None:
            raise CatalogError(name, key, "unknown field")
        if key == "interval":
            try:
                values[key] = parse_interval(value)
            except ValueError as e:
                raise CatalogError(name, key, str(e)) from None
            continue
        if expected is tuple and isinstance(value, list):
            values[key] = tuple(str(v) for v in value)
            continue
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise CatalogError(name, key, f"must be {_type_name(expected)}, got {value!r}")
        if isinstance(value, str):
            values[key] = _substitute(value, substitutions)
    board = BoardDef(**values)
    _check(board, engine.required)
    return board


def _check(board: BoardDef, required: tuple[str, ...]) -> None:
    if not re.match(r"^https?://[^/\s]+", board.start_url):
        raise CatalogError(
            board.name, "start_url", f"must be an http(s) URL, got {board.start_url!r}"
        )
    for key in required:
        if not getattr(board, key):
            raise CatalogError(board.name, key, f"is required by engine `{board.engine}`")
    if board.id and not ID_RULE_RE.match(board.id):
        raise CatalogError(
            board.name,
            "id",
            f"{board.id!r} is not query:<param>, js[:<n>], attr:<name>, "
            "path:<index> or regex:<pattern>",
        )
    if board.id.startswith("regex:"):
        try:
            if re.compile(board.id[6:]).groups < 1:
                raise CatalogError(board.name, "id", "the regex needs one capture group")
        except re.error as e:
            raise CatalogError(board.name, "id", f"bad regex: {e}") from None
    if not NEXT_RULE_RE.match(board.next):
        raise CatalogError(
            board.name, "next", f"{board.next!r} is not param:<name>, link:<selector> or none"
        )
    try:
        ZoneInfo(board.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise CatalogError(board.name, "timezone", f"unknown timezone {board.timezone!r}") from None
    if board.max_pages < 0 or board.first_crawl_max_pages < 0:
        raise CatalogError(board.name, "max_pages", "must not be negative")
    if board.robots not in ("obey", "ignore"):
        raise CatalogError(
            board.name, "robots", f"must be 'obey' or 'ignore', got {board.robots!r}"
        )
    if board.robots == "ignore" and not board.reason.strip():
        raise CatalogError(
            board.name, "reason", 'is required with robots = "ignore" (say why the board may)'
        )
    if board.check_edits_days < 1:
        raise CatalogError(board.name, "check_edits_days", "must be at least 1")
    if board.detail_url and "{id}" not in board.detail_url:
        raise CatalogError(board.name, "detail_url", "must contain {id}")


def _type_name(t: type | tuple[type, ...]) -> str:
    return {
        bool: "true/false",
        int: "an integer",
        str: "a string",
        dict: "a table",
        tuple: "a list",
    }.get(t if isinstance(t, type) else str, str(t))


def _substitute(value: str, substitutions: Mapping[str, str]) -> str:
    for key, sub in substitutions.items():
        value = value.replace("{" + key + "}", sub)
    return value


def parse_catalog(
    text: str,
    source: str = "catalog",
    substitutions: Mapping[str, str] | None = None,
    base: Mapping[str, Any] | None = None,
) -> list[BoardDef]:
    """Every board of a catalog file; all its problems at once (catalog_check.CatalogInvalid).
    ``base`` holds defaults under the file's own ``[defaults]`` (from the settings)."""
    data = parse_toml(text, source)
    found = check(data, [f.name for f in fields(BoardDef)])
    problems = found.pop(-1, [])
    defaults = {**(base or {}), **data.get("defaults", {})}
    boards: list[BoardDef] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(data.get("board", [])):
        if index in found:
            problems += found[index]
            continue
        try:
            board = build_board(raw, defaults, substitutions or {})
        except CatalogError as e:
            problems.append(Problem(e.board, e.field, str(e).split(": ", 3)[-1]))
            continue
        if board.name in seen:
            collides = f"collides with board #{seen[board.name] + 1} of {source}"
            problems.append(Problem(board.name, "name", collides))
            continue
        seen[board.name] = index
        boards.append(board)
    if problems:
        raise CatalogInvalid(source, problems)
    return boards


#: parsed catalogs of this process by (text, source, substitutions, base): every crawl task reads
#: the catalog again (an edit takes effect at once) but parses a text it has seen only once
_parsed: dict[tuple[Any, ...], list[BoardDef]] = {}


def parse_catalog_cached(
    text: str,
    source: str,
    substitutions: Mapping[str, str] | None = None,
    base: Mapping[str, Any] | None = None,
) -> list[BoardDef]:
    """:func:`parse_catalog`, parsed once per distinct text (boards are frozen; the list is a
    copy). A catalog with problems is not kept: it raises every time."""
    key = (
        text,
        source,
        tuple(sorted((substitutions or {}).items())),
        tuple(sorted((k, repr(v)) for k, v in (base or {}).items())),
    )
    if key not in _parsed:
        if len(_parsed) >= 8:
            _parsed.clear()
        _parsed[key] = parse_catalog(text, source, substitutions, base)
    return list(_parsed[key])


def default_catalog_text() -> str:
    return (resources.files("noticecrawler") / "catalog.toml").read_text(encoding="utf-8")


def load_catalog(
    path: str = "",
    substitutions: Mapping[str, str] | None = None,
    base: Mapping[str, Any] | None = None,
) -> list[BoardDef]:
    """Boards of the catalog at ``path`` (the packaged catalog when empty)."""
    if path:
        text = Path(path).read_text(encoding="utf-8")
        return parse_catalog_cached(text, path, substitutions, base)
    return parse_catalog_cached(default_catalog_text(), "catalog.toml", substitutions, base)


def catalog_from_settings(settings: Any) -> list[BoardDef]:
    return load_catalog(
        settings.get("NOTICECRAWLER_CATALOG", ""),
        {"demo": settings.get("DEMO_BOARD_URL", "")},
        {"timezone": settings.get("NOTICECRAWLER_DEFAULT_TIMEZONE") or "Asia/Seoul"},
    )
