"""The FCM backend's request parts: the message of a push (built by pyfcm's public
``parse_payload``, from the kwargs made here) and the checks of the configuration."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from noticecrawler.notify.senders.base import Push

DEFAULT_ENDPOINT = "https://fcm.googleapis.com/v1/projects"
MAX_BODY_CHARS = 240
PLATFORMS = ("android", "ios", "web")


#: a Google Cloud project id (6-30 of a-z, 0-9 and "-"; older ones may be longer or carry a
#: "domain:" prefix): anything else would break the request line
_PROJECT_ID = re.compile(r"(?:[a-z0-9][a-z0-9.-]*:)?[a-z0-9][a-z0-9-]{0,62}")
#: a token that can be sent: no space or control character (FCM's own are [A-Za-z0-9_:-]),
#: at most 4 KiB; anything else is refused before it reaches a request
_TOKEN = re.compile(r"[^\x00-\x20\x7f]{1,4096}")
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def check_project_id(project_id: str) -> str:
    """The project id, or ValueError naming what is wrong (checked when the config loads)."""
    if not _PROJECT_ID.fullmatch(project_id):
        raise ValueError(
            f"FCM_PROJECT_ID {project_id!r} is not a Google Cloud project id "
            "(lowercase letters, digits and '-')"
        )
    return project_id


def check_endpoint(endpoint: str) -> str:
    """The FCM endpoint base (``https://host[:port]/v1/projects``), or ValueError. Plain http
    only to a loopback address (a test server); no user, query or fragment."""
    parts = urlsplit(endpoint)
    try:
        _ = parts.port  # raises on a port that is not a number
    except ValueError as exc:
        raise ValueError(f"FCM_ENDPOINT {endpoint!r}: {exc}") from None
    problem = None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        problem = "not an http(s) URL"
    elif parts.scheme == "http" and parts.hostname not in _LOOPBACK:
        problem = "plain http is allowed only to a loopback address"
    elif parts.username is not None or parts.query or parts.fragment:
        problem = "no user, query or fragment allowed"
    elif _TOKEN.fullmatch(endpoint) is None:
        problem = "spaces or control characters"
    if problem:
        raise ValueError(f"FCM_ENDPOINT {endpoint!r}: {problem}")
    return endpoint.rstrip("/")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def build_message(
    post: Mapping[str, Any],
    device_platform: str,
    android_channel: str,
    *,
    board_title: str | None = None,
    ttl_seconds: int = 86400,
    apns_sound: str = "default",
    apns_topic: str = "",
) -> dict[str, Any]:
    """The ``FCMNotification.notify()`` kwargs (without the token) announcing one post.

    ``post`` needs ``id`` (the posts table's id: unique across boards, so it is the tag that
    makes a repeated push replace the first one on the phone), ``board``, ``title`` and ``url``.
    The notification's title is the board's display name (``board_title``, else
    ``post["board_title"]``, else the board name), its body the post's title. iOS: the
    ``apns_sound`` (empty: silent) and, when set, the ``apns-topic`` (the app's bundle id).
    """
    platform = device_platform.lower()
    if platform not in PLATFORMS:
        raise ValueError(f"device platform {device_platform!r} is not one of {PLATFORMS}")
    post_id = str(post["id"])
    board = str(post["board"])
    url = str(post.get("url") or "")
    message: dict[str, Any] = {
        "notification_title": board_title or str(post.get("board_title") or board),
        "notification_body": _clip(str(post["title"]), MAX_BODY_CHARS),
        "data_payload": {"post_id": post_id, "board": board, "url": url},
    }
    if platform == "android":
        message["android_config"] = {
            "collapse_key": f"post-{post_id}",
            "priority": "HIGH",
            "ttl": f"{ttl_seconds}s",
            "notification": {"channel_id": android_channel, "tag": post_id},
        }
    elif platform == "ios":
        headers = {"apns-collapse-id": post_id, "apns-push-type": "alert", "apns-priority": "10"}
        if apns_topic:
            headers["apns-topic"] = apns_topic
        aps: dict[str, Any] = {"thread-id": board}
        if apns_sound:
            aps["sound"] = apns_sound
        message["apns_config"] = {"headers": headers, "payload": {"aps": aps}}
    else:
        webpush: dict[str, Any] = {
            "headers": {"Urgency": "high", "TTL": str(ttl_seconds)},
            "notification": {"tag": post_id},
        }
        if url.startswith("https://"):  # FCM accepts only https links
            webpush["fcm_options"] = {"link": url}
        message["webpush_config"] = webpush
    return message


def message_of(
    push: Push,
    android_channel: str = "notices",
    *,
    ttl_seconds: int = 86400,
    apns_sound: str = "default",
    apns_topic: str = "",
) -> dict[str, Any]:
    """The ``parse_payload`` kwargs (without the token) of a neutral Push."""
    post = {"id": push.collapse_id, "board": push.board, "title": push.post_title, "url": push.url}
    message = build_message(
        post,
        push.platform,
        android_channel,
        board_title=push.board_title or push.board,
        ttl_seconds=ttl_seconds,
        apns_sound=apns_sound,
        apns_topic=apns_topic,
    )
    message["data_payload"]["post_id"] = push.post_id
    return message
