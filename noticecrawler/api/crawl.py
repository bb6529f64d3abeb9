"""The admin crawl trigger: ``crawl_site(board)`` sent by name through the broker.

The API does not import the Celery tasks (dispatch → noticecrawler, never the reverse); it
sends the task by its name to the crawl queue, and reads the board's crawl lock (a Redis key
held by whatever crawls the board, noticecrawler/boardlock.py) to answer 409 while it runs.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

import redis
from celery import Celery

from noticecrawler.boardlock import PREFIX as LOCK_PREFIX

CRAWL_TASK = "dispatch.crawl_site"
CRAWL_QUEUE = "crawl_tasks"


class CrawlTrigger:
    def __init__(self, broker_url: str, lock_url: str) -> None:
        self.broker_url = broker_url
        self.lock_url = lock_url

    @cached_property
    def _celery(self) -> Celery:
        app = Celery("noticecrawler-api", broker=self.broker_url, set_as_current=False)
        app.conf.update(
            task_serializer="json",
            accept_content=["json"],
            broker_connection_retry_on_startup=False,
            broker_connection_max_retries=1,
            broker_transport_options={"max_retries": 1, "socket_timeout": 5},
        )
        return app

    @cached_property
    def _redis(self) -> redis.Redis:
        return redis.Redis.from_url(
            self.lock_url, decode_responses=True, socket_timeout=5, socket_connect_timeout=5
        )

    def holder(self, board: str) -> str | None:
        """The id of the task crawling ``board`` now, if any."""
        value: Any = self._redis.get(LOCK_PREFIX + board)
        return str(value) if value else None

    def send(self, board: str, expires: float) -> str:
        """Queue a crawl of ``board``; the task id. ``expires``: dropped when not started by
        then (as beat's entries are)."""
        result = self._celery.send_task(
            CRAWL_TASK, args=[board], queue=CRAWL_QUEUE, expires=expires, retry=False
        )
        return str(result.id)

    def close(self) -> None:
        if "_celery" in self.__dict__:
            self._celery.close()
        if "_redis" in self.__dict__:
            self._redis.close()
