"""Announcing one post: plan who gets it, then push batch by batch, recording every outcome.

The Celery layer calls these plain functions; each is safe to run again for the same post:

* ``plan_post`` inserts one ``notifications`` row per (post, active device of a matching
  user) with ON CONFLICT DO NOTHING, slice by slice, and yields the devices still to push in
  batches as their rows are committed.
* ``send_batch`` claims a batch's rows (``sending`` under a short lease, committed before any
  push), pushes, and records each outcome; while it pushes, the lease is renewed every third
  of it (by a thread of its own when the caller gives ``renew``, and along with the outcomes
  stored). A worker that dies mid-batch stops renewing: its ``sending`` rows are claimable
  again one lease later (a push may then repeat — the notification's tag/collapse id makes
  the phone replace the first one). A ``sent`` row is never claimed again. A device to retry
  gets its own due time (its Retry-After or the backoff of its attempt, capped), kept in the
  row: nothing waits in the broker. The summary names the devices to retry.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import pq

from noticecrawler.notify import batchstore, store
from noticecrawler.notify.config import retry_delay
from noticecrawler.notify.fcm_errors import Outcome, SendResult
from noticecrawler.notify.matching import Matcher, MatcherCache, Subscription
from noticecrawler.notify.senders import Push, Sender


@dataclass(frozen=True)
class FanoutOptions:
    # unused here since pushes are neutral (senders.Push): the sender's own configuration
    # (senders.SenderConfig) holds the channel, sound and topic
    android_channel: str = "notices"
    apns_sound: str = "default"
    apns_topic: str = ""
    #: a claim is the claimer's for this long; renewed every third of it while pushing
    lease_seconds: float = 30.0
    #: pushes tried at most this many times per device, then `failed`
    max_attempts: int = 5
    #: retry n of a device waits max(its Retry-After, base x 2^(n-1)), at most the max
    retry_base_delay: float = 10.0
    retry_max_delay: float = 900.0
    #: planned rows are enqueued at once; the sweep enqueues them again this much later
    requeue_after: float = 30.0
    concurrency: int = 100
    #: at most this many pushes sent and not yet stored (what a killed worker may repeat);
    #: outcomes are stored every half of it while the other half goes out
    record_every: int = 256
    #: board name → display name used as the notification's title
    board_titles: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, **overrides: Any) -> FanoutOptions:
        from noticecrawler import settings

        values: dict[str, Any] = {
            "android_channel": settings.FCM_ANDROID_CHANNEL,
            "apns_sound": settings.FCM_APNS_SOUND,
            "apns_topic": settings.FCM_APNS_TOPIC,
        }
        values.update(overrides)
        return cls(**values)


def matcher_cache(conn: psycopg.Connection[Any]) -> MatcherCache:
    """A MatcherCache over the subscriptions table, versioned by ``subscriptions_version``.
    Each read is its own transaction, so ``conn`` is left as it was found."""

    def version() -> int:
        with conn.transaction():
            return store.subscriptions_version(conn)

    def load() -> tuple[int, list[Subscription]]:
        with conn.transaction():
            return store.load_subscriptions(conn)

    return MatcherCache(loader=load, version=version)


def plan_post(
    conn: psycopg.Connection[Any],
    post_id: int,
    matcher: Matcher,
    batch_size: int = 500,
    due_only: bool = False,
    slice_size: int | None = None,
    requeue_after: float = 30.0,
) -> Iterator[list[int]]:
    """Insert the post's notification rows and yield the devices to push, in batches, each
    batch only once its rows are committed — the caller may enqueue it at once.

    The rows go in slice by slice (matching subscriptions by ascending id, so each device keeps
    its lowest matching subscription; a batch's worth first, each slice twice the last, up to
    ``slice_size``, default ten batches' worth): the first pushes of a post matching 100k
    devices go out while the rest is still being inserted. Then come the rows left open by
    earlier runs (a redelivered task, a dead worker's lease, ``due_only``: retries whose time
    has come). Safe to run again."""
    size = max(1, batch_size)
    largest = max(1, slice_size or 10 * size)
    with conn.transaction():
        post = store.load_post(conn, post_id)
    if post is None:
        return
    subscription_ids = sorted(matcher.match(post["title"], post["board"], post["body"]))
    offered: set[int] = set()
    waiting: list[int] = []
    start, step = 0, min(size, largest)
    unanalyzed = 0  # rows inserted since notifications was last analyzed here
    while start < len(subscription_ids):
        with conn.transaction():
            inserted = store.insert_notifications(
                conn, post_id, subscription_ids[start : start + step], requeue_after
            )
        start, step = start + step, min(2 * step, largest)
        unanalyzed += len(inserted)
        with conn.transaction():
            if store.analyze_if_outgrown(conn, unanalyzed):
                unanalyzed = 0
        offered.update(inserted)
        waiting.extend(inserted)
        while len(waiting) >= size:
            yield waiting[:size]
            del waiting[:size]
    with conn.transaction():
        pending = store.open_device_ids(conn, post_id, due_only)
    waiting.extend(d for d in pending if d not in offered)
    for start in range(0, len(waiting), size):
        yield waiting[start : start + size]


_STATUS = {
    Outcome.SENT: "sent",
    Outcome.UNREGISTERED: "unregistered",
    Outcome.SENDER_MISMATCH: "failed",
    Outcome.INVALID: "invalid",
    Outcome.RETRY: "retry",
}


#: renews the lease of a claim: (claim_id, seconds, the claim's row ids) -> rows renewed;
#: runs in its own thread
Renew = Callable[[str, float, Sequence[int]], Any]

logger = logging.getLogger(__name__)


class _LeaseKeeper:
    """Renews a claim's lease every third of it until stopped (a thread of its own, so a push
    stuck on a slow FCM answer does not let the lease run out under a live worker)."""

    def __init__(
        self, renew: Renew, claim_id: str, lease_seconds: float, ids: Sequence[int]
    ) -> None:
        self._renew, self._claim_id, self._lease = renew, claim_id, lease_seconds
        self._ids = ids
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lease-keeper", daemon=True)

    def __enter__(self) -> _LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._lease / 3):
            try:
                self._renew(self._claim_id, self._lease, self._ids)
            except Exception as exc:  # the next renewal (or the record) tries again
                logger.warning("could not renew the lease of claim %s: %s", self._claim_id, exc)


def send_batch(
    conn: psycopg.Connection[Any],
    post_id: int,
    device_ids: Sequence[int],
    sender: Sender,
    options: FanoutOptions | None = None,
    renew: Renew | None = None,
) -> dict[str, Any]:
    """Claim, push and record one batch; returns a JSON-able summary.

    ``conn`` must not be inside a transaction: the claim is committed before the first push,
    so other workers skip these rows and a crash leaves them leased, not silently queued.
    ``renew`` (called from another thread, so with a connection of its own) keeps the lease
    alive while pushes are in flight; without it the lease is renewed only when outcomes are
    stored.
    """
    options = options or FanoutOptions()
    if conn.info.transaction_status != pq.TransactionStatus.IDLE:
        raise RuntimeError(
            f"send_batch(post {post_id}): the connection is inside a transaction; "
            "the claim must commit before pushing"
        )
    summary: dict[str, Any] = {
        "post_id": post_id,
        "claimed": 0,
        "sent": 0,
        "failed": 0,
        "unregistered": 0,
        "invalid": 0,
        "retry": [],
        "retry_after": None,
        "deactivated": 0,
        "closed": 0,
        "lost": 0,
    }
    claim_id = str(uuid.uuid4())
    with conn.transaction():
        post = store.load_post(conn, post_id)
        if post is None:
            return summary
        summary["closed"] = batchstore.close_unsendable(
            conn, post_id, device_ids, options.max_attempts
        )
        rows = batchstore.claim(conn, post_id, device_ids, claim_id, options.lease_seconds)
    summary["claimed"] = len(rows)
    if not rows:
        return summary

    title = options.board_titles.get(post["board"]) or ""
    pushes = [
        (row["id"], Push.of_post(post, row["platform"], row["fcm_token"], title)) for row in rows
    ]
    # recorded chunk by chunk while the next pushes go out; at most `record_every` pushes are
    # ever sent and not yet recorded: what a worker killed mid-batch may push again
    by_id = {row["id"]: row for row in rows}
    ids = list(by_id)
    lease = _Lease(claim_id, ids, options.lease_seconds)
    stream = sender.send(pushes, options.concurrency, max(1, options.record_every))
    keeper = (
        _LeaseKeeper(renew, claim_id, options.lease_seconds, ids)
        if renew is not None
        else contextlib.nullcontext()
    )
    with keeper, contextlib.closing(stream):
        for results in stream:
            chunk = [by_id[key] for key, _ in results]
            _record(conn, lease, chunk, dict(results), options, summary)
    return summary


class _Lease:
    """A claim's lease as the recording side renews it: with the outcomes it stores, once a
    third of the lease has passed since the last renewal (the keeper thread renews on its own
    clock too; without one, this alone keeps a long batch's rows)."""

    def __init__(self, claim_id: str, ids: Sequence[int], seconds: float) -> None:
        self.claim_id, self.ids, self.seconds = claim_id, ids, seconds
        self.renewed = time.monotonic()

    def renew_due(self) -> bool:
        now = time.monotonic()
        if now - self.renewed < self.seconds / 3:
            return False
        self.renewed = now
        return True


def _record(
    conn: psycopg.Connection[Any],
    lease: _Lease,
    rows: Sequence[dict[str, Any]],
    results: Mapping[Any, SendResult],
    options: FanoutOptions,
    summary: dict[str, Any],
) -> None:
    """Store the outcomes of pushed rows and the device errors; update the summary."""
    outcomes, device_errors = [], []
    for row in rows:
        result = results[row["id"]]
        status = _STATUS[result.outcome]
        if status == "retry" and row["attempts"] >= options.max_attempts:
            status = "failed"
        # each device waits for its own Retry-After (or its backoff), never another's
        due_in = retry_delay(
            row["attempts"], result.retry_after, options.retry_base_delay, options.retry_max_delay
        )
        outcomes.append(
            {
                "id": row["id"],
                "status": status,
                "message_name": result.message_name,
                "error": result.error,
                "retry_after": due_in,
            }
        )
        if status == "retry":
            summary["retry"].append(row["device_id"])
            if result.retry_after is not None:
                summary["retry_after"] = max(summary["retry_after"] or 0.0, result.retry_after)
        else:
            summary[status] += 1
        if result.outcome in (Outcome.UNREGISTERED, Outcome.SENDER_MISMATCH, Outcome.INVALID):
            device_errors.append(
                (row["device_id"], row["fcm_token"], result.error or "", result.deactivate)
            )
    with conn.transaction():
        recorded = batchstore.record_outcomes(conn, lease.claim_id, outcomes)
        summary["deactivated"] += store.note_device_errors(conn, device_errors)
        if lease.renew_due():
            batchstore.renew_lease(conn, lease.claim_id, lease.seconds, lease.ids)
    summary["lost"] += len(outcomes) - recorded
