"""The corpus of real board skins (``tests/fixtures/skins/<skin>/``) is complete and well-formed.

Only the shape is checked here: every folder holds its page, URL, expected posts, catalog row
and source note, the page decodes in the charset it declares, and ``expected.json`` follows the
schema. Whether the engines read the skins right is the extraction tests' business.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from noticecrawler.catalog import parse_catalog
from tests.fixturecases import PAGE_NAMES

SKINS = Path(__file__).parent / "fixtures" / "skins"
ENGINES = {"feed", "gnuboard", "jsboard", "list", "table", "wordpress", "xe", "zeroboard"}
POST_KEYS = {"post_id", "title", "url", "published", "pinned"}
# SOURCE.md names a repository (owner/name) and a path inside it, in backquotes; a skin of
# which no public copy exists says so and points at the markup quoted in issue 10
_REPO_PATH = re.compile(r"[\w.-]+/[\w.-]+ `[^`]+\.[\w.]+`")
_NO_PUBLIC_COPY = re.compile(r"no saved copy .* issue 10 \(`issues show 10`", re.S)
_CHARSET = re.compile(r"charset=[\"']?([\w-]+)", re.I)
_XML_ENCODING = re.compile(rb"<\?xml[^>]*encoding=[\"']([\w-]+)[\"']")


def skin_dirs() -> list[Path]:
    return sorted(p for p in SKINS.iterdir() if p.is_dir())


def page_of(folder: Path) -> Path:
    pages = [folder / n for n in PAGE_NAMES if (folder / n).exists()]
    assert len(pages) == 1, f"{folder.name}: expected one of {PAGE_NAMES}, found {pages}"
    return pages[0]


def declared_charset(folder: Path, body: bytes) -> str:
    """The charset the server (meta.json) or the document itself declares; UTF-8 if none."""
    meta = folder / "meta.json"
    if meta.exists():
        found = _CHARSET.search(json.loads(meta.read_text())["content_type"])
        if found:
            return found.group(1)
    xml = _XML_ENCODING.search(body[:200])
    if xml:
        return xml.group(1).decode()
    head = _CHARSET.search(body[:4096].decode("ascii", "replace"))
    return head.group(1) if head else "utf-8"


def test_the_corpus_is_big_enough() -> None:
    dirs = skin_dirs()
    assert len(dirs) >= 24, [d.name for d in dirs]
    engines = {json.loads((d / "expected.json").read_text())["engine"] for d in dirs}
    assert len(engines) >= 6, engines


@pytest.mark.parametrize("folder", skin_dirs(), ids=lambda p: p.name)
def test_skin_folder_is_complete(folder: Path) -> None:
    for name in ("url.txt", "expected.json", "board.toml", "SOURCE.md"):
        assert (folder / name).is_file(), f"{folder.name}: {name} missing"
    page_of(folder)
    url = urlsplit((folder / "url.txt").read_text().strip())
    assert url.scheme in ("http", "https") and "example" in url.hostname, url  # type: ignore[operator]


@pytest.mark.parametrize("folder", skin_dirs(), ids=lambda p: p.name)
def test_page_decodes_in_its_declared_charset(folder: Path) -> None:
    body = page_of(folder).read_bytes()
    charset = declared_charset(folder, body)
    if charset.lower().replace("_", "-") in ("euc-kr", "ks-c-5601-1987"):
        charset = "cp949"  # what browsers (and the crawler) decode a page declared EUC-KR as
    text = body.decode(charset)  # raises on a byte the declared charset cannot hold
    assert "\ufffd" not in text


@pytest.mark.parametrize("folder", skin_dirs(), ids=lambda p: p.name)
def test_expected_json_follows_the_schema(folder: Path) -> None:
    expected: dict[str, Any] = json.loads((folder / "expected.json").read_text(encoding="utf-8"))
    assert expected["engine"] in ENGINES
    now = datetime.fromisoformat(expected["now"])
    assert now.tzinfo is not None
    list_url = (folder / "url.txt").read_text().strip()
    posts = expected["posts"]
    assert len(posts) >= 3, f"{folder.name}: a list page shows at least a few posts"
    ids = [p["post_id"] for p in posts if p["post_id"] is not None]
    assert len(ids) == len(set(ids)), f"{folder.name}: duplicate post ids"
    for post in posts:
        assert set(post) == POST_KEYS, f"{folder.name}: {sorted(post)}"
        assert isinstance(post["title"], str) and post["title"].strip() == post["title"] != ""
        assert isinstance(post["pinned"], bool)
        assert urlsplit(post["url"]).scheme in ("http", "https")
        if post["post_id"] is None:  # a row without a link: keyed by a digest, URL = the list
            assert post["url"] == list_url
        else:
            assert isinstance(post["post_id"], str) and post["post_id"]
        if post["published"] is not None:
            published = datetime.fromisoformat(post["published"])
            assert published.tzinfo is not None
            # a dated post is not from the future, except a link-less agenda row (a meeting)
            assert published <= now or post["post_id"] is None


@pytest.mark.parametrize("folder", skin_dirs(), ids=lambda p: p.name)
def test_catalog_row_loads(folder: Path) -> None:
    (board,) = parse_catalog((folder / "board.toml").read_text(encoding="utf-8"), folder.name)
    assert board.name == folder.name
    assert board.start_url == (folder / "url.txt").read_text().strip()


@pytest.mark.parametrize("folder", skin_dirs(), ids=lambda p: p.name)
def test_source_names_a_repository_path(folder: Path) -> None:
    source = (folder / "SOURCE.md").read_text(encoding="utf-8").strip()
    assert _REPO_PATH.search(source) or _NO_PUBLIC_COPY.search(source), (
        f"{folder.name}: SOURCE.md must name owner/repo `path` (or say no copy exists)"
    )
