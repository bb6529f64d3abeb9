"""Crawling real hosts, one crawl process at a time (``scrapy crawl``): robots.txt, bounded
downloads, deleted posts, edit checks through the HTTP cache, announcing after the detail page.
Boards are served by :class:`tests.hosts_helpers.HostServer` on loopback addresses."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from noticecrawler.catalog import CatalogError, parse_catalog
from tests.conftest import ROOT, run_crawl
from tests.hosts_helpers import HostServer, Special, board_row

MiB = 1 << 20


@pytest.fixture
def host() -> Iterator[HostServer]:
    server = HostServer("127.0.0.4").start()
    yield server
    server.stop()


def env_with(crawl_env: dict[str, str], tmp_path: Path, *rows: str) -> dict[str, str]:
    catalog = tmp_path / "hosts.toml"
    catalog.write_text("".join(rows), encoding="utf-8")
    return {**crawl_env, "NOTICECRAWLER_CATALOG": str(catalog)}


def posts_state(db) -> list[dict]:
    return db.execute(
        "SELECT post_id, title, body, pinned, deleted_at, last_seen_at FROM posts ORDER BY id"
    ).fetchall()


# --- robots.txt -----------------------------------------------------------------------------------


def test_robots_disallow_ends_the_crawl_and_fails_health(crawl_env, tmp_path, host, db):
    host.robots = "User-agent: *\nAllow: /open/\nDisallow: /closed/\n"
    env = env_with(crawl_env, tmp_path, board_row("closed", host), board_row("open", host))
    result = run_crawl("closed", env)
    assert result.run["finish_reason"] == "robots_disallowed", result.log
    assert "Disallow: /closed/" in result.run["error_detail"]
    assert "board `closed`" in result.run["error_detail"]
    assert host.entries("/closed/") == []  # the list page was never requested
    assert db.execute("SELECT count(*) AS n FROM posts").fetchone()["n"] == 0

    ok = run_crawl("open", env)
    assert ok.run["finish_reason"] == "finished", ok.log
    assert ok.run["new"] > 0
    assert len(host.entries("/robots.txt")) == 1  # cached for the day, across crawls

    health = subprocess.run(
        [sys.executable, "-m", "noticecrawler.cli", "health"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert health.returncode == 1, health.stdout + health.stderr
    line = next(x for x in health.stdout.splitlines() if " closed " in x)
    assert line.startswith("failing") and "robots.txt" in line


def test_robots_ignore_needs_a_reason_and_then_skips_the_check(crawl_env, tmp_path, host):
    with pytest.raises(CatalogError, match="`reason`"):
        parse_catalog('[[board]]\nname = "x1"\nstart_url = "http://a/"\nrobots = "ignore"\n')
    host.robots = "User-agent: *\nDisallow: /\n"
    row = board_row("allowed", host, robots="ignore", reason="the board's owner asked us to")
    result = run_crawl("allowed", env_with(crawl_env, tmp_path, row))
    assert result.run["finish_reason"] == "finished", result.log
    assert host.entries("/robots.txt") == []
    assert all("noticecrawler/" in e["agent"] for e in host.entries())


# --- bounded downloads ----------------------------------------------------------------------------


def crawl_measuring_rss(board: str, env: dict[str, str]) -> int:
    """Run ``scrapy crawl`` and return its peak RSS (VmHWM, kB) read from /proc while it runs."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "scrapy", "crawl", board],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    peak = 0
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            status = Path(f"/proc/{proc.pid}/status").read_text()
            peak = max(peak, int(status.split("VmHWM:")[1].split()[0]))
        except (OSError, IndexError, ValueError):
            pass
        time.sleep(0.02)
    proc.wait(10)
    return peak


@pytest.mark.parametrize("special", ["huge", "bomb"])
def test_oversized_page_ends_page_too_large_in_bounded_memory(
    crawl_env, tmp_path, host, db, special
):
    env = env_with(crawl_env, tmp_path, board_row("big", host))
    first = run_crawl("big", env)
    assert first.run["finish_reason"] == "finished", first.log
    before = posts_state(db)

    host.board("big").posts.insert(0, 121)  # a change the oversized page would carry
    host.specials["big"] = Special(special, size=50 * MiB if special == "huge" else 64 * MiB)
    peak_kb = crawl_measuring_rss("big", env)
    run = db.execute("SELECT * FROM crawl_runs ORDER BY id DESC LIMIT 1").fetchone()
    assert run["finish_reason"] == "page_too_large", run
    assert "board `big`" in run["error_detail"] and f"{host.url}/big/list" in run["error_detail"]
    assert "8388608 bytes" in run["error_detail"]
    assert 0 < peak_kb < 200 * 1024, f"peak RSS {peak_kb} kB"
    assert posts_state(db) == before  # nothing of the board's state changed

    # the oversized answer was not cached: the next crawl revalidates the page cached before
    # it (200: changed) and stores the post it carries
    again = run_crawl("big", env)
    assert again.run["finish_reason"] == "finished", again.log
    assert again.run["new"] == 1
    assert host.entries("/big/list")[-1]["status"] == 200


# --- deleted posts --------------------------------------------------------------------------------


