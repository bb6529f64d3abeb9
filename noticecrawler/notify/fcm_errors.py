"""What one push's outcome was, and how an FCM HTTP v1 response maps to it.

pyfcm's own ``parse_response`` is not used: it turns 429 and every 5xx into the same
``FCMServerError`` (dropping Retry-After), treats any 404 as "not registered" and any 403 as a
sender mismatch, and never looks at FCM's ``errorCode``. Deactivating a device is irreversible,
so here it happens only when FCM says so explicitly (``errorCode`` UNREGISTERED or
SENDER_ID_MISMATCH); a bare 404/403 (wrong project id, wrong URL, missing IAM permission) is a
problem of the sender, reported as ``retry`` so that no device is lost to a misconfiguration.
"""

from __future__ import annotations

import email.utils
import json
import re
import time
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"


class Outcome(StrEnum):
    SENT = "sent"
    #: the token is dead: deactivate the device, never retry
    UNREGISTERED = "unregistered"
    #: FCM rejected the message or token as malformed: record it, do not retry
    INVALID = "invalid"
    #: the token belongs to another sender: deactivate the device
    SENDER_MISMATCH = "sender_mismatch"
    #: try again later (after ``retry_after`` seconds when FCM said so)
    RETRY = "retry"


@dataclass(frozen=True)
class SendResult:
    outcome: Outcome
    message_name: str | None = None
    retry_after: float | None = None
    http_status: int | None = None
    #: FCM's errorCode / status and message, or the exception, for the record
    error: str | None = None

    @property
    def deactivate(self) -> bool:
        return self.outcome in (Outcome.UNREGISTERED, Outcome.SENDER_MISMATCH)


#: (key, token, notify kwargs) → (key, result)
BatchItem = tuple[Any, str, Mapping[str, Any]]


class Sender(Protocol):
    def send_one(self, token: str, message_kwargs: Mapping[str, Any]) -> SendResult: ...

    def send_batch(
        self, items: Sequence[BatchItem], concurrency: int | None = None
    ) -> list[tuple[Any, SendResult]]: ...

    def send_stream(
        self, items: Sequence[BatchItem], concurrency: int | None = None, window: int = 256
    ) -> Generator[list[tuple[Any, SendResult]], None, None]:
        """Results in chunks of ``window // 2`` as they come; at most ``window`` pushes sent
        and not yet handed back, so the caller stores a chunk while the next ones go out."""
        ...

    def close(self) -> None: ...


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), or None."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if re.fullmatch(r"[-+]?\d+(\.\d+)?", value):
        return max(0.0, float(value))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


@dataclass(frozen=True)
class FcmError:
    status: str  # google.rpc status, e.g. NOT_FOUND
    error_code: str  # FcmError errorCode, e.g. UNREGISTERED ("" when absent)
    message: str
    reasons: tuple[str, ...]  # google.rpc.ErrorInfo reasons, e.g. ACCESS_TOKEN_EXPIRED

    def describe(self) -> str:
        code = self.error_code or self.status or "error"
        return f"{code}: {self.message}" if self.message else code


def parse_error(body: bytes | str) -> FcmError:
    """FCM's error JSON (``{"error": {code, message, status, details}}``), tolerantly."""
    try:
        data = json.loads(body)
    except (ValueError, TypeError):
        data = None
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
        return FcmError("", "", text.strip()[:200], ())
    error_code = ""
    reasons: list[str] = []
    for detail in error.get("details") or ():
        if not isinstance(detail, dict):
            continue
        if detail.get("@type") == FCM_ERROR_TYPE and detail.get("errorCode"):
            error_code = str(detail["errorCode"])
        if detail.get("reason"):
            reasons.append(str(detail["reason"]))
    return FcmError(
        str(error.get("status") or ""), error_code, str(error.get("message") or ""), tuple(reasons)
    )


def is_auth_failure(status_code: int, error: FcmError) -> bool:
    """A 401 about our access token (worth one refresh), not about APNs/web push keys."""
    return status_code == 401 and error.error_code != "THIRD_PARTY_AUTH_ERROR"


def classify(status_code: int, headers: Mapping[str, str], body: bytes) -> SendResult:
    """Map one FCM HTTP v1 response to a SendResult (401 is left to the caller's refresh)."""
    if status_code == 200:
        try:
            name = json.loads(body).get("name")
        except (ValueError, AttributeError):
            name = None
        if not isinstance(name, str):
            return SendResult(Outcome.RETRY, http_status=200, error="200 without a message name")
        return SendResult(Outcome.SENT, message_name=name, http_status=200)
    error = parse_error(body)
    code = error.error_code
    described = f"HTTP {status_code} {error.describe()}"
    if code == "UNREGISTERED":
        return SendResult(Outcome.UNREGISTERED, http_status=status_code, error=described)
    if code == "SENDER_ID_MISMATCH":
        return SendResult(Outcome.SENDER_MISMATCH, http_status=status_code, error=described)
    if status_code == 400 or code == "INVALID_ARGUMENT" or code == "THIRD_PARTY_AUTH_ERROR":
        return SendResult(Outcome.INVALID, http_status=status_code, error=described)
    # 429 QUOTA_EXCEEDED, 5xx UNAVAILABLE/INTERNAL, a 401 still failing after a refresh,
    # a bare 403/404 (sender misconfigured) and anything unexpected: try again later.
    retry_after = parse_retry_after(headers.get("Retry-After"))
    return SendResult(
        Outcome.RETRY, retry_after=retry_after, http_status=status_code, error=described
    )
