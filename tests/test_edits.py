"""End to end on the demo board: edits make a revision and never a new-post event; detail pages
fill posts without counting them as new or announcing them twice; ``scrapy check`` passes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from noticecrawler.demo.catalog import board_entry
from tests.conftest import ROOT, run_crawl

DETAIL_CATALOG = board_entry(
    "demo_detail",
    "demo",
    first_crawl_max_pages=1,
    follow_details=True,
    check_edits=True,
    detail_body="div.view-content",
    detail_date="span.view-date",
    detail_attachments="ul.view-files a",
)


def count(db, sql: str, *params) -> int:
    return db.execute(sql, params).fetchone()["n"]


def test_an_edited_title_is_one_revision_and_no_new_post_event(crawl, db, demo_server) -> None:
    assert crawl("demo").returncode == 0
    demo_server.add_post("demo", title="첫 크롤 이후의 새 글")
    assert crawl("demo").returncode == 0  # one announced post, so the outbox is not empty
    outbox = count(db, "SELECT count(*) AS n FROM notify_outbox")
    assert outbox == 1
    before = db.execute(
        "SELECT id, title FROM posts WHERE board = 'demo' AND post_id = '35'"
    ).fetchone()

    demo_server.edit_post("demo", 35, title="[수정] 기숙사 입사 안내")
    result = crawl("demo")
    assert result.returncode == 0, result.log
    assert result.run["new"] == 0
    revisions = db.execute("SELECT post_id, title FROM post_revisions").fetchall()
    assert revisions == [{"post_id": before["id"], "title": before["title"]}]
    after = db.execute("SELECT title, state FROM posts WHERE id = %s", (before["id"],)).fetchone()
    assert after == {"title": "[수정] 기숙사 입사 안내", "state": "edited"}
    assert count(db, "SELECT count(*) AS n FROM notify_outbox") == outbox


def test_detail_pages_fill_posts_and_never_make_them_new(crawl_env, db, demo_server, tmp_path):
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(DETAIL_CATALOG, encoding="utf-8")
    env = {**crawl_env, "NOTICECRAWLER_CATALOG": str(catalog)}

    first = run_crawl("demo_detail", env)
    assert first.returncode == 0, first.log
    assert first.run["new"] == 13  # one page: 10 regular + 3 pinned
    posts = db.execute(
        "SELECT post_id, body, published_source, attachments FROM posts ORDER BY id"
    ).fetchall()
    assert len(posts) == 13 and all(p["body"] for p in posts)
    assert {p["published_source"] for p in posts} == {"detail"}
    assert any(p["attachments"] for p in posts)
    assert count(db, "SELECT count(*) AS n FROM notify_outbox") == 0  # silent first crawl

    new_id = demo_server.add_post("demo", title="새 글", body="본문 첫 줄")
    second = run_crawl("demo_detail", env)
    assert second.returncode == 0, second.log
    assert second.run["new"] == 1  # the detail item of the new post is not a second "new"
    queued = db.execute(
        "SELECT p.post_id, p.body FROM notify_outbox o JOIN posts p ON p.id = o.post_id"
    ).fetchall()
    assert queued == [{"post_id": new_id, "body": "본문 첫 줄"}]

    # check_edits: a list page answered 304 requests no detail page at all (issue 11) ...
    demo_server.edit_post("demo", new_id, body="본문 고친 줄")
    unchanged = run_crawl("demo_detail", env)
    assert unchanged.returncode == 0, unchanged.log
    assert (unchanged.run["requests"], unchanged.run["not_modified"]) == (1, 1)
    # ... and the changed body is noticed on the detail page once the list is read in full
    demo_server.add_post("demo", title="또 새 글", body="다른 본문")
    third = run_crawl("demo_detail", env)
    assert third.returncode == 0, third.log
    row = db.execute("SELECT id, body, state FROM posts WHERE post_id = %s", (new_id,)).fetchone()
    assert row["body"] == "본문 고친 줄" and row["state"] == "edited"
    revisions = db.execute("SELECT body FROM post_revisions WHERE post_id = %s", (row["id"],))
    assert revisions.fetchall() == [{"body": "본문 첫 줄"}]
    assert count(db, "SELECT count(*) AS n FROM notify_outbox") == 2


def test_scrapy_check_contracts_pass_against_the_demo_board(crawl_env: dict[str, str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "scrapy", "check", "demo", "demo_euckr", "demo_rss"],
        cwd=ROOT,
        env=crawl_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Ran 6 contracts" in proc.stderr and proc.stderr.rstrip().endswith("OK")


def test_scrapy_check_lists_the_contracts() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "scrapy", "check", "-l", "demo"],
        cwd=Path(ROOT),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "check_list" in out
