"""The values the Celery layer runs with, taken from ``noticecrawler.settings``.

Environment variables are read, and every default is written, in ``noticecrawler/settings.py``
only: a settings module given here that lacks a name falls back to that module's value.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import cache
from types import ModuleType
from typing import Any

from noticecrawler.boardlock import is_redis, resolve_lock_url


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
    """``name`` from ``module``, else from noticecrawler.settings (where its default is)."""
    return getattr(module, name) if hasattr(module, name) else getattr(_project(), name)


def _project() -> ModuleType:
    return importlib.import_module("noticecrawler.settings")


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
    module = module or _project()
    return float(setting(module, "CRAWL_SOFT_TIME_LIMIT")), float(
        setting(module, "CRAWL_TIME_LIMIT")
    )


@cache
def current() -> DispatchConfig:
    """The configuration of this process (resolved once)."""
    import noticecrawler.settings

    return from_settings(noticecrawler.settings)
