"""Per-host politeness across crawl processes: real Celery worker processes crawling boards on
separate loopback hosts, the host slots in a real Redis."""

from __future__ import annotations

import itertools
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.dispatch_helpers import Dispatch, make_dispatch, redis_server, tagged_pids
from tests.hosts_helpers import HostServer, Special, board_row

DELAY = 0.4
#: server-side times are taken around the answer; a release reaches Redis a little later
SLACK = 0.05


@pytest.fixture
def hosts() -> Iterator[dict[str, HostServer]]:
    servers = {
        "a": HostServer("127.0.0.5", latency=0.6).start(),
        "b": HostServer("127.0.0.6", latency=0.6).start(),
        "c": HostServer("127.0.0.7").start(),
    }
    yield servers
    for server in servers.values():
        server.stop()


@pytest.fixture
def dispatch(tmp_path: Path, database_url: str, hosts) -> Iterator[Dispatch]:
    with redis_server(tmp_path / "redis") as redis:
        d = make_dispatch(
            tmp_path,
            broker_url=redis.url,
            result_url=redis.url,
            database_url=database_url,
            demo_url="http://127.0.0.1:1",
            boards={},
            overrides={"CRAWL_SOFT_TIME_LIMIT": 30, "CRAWL_TIME_LIMIT": 40},
        )
        rows = [board_row(n, hosts["a"]) for n in ("a1", "a2")]
        rows += [board_row("b1", hosts["b"])]
        rows += [board_row(n, hosts["c"]) for n in ("c1", "c2")]
        Path(d.env["NOTICECRAWLER_CATALOG"]).write_text("".join(rows), encoding="utf-8")
        d.env.update(HOST_DELAY=str(DELAY), HOST_CONCURRENCY="1")
        try:
            yield d
        finally:
            d.stop_all()
    assert tagged_pids(d.tag) == set(), "a process of the test outlived it"


def crawl_all(dispatch: Dispatch, *boards: str) -> dict[str, dict]:
    app = dispatch.app()
    sent = {b: app.send_task("dispatch.crawl_site", args=[b]) for b in boards}
    return {b: r.get(timeout=90) for b, r in sent.items()}


def test_hosts_are_shared_politely_across_crawl_processes(dispatch, hosts, db) -> None:
    worker = dispatch.worker("crawler", concurrency=3)
    results = crawl_all(dispatch, "a1", "a2", "b1")
    for board, summary in results.items():
        assert summary["finish_reason"] == "finished", (board, summary)
    assert len({s["pid"] for s in results.values()}) == 3  # three crawl processes at once

    a = sorted(hosts["a"].entries(), key=lambda e: e["start"])
    assert [e["path"] for e in a].count("/robots.txt") == 1  # once per site, both processes
    assert len([e for e in a if e["path"].endswith("/list")]) == 2
    for before, after in itertools.pairwise(a):
        assert after["start"] - before["start"] >= DELAY - SLACK, a  # HOST_DELAY between starts
        assert after["start"] >= before["end"] - SLACK, a  # never two in flight (latency 0.6)
    # the other host is not slowed by this one: its crawl ran alongside, not after
    b = sorted(hosts["b"].entries(), key=lambda e: e["start"])
    assert b[0]["start"] < a[-1]["start"], (a, b)

    # 429 with Retry-After: 3 on one board of host c: no process sends c anything for 3 s
    hosts["c"].specials["c1"] = Special("status", 429, {"Retry-After": "3"})
    results = crawl_all(dispatch, "c1", "c2")
    c = sorted(hosts["c"].entries(), key=lambda e: e["start"])
    throttle = next(e for e in c if e["status"] == 429)
    later = [e for e in c if e["start"] > throttle["start"]]
    assert later and all(e["start"] >= throttle["end"] + 3 - SLACK for e in later), c
    assert results["c1"]["finish_reason"] == "finished", results["c1"]
    run = db.execute(
        "SELECT throttled, finish_reason FROM crawl_runs WHERE board = 'c1' ORDER BY id DESC"
    ).fetchone()
    assert run == {"throttled": 1, "finish_reason": "finished"}
    health = subprocess.run(
        [sys.executable, "-m", "noticecrawler.cli", "health"],
        cwd=ROOT,
        env=dispatch.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "throttled 1x" in next(x for x in health.stdout.splitlines() if " c1 " in x)

    # a host holding every process off past the crawl's wait budget: host_busy, not a kill
    hosts["c"].specials["c1"] = Special("status", 503, {"Retry-After": "120"})
    results = crawl_all(dispatch, "c1")
    assert results["c1"]["finish_reason"] == "host_busy", results["c1"]
    results = crawl_all(dispatch, "c2")  # another process: the same hold
    assert results["c2"]["finish_reason"] == "host_busy", results["c2"]
    assert "host 127.0.0.7 stayed busy" in results["c2"]["error_detail"]
    # no NOTICECRAWLER_CONTACT here: said once, at the worker's start
    assert worker.log().count("NOTICECRAWLER_CONTACT is not set") == 1
