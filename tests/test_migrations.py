from __future__ import annotations

from noticecrawler.db import connect, migrate


def test_migrations_apply_to_empty_database_then_reapply_as_noop(empty_database_url) -> None:
    with connect(empty_database_url) as conn:
        applied = migrate.upgrade(conn)
        assert applied == [v for v, _ in migrate.available()]
        tables = {
            r["tablename"]
            for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        }
        assert {"posts", "crawl_runs", "notify_outbox", "post_revisions"} <= tables
        assert migrate.upgrade(conn) == []
        assert migrate.applied(conn) == applied


def test_deleting_a_subscription_finds_its_pushes_by_index(database_url) -> None:
    """The ON DELETE SET NULL of notifications.subscription_id looks the rows up by the key:
    with sequential scans off, the lookup the foreign key's action runs uses the index (without
    migration 0008 it can only read the whole table)."""
    with connect(database_url) as conn:
        conn.execute("SET enable_seqscan = off")
        plan = conn.execute(
            "EXPLAIN (FORMAT JSON) UPDATE notifications SET subscription_id = NULL "
            "WHERE subscription_id = 42"
        ).fetchone()
        text = str(plan)
        assert "notifications_subscription_idx" in text, text
