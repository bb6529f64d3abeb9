from __future__ import annotations

from noticecrawler.db import connect, migrate
from noticecrawler.notify import accounts, batchstore, store


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


def _post_for_two_devices(conn) -> tuple[int, list[int], list[int]]:
    """A post, one user with two devices and two subscriptions, its two queued pushes."""
    user = accounts.add_user(conn)
    devices = [accounts.add_device(conn, user, f"tok-{i}", "android") for i in range(2)]
    subs = [accounts.add_subscription(conn, user, ["x"]) for _ in range(2)]
    post = conn.execute(
        "INSERT INTO posts (board, post_id, title, url) VALUES ('b', '1', 't', 'https://x.test/')"
        " RETURNING id"
    ).fetchone()["id"]
    assert store.insert_notifications(conn, post, subs) == devices
    return post, devices, subs


def test_deleting_a_subscription_leaves_its_pushes_and_shows_no_subscription(db) -> None:
    """Migration 0009 dropped the foreign key of notifications.subscription_id (and 0008's
    index under it): deleting subscriptions writes no notification row, and the post's
    outcomes show the deleted subscription as NULL."""
    post, devices, subs = _post_for_two_devices(db)
    assert [o["subscription_id"] for o in accounts.post_outcomes(db, post)] == [subs[0]] * 2
    with db.transaction():
        assert accounts.remove_subscription(db, subs[0])
        assert accounts.remove_subscription(db, subs[1])
        written = db.execute(
            "SELECT n_tup_upd + n_tup_del AS n FROM pg_stat_xact_user_tables "
            "WHERE relname = 'notifications'"
        ).fetchone()
        assert written is None or written["n"] == 0
    outcomes = accounts.post_outcomes(db, post)
    assert [(o["device_id"], o["subscription_id"]) for o in outcomes] == [
        (devices[0], None),
        (devices[1], None),
    ]


def test_claiming_and_sweeping_rewrite_no_index_entry(db) -> None:
    """The claim and the sweep's requeue stamp are HOT updates (no index depends on a column
    whose value they change, and the page has room): every claimed row is updated in place
    of its page. An index on `status` (or any column they change) would make this fail."""
    post, devices, _ = _post_for_two_devices(db)
    with db.transaction():
        claimed = batchstore.claim(db, post, devices, "00000000-0000-0000-0000-000000000001", 60)
        assert len(claimed) == 2
        stats = db.execute(
            "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables "
            "WHERE relname = 'notifications'"
        ).fetchone()
        assert stats["n_tup_upd"] == 2 and stats["n_tup_hot_upd"] == 2, stats
        outcomes = [{"id": r["id"], "status": "retry", "retry_after": 0} for r in claimed]
        assert batchstore.record_outcomes(db, "00000000-0000-0000-0000-000000000001", outcomes) == 2
        assert len(store.due_rows(db, requeue_after=30, limit=10)) == 2
        stats = db.execute(
            "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables "
            "WHERE relname = 'notifications'"
        ).fetchone()
        # the record (sending → retry keeps the row open) and the sweep's stamp: HOT as well
        assert stats["n_tup_upd"] == 6 and stats["n_tup_hot_upd"] == 6, stats
