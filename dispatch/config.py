"""The values the Celery layer runs with, taken from ``noticecrawler.settings``.

Environment variables are read in ``noticecrawler/settings.py`` only. The dispatch-specific
names below are looked up there with a default, so the layer works before settings.py lists
them; a deployment sets them through the environment once settings.py reads them.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import cache
from types import ModuleType
from typing import Any

from noticecrawler.boardlock import is_redis, resolve_lock_url

#: name in noticecrawler.settings -> default
DEFAULTS: dict[str, Any] = {
    # soft limit: the crawl process is killed and the run recorded as `time_limit`
    "CRAWL_SOFT_TIME_LIMIT": 240,
    # hard limit: the pool process itself is killed (the crawl dies with it)
    "CRAWL_TIME_LIMIT": 300,
    # the per-board lock outlives the hard limit, so a SIGKILLed worker frees it by expiry
    "CRAWL_LOCK_EXPIRE": 0,  # 0: CRAWL_TIME_LIMIT + 60
    # Redis redelivers an unacknowledged message after this long: longer than any task
    "CELERY_VISIBILITY_TIMEOUT": 3600,
    # results of crawl_site (the run summary); empty: the broker when it is Redis
    "CELERY_RESULT_BACKEND": "",
    # Redis of the per-board locks; empty: the result backend or the broker when Redis,
    # else the embedded Redis
    "CRAWL_LOCK_URL": "",
}


class ConfigError(ValueError):
    """Limits or URLs that would make the layer misbehave (a crawl run twice, a lost lock)."""


@dataclass(frozen=True)
class DispatchConfig:
    broker_url: str
    result_backend: str | None
    lock_url: str
    soft_time_limit: float
    time_limit: float
    lock_expire: float
    visibility_timeout: float
    home: str

    def check(self) -> DispatchConfig:
        if not 0 < self.soft_time_limit < self.time_limit:
            raise ConfigError(
                f"CRAWL_SOFT_TIME_LIMIT ({self.soft_time_limit}) must be positive and below "
                f"CRAWL_TIME_LIMIT ({self.time_limit})"
            )
        if self.lock_expire <= self.time_limit:
            raise ConfigError(
                f"CRAWL_LOCK_EXPIRE ({self.lock_expire}) must exceed CRAWL_TIME_LIMIT "
                f"({self.time_limit}) so a lock is never lost during a crawl"
            )
        if is_redis(self.broker_url) and self.visibility_timeout <= self.lock_expire:
            raise ConfigError(
                f"CELERY_VISIBILITY_TIMEOUT ({self.visibility_timeout}) must exceed the longest "
                f"task (CRAWL_LOCK_EXPIRE {self.lock_expire}), or Redis redelivers a running task"
            )
        return self


def setting(module: ModuleType, name: str) -> Any:
    return getattr(module, name, DEFAULTS[name])


def from_settings(module: ModuleType) -> DispatchConfig:
    """The configuration from a settings module; embedded Redis is started only when needed."""
    home = str(module.NOTICECRAWLER_HOME)
    broker = str(module.CELERY_BROKER_URL or "")
    if not broker:
        from noticecrawler.db.embedded import redis_url

        broker = redis_url(home)
    backend = str(setting(module, "CELERY_RESULT_BACKEND") or "") or (
        broker if is_redis(broker) else None
    )
    lock_url = resolve_lock_url(
        str(setting(module, "CRAWL_LOCK_URL") or ""), backend or "", broker, home
    )
    time_limit = float(setting(module, "CRAWL_TIME_LIMIT"))
    return DispatchConfig(
        broker_url=broker,
        result_backend=backend,
        lock_url=lock_url,
        soft_time_limit=float(setting(module, "CRAWL_SOFT_TIME_LIMIT")),
        time_limit=time_limit,
        lock_expire=float(setting(module, "CRAWL_LOCK_EXPIRE") or time_limit + 60),
        visibility_timeout=float(setting(module, "CELERY_VISIBILITY_TIMEOUT")),
        home=home,
    ).check()


def time_limits(module: ModuleType | None = None) -> tuple[float, float]:
    """(soft, hard) crawl time limits, without resolving any server URL."""
    module = module or importlib.import_module("noticecrawler.settings")
    return float(setting(module, "CRAWL_SOFT_TIME_LIMIT")), float(
        setting(module, "CRAWL_TIME_LIMIT")
    )


@cache
def current() -> DispatchConfig:
    """The configuration of this process (resolved once)."""
    import noticecrawler.settings

    return from_settings(noticecrawler.settings)
