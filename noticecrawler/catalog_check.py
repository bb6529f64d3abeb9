"""The catalog checked whole before any board is built.

Every problem of a catalog file is reported at once, each naming its board and field: a TOML
error with its line, a missing ``name``/``start_url``, an unknown field (with the closest known
one), and every CSS or XPath selector compiled. ``catalog.parse_catalog`` runs this first and
raises :class:`CatalogInvalid` listing all problems. A leaf: it knows nothing of the boards
it checks but the field names ``catalog`` hands it.
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Mapping
from typing import Any, NamedTuple

from cssselect import SelectorError
from lxml import etree
from parsel.csstranslator import css2xpath

from noticecrawler.errors import ProjectError
from noticecrawler.extract import is_xpath

REQUIRED = ("name", "start_url")


class CatalogError(ValueError):
    """A catalog entry that cannot be used; the message names the board and the field."""

    def __init__(self, board: str, field_name: str, problem: str):
        super().__init__(f"catalog: board `{board}`: field `{field_name}`: {problem}")
        self.board = board
        self.field = field_name


#: fields holding a selector (CSS, or XPath when starting with / ./ ( or xpath:)
SELECTORS = (
    "row", "title", "link", "date", "author", "category", "pinned", "attachments",
    "detail_title", "detail_date", "detail_body", "detail_attachments",
)  # fmt: skip


class Problem(NamedTuple):
    board: str
    field: str
    problem: str

    @property
    def text(self) -> str:
        if not self.field:
            return self.problem
        where = f"board `{self.board}`" if self.board else "board without a name"
        if self.board == "[defaults]":
            where = "[defaults]"
        return f"{where}: field `{self.field}`: {self.problem}"


class CatalogInvalid(ProjectError, CatalogError):
    """A catalog file with problems; ``problems`` lists each one, naming board and field."""

    def __init__(self, source: str, problems: list[Problem]):
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        text = "; ".join(p.text for p in problems)
        ValueError.__init__(self, f"catalog {source}: {count}: {text}")
        # the first problem's board and field, as a single CatalogError carries them
        self.board, self.field = (problems[0].board, problems[0].field) if problems else ("", "")
        self.source = source
        self.problems = problems


def parse_toml(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:  # the message carries "(at line L, column C)"
        raise CatalogInvalid(source, [Problem("", "", f"not valid TOML: {e}")]) from None


def selector_problem(query: str) -> str | None:
    """Why ``query`` does not compile, or None."""
    try:
        if is_xpath(query):
            etree.XPath(query.removeprefix("xpath:"))
        else:
            css2xpath(query)
    except (SelectorError, etree.XPathError) as e:
        kind = "XPath" if is_xpath(query) else "CSS"
        return f"invalid {kind} selector {query!r}: {e}"
    return None


def board_problems(
    raw: Mapping[str, Any], defaults: Mapping[str, Any], known: list[str]
) -> list[Problem]:
    name = raw.get("name")
    board = name if isinstance(name, str) else ""
    problems = []
    for key in REQUIRED:
        if key not in raw and key not in defaults:
            problems.append(Problem(board, key, "missing"))
    for key in raw:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean `{close[0]}`?)" if close else ""
            problems.append(Problem(board, key, f"unknown field{hint}"))
    merged = {**defaults, **raw}
    for key in SELECTORS:
        value = merged.get(key)
        if isinstance(value, str) and value and (why := selector_problem(value)):
            problems.append(Problem(board, key, why))
    nxt = merged.get("next")
    if isinstance(nxt, str) and nxt.startswith("link:") and (why := selector_problem(nxt[5:])):
        problems.append(Problem(board, "next", why))
    return problems


def check(data: Mapping[str, Any], known: list[str]) -> dict[int, list[Problem]]:
    """Problems of each board entry (by index), and of the file itself (index -1); ``known``:
    the fields a board entry may have."""
    found: dict[int, list[Problem]] = {}
    unknown = sorted(set(data) - {"defaults", "board"})
    if unknown:
        found[-1] = [
            Problem("", "", f"unknown top-level key(s) {unknown}; use [defaults] and [[board]]")
        ]
    defaults = data.get("defaults", {})
    boards = data.get("board", [])
    if not isinstance(defaults, dict) or not isinstance(boards, list):
        found.setdefault(-1, []).append(
            Problem("", "", "[defaults] must be a table and [[board]] a list")
        )
        return found
    for key in defaults:
        if key not in known:
            found.setdefault(-1, []).append(Problem("[defaults]", key, "unknown field"))
    for index, raw in enumerate(boards):
        if problems := board_problems(raw, defaults, known):
            found[index] = problems
    return found
