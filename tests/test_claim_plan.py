"""The notifier's per-batch statements read rows in proportion to the batch, not the table,
whatever the planner's statistics say: taken on a table holding only dead rows (the pushes of
an earlier post deleted, then ANALYZE) or fresh, with custom plans or a generic one.

Each statement's executed plan is read from auto_explain (JSON, ANALYZE) on the connection that
runs the product's own send_batch: the rows every scan node produced and filtered out, times
its loops, plus the rows a join filter threw away."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest

from noticecrawler.notify import batchstore, store
from noticecrawler.notify.fanout import FanoutOptions, plan_post, send_batch
from noticecrawler.notify.matching import Matcher
from noticecrawler.notify.senders.console import ConsoleSender
from tests.notify_helpers import add_users

Conn = psycopg.Connection[Any]

DEVICES = 20_000  # below ~30k rows, 500 index probes cost as much as reading the whole table
BATCH = 500
#: a claim reads 4 rows per device (its row, the device, the CTE, the row again to update it)
MOST_ROWS_PER_DEVICE = 5


def rows_read(node: dict[str, Any]) -> float:
    """Rows the plan's scans produced or filtered out (all loops), and rows its join filters
    rejected: what the statement walked through."""
    n = float(node.get("Rows Removed by Join Filter", 0))
    if "Scan" in node["Node Type"] and node["Node Type"] != "Bitmap Index Scan":
        seen = (
            node.get("Actual Rows", 0)
            + node.get("Rows Removed by Filter", 0)
            + node.get("Rows Removed by Index Recheck", 0)
        )
        n += seen * node.get("Actual Loops", 1)
    return n + sum(rows_read(child) for child in node.get("Plans", []))


def updates_notifications(node: dict[str, Any]) -> bool:
    if node["Node Type"] == "ModifyTable" and node.get("Relation Name") == "notifications":
        return node.get("Operation") == "Update"
    return any(updates_notifications(child) for child in node.get("Plans", []))


@contextmanager
def executed_plans(db: Conn) -> Iterator[list[dict[str, Any]]]:
    """The JSON plans (EXPLAIN ANALYZE) of every statement run on ``db`` inside."""
    plans: list[dict[str, Any]] = []

    def on_notice(diag: psycopg.errors.Diagnostic) -> None:
        message = diag.message_primary or ""
        if "plan:" in message:
            plans.append(json.loads(message.split("plan:", 1)[1]))

    try:
        db.execute("LOAD 'auto_explain'")
    except psycopg.errors.InsufficientPrivilege:
        pytest.skip("auto_explain needs a superuser (TEST_DATABASE_URL's user is not one)")
    for setting in (
        "auto_explain.log_min_duration = 0",
        "auto_explain.log_analyze = on",
        "auto_explain.log_timing = off",
        "auto_explain.log_format = json",
        "auto_explain.log_level = notice",
    ):
        db.execute(f"SET {setting}")
    db.add_notice_handler(on_notice)
    try:
        yield plans
    finally:
        db.remove_notice_handler(on_notice)
        db.execute("SET auto_explain.log_min_duration = -1")


def insert_post(db: Conn, title: str) -> tuple[int, list[list[int]]]:
    """A post matching every device, its rows inserted by plan_post; its batches."""
    post = db.execute(
        "INSERT INTO posts (board, post_id, title, url) VALUES ('cse', %s, %s, %s) RETURNING id",
        (title, title, f"https://x.test/{title}"),
    ).fetchone()["id"]
    matcher = Matcher(store.load_subscriptions(db)[1])
    return post, list(plan_post(db, post, matcher, batch_size=BATCH))


def push_batches(db: Conn, post: int, batches: Iterator[list[int]]) -> None:
    """One batch through send_batch (close, claim, record), one claimed and its lease renewed."""
    pushed = next(batches)
    summary = send_batch(db, post, pushed, ConsoleSender(io.StringIO()), FanoutOptions())
    assert summary["sent"] == len(pushed)
    claimed = next(batches)
    claim_id = "00000000-0000-0000-0000-00000000c1a1"
    with db.transaction():
        rows = batchstore.claim(db, post, claimed, claim_id, 60)
    assert len(rows) == len(claimed)
    assert batchstore.renew_lease(db, claim_id, 60, [r["id"] for r in rows]) == len(rows)


def test_batches_read_rows_per_device_with_statistics_of_a_dead_table_or_fresh(db: Conn) -> None:
    add_users(db, [f"tok-{i}" for i in range(DEVICES)], ["공지"])
    db.execute("ALTER TABLE notifications SET (autovacuum_enabled = false)")  # stats stay ours
    db.execute("VACUUM ANALYZE devices, subscriptions")
    insert_post(db, "earlier 공지")
    db.execute("DELETE FROM notifications")  # a retention job, an operator
    db.execute("ANALYZE notifications")
    stats = db.execute(
        "SELECT relpages, reltuples FROM pg_class WHERE relname = 'notifications'"
    ).fetchone()
    assert stats["reltuples"] == 0 and stats["relpages"] > 0  # the planner thinks it empty

    post, planned = insert_post(db, "large 공지")
    assert sum(map(len, planned)) == DEVICES
    analyzed = db.execute("SELECT reltuples FROM pg_class WHERE relname = 'notifications'")
    assert analyzed.fetchone()["reltuples"] > DEVICES / 2  # plan_post renewed the statistics
    assert not store.analyze_if_outgrown(db, BATCH)  # and a small post leaves them alone
    batches = iter(planned)
    measured: list[tuple[str, str, float, str]] = []
    for statistics in ("dead before the post", "fresh"):
        if statistics == "fresh":
            db.execute("ANALYZE notifications")
        for mode in ("force_custom_plan", "force_generic_plan"):
            db.execute(f"SET plan_cache_mode = {mode}")
            with executed_plans(db) as plans:
                push_batches(db, post, batches)
            updates = {p["Query Text"] for p in plans if updates_notifications(p["Plan"])}
            assert len(updates) >= 4, updates  # close, claim, record, renew: all measured
            for plan in plans:
                text = " ".join(plan["Query Text"].split())
                measured.append((statistics, mode, rows_read(plan["Plan"]), text[:70]))

    worst = max(measured, key=lambda m: m[2])
    assert worst[2] <= MOST_ROWS_PER_DEVICE * BATCH, (
        f"{worst[3]}… read {worst[2]:.0f} rows for a batch of {BATCH}"
        f" ({worst[0]} statistics, {worst[1]})"
    )
