"""Every skin of the corpus (tests/fixtures/skins/) read with no configuration: the engine named
in its expected.json with no selector overrides, and the engine ``detect`` picks, each give
exactly the expected posts, field by field (clock frozen)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.skincases import (
    board_row,
    detected_posts,
    engine_defaults_posts,
    expected_of,
    extract_with,
    score,
    skin_dirs,
)

SKINS = skin_dirs()


@pytest.mark.parametrize("folder", SKINS, ids=lambda p: p.name)
def test_the_named_engine_reads_the_skin_with_its_defaults(folder: Path) -> None:
    result = score(engine_defaults_posts(folder), expected_of(folder))
    assert result.wrong == []


@pytest.mark.parametrize("folder", SKINS, ids=lambda p: p.name)
def test_detect_picks_an_engine_that_reads_the_skin(folder: Path) -> None:
    engine, posts = detected_posts(folder)
    result = score(posts, expected_of(folder))
    assert result.wrong == [], f"detect picked `{engine}`"


@pytest.mark.parametrize("folder", SKINS, ids=lambda p: p.name)
def test_the_skins_catalog_row_reads_it(folder: Path) -> None:
    result = score(extract_with(board_row(folder), folder), expected_of(folder))
    assert result.wrong == []
