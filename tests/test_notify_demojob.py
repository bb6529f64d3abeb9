"""The README's main job shows the one push the new demo post would send."""

from __future__ import annotations

from pathlib import Path

import pytest
from scrapy.settings import Settings

from noticecrawler.commands.demo import run_demo
from noticecrawler.db import embedded


@pytest.mark.slow
def test_demo_job_prints_the_push_of_the_new_post(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings({"DATABASE_URL": database_url, "NOTICECRAWLER_HOME": str(tmp_path)})
    try:
        assert run_demo(settings) == 0
    finally:
        embedded.stop_redis(tmp_path)  # the demo leaves its embedded Redis up for later commands
    out = capsys.readouterr().out
    pushes = [line for line in out.splitlines() if line.startswith("push ")]
    title = "2026학년도 동계 계절학기 수강신청 및 장학금 안내"
    board = "Demo board (local, shipped with the project)"  # the catalog's title_text
    assert pushes == [f"push [{board}] {title} -> console-demo…"]
    assert "1 push(es) for 1 announced post(s)" in out
