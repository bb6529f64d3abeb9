"""`noticecrawler exporter`: after a crawl and a push, the endpoint shows the board's runs,
new posts, 304s and last success, the push outcomes, the outbox and the retries."""

from __future__ import annotations

import io
import subprocess
import sys
import time
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from noticecrawler import metrics
from noticecrawler.notify import accounts, service, store
from noticecrawler.notify.config import NotifyConfig
from noticecrawler.notify.console import ConsoleSender
from noticecrawler.notify.matching import Matcher
from tests.conftest import ROOT
from tests.dispatch_helpers import free_port


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(url, timeout=10) as answer:
        text = answer.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_after_a_crawl_and_a_push(crawl, db, database_url, demo_server) -> None:
    user = accounts.add_user(db, "reader")
    accounts.add_device(db, user, "console-token-1", "android")
    accounts.add_subscription(db, user, ["장학금"])
    started = time.time()
    assert crawl("demo").returncode == 0  # first crawl: 33 posts stored silently
    demo_server.add_post("demo", title="국가장학금 신청 안내")
    assert crawl("demo").returncode == 0  # one new post, queued in the outbox
    port = free_port()
    server = metrics.serve(database_url, "127.0.0.1", port)
    try:
        before = scrape(f"http://127.0.0.1:{port}/metrics")
        assert before[("noticecrawler_outbox_depth", ())] == 1
        assert before[("noticecrawler_outbox_oldest_age_seconds", ())] >= 0
        matcher = Matcher(store.load_subscriptions(db)[1])
        sent = service.drain_outbox(db, matcher, ConsoleSender(io.StringIO()), NotifyConfig())
        assert [r["sent"] for r in sent] == [1]
        after = scrape(f"http://127.0.0.1:{port}/metrics")
    finally:
        server.shutdown()
        server.server_close()
    board = (("board", "demo"),)
    assert after[("noticecrawler_database_up", ())] == 1
    finished = (("board", "demo"), ("finish_reason", "finished"))
    assert after[("noticecrawler_board_runs_total", finished)] == 2
    assert after[("noticecrawler_board_new_posts_total", board)] == 34
    assert after[("noticecrawler_board_not_modified_total", board)] >= 0
    assert after[("noticecrawler_board_last_success_timestamp_seconds", board)] >= started - 5
    assert after[("noticecrawler_pushes_total", (("outcome", "sent"),))] == 1
    assert after[("noticecrawler_notify_retries_total", ())] == 0
    assert after[("noticecrawler_outbox_depth", ())] == 0


def test_exporter_command_prints_metrics_and_reports_a_database_down(database_url) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "noticecrawler.cli", "-s", f"DATABASE_URL={database_url}",
         "exporter", "--once"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "noticecrawler_database_up 1.0" in done.stdout
    assert "# TYPE noticecrawler_board_runs_total counter" in done.stdout
    down = metrics.registry("postgresql://nc@127.0.0.1:9/nowhere")
    from prometheus_client import generate_latest

    assert "noticecrawler_database_up 0.0" in generate_latest(down).decode()
