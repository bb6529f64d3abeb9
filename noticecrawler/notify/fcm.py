"""Pushes through pyfcm's FCM HTTP v1 client, with every wait bounded.

pyfcm 2.1 as shipped would stall a worker: ``BaseAPI.send_request`` sleeps for the whole
Retry-After of any response that has one and then recurses (no limit, and ``int()`` of an
HTTP-date Retry-After raises), re-sends on a 401 ACCESS_TOKEN_EXPIRED without limit, and its
default adapter retries 502/503 ten times with exponential backoff (and honours Retry-After
there too) — minutes per message. Here:

* ``_BoundedFCMNotification`` overrides ``send_request`` to post exactly once (no sleep), takes
  the endpoint base as a value (pyfcm hard-codes ``FCM_END_POINT_BASE``), prefers the explicit
  project id (pyfcm prefers the one inside the service-account file), and shares one access
  token between threads (pyfcm refreshes the credentials once per thread and re-reads them
  every 30 minutes whatever their real expiry).
* The adapter retries only failed *connects* (the request never left; a POST is not
  idempotent), never statuses or reads, and ignores Retry-After; its pool holds one keep-alive
  connection per worker thread.
* ``send_one`` classifies the raw response (fcm_errors.classify), refreshing the token and
  re-sending once on a 401; waiting for Retry-After is the caller's business (the fan-out
  schedules a retry), never a sleep here.

Concurrency: pyfcm builds each payload and holds the credentials; the pushes of a batch go
out concurrently (``max_concurrency`` in flight) through the process's PushTransport:
keep-alive HTTP/1.1 connections on an event loop of its own thread, every batch reusing
them (transport.py). Measured alternatives (bench/bench_fanout.py --client, fake FCM in another
process, 2 shared CPUs): a thread pool over pyfcm's requests sessions 740 msg/s (the session's
per-request environment and proxy merging cost more CPU than the push); the same threads
straight on urllib3 2,085 msg/s; one aiohttp session ~140 µs of CPU per push, the
PushTransport ~50 µs; pyfcm's ``async_notify_multiple_devices`` 1,359 msg/s while
opening one connection per message (against the real FCM also one TLS handshake per message).
The helper also starts every message at once with no bound, returns only the parsed JSON
bodies (no HTTP status, no Retry-After; a non-JSON error body raises and loses the whole
batch), never closes its event loop, and bypasses the bounded adapter and the 401 refresh.
"""

from __future__ import annotations

import asyncio
import json
import queue
import re
import ssl
import threading
from collections.abc import Generator, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import google.auth.exceptions
import google.auth.transport.requests
import requests
from google.oauth2.credentials import Credentials
from pyfcm import FCMNotification
from pyfcm.errors import FCMError
from requests.adapters import HTTPAdapter
from urllib3 import Retry

from noticecrawler.notify.console import ConsoleSender
from noticecrawler.notify.fcm_errors import (
    BatchItem,
    Outcome,
    Sender,
    SendResult,
    classify,
    is_auth_failure,
    parse_error,
)
from noticecrawler.notify.senders.proxy import Proxy
from noticecrawler.notify.transport import NETWORK_ERRORS, HeaderError, PushTransport

DEFAULT_ENDPOINT = "https://fcm.googleapis.com/v1/projects"
FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
MAX_BODY_CHARS = 240
PLATFORMS = ("android", "ios", "web")
#: the token a batch's message template is built with (a NUL can be in no real token)
_PLACEHOLDER = "\x00fcm-token\x00"
#: (bytes before the token's JSON string, bytes after), or None: pyfcm builds every payload
_Template = tuple[bytes, bytes] | None


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


