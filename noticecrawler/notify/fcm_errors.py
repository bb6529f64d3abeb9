"""What one push's outcome was, and how an FCM HTTP v1 response maps to it.

FCM's documented error table (the ``ErrorCode`` enum of the HTTP v1 API) is applied in three
steps, the first that says something wins:

1. ``details[].errorCode`` of the ``google.firebase.fcm.v1.FcmError`` detail: UNREGISTERED
   (404) → the token is dead; SENDER_ID_MISMATCH (403) → the token belongs to another sender;
   INVALID_ARGUMENT (400) and THIRD_PARTY_AUTH_ERROR (401, APNs/web-push keys) → not retried;
   QUOTA_EXCEEDED (429), UNAVAILABLE (503), INTERNAL (500) → retried (after Retry-After);
   UNSPECIFIED_ERROR says nothing and falls through;
2. else ``error.status`` (the canonical google.rpc code FCM puts at the top, e.g. a 404
   ``NOT_FOUND`` with no details): NOT_FOUND/UNREGISTERED, PERMISSION_DENIED/
   SENDER_ID_MISMATCH, INVALID_ARGUMENT, RESOURCE_EXHAUSTED/QUOTA_EXCEEDED, UNAVAILABLE,
   INTERNAL, UNAUTHENTICATED;
3. else the HTTP status, by the same table (400, 401, 403, 404, 429, 500, 503).

Deactivating a device is irreversible, so two answers that are not about the token never do:
a body that is not FCM's JSON error (an HTML page from a front end or proxy: a wrong URL is
refused when the configuration loads, but a proxy may still answer) and a 403 whose
``google.rpc.ErrorInfo`` names a problem of the sender's project (IAM permission, API
disabled, billing) — both are ``retry``, loud in the record. pyfcm's own ``parse_response``
is not used: it turns 429 and every 5xx into one exception (dropping Retry-After), treats any
404 as "not registered" and never looks at ``errorCode``.
"""

from __future__ import annotations

import email.utils
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

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


#: (key, token, notify kwargs) → (key, result): FcmSender's pyfcm-shaped input; the neutral
#: interface every backend has (Push, Sender) is in noticecrawler.notify.senders
BatchItem = tuple[Any, str, Mapping[str, Any]]


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


#: FCM's ErrorCode (and the canonical google.rpc status FCM sends with it) → outcome
_BY_CODE: dict[str, Outcome] = {
    "UNREGISTERED": Outcome.UNREGISTERED,
    "NOT_FOUND": Outcome.UNREGISTERED,
    "SENDER_ID_MISMATCH": Outcome.SENDER_MISMATCH,
    "PERMISSION_DENIED": Outcome.SENDER_MISMATCH,
    "INVALID_ARGUMENT": Outcome.INVALID,
    "THIRD_PARTY_AUTH_ERROR": Outcome.INVALID,
    "QUOTA_EXCEEDED": Outcome.RETRY,
    "RESOURCE_EXHAUSTED": Outcome.RETRY,
    "UNAVAILABLE": Outcome.RETRY,
    "INTERNAL": Outcome.RETRY,
    "UNAUTHENTICATED": Outcome.RETRY,
}
#: the table's HTTP codes, for an FCM error body with neither errorCode nor status
_BY_HTTP: dict[int, Outcome] = {
    400: Outcome.INVALID,
    403: Outcome.SENDER_MISMATCH,
    404: Outcome.UNREGISTERED,
}
#: google.rpc.ErrorInfo reasons of a 403 that are about our project, never about the token
_SENDER_PROBLEMS = frozenset(
    {
        "IAM_PERMISSION_DENIED",
        "SERVICE_DISABLED",
        "API_DISABLED",
        "BILLING_DISABLED",
        "CONSUMER_INVALID",
        "ACCESS_TOKEN_SCOPE_INSUFFICIENT",
        "USER_PROJECT_DENIED",
    }
)


def _is_fcm_error(body: bytes) -> bool:
    try:
        data = json.loads(body)
    except (ValueError, TypeError):
        return False
    return isinstance(data, dict) and isinstance(data.get("error"), dict)


def outcome_of(status_code: int, error: FcmError, fcm_body: bool) -> Outcome:
    """The documented table: errorCode, then status, then the HTTP status (module doc)."""
    if not fcm_body:
        return Outcome.RETRY  # not an answer of FCM about this message
    outcome = _BY_CODE.get(error.error_code) or _BY_CODE.get(error.status)
    if outcome is None:
        outcome = _BY_HTTP.get(status_code, Outcome.RETRY)
    about_project = _SENDER_PROBLEMS.intersection(error.reasons)
    if outcome is Outcome.SENDER_MISMATCH and error.error_code != "SENDER_ID_MISMATCH":
        # our project's permission or API, not the token's sender
        return Outcome.RETRY if about_project else outcome
    return outcome


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
    outcome = outcome_of(status_code, error, _is_fcm_error(body))
    described = f"HTTP {status_code} {error.describe()}"
    retry_after = None
    if outcome is Outcome.RETRY:
        retry_after = parse_retry_after(headers.get("Retry-After"))
    return SendResult(outcome, retry_after=retry_after, http_status=status_code, error=described)
