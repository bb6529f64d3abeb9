"""What `noticecrawler up` shows besides crawl runs: every push that reached a final status,
and automatic demo posts of which every other one matches the demo subscriber's keyword."""

from __future__ import annotations

import io
import time

from noticecrawler.commands.demo import DEMO_KEYWORD, seed_subscriber
from noticecrawler.commands.up import auto_title
from noticecrawler.db import queries
from noticecrawler.notify import service, store
from noticecrawler.notify.config import NotifyConfig
from noticecrawler.notify.console import ConsoleSender
from noticecrawler.notify.matching import Matcher


def test_pushes_that_reached_a_final_status_are_listed_once(db, database_url: str) -> None:
    seed_subscriber(database_url)
    since = time.time() - 1
    titles = [auto_title(n) for n in range(1, 5)]
    assert [DEMO_KEYWORD in t for t in titles] == [True, False, True, False]
    for n, title in enumerate(titles):
        row = db.execute(
            "INSERT INTO posts (board, post_id, title, url) VALUES ('demo', %s, %s, 'u')"
            " RETURNING id",
            (str(100 + n), title),
        ).fetchone()
        db.execute("INSERT INTO notify_outbox (post_id) VALUES (%s)", (row["id"],))
    matcher = Matcher(store.load_subscriptions(db)[1])
    service.drain_outbox(db, matcher, ConsoleSender(io.StringIO()), NotifyConfig())
    pushes = queries.final_pushes_since(db, since, set())
    assert [(p["board"], p["title"], p["status"]) for p in pushes] == [
        ("demo", titles[0], "sent"),
        ("demo", titles[2], "sent"),
    ]
    assert pushes[0]["fcm_token"] == "console-demo-device"
    assert queries.final_pushes_since(db, since, {p["id"] for p in pushes}) == []
