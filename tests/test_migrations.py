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
