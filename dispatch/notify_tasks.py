"""The notify tasks. Thin: ids in, a small JSON summary out; the work is in
:mod:`noticecrawler.notify.service`. All run on the ``notify_tasks`` queue (routed by name).

* ``notify_post(post_id)``: takes the outbox row, plans the fan-out, sends one ``send_batch``
  per ``NOTIFY_BATCH_SIZE`` devices as soon as their rows are committed.
* ``send_batch(post_id, device_ids, attempt)``: pushes the batch. Devices to retry stay in
  PostgreSQL, each due at its own time; nothing is re-queued with a countdown (``attempt`` is
  kept in the signature for messages sent by older versions, and ignored).
* ``sweep_outbox()``: every ``NOTIFY_SWEEP_INTERVAL`` seconds (beat): enqueues ``send_batch``
  for the rows due (retries whose time has come, rows of a dead worker, batches whose task was
  lost) and re-sends ``notify_post`` for the posts whose announcement was lost (broker away)
  or never planned (planner killed).

Why no countdown: a worker holding a countdown (ETA) task holds its message unacknowledged;
when the Redis broker goes away, kombu 5.7 closes the connection twice, the second time after
clearing the transport's client, and restoring that message then fails with
``AttributeError: 'NoneType' object has no attribute 'hostname'`` — the node exits. With the
wait kept in PostgreSQL the notifier holds no message between tasks (and Redis' visibility
timeout no longer bounds how long a retry may wait).

Each task is idempotent, hence ``acks_late``: a task delivered twice claims nothing already
claimed or sent. Tasks are enqueued only after the work they follow from is committed. Each
runs through ``Runtime.call``: a connection that PostgreSQL's restart broke is re-opened and
the work run again, instead of failing the task.
"""

from __future__ import annotations

from typing import Any

from celery import Celery

from dispatch.celery_app import app
from noticecrawler.notify import service
from noticecrawler.notify.config import NotifyConfig, from_settings

CONFIG: NotifyConfig = from_settings()
SWEEP_NAME = "notify-sweep-outbox"


def _runtime() -> service.Runtime:
    global _RUNTIME
    if _RUNTIME is None:
        import noticecrawler.settings as settings
        from noticecrawler.db import resolve_url

        url = resolve_url(settings.DATABASE_URL, settings.NOTICECRAWLER_HOME)
        _RUNTIME = service.Runtime(CONFIG, url)
    return _RUNTIME


_RUNTIME: service.Runtime | None = None


@app.task(name="dispatch.notify_post", acks_late=True, ignore_result=True)
def notify_post(post_id: int) -> dict[str, Any]:
    runtime = _runtime()
    planned = runtime.call(
        lambda conn: service.announce_post(
            conn,
            post_id,
            runtime.matcher(),
            CONFIG,
            enqueue=lambda batch: send_batch.apply_async((post_id, batch)),
        )
    )
    return {k: planned[k] for k in ("post_id", "announced", "devices")} | {
        "batches": len(planned["batches"])
    }


@app.task(name="dispatch.send_batch", acks_late=True, ignore_result=True)
def send_batch(post_id: int, device_ids: list[int], attempt: int = 1) -> dict[str, Any]:
    runtime = _runtime()
    summary = runtime.call(
        lambda conn: service.push_batch(
            conn, post_id, device_ids, runtime.sender(), CONFIG, runtime.renew_lease
        )
    )
    summary["retry"] = len(summary["retry"])
    return summary


@app.task(name="dispatch.sweep_outbox", acks_late=True, ignore_result=True)
def sweep_outbox() -> dict[str, Any]:
    runtime = _runtime()
    batches = runtime.call(lambda conn: service.due_batches(conn, CONFIG))
    for post_id, devices in batches:
        send_batch.apply_async((post_id, devices))
    posts = runtime.call(lambda conn: service.sweep(conn, CONFIG))
    for post_id in posts:
        notify_post.apply_async((post_id,))
    return {"resent": posts, "batches": len(batches)}


def schedule_sweep(sender: Celery, **_: Any) -> None:
    """Beat entry of the sweep; a sweep still waiting when the next is due is dropped."""
    sender.add_periodic_task(
        CONFIG.sweep_interval,
        sweep_outbox.s(),
        name=SWEEP_NAME,
        expires=CONFIG.sweep_interval,
    )


app.on_after_configure.connect(schedule_sweep, weak=False)
if app.configured:  # this module was imported after the app was configured: add it now
    schedule_sweep(app)
