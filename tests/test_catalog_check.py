"""The catalog is checked whole at load: every problem of a file at once, each naming its
board and field; selectors compiled; a TOML error with its line."""

from __future__ import annotations

import pytest

from noticecrawler.catalog import CatalogError, parse_catalog
from noticecrawler.catalog_check import CatalogInvalid

BROKEN = """
[[board]]
name = "no_url"
engine = "table"

[[board]]
name = "bad_css"
start_url = "https://example.invalid/list"
row = "table.list tr["

[[board]]
name = "bad_xpath"
start_url = "https://example.invalid/list"
title = "//td[@class='title'"

[[board]]
name = "typo"
start_url = "https://example.invalid/list"
rwo = "tr"

[[board]]
name = "good"
start_url = "https://example.invalid/list"
"""


def test_every_problem_of_a_file_is_reported_at_once() -> None:
    with pytest.raises(CatalogInvalid) as caught:
        parse_catalog(BROKEN, "boards.toml")
    err = caught.value
    assert isinstance(err, CatalogError)  # callers catching CatalogError still do
    problems = {(p.board, p.field) for p in err.problems}
    assert problems == {
        ("no_url", "start_url"),
        ("bad_css", "row"),
        ("bad_xpath", "title"),
        ("typo", "rwo"),
    }
    text = str(err)
    assert text.startswith("catalog boards.toml: 4 problems: ")
    assert "board `no_url`: field `start_url`: missing" in text
    assert "board `bad_css`: field `row`: invalid CSS selector 'table.list tr['" in text
    assert "board `bad_xpath`: field `title`: invalid XPath selector" in text
    assert "board `typo`: field `rwo`: unknown field (did you mean `row`?)" in text
    assert "\n" not in text


def test_a_toml_error_names_file_and_line() -> None:
    with pytest.raises(CatalogInvalid, match=r"catalog boards\.toml: .*not valid TOML.*line 3"):
        parse_catalog('[[board]]\nname = "x"\nstart_url = \n', "boards.toml")


def test_selectors_in_defaults_and_next_links_are_compiled() -> None:
    text = (
        '[defaults]\ndate = "td.date::text("\n'
        '[[board]]\nname = "a_board"\nstart_url = "https://x.invalid/"\nnext = "link:a["\n'
    )
    with pytest.raises(CatalogInvalid) as caught:
        parse_catalog(text)
    assert {(p.board, p.field) for p in caught.value.problems} == {
        ("a_board", "date"),
        ("a_board", "next"),
    }


def test_the_shipped_catalog_passes() -> None:
    from noticecrawler.catalog import load_catalog

    assert load_catalog("", {"demo": "http://127.0.0.1:8765"})