def test_removed_post_is_marked_deleted_and_restored_without_announcement(
    crawl_env, tmp_path, host, db
):
    env = env_with(crawl_env, tmp_path, board_row("gone", host))
    assert run_crawl("gone", env).run["new"] == 11  # 10 regular + 1 pinned, stored silently
    board = host.board("gone")
    board.posts.insert(0, 121)  # one new post (announced) moves the page
    board.posts.remove(115)  # one removed from the middle of the page
    board.pinned = []  # the pinned row rotated out: not a deletion
    second = run_crawl("gone", env)
    assert (second.run["new"], second.run["deleted"]) == (1, 1), second.log
    # pinned rows that rotate out are never deleted
    assert {r["post_id"] for r in posts_state(db) if r["deleted_at"]} == {"115"}
    listing = subprocess.run(
        [sys.executable, "-m", "noticecrawler.cli", "posts", "gone"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    assert "[deleted" in next(x for x in listing.splitlines() if " 115 " in x)
    outbox = db.execute("SELECT count(*) AS n FROM notify_outbox").fetchone()["n"]

    board.posts.insert(board.posts.index(116) + 1, 115)  # put back
    third = run_crawl("gone", env)
    assert (third.run["new"], third.run["deleted"]) == (0, 0), third.log
    assert db.execute("SELECT deleted_at FROM posts WHERE post_id = '115'").fetchone() == {
        "deleted_at": None
    }
    assert db.execute("SELECT count(*) AS n FROM notify_outbox").fetchone()["n"] == outbox


# --- edit checks and detail pages -----------------------------------------------------------------


def test_check_edits_revalidates_only_young_posts_and_nothing_after_a_304(
    crawl_env, tmp_path, host, db
):
    board = host.board("edits")
    for no in range(112, 101, -1):
        board.dates[no] = "2020-01-02"  # old: no longer checked for edits
    row = board_row("edits", host, follow_details=True, check_edits=True, detail_body="div.body")
    env = env_with(crawl_env, tmp_path, row)
    first = run_crawl("edits", env)
    assert first.run["finish_reason"] == "finished", first.log
    young = {"120", "119", "118", "117", "116", "115", "114", "113", "900"}

    host.log.clear()
    unchanged = run_crawl("edits", env)
    assert [(e["path"], e["status"]) for e in host.entries()] == [("/edits/list", 304)]
    assert unchanged.run["requests"] == 1

    board.generation += 1  # the list answers 200 again, same content
    host.log.clear()
    full = run_crawl("edits", env)
    assert full.run["finish_reason"] == "finished", full.log
    details = host.entries("/edits/view")
    assert {e["path"].split("no=")[1] for e in details} == young
    assert {e["status"] for e in details} == {304}
    assert all(e["conditional"] for e in details)

    board.bodies[118] = "고친 본문"
    board.generation += 1
    edited = run_crawl("edits", env)
    assert edited.run["finish_reason"] == "finished", edited.log
    row118 = db.execute("SELECT body, state FROM posts WHERE post_id = '118'").fetchone()
    assert row118 == {"body": "고친 본문", "state": "edited"}


SENDER = """
import json, os
import psycopg

def send(post_id, settings):
    with psycopg.connect(os.environ["DATABASE_URL"]) as conn:
        body = conn.execute("SELECT body FROM posts WHERE id = %s", (post_id,)).fetchone()[0]
    with open(os.environ["HOSTS_SENT_LOG"], "a") as f:
        f.write(json.dumps({"post_id": post_id, "body": body}) + "\\n")
"""


def test_follow_details_post_is_announced_after_its_detail_page(crawl_env, tmp_path, host, db):
    (tmp_path / "hosts_sender.py").write_text(SENDER)
    sent_log = tmp_path / "sent.jsonl"
    row = board_row("full", host, follow_details=True, detail_body="div.body")
    env = env_with(crawl_env, tmp_path, row)
    env.update(PYTHONPATH=f"{tmp_path}:{ROOT}", HOSTS_SENT_LOG=str(sent_log))
    sender = "NOTICECRAWLER_NOTIFY_SENDER=hosts_sender.send"
    assert run_crawl("full", env, sender).run["finish_reason"] == "finished"
    board = host.board("full")
    board.posts.insert(0, 121)
    board.bodies[121] = "새 글의 본문"
    second = run_crawl("full", env, sender)
    assert second.run["new"] == 1, second.log
    sent = [json.loads(x) for x in sent_log.read_text().splitlines()]
    assert [s["body"] for s in sent] == ["새 글의 본문"]  # the push saw the whole post

    board.posts.insert(0, 122)  # its detail page is missing: announced from the list data
    board.no_detail.add(122)
    third = run_crawl("full", env, sender)
    assert third.run["new"] == 1, third.log
    sent = [json.loads(x) for x in sent_log.read_text().splitlines()]
    assert len(sent) == 2 and sent[1]["body"] is None


def test_detect_reads_under_the_same_cap(crawl_env, host) -> None:
    host.specials["huge"] = Special("huge", size=50 * MiB)
    proc = subprocess.run(
        [sys.executable, "-m", "noticecrawler.cli", "detect", f"{host.url}/huge/list"],
        cwd=ROOT,
        env=crawl_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stdout.count("\n") == 1 and "page too large" in proc.stdout
    assert "8388608 bytes" in proc.stdout and f"{host.url}/huge/list" in proc.stdout
