"""What the notify tasks do, as plain functions (tested without Celery).

* ``announce_post``: takes the post's outbox row and plans its fan-out slice by slice, handing
  each batch of devices to push on as soon as its rows are committed. A post not in the
  outbox is never announced.
* ``push_batch``: claims, pushes and records one batch (fanout.send_batch); a device to retry
  is left `retry`, due after its own Retry-After or backoff (the row says when; the sweep
  enqueues it then).
* ``sweep``: the posts whose ``notify_post`` must be sent again (untaken, or never planned),
  and the batches of rows due now (retries whose time has come, rows of a dead worker, rows
  whose task was lost).
* ``drain_outbox``: all of it in-process, one pass (the demo job, with the console sender).
* ``Runtime``: what a worker process holds; its ``call`` runs a function with a connection that
  is re-opened (and the function run again) when PostgreSQL restarted under it.

Every function commits before it returns, so the caller enqueues tasks only after the commit.
No retry waits in the broker (a countdown task): kombu 5.7's Redis transport crashes the
worker when the broker goes away while it holds such an unacknowledged message (see
docs/notifications.md, "Failure behaviour").
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import psycopg
from psycopg import pq

from noticecrawler.notify import batchstore, fanout, outboxstore, store
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
    from noticecrawler.catalog import load_catalog

    try:
        boards = load_catalog(path, {"demo": demo_url})
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
        retry_base_delay=config.retry_base_delay,
        retry_max_delay=config.retry_max_delay,
        requeue_after=config.requeue_after,
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
        taken = outboxstore.take_outbox(conn, post_id)
    if not taken:
        logger.warning("notify_post(%s): the post is not in the outbox; not announced", post_id)
        return {"post_id": post_id, "announced": False, "devices": 0, "batches": []}
    batches = []
    planned = fanout.plan_post(
        conn, post_id, matcher, config.batch_size, due_only=True, requeue_after=config.requeue_after
    )
    for batch in planned:
        if enqueue is not None:
            enqueue(batch)
        batches.append(batch)
    with conn.transaction():
        outboxstore.mark_planned(conn, post_id)
    devices = sum(len(b) for b in batches)
    return {"post_id": post_id, "announced": True, "devices": devices, "batches": batches}


def push_batch(
    conn: Conn,
    post_id: int,
    device_ids: Sequence[int],
    sender: Sender,
    config: NotifyConfig,
    renew: fanout.Renew | None = None,
) -> dict[str, Any]:
    """Push one batch; ``retry`` lists the devices left to retry, each due at its own time
    (its Retry-After or backoff, at most ``retry_max_delay``), which :func:`sweep` enqueues.

    The number of tries per device is bounded by the rows' own attempt counts (a row tried
    ``max_attempts`` times is `failed`), so retrying always ends."""
    return fanout.send_batch(conn, post_id, device_ids, sender, fanout_options(config), renew)


def sweep(conn: Conn, config: NotifyConfig) -> list[int]:
    """Posts to send ``notify_post`` for again (marked sent in the outbox, committed)."""
    _outside_transaction(conn, "sweep")
    with conn.transaction():
        return outboxstore.sweep_outbox(
            conn,
            config.sweep_age,
            config.sweep_max_sends,
            config.sweep_limit,
            unplanned_age=config.lease_seconds,
        )


def due_batches(conn: Conn, config: NotifyConfig) -> list[tuple[int, list[int]]]:
    """(post_id, devices) batches of the rows due now, marked enqueued (committed): the
    caller enqueues one send_batch for each."""
    _outside_transaction(conn, "due_batches")
    with conn.transaction():
        rows = store.due_rows(conn, config.requeue_after, config.sweep_limit * config.batch_size)
    by_post: dict[int, list[int]] = {}
    for post_id, device_id in rows:
        by_post.setdefault(post_id, []).append(device_id)
    size = config.batch_size
    return [
        (post_id, devices[start : start + size])
        for post_id, devices in by_post.items()
        for start in range(0, len(devices), size)
    ]


def drain_outbox(
    conn: Conn, matcher: Matcher, sender: Sender, config: NotifyConfig, board: str | None = None
) -> list[dict[str, Any]]:
    """Announce every untaken outbox row (of ``board``) in this process, one pass, no waiting
    for retries."""
    _outside_transaction(conn, "drain_outbox")
    with conn.transaction():
        pending = outboxstore.untaken_posts(conn, board)
    results = []
    for post_id in pending:
        planned = announce_post(conn, post_id, matcher, config)
        sent = 0
        for batch in planned["batches"]:
            sent += push_batch(conn, post_id, batch, sender, config)["sent"]
        results.append({"post_id": post_id, "devices": planned["devices"], "sent": sent})
    return results


def push_test(device: dict[str, Any], sender: Sender, config: NotifyConfig) -> SendResult:
    """One test push to a device (``devices`` row); nothing is recorded."""
    post = {"id": "push-test", "board": "noticecrawler", "title": "push test", "url": ""}
    return sender.send_push(Push.of_post(post, device["platform"], device["fcm_token"]))


T = TypeVar("T")


class Runtime:
    """What a worker process holds for the tasks: one connection per thread, one sender and
    one matcher cache, all created on first use (after the pool has forked or started).

    PostgreSQL may restart under a worker: a kept connection is then dead without knowing it
    (the first statement fails with AdminShutdown or "server closed the connection"). ``call``
    runs a task's function with the thread's connection and, when the connection broke, opens
    a new one (waiting up to ``reconnect_seconds`` for the server to come back) and runs the
    function again — every function of this module is safe to run again."""

    def __init__(
        self, config: NotifyConfig, database_url: str, reconnect_seconds: float = 60.0
    ) -> None:
        self.config = config
        self.database_url = database_url
        self.reconnect_seconds = reconnect_seconds
        self._local = threading.local()
        self._lock = threading.Lock()
        self._lease_lock = threading.Lock()
        self._lease_conn: Conn | None = None
        self._opened: list[Conn] = []
        self._sender: Sender | None = None
        self._cache = MatcherCache(loader=self._load, version=self._version)

    def _connect(self) -> Conn:
        """A new autocommit connection, retried with backoff while the server is away."""
        from noticecrawler.db import connect

        deadline = time.monotonic() + self.reconnect_seconds
        delay = 0.2
        while True:
            try:
                return connect(self.database_url, autocommit=True)
            except psycopg.OperationalError:
                if time.monotonic() + delay > deadline:
                    raise
                time.sleep(delay)
                delay = min(2.0, delay * 2)

    def connection(self) -> Conn:
        conn: Conn | None = getattr(self._local, "conn", None)
        if conn is None or conn.closed or conn.broken:
            if conn is not None:
                conn.close()
            conn = self._connect()
            self._local.conn = conn
            with self._lock:
                self._opened = [c for c in self._opened if not c.closed] + [conn]
        return conn

    def call(self, fn: Callable[[Conn], T]) -> T:
        """``fn(connection)``, run again on a new connection when the connection broke, and
        again when PostgreSQL rolled its transaction back (a deadlock)."""
        deadline = time.monotonic() + self.reconnect_seconds
        while True:
            conn = self.connection()
            try:
                return fn(conn)
            except psycopg.errors.TransactionRollback as exc:  # deadlock, serialization
                if time.monotonic() > deadline:
                    raise
                logger.warning("transaction rolled back (%s); running it again", exc)
            except psycopg.OperationalError as exc:
                if not (conn.broken or conn.closed) or time.monotonic() > deadline:
                    raise
                logger.warning("PostgreSQL connection lost (%s); reconnecting", exc)

    def renew_lease(self, claim_id: str, seconds: float, ids: Sequence[int]) -> int:
        """Called by the lease keepers of this process' batches (their own connection)."""
        with self._lease_lock:
            conn = self._lease_conn
            if conn is None or conn.closed or conn.broken:
                from noticecrawler.db import connect

                # one try: a keeper must not hang its batch while the server is away
                conn = self._lease_conn = connect(self.database_url, autocommit=True)
            return batchstore.renew_lease(conn, claim_id, seconds, ids)

    def close(self) -> None:
        """Close every connection this runtime opened (the sender is the caller's)."""
        with self._lock:
            opened, self._opened = self._opened, []
        with self._lease_lock:
            if self._lease_conn is not None:
                opened.append(self._lease_conn)
            self._lease_conn = None
        for conn in opened:
            conn.close()

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