class _BoundedFCMNotification(FCMNotification):
    """pyfcm's client with a configurable endpoint, one shared token and no sleeping."""

    _fcm_end_point: str | None

    def __init__(
        self,
        *,
        endpoint_base: str,
        project_id: str | None,
        credentials: Credentials | None,
        service_account_file: str | None,
        adapter: HTTPAdapter,
    ) -> None:
        super().__init__(
            service_account_file=service_account_file,
            project_id=project_id,
            credentials=credentials,
            adapter=adapter,
        )
        self.FCM_END_POINT_BASE = endpoint_base.rstrip("/")
        self._token_lock = threading.Lock()
        self._auth_request = google.auth.transport.requests.Request()

    @property
    def fcm_end_point(self) -> str:
        if self._fcm_end_point is None:
            if self.credentials is None:
                self._initialize_credentials()
            project = self._project_id or getattr(self.credentials, "project_id", None)
            if not project:
                raise ValueError("FCM project id missing (FCM_PROJECT_ID)")
            check_project_id(str(project))  # also the one read from the service-account file
            self._fcm_end_point = f"{self.FCM_END_POINT_BASE}/{project}/messages:send"
        return self._fcm_end_point

    def access_token(self, stale: str | None = None) -> str:
        """A valid access token, refreshed when expired or when it is ``stale`` (got a 401)."""
        with self._token_lock:
            if self.credentials is None:
                self._initialize_credentials()
            creds = self.credentials
            if not creds.valid or creds.token == stale:
                creds.refresh(self._auth_request)
            return str(creds.token)

    def token_is_fresh(self, stale: str | None = None) -> bool:
        """Whether :meth:`access_token` would answer without a (blocking) refresh."""
        creds = self.credentials
        return creds is not None and creds.valid and creds.token != stale

    def _get_access_token(self) -> str:  # used by pyfcm's request_headers()
        return self.access_token()

    def send_request(self, payload: Any = None, timeout: Any = None) -> requests.Response:
        """pyfcm's own ``notify()`` path: once, without its Retry-After sleep and 401
        recursion (the sender itself goes through its PushTransport)."""
        return self.requests_session.post(
            self.fcm_end_point,
            data=payload,
            headers={"Authorization": f"Bearer {self.access_token()}"},
            timeout=timeout,
        )

    def close(self) -> None:
        self._auth_request.session.close()


def bounded_adapter(pool_size: int, connect_retries: int = 1) -> HTTPAdapter:
    retry = Retry(
        total=connect_retries,
        connect=connect_retries,
        read=0,
        status=0,
        other=0,
        redirect=0,
        backoff_factor=0,
        respect_retry_after_header=False,
        raise_on_status=False,
    )
    return HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=retry)


