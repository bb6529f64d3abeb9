"""``noticecrawler detect`` names the right engine for every engine fixture and prints a
catalog row that loads and extracts the fixture's posts."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from noticecrawler.catalog import parse_catalog
from noticecrawler.commands import detect
from tests.fixturecases import PAGE_NAMES, board_for, fixture_dirs

#: fixtures whose board.toml picks another engine than the page's software would suggest
ENGINE_OF = {"jsboard_cp949": "jsboard"}  # a JS-link board read with the table engine + id "js"
#: engines whose defaults alone must find exactly the fixture's posts
EXACT = {"gnuboard", "xe", "zeroboard", "wordpress", "feed"}


def page_of(folder: Path) -> Path:
    return next(folder / n for n in PAGE_NAMES if (folder / n).exists())


@pytest.mark.parametrize("folder", fixture_dirs(), ids=lambda p: p.name)
def test_detect_names_the_engine_and_prints_a_loadable_row(folder: Path, capsys) -> None:
    args = argparse.Namespace(target=str(page_of(folder)), url="", name=folder.name)
    assert detect.run(args, None) == 0
    out = capsys.readouterr().out
    engine = ENGINE_OF.get(folder.name, board_for(folder).engine)
    assert out.startswith(f"# engine `{engine}`")
    row = "\n".join(line for line in out.splitlines() if not line.startswith("#"))
    (board,) = parse_catalog(row)
    assert board.engine == engine and board.name == folder.name
    expected = json.loads((folder / "expected.json").read_text(encoding="utf-8"))["posts"]
    listed = [line.split()[1] for line in out.splitlines() if line.startswith("#   ")]
    if engine in EXACT:
        assert listed == [p["post_id"] for p in expected[:5]]
    else:
        assert listed


def test_detect_says_why_it_cannot(tmp_path: Path, capsys) -> None:
    page = tmp_path / "page.html"
    page.write_text("<html><body><p>준비 중입니다</p></body></html>", encoding="utf-8")
    args = argparse.Namespace(target=str(page), url="https://x.example/", name="x")
    assert detect.run(args, None) == 1
    assert "no board found" in capsys.readouterr().out
    args = argparse.Namespace(target=str(tmp_path / "missing.html"), url="", name="x")
    assert detect.run(args, None) == 2


def test_detect_reads_the_demo_board_over_http(demo_server, capsys) -> None:
    args = argparse.Namespace(target=demo_server.list_url("demo"), url="", name="campus")
    assert detect.run(args, None) == 0
    out = capsys.readouterr().out
    row = tomllib.loads("\n".join(x for x in out.splitlines() if not x.startswith("#")))
    assert row["board"][0]["engine"] == "table" and row["board"][0]["id"] == "query:no"
    assert "[필독] 2026학년도 학사일정 안내" in out


def test_no_board_found_only_when_no_engine_extracts_two_posts(tmp_path: Path, capsys) -> None:
    row = '<tr><td>{n}</td><td class="subject"><a href="view?no={n}">글 {n}</a></td></tr>'
    page = tmp_path / "page.html"
    page.write_text(f"<table><tbody>{row.format(n=1)}</tbody></table>", encoding="utf-8")
    args = argparse.Namespace(target=str(page), url="https://x.example/list", name="xboard")
    assert detect.run(args, None) == 1
    assert "no board found: no engine extracts two posts" in capsys.readouterr().out
    page.write_text(f"<table><tbody>{row.format(n=2)}{row.format(n=1)}</tbody></table>", "utf-8")
    code = detect.run(args, None)
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.startswith("# engine `table`: 2 posts") and "confidence" in out


def test_the_catalog_imports_no_spider() -> None:
    code = (
        "import sys, noticecrawler.catalog as c\n"
        "assert not [m for m in sys.modules if m.startswith('noticecrawler.spiders')]\n"
        "assert 'gnuboard' in c.known_engines()\n"  # loaded by name on first use
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parent.parent)
