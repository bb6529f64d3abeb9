"""The notifier's knobs, taken from ``noticecrawler.settings``.

Environment variables are read, and every default is written (with its explanation), in
``noticecrawler/settings.py`` only; ``NotifyConfig()``'s defaults are that module's values.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import noticecrawler.settings as _S


@dataclass(frozen=True)
class NotifyConfig:
    batch_size: int = _S.NOTIFY_BATCH_SIZE
    concurrency: int = _S.NOTIFY_SEND_CONCURRENCY
    record_every: int = _S.NOTIFY_RECORD_EVERY
    max_attempts: int = _S.NOTIFY_MAX_ATTEMPTS
    retry_base_delay: float = _S.NOTIFY_RETRY_BASE_DELAY
    retry_max_delay: float = _S.NOTIFY_RETRY_MAX_DELAY
    lease_seconds: float = _S.NOTIFY_LEASE_SECONDS
    requeue_after: float = _S.NOTIFY_REQUEUE_AFTER
    fcm_timeout: tuple[float, float] = (
        _S.NOTIFY_FCM_CONNECT_TIMEOUT,
        _S.NOTIFY_FCM_READ_TIMEOUT,
    )
    sweep_interval: float = _S.NOTIFY_SWEEP_INTERVAL
    sweep_age: float = _S.NOTIFY_SWEEP_AGE
    sweep_max_sends: int = _S.NOTIFY_SWEEP_MAX_SENDS
    sweep_limit: int = _S.NOTIFY_SWEEP_LIMIT
    android_channel: str = _S.FCM_ANDROID_CHANNEL
    apns_sound: str = _S.FCM_APNS_SOUND
    apns_topic: str = _S.FCM_APNS_TOPIC

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.max_attempts < 1 or self.concurrency < 1:
            raise ValueError(
                "NOTIFY_BATCH_SIZE, NOTIFY_MAX_ATTEMPTS and NOTIFY_SEND_CONCURRENCY must be ≥ 1"
            )
        if not 0 <= self.retry_base_delay <= self.retry_max_delay:
            raise ValueError("NOTIFY_RETRY_BASE_DELAY must be between 0 and NOTIFY_RETRY_MAX_DELAY")
        if self.sweep_interval <= 0 or self.sweep_age <= 0:
            raise ValueError("NOTIFY_SWEEP_INTERVAL and NOTIFY_SWEEP_AGE must be positive")
        if self.lease_seconds <= 0 or self.requeue_after <= 0:
            raise ValueError("NOTIFY_LEASE_SECONDS and NOTIFY_REQUEUE_AFTER must be positive")

    def retry_delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds before retry number ``attempt`` (1 = the first retry)."""
        return retry_delay(attempt, retry_after, self.retry_base_delay, self.retry_max_delay)


def retry_delay(attempt: int, retry_after: float | None, base: float, cap: float) -> float:
    """Seconds before retry number ``attempt`` (1 = the first retry) of one device: the
    exponential backoff or that device's Retry-After, whichever is longer, at most ``cap``."""
    backoff = base * 2 ** max(0, attempt - 1)
    return float(min(cap, max(backoff, retry_after or 0.0)))


def setting(module: ModuleType, name: str) -> Any:
    """``name`` from ``module``, else from noticecrawler.settings (where its default is)."""
    return getattr(module, name) if hasattr(module, name) else getattr(_S, name)


def from_settings(module: ModuleType | None = None) -> NotifyConfig:
    module = module or importlib.import_module("noticecrawler.settings")
    return NotifyConfig(
        batch_size=int(setting(module, "NOTIFY_BATCH_SIZE")),
        concurrency=int(setting(module, "NOTIFY_SEND_CONCURRENCY")),
        record_every=int(setting(module, "NOTIFY_RECORD_EVERY")),
        max_attempts=int(setting(module, "NOTIFY_MAX_ATTEMPTS")),
        retry_base_delay=float(setting(module, "NOTIFY_RETRY_BASE_DELAY")),
        retry_max_delay=float(setting(module, "NOTIFY_RETRY_MAX_DELAY")),
        lease_seconds=float(setting(module, "NOTIFY_LEASE_SECONDS")),
        requeue_after=float(setting(module, "NOTIFY_REQUEUE_AFTER")),
        fcm_timeout=(
            float(setting(module, "NOTIFY_FCM_CONNECT_TIMEOUT")),
            float(setting(module, "NOTIFY_FCM_READ_TIMEOUT")),
        ),
        sweep_interval=float(setting(module, "NOTIFY_SWEEP_INTERVAL")),
        sweep_age=float(setting(module, "NOTIFY_SWEEP_AGE")),
        sweep_max_sends=int(setting(module, "NOTIFY_SWEEP_MAX_SENDS")),
        sweep_limit=int(setting(module, "NOTIFY_SWEEP_LIMIT")),
        android_channel=str(setting(module, "FCM_ANDROID_CHANNEL") or "notices"),
        apns_sound=str(setting(module, "FCM_APNS_SOUND")),
        apns_topic=str(setting(module, "FCM_APNS_TOPIC")),
    )