class FcmSender:
    """Sends pushes to FCM HTTP v1; every call returns within the timeouts, never sleeps."""

    def __init__(
        self,
        *,
        project_id: str | None = None,
        credentials_file: str | None = None,
        credentials: Credentials | None = None,
        endpoint: str | None = None,
        max_concurrency: int = 100,
        timeout: tuple[float, float] = (5.0, 30.0),
        proxy: str = "",
        no_proxy: str = "",
        ssl_context: ssl.SSLContext | None = None,
        http2: bool = True,
        h2c: bool = False,
    ) -> None:
        """``proxy``/``no_proxy``: HTTPS_PROXY and NO_PROXY (settings hands them over);
        ``ssl_context``: a verifying context with more trusted CAs (tests, benches);
        ``http2``: offer HTTP/2 by ALPN (FCM takes it); ``h2c``: HTTP/2 on a plain-http
        endpoint with prior knowledge (a test server)."""
        if not (credentials_file or credentials):
            raise ValueError("FcmSender needs a service-account file or credentials")
        if credentials is not None and not project_id:
            raise ValueError("FcmSender with explicit credentials needs a project id")
        if project_id:
            check_project_id(project_id)
        endpoint = check_endpoint(endpoint or DEFAULT_ENDPOINT)
        self.max_concurrency = max(1, max_concurrency)
        self.timeout = timeout
        self._adapter = bounded_adapter(self.max_concurrency)  # pyfcm's own notify() path
        self.transport = PushTransport(
            self.max_concurrency,
            timeout,
            proxy=Proxy.parse(proxy, no_proxy),
            ssl_context=ssl_context,
            http2=http2,
            h2c=h2c,
        )
        self.fcm = _BoundedFCMNotification(
            endpoint_base=endpoint,
            project_id=project_id or None,
            credentials=credentials,
            service_account_file=credentials_file or None,
            adapter=self._adapter,
        )

    def send_one(self, token: str, message_kwargs: Mapping[str, Any]) -> SendResult:
        return self.send_batch([(None, token, message_kwargs)])[0][1]

    def send_batch(
        self, items: Sequence[BatchItem], concurrency: int | None = None
    ) -> list[tuple[Any, SendResult]]:
        """Send every item, ``concurrency`` at a time; results in the order of ``items``."""
        results: dict[int, SendResult] = {}
        for chunk in self._stream(items, concurrency, 2 * len(items)):
            results.update(chunk)
        return [(item[0], results[index]) for index, item in enumerate(items)]

    def send_stream(
        self, items: Sequence[BatchItem], concurrency: int | None = None, window: int = 256
    ) -> Generator[list[tuple[Any, SendResult]], None, None]:
        """Send every item, ``concurrency`` at a time, handing results back in chunks of
        ``window // 2`` in the order they complete. The pushes go on while the caller handles
        a chunk, but at most ``window`` are ever sent and not yet handed back and handled:
        what a worker killed mid-stream may have pushed without recording it. Stopping early
        (an exception in the caller) cancels the pushes not yet answered."""
        for chunk in self._stream(items, concurrency, window):
            yield [(items[index][0], result) for index, result in chunk]

    def _stream(
        self, items: Sequence[BatchItem], concurrency: int | None, window: int
    ) -> Generator[list[tuple[int, SendResult]], None, None]:
        if not items:
            return
        limit = max(1, min(concurrency or self.max_concurrency, self.max_concurrency))
        window = max(1, window)
        step = max(1, window // 2)
        loop = self.transport.loop
        budget = asyncio.Semaphore(window)  # pushes started and not yet handled by the caller
        chunks: queue.SimpleQueue[list[tuple[int, SendResult]] | None] = queue.SimpleQueue()

        async def send_all() -> None:
            gate = asyncio.Semaphore(limit)
            templates: dict[int, _Template] = {}
            done: list[tuple[int, SendResult]] = []

            async def one(index: int, token: str, kwargs: Mapping[str, Any]) -> None:
                await budget.acquire()
                payload = self._payload(token, kwargs, templates)
                done.append((index, await self._send(payload, gate)))
                if len(done) >= step:
                    chunks.put(done.copy())
                    done.clear()

            try:
                await asyncio.gather(*(one(i, t, kw) for i, (_, t, kw) in enumerate(items)))
                if done:
                    chunks.put(done)
            finally:
                chunks.put(None)

        def release(n: int) -> None:
            for _ in range(n):
                budget.release()

        running = asyncio.run_coroutine_threadsafe(send_all(), loop)
        try:
            while (chunk := chunks.get()) is not None:
                yield chunk
                loop.call_soon_threadsafe(release, len(chunk))
            running.result()  # a failure of the sending itself (a bug) is the caller's
        finally:
            running.cancel()  # stopped early: the pushes not yet answered are dropped

    def _payload(
        self, token: str, message_kwargs: Mapping[str, Any], templates: dict[int, _Template]
    ) -> bytes | SendResult:
        """The request body for ``token``: pyfcm builds each message once per batch, with a
        placeholder token, and the device's token is spliced in (JSON-escaped) — the same bytes
        as ``parse_payload`` per device, for a fraction of the CPU. Unusual tokens (empty, not
        a string) go through pyfcm itself; one with spaces or control characters is refused
        here, never sent."""
        if isinstance(token, str) and token and not _TOKEN.fullmatch(token):
            return SendResult(
                Outcome.INVALID, error=f"token {token[:16]!r}… holds spaces or control characters"
            )
        if isinstance(token, str) and token:
            key = id(message_kwargs)  # the batch's items share one kwargs dict per platform
            if key not in templates:
                templates[key] = self._template(message_kwargs)
            template = templates[key]
            if isinstance(template, tuple):
                head, tail = template
                return b"".join((head, json.dumps(token, ensure_ascii=False).encode(), tail))
        try:
            return bytes(self.fcm.parse_payload(fcm_token=token, **message_kwargs))
        except (FCMError, TypeError) as exc:
            return SendResult(Outcome.INVALID, error=f"message not built: {exc}")

    def _template(self, message_kwargs: Mapping[str, Any]) -> _Template:
        try:
            whole = self.fcm.parse_payload(fcm_token=_PLACEHOLDER, **message_kwargs)
        except (FCMError, TypeError):
            return None  # every device gets pyfcm's own error
        mark = json.dumps(_PLACEHOLDER, ensure_ascii=False).encode()
        if whole.count(mark) != 1:
            return None
        head, _, tail = whole.partition(mark)
        return head, tail

    async def _send(self, payload: bytes | SendResult, gate: asyncio.Semaphore) -> SendResult:
        if isinstance(payload, SendResult):
            return payload
        stale: str | None = None
        async with gate:
            for attempt in range(2):
                try:
                    access = await self._access_token(stale)
                    url = self.fcm.fcm_end_point
                except google.auth.exceptions.GoogleAuthError as exc:
                    return SendResult(Outcome.RETRY, error=f"credentials refresh failed: {exc!r}")
                headers = {"Content-Type": "application/json", "Authorization": f"Bearer {access}"}
                try:
                    reply = await self.transport.post(url, payload, headers)
                except HeaderError as exc:  # the access token: a credentials problem
                    return SendResult(Outcome.RETRY, error=f"request not built: {exc}")
                except NETWORK_ERRORS as exc:
                    return SendResult(Outcome.RETRY, error=f"{type(exc).__name__}: {exc}")
                if attempt == 0 and is_auth_failure(reply.status, parse_error(reply.body)):
                    stale = access  # refresh the token and send once more
                    continue
                break
        return classify(reply.status, reply.headers, reply.body)

    async def _access_token(self, stale: str | None) -> str:
        if self.fcm.token_is_fresh(stale):
            return self.fcm.access_token(stale)
        # a refresh is a blocking HTTP call to Google: not on the transport's loop
        return await asyncio.get_running_loop().run_in_executor(None, self.fcm.access_token, stale)

    def close(self) -> None:
        self.transport.close()
        self._adapter.close()
        self.fcm.close()


def make_sender(
    credentials_file: str | None = None,
    project_id: str | None = None,
    endpoint: str | None = None,
    *,
    max_concurrency: int = 100,
    timeout: tuple[float, float] = (5.0, 30.0),
) -> Sender:
    """An FcmSender when a credentials file and a project id are configured, else the console.

    Arguments left as None come from noticecrawler.settings (FCM_CREDENTIALS_FILE,
    FCM_PROJECT_ID, FCM_ENDPOINT). Only one of the two set is a configuration error.
    """
    from noticecrawler import settings

    if credentials_file is None:
        credentials_file = settings.FCM_CREDENTIALS_FILE
    if project_id is None:
        project_id = settings.FCM_PROJECT_ID
    if endpoint is None:
        endpoint = settings.FCM_ENDPOINT
    proxy = getattr(settings, "FCM_HTTPS_PROXY", "")
    no_proxy = getattr(settings, "FCM_NO_PROXY", "")
    if not credentials_file and not project_id:
        return ConsoleSender()
    if not credentials_file or not project_id:
        missing = "FCM_CREDENTIALS_FILE" if not credentials_file else "FCM_PROJECT_ID"
        raise ValueError(f"FCM is half configured: {missing} is empty (set both or neither)")
    return FcmSender(
        project_id=project_id,
        credentials_file=credentials_file,
        endpoint=endpoint or None,
        max_concurrency=max_concurrency,
        timeout=timeout,
        proxy=proxy,
        no_proxy=no_proxy,
    )
