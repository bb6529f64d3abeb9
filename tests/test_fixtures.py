"""Every fixture folder parses to exactly its expected posts (no network, frozen clock)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixturecases import extract, fixture_dirs

FIELDS = (
    "post_id", "title", "url", "published", "published_source", "pinned", "attachments",
    "author", "category",
)  # fmt: skip


@pytest.mark.parametrize("folder", fixture_dirs(), ids=lambda p: p.name)
def test_fixture_parses_to_expected_posts(folder: Path) -> None:
    got, expected = extract(folder)
    want = expected["posts"]
    assert [p["post_id"] for p in got] == [p["post_id"] for p in want]
    for g, w in zip(got, want, strict=True):
        for field in FIELDS:
            if field in w:
                assert g[field] == w[field], f"{folder.name} post {w['post_id']}: {field}"
        assert g["board"] == expected.get("board", folder.name)
