from __future__ import annotations

import os
import subprocess
import sys

import pytest

from noticecrawler.catalog import CatalogError, load_catalog, parse_catalog
from tests.conftest import ROOT
from tests.fixturecases import FIXTURES, extract

GOOD = """
[[board]]
name = "cse"
start_url = "https://cse.example.ac.kr/notice"
"""


def test_a_minimal_entry_gets_its_engine_defaults() -> None:
    (board,) = parse_catalog(GOOD)
    assert board.engine == "table" and board.row and board.id == "query:no"
    assert board.timezone == "Asia/Seoul" and board.interval == 600


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ('interval = "often"', "interval"),
        ('engine = "phpbb9"', "engine"),
        ('id = "cookie:x"', "id"),
        ('timezone = "Mars/Olympus"', "timezone"),
        ('next = "scroll"', "next"),
        ("enabled = 3", "enabled"),
        ('rwo = "tr"', "rwo"),
        ('id = "regex:no=\\\\d+"', "id"),
        ('detail_url = "https://x/view"', "detail_url"),
    ],
)
def test_malformed_entry_is_refused_naming_board_and_field(extra: str, field: str) -> None:
    with pytest.raises(CatalogError) as err:
        parse_catalog(GOOD + extra + "\n")
    assert err.value.board == "cse" and err.value.field == field
    assert f"board `cse`: field `{field}`" in str(err.value)


def test_bad_start_url_and_bad_name_are_refused() -> None:
    with pytest.raises(CatalogError, match="board `cse`: field `start_url`"):
        parse_catalog('[[board]]\nname = "cse"\nstart_url = "ftp://x"\n')
    with pytest.raises(CatalogError, match="field `name`"):
        parse_catalog('[[board]]\nname = "CSE Board"\nstart_url = "https://x"\n')


def test_colliding_names_are_refused() -> None:
    with pytest.raises(CatalogError, match="board `cse`: field `name`: collides"):
        parse_catalog(GOOD + GOOD)


def test_every_catalog_board_loads_has_a_fixture_and_parses_it() -> None:
    boards = load_catalog(substitutions={"demo": "http://127.0.0.1:8765"})
    assert boards
    for board in boards:
        folder = FIXTURES / board.name
        assert (folder / "expected.json").exists(), f"board `{board.name}` has no fixture"
        got, expected = extract(folder)
        assert len(got) == len(expected["posts"]) > 0


def test_scrapy_list_shows_the_catalog() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "scrapy", "list"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert {b.name for b in load_catalog(substitutions={"demo": "http://h"})} <= set(out)


def test_scrapy_refuses_a_malformed_catalog(tmp_path) -> None:
    bad = tmp_path / "catalog.toml"
    bad.write_text('[[board]]\nname = "knu_cse"\nstart_url = "https://x/"\nmax_pages = "ten"\n')
    proc = subprocess.run(
        [sys.executable, "-m", "scrapy", "list"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NOTICECRAWLER_CATALOG": str(bad)},
    )
    assert proc.returncode != 0
    assert "board `knu_cse`: field `max_pages`" in proc.stderr


def test_the_readme_rows_load_one_per_engine() -> None:
    from noticecrawler.spiders.engines import ENGINES

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = [b.split("```", 1)[0] for b in readme.split("```toml")[1:]]
    boards = [board for block in blocks for board in parse_catalog(block, "README.md")]
    assert {b.engine for b in boards} == set(ENGINES)
