"""Push backends behind one interface: ``make_sender(config)`` picks one by name.

    sender = make_sender(SenderConfig.from_settings())
    for results in sender.send([(key, Push(...)), ...]):
        ...

``fcm`` (FCM HTTP v1: senders/fcm.py) and ``console`` (prints) are built in; another backend
(APNs direct, a webhook) is a module with a class following ``Sender`` (senders/base.py) and
one ``BACKENDS`` entry. ``auto`` (the default) is ``fcm`` when credentials and a project id are
configured, else ``console``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from noticecrawler.notify.senders.base import Outcome, Push, Sender, SendResult

__all__ = ["BACKENDS", "Outcome", "Push", "SendResult", "Sender", "SenderConfig", "make_sender"]


@dataclass(frozen=True)
class SenderConfig:
    backend: str = "auto"
    credentials_file: str = ""
    project_id: str = ""
    endpoint: str = ""
    #: pushes in flight at once per process
    concurrency: int = 100
    #: connect and answer timeouts of one push (s)
    timeout: tuple[float, float] = (5.0, 30.0)
    android_channel: str = "notices"
    apns_sound: str = "default"
    apns_topic: str = ""
    #: offer HTTP/2 (ALPN h2); HTTP/1.1 when off or when the server does not take it
    http2: bool = True
    https_proxy: str = ""
    no_proxy: str = ""
    #: CA bundle (PEM) to verify FCM's certificate against instead of the system's; "" : system
    ca_file: str = ""

    @classmethod
    def from_settings(cls, **overrides: Any) -> SenderConfig:
        """The configuration in noticecrawler.settings (environment read there only)."""
        from noticecrawler import settings

        values: dict[str, Any] = {
            "backend": settings.NOTIFY_SENDER or "auto",
            "credentials_file": settings.FCM_CREDENTIALS_FILE,
            "project_id": settings.FCM_PROJECT_ID,
            "endpoint": settings.FCM_ENDPOINT,
            "android_channel": settings.FCM_ANDROID_CHANNEL or "notices",
            "apns_sound": settings.FCM_APNS_SOUND,
            "apns_topic": settings.FCM_APNS_TOPIC,
            "http2": settings.FCM_HTTP2,
            "https_proxy": settings.FCM_HTTPS_PROXY,
            "no_proxy": settings.FCM_NO_PROXY,
            "ca_file": settings.FCM_CA_FILE,
        }
        values.update(overrides)
        return cls(**values)


def _fcm(config: SenderConfig) -> Sender:
    from noticecrawler.notify.senders.fcm import FcmSender

    if not config.credentials_file or not config.project_id:
        missing = "FCM_CREDENTIALS_FILE" if not config.credentials_file else "FCM_PROJECT_ID"
        raise ValueError(f"FCM is half configured: {missing} is empty (set both or neither)")
    return FcmSender(
        project_id=config.project_id,
        credentials_file=config.credentials_file,
        endpoint=config.endpoint or None,
        max_concurrency=config.concurrency,
        timeout=config.timeout,
        android_channel=config.android_channel,
        apns_sound=config.apns_sound,
        apns_topic=config.apns_topic,
        http2=config.http2,
        proxy=config.https_proxy,
        no_proxy=config.no_proxy,
        ca_file=config.ca_file,
    )


def _console(config: SenderConfig) -> Sender:
    from noticecrawler.notify.senders.console import ConsoleSender

    return ConsoleSender()


#: backend name → factory
BACKENDS: dict[str, Callable[[SenderConfig], Sender]] = {"fcm": _fcm, "console": _console}


def make_sender(
    config: SenderConfig | str | None = None,
    project_id: str | None = None,
    endpoint: str | None = None,
    *,
    max_concurrency: int | None = None,
    timeout: tuple[float, float] | None = None,
) -> Sender:
    """The backend ``config.backend`` names (``auto``: fcm when both FCM_CREDENTIALS_FILE and
    FCM_PROJECT_ID are set, console when neither; one of the two alone is an error).

    The older call ``make_sender(credentials_file, project_id, endpoint, max_concurrency=,
    timeout=)`` still works: arguments left None come from settings."""
    if not isinstance(config, SenderConfig):
        overrides: dict[str, Any] = {}
        for name, value in (
            ("credentials_file", config),
            ("project_id", project_id),
            ("endpoint", endpoint),
            ("concurrency", max_concurrency),
            ("timeout", timeout),
        ):
            if value is not None:
                overrides[name] = value
        config = SenderConfig.from_settings(**overrides)
    backend = config.backend
    if backend == "auto":
        configured = config.credentials_file or config.project_id
        backend = "fcm" if configured else "console"
    factory = BACKENDS.get(backend)
    if factory is None:
        raise ValueError(f"NOTIFY_SENDER {backend!r} is not one of {sorted(BACKENDS)} or auto")
    return factory(config)
