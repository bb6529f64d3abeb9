"""What the notify tasks do, as plain functions (tested without Celery).

* ``announce_post``: takes the post's outbox row and plans its fan-out slice by slice, handing
  each batch of devices to push on as soon as its rows are committed. A post not in the
  outbox is never announced.
* ``push_batch``: claims, pushes and records one batch (fanout.send_batch); when devices are to
  be retried, says after how long (``retry_in``: FCM's Retry-After or the exponential backoff,
  whichever is longer) and makes the rows due no earlier.
* ``sweep``: the posts whose ``notify_post`` must be sent again (untaken or stalled).
* ``drain_outbox``: all of it in-process, one pass (the demo job, with the console sender).

Every function commits before it returns, so the caller enqueues tasks only after the commit.
"""

from __future__ import annotations

import functools
import importlib
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

import psycopg
from psycopg import pq

from noticecrawler.notify import fanout, store
from noticecrawler.notify.config import NotifyConfig
from noticecrawler.notify.fcm_errors import SendResult
from noticecrawler.notify.matching import Matcher, MatcherCache
from noticecrawler.notify.senders import Push, Sender, make_sender

logger = logging.getLogger(__name__)

Conn = psycopg.Connection[Any]


def _outside_transaction(conn: Conn, what: str) -> None:
    if conn.info.transaction_status != pq.TransactionStatus.IDLE:
        raise RuntimeError(f"{what}: the connection is inside a transaction")


def board_titles() -> dict[str, str]:
    """Board name → the catalog's ``title_text`` (the notification's title), for the boards
    that have one; a catalog that does not load leaves the names as titles."""
    from noticecrawler import settings

    return dict(_board_titles(settings.NOTICECRAWLER_CATALOG, settings.DEMO_BOARD_URL))


@functools.lru_cache(maxsize=4)
def _board_titles(path: str, demo_url: str) -> tuple[tuple[str, str], ...]:
    # imported by name: the catalog pulls in the spiders, which mypy does not cover yet
    catalog = importlib.import_module("noticecrawler.catalog")
    try:
        boards = catalog.load_catalog(path, {"demo": demo_url})
    except (OSError, ValueError) as exc:  # CatalogError is a ValueError
        logger.warning("board titles: catalog not loaded (%s); board names used instead", exc)
        return ()
    return tuple((board.name, board.title_text) for board in boards if board.title_text)


def fanout_options(config: NotifyConfig) -> fanout.FanoutOptions:
    return fanout.FanoutOptions(
        board_titles=board_titles(),
        android_channel=config.android_channel,
        apns_sound=config.apns_sound,
        apns_topic=config.apns_topic,
        lease_seconds=config.lease_seconds,
        max_attempts=config.max_attempts,
        concurrency=config.concurrency,
        record_every=config.record_every,
    )


def announce_post(
    conn: Conn,
    post_id: int,
    matcher: Matcher,
    config: NotifyConfig,
    enqueue: Callable[[list[int]], Any] | None = None,
) -> dict[str, Any]:
    """Take the outbox row and plan the post; ``batches`` are the devices to push now.

    ``enqueue`` is called with each batch as soon as its rows are committed (the notify task
    sends a ``send_batch`` for it), so pushing starts while a large fan-out is still being
    planned. The outbox row is marked planned once every batch is out; a planner that dies
    before leaves it taken but unplanned, and the sweep sends the post again."""
    _outside_transaction(conn, f"announce_post({post_id})")
    with conn.transaction():
        taken = store.take_outbox(conn, post_id)
    if not taken:
        logger.warning("notify_post(%s): the post is not in the outbox; not announced", post_id)
        return {"post_id": post_id, "announced": False, "devices": 0, "batches": []}
    batches = []
    for batch in fanout.plan_post(conn, post_id, matcher, config.batch_size, due_only=True):
        if enqueue is not None:
            enqueue(batch)
        batches.append(batch)
    with conn.transaction():
        store.mark_planned(conn, post_id)
    devices = sum(len(b) for b in batches)
    return {"post_id": post_id, "announced": True, "devices": devices, "batches": batches}


def push_batch(
    conn: Conn,
    post_id: int,
    device_ids: Sequence[int],
    attempt: int,
    sender: Sender,
    config: NotifyConfig,
) -> dict[str, Any]:
    """Push one batch; ``retry`` (device ids) and ``retry_in`` (seconds) say what to re-queue.

    The number of tries per device is bounded by the rows' own attempt counts (a row tried
    ``max_attempts`` times is `failed`), so re-queueing ``retry`` always ends."""
    summary = fanout.send_batch(conn, post_id, device_ids, sender, fanout_options(config))
    summary["retry_in"] = None
    if summary["retry"]:
        delay = config.retry_delay(attempt, summary["retry_after"])
        with conn.transaction():
            store.postpone(conn, post_id, summary["retry"], delay)
        summary["retry_in"] = delay
    return summary


def sweep(conn: Conn, config: NotifyConfig) -> list[int]:
    """Posts to send ``notify_post`` for again (marked sent in the outbox, committed)."""
    _outside_transaction(conn, "sweep")
    with conn.transaction():
        return store.sweep_outbox(
            conn, config.sweep_age, config.sweep_max_sends, config.sweep_limit
        )


def drain_outbox(
    conn: Conn, matcher: Matcher, sender: Sender, config: NotifyConfig, board: str | None = None
) -> list[dict[str, Any]]:
    """Announce every untaken outbox row (of ``board``) in this process, one pass, no waiting
    for retries."""
    _outside_transaction(conn, "drain_outbox")
    with conn.transaction():
        pending = store.untaken_posts(conn, board)
    results = []
    for post_id in pending:
        planned = announce_post(conn, post_id, matcher, config)
        sent = 0
        for batch in planned["batches"]:
            sent += push_batch(conn, post_id, batch, 1, sender, config)["sent"]
        results.append({"post_id": post_id, "devices": planned["devices"], "sent": sent})
    return results


def push_test(device: dict[str, Any], sender: Sender, config: NotifyConfig) -> SendResult:
    """One test push to a device (``devices`` row); nothing is recorded."""
    post = {"id": "push-test", "board": "noticecrawler", "title": "push test", "url": ""}
    return sender.send_push(Push.of_post(post, device["platform"], device["fcm_token"]))


class Runtime:
    """What a worker process holds for the tasks: one connection per thread, one sender and
    one matcher cache, all created on first use (after the pool has forked or started)."""

    def __init__(self, config: NotifyConfig, database_url: str) -> None:
        self.config = config
        self.database_url = database_url
        self._local = threading.local()
        self._lock = threading.Lock()
        self._sender: Sender | None = None
        self._cache = MatcherCache(loader=self._load, version=self._version)

    def connection(self) -> Conn:
        from noticecrawler.db import connect

        conn: Conn | None = getattr(self._local, "conn", None)
        if conn is None or conn.closed or conn.broken:
            conn = connect(self.database_url, autocommit=True)
            self._local.conn = conn
        return conn

    def _version(self) -> int:
        return store.subscriptions_version(self.connection())

    def _load(self) -> tuple[int, list[Any]]:
        conn = self.connection()
        with conn.transaction():
            return store.load_subscriptions(conn)

    def matcher(self) -> Matcher:
        return self._cache.get()

    def sender(self) -> Sender:
        with self._lock:
            if self._sender is None:
                self._sender = make_sender(
                    max_concurrency=self.config.concurrency, timeout=self.config.fcm_timeout
                )
            return self._sender
