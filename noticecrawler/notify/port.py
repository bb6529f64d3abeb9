"""The narrow notify port: the crawler's only way to ask for an announcement.

It sends the ``notify_post`` task by name, so the crawler package never imports the dispatch
package (dispatch → noticecrawler, never the reverse).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from celery import Celery

NOTIFY_TASK = "dispatch.notify_post"
NOTIFY_QUEUE = "notify_tasks"


def broker_url(settings: Any) -> str:
    """``CELERY_BROKER_URL``, or the embedded Redis under ``NOTICECRAWLER_HOME``."""
    url = settings.get("CELERY_BROKER_URL") or ""
    if url:
        return str(url)
    from noticecrawler.db.embedded import redis_url

    return redis_url(settings.get("NOTICECRAWLER_HOME"))


@cache
def _sender(url: str) -> Celery:
    app = Celery("noticecrawler-port", broker=url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        broker_connection_retry_on_startup=False,
        broker_connection_max_retries=1,
        broker_transport_options={"max_retries": 1, "socket_timeout": 5},
    )
    return app


def send_notify_task(post_id: int, settings: Any) -> None:
    """Send ``notify_post(post_id)`` to the notify queue; raises when the broker is away."""
    app = _sender(broker_url(settings))
    app.send_task(NOTIFY_TASK, args=[post_id], queue=NOTIFY_QUEUE, retry=False)
