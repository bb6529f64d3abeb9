"""The Celery app: ``celery -A dispatch.celery_app worker|beat|multi …``.

Two queues besides the default one: ``crawl_tasks`` (one board crawl per task, run by the
crawler node: prefork, one process per CPU) and ``notify_tasks`` (pushes, run by the notifier
node: a thread pool). JSON only; late acknowledgement with a prefetch of one, so a crawl
interrupted by a dead worker is delivered again; Redis' visibility timeout outlasts every task so
nothing runs twice by accident. The broker, result backend and limits come from
:mod:`dispatch.config`; they are resolved when the app's configuration is first used, so
importing this module starts nothing.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from celery import Celery
from celery.exceptions import Ignore, Reject, Retry
from kombu import Exchange, Queue

from dispatch import config as dispatch_config
from dispatch.limits import WorkerLimitsTask
from dispatch.schedule import CRAWL_QUEUE, beat_schedule, catalog_boards, check_schedule
from noticecrawler.redaction import install_log_redaction, redact, redact_value

DEFAULT_QUEUE = "celery"
NOTIFY_QUEUE = "notify_tasks"
#: task names of the notifications layer (dispatch/notify_tasks.py), routed by name
NOTIFY_TASKS = ("dispatch.notify_post", "dispatch.send_batch", "dispatch.sweep_outbox")
CRAWL_TASKS = ("dispatch.crawl_site", "dispatch.crawl_sites", "dispatch.check_due")


def _includes() -> list[str]:
    modules = ["dispatch.tasks"]
    if importlib.util.find_spec("dispatch.notify_tasks") is not None:
        modules.append("dispatch.notify_tasks")
    return modules


def _queue(name: str) -> Queue:
    return Queue(name, Exchange(name, type="direct"), routing_key=name)


def celery_config(
    cfg: dispatch_config.DispatchConfig, boards: list[Any], check_tick: float = 0.0
) -> dict[str, Any]:
    """The app's configuration for a resolved :class:`~dispatch.config.DispatchConfig`.
    ``check_tick`` > 0: beat sends one batched ``check_due`` at most that often instead of one
    ``crawl_site`` per board (dispatch/schedule.py)."""
    transport = {"visibility_timeout": cfg.visibility_timeout}
    routes: dict[str, dict[str, str]] = {name: {"queue": CRAWL_QUEUE} for name in CRAWL_TASKS}
    routes.update({name: {"queue": NOTIFY_QUEUE} for name in NOTIFY_TASKS})
    extra: dict[str, Any] = {}
    if cfg.broker_url.startswith("redis://"):
        from dispatch.broker import TRANSPORT

        # kombu's Redis transport minus the defect that made a node exit when the broker went
        # away while it held an unacknowledged message (see dispatch/broker.py)
        extra["broker_transport"] = TRANSPORT
    return extra | {
        "broker_url": cfg.broker_url,
        "result_backend": cfg.result_backend,
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": transport,
        "result_backend_transport_options": transport,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        "task_queues": (_queue(DEFAULT_QUEUE), _queue(CRAWL_QUEUE), _queue(NOTIFY_QUEUE)),
        "task_default_queue": DEFAULT_QUEUE,
        "task_default_exchange": DEFAULT_QUEUE,
        "task_default_routing_key": DEFAULT_QUEUE,
        "task_create_missing_queues": False,
        "task_routes": routes,
        # results are read only where a task says so (crawl_site's summary)
        "task_ignore_result": True,
        "result_expires": 86400,
        "result_extended": True,
        "worker_prefetch_multiplier": 1,
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        "worker_send_task_events": True,
        "task_send_sent_event": True,
        "timezone": "UTC",
        "enable_utc": True,
        "beat_schedule": (
            check_schedule(boards, check_tick) if check_tick > 0 else beat_schedule(boards)
        ),
    }


def _lazy_config() -> dict[str, Any]:
    import noticecrawler.settings

    tick = float(dispatch_config.setting(noticecrawler.settings, "CRAWL_CHECK_TICK") or 0)
    return celery_config(dispatch_config.current(), catalog_boards(noticecrawler.settings), tick)


class SecretRedacted(RuntimeError):
    """A task's exception whose message held a password, re-raised with it masked."""


class RedactingTask(WorkerLimitsTask):
    """Passwords never reach the result backend: an exception message or a returned string
    that holds one is masked before Celery stores it. Time limits travel with no message:
    each worker applies its own (dispatch/limits.py)."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return redact_value(super().__call__(*args, **kwargs))
        except (Retry, Ignore, Reject):
            raise
        except Exception as exc:
            text = str(exc)
            if redact(text) == text:
                raise
            raise SecretRedacted(f"{type(exc).__name__}: {redact(text)}") from None


install_log_redaction()  # every log line of a worker or beat, whoever writes it
app = Celery("noticecrawler", include=_includes(), set_as_current=True, task_cls=RedactingTask)
app.add_defaults(_lazy_config)
