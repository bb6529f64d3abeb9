"""The notifier's knobs, taken from ``noticecrawler.settings`` with the defaults below.

Environment variables are read in ``noticecrawler/settings.py`` only; a name missing there falls
back to its default here, so the notifier works before settings.py lists it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Any

#: name in noticecrawler.settings -> default
DEFAULTS: dict[str, Any] = {
    # devices per send_batch task (one Celery message per this many pushes)
    "NOTIFY_BATCH_SIZE": 500,
    # pushes in flight at once inside one send_batch task (keep-alive connections): with FCM
    # answering in ~tens of ms, a process pushes about this many per RTT
    "NOTIFY_SEND_CONCURRENCY": 100,
    # at most this many pushes of a batch are sent and not yet recorded (outcomes are stored
    # every half of it while the other half goes out): a worker killed mid-batch has pushed at
    # most this many devices without recording it (they get the push again, with the same
    # tag / collapse id, so the phone replaces the first)
    "NOTIFY_RECORD_EVERY": 256,
    # tries per (post, device); after the last failed try the row is `failed`
    "NOTIFY_MAX_ATTEMPTS": 5,
    # retry n waits max(Retry-After, base * 2**(n-1)), at most the max (below the broker's
    # visibility timeout, or Redis would redeliver the waiting task)
    "NOTIFY_RETRY_BASE_DELAY": 10.0,
    "NOTIFY_RETRY_MAX_DELAY": 900.0,
    # a claimed row is someone else's for this long: longer than a batch can take
    "NOTIFY_LEASE_SECONDS": 600.0,
    # FCM connect / read timeouts of one push
    "NOTIFY_FCM_CONNECT_TIMEOUT": 5.0,
    "NOTIFY_FCM_READ_TIMEOUT": 30.0,
    # the sweep runs this often (beat); it re-sends notify_post for posts untaken or stalled
    # for NOTIFY_SWEEP_AGE seconds, each at most once per NOTIFY_SWEEP_AGE and
    # NOTIFY_SWEEP_MAX_SENDS times in all
    "NOTIFY_SWEEP_INTERVAL": 60.0,
    "NOTIFY_SWEEP_AGE": 120.0,
    "NOTIFY_SWEEP_MAX_SENDS": 20,
    # posts re-sent by one sweep at most
    "NOTIFY_SWEEP_LIMIT": 500,
}


@dataclass(frozen=True)
class NotifyConfig:
    batch_size: int = DEFAULTS["NOTIFY_BATCH_SIZE"]
    concurrency: int = DEFAULTS["NOTIFY_SEND_CONCURRENCY"]
    record_every: int = DEFAULTS["NOTIFY_RECORD_EVERY"]
    max_attempts: int = DEFAULTS["NOTIFY_MAX_ATTEMPTS"]
    retry_base_delay: float = DEFAULTS["NOTIFY_RETRY_BASE_DELAY"]
    retry_max_delay: float = DEFAULTS["NOTIFY_RETRY_MAX_DELAY"]
    lease_seconds: float = DEFAULTS["NOTIFY_LEASE_SECONDS"]
    fcm_timeout: tuple[float, float] = (
        DEFAULTS["NOTIFY_FCM_CONNECT_TIMEOUT"],
        DEFAULTS["NOTIFY_FCM_READ_TIMEOUT"],
    )
    sweep_interval: float = DEFAULTS["NOTIFY_SWEEP_INTERVAL"]
    sweep_age: float = DEFAULTS["NOTIFY_SWEEP_AGE"]
    sweep_max_sends: int = DEFAULTS["NOTIFY_SWEEP_MAX_SENDS"]
    sweep_limit: int = DEFAULTS["NOTIFY_SWEEP_LIMIT"]
    android_channel: str = "notices"
    apns_sound: str = "default"
    apns_topic: str = ""

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.max_attempts < 1 or self.concurrency < 1:
            raise ValueError(
                "NOTIFY_BATCH_SIZE, NOTIFY_MAX_ATTEMPTS and NOTIFY_SEND_CONCURRENCY must be ≥ 1"
            )
        if not 0 <= self.retry_base_delay <= self.retry_max_delay:
            raise ValueError("NOTIFY_RETRY_BASE_DELAY must be between 0 and NOTIFY_RETRY_MAX_DELAY")
        if self.sweep_interval <= 0 or self.sweep_age <= 0:
            raise ValueError("NOTIFY_SWEEP_INTERVAL and NOTIFY_SWEEP_AGE must be positive")

    def retry_delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds before retry number ``attempt`` (1 = the first retry): the exponential
        backoff or FCM's Retry-After, whichever is longer, capped at the max delay."""
        backoff = self.retry_base_delay * 2 ** max(0, attempt - 1)
        return min(self.retry_max_delay, max(backoff, retry_after or 0.0))


def setting(module: ModuleType, name: str) -> Any:
    return getattr(module, name, DEFAULTS[name])


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
        fcm_timeout=(
            float(setting(module, "NOTIFY_FCM_CONNECT_TIMEOUT")),
            float(setting(module, "NOTIFY_FCM_READ_TIMEOUT")),
        ),
        sweep_interval=float(setting(module, "NOTIFY_SWEEP_INTERVAL")),
        sweep_age=float(setting(module, "NOTIFY_SWEEP_AGE")),
        sweep_max_sends=int(setting(module, "NOTIFY_SWEEP_MAX_SENDS")),
        sweep_limit=int(setting(module, "NOTIFY_SWEEP_LIMIT")),
        android_channel=str(getattr(module, "FCM_ANDROID_CHANNEL", "notices") or "notices"),
        apns_sound=str(getattr(module, "FCM_APNS_SOUND", "default")),
        apns_topic=str(getattr(module, "FCM_APNS_TOPIC", "")),
    )
