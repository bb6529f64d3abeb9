"""Time limits are the worker's setting, whoever sends the task.

Celery writes a task's ``time_limit`` / ``soft_time_limit`` into every message sent through the
task object (``apply_async``, beat), taken from the *sender's* configuration, and the worker
obeys the message over its own. So a crawl sent from a shell with default settings ran under
240 s on a worker configured for 10 s. Here neither side lets that happen:

* :class:`WorkerLimitsTask` (the app's task class) sends no limits in the message;
* :class:`WorkerLimitsRequest` (its request class, in the worker) ignores limits a message
  carries anyway (an older sender, ``send_task(..., time_limit=…)``), so the pool applies the
  task's own limits as this worker configured them.
"""

from __future__ import annotations

from typing import Any

from celery import Task
from celery.worker.request import Request


class WorkerLimitsRequest(Request):
    @property
    def time_limits(self) -> tuple[None, None]:
        return (None, None)

    @time_limits.setter
    def time_limits(self, value: Any) -> None:
        pass  # the message's limits: not ours to obey


class WorkerLimitsTask(Task):
    Request = "dispatch.limits:WorkerLimitsRequest"

    def _get_exec_options(self) -> dict[str, Any]:
        options = dict(super()._get_exec_options())
        options.pop("time_limit", None)
        options.pop("soft_time_limit", None)
        return options
