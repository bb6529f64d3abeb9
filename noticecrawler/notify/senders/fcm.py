"""The FCM backend: pushes to FCM HTTP v1 over the PushTransport, every wait bounded.

pyfcm is used through its public API only: ``FCMNotification.parse_payload`` builds each
message's JSON (tests/test_fcm.py pins its output on the installed pyfcm). Its sending path is
not used: pyfcm 2.1 sleeps for the whole Retry-After of an answer and recurses (no limit),
re-sends on a 401 without limit and retries 5xx ten times in its adapter — minutes per message.
Credentials are google-auth's own (a service-account file, or any Credentials object); one
access token is shared by every batch and refreshed off the event loop when it expires or gets
a 401 (the push is then sent once more).

Concurrency: the pushes of a batch go out ``max_concurrency`` at a time through the process's
PushTransport: HTTP/2 streams when FCM picks h2 by ALPN (as it does), else keep-alive HTTP/1.1
connections, on an event loop of its own thread; classify() maps each answer to an outcome and
waiting for Retry-After is the caller's business (the fan-out schedules a retry), never a sleep
here. The client was chosen by measurement: docs/notifications.md, "Push clients".
"""

from __future__ import annotations

import asyncio
import json
import queue
import ssl
import threading
import time
from collections import deque
from collections.abc import Generator, Mapping, Sequence
from typing import Any, TypeVar

import google.auth.exceptions
import google.auth.transport.requests
from google.auth.credentials import Credentials
from google.oauth2 import service_account
from pyfcm import FCMNotification
from pyfcm.errors import FCMError

from noticecrawler.notify.fcm_errors import (
    BatchItem,
    Outcome,
    SendResult,
    classify,
    is_auth_failure,
    parse_error,
)
from noticecrawler.notify.senders.base import Push
from noticecrawler.notify.senders.fcm_message import (
    _TOKEN,
    DEFAULT_ENDPOINT,
    build_message,
    check_endpoint,
    check_project_id,
    message_of,
)
from noticecrawler.notify.senders.proxy import Proxy
from noticecrawler.notify.transport import NETWORK_ERRORS, HeaderError, PushTransport

__all__ = ["DEFAULT_ENDPOINT", "FCM_SCOPE", "FcmSender", "build_message"]

K = TypeVar("K")
FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
#: the token a batch's message template is built with (a NUL can be in no real token)
_PLACEHOLDER = "\x00fcm-token\x00"
#: (bytes before the token's JSON string, bytes after), or None: pyfcm builds every payload
_Template = tuple[bytes, bytes] | None


class _VerifyingRequest(google.auth.transport.requests.Request):
    """google-auth's requests transport, checking the OAuth endpoint's certificate against
    FCM_CA_FILE (given per call: REQUESTS_CA_BUNDLE in the environment would override a
    session-wide setting)."""

    def __init__(self, ca_file: str) -> None:
        super().__init__()
        self.ca_file = ca_file

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("verify", self.ca_file)
        return super().__call__(*args, **kwargs)


class _AccessTokens:
    """One OAuth access token for every thread and batch of the process."""

    #: google-auth's ``valid`` (a clock read and a date comparison) is asked at most this
    #: often, not once per push; it already counts minutes of margin before the expiry
    RECHECK_SECONDS = 1.0

    def __init__(self, credentials: Credentials, ca_file: str = "") -> None:
        self.credentials = credentials
        self._lock = threading.Lock()
        self._request = (
            _VerifyingRequest(ca_file) if ca_file else google.auth.transport.requests.Request()
        )
        self._valid: tuple[str, float] | None = None  # (token, valid until this monotonic)

    def get(self, stale: str | None = None) -> str:
        """A valid access token, refreshed when expired or when it is ``stale`` (got a 401)."""
        with self._lock:
            creds = self.credentials
            if not creds.valid or creds.token == stale:
                creds.refresh(self._request)
            token = str(creds.token)
            self._valid = (token, time.monotonic() + self.RECHECK_SECONDS)
            return token

    def cached(self, stale: str | None = None) -> str | None:
        """The token, when it was valid a moment ago and is not ``stale``; else None."""
        known = self._valid
        if known is not None and known[0] != stale and time.monotonic() < known[1]:
            return known[0]
        return None

    def fresh(self, stale: str | None = None) -> bool:
        """Whether :meth:`get` would answer without a (blocking) refresh."""
        creds = self.credentials
        return bool(creds.valid) and creds.token != stale

    def close(self) -> None:
        self._request.session.close()


def _trusting(ca_file: str) -> ssl.SSLContext:
    """A verifying TLS context that trusts the CAs of ``ca_file`` (FCM_CA_FILE)."""
    try:
        return ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"FCM_CA_FILE {ca_file!r}: not a readable PEM CA bundle ({exc})") from None


class _Budget:
    """A counting semaphore for the send loop: ``take`` waits for a unit, ``give`` hands units
    to the waiters in order. (asyncio.Semaphore.acquire walks every waiter on each call in
    Python 3.11: with hundreds of lanes waiting, that was a visible share of a push's CPU.)"""

    def __init__(self, units: int) -> None:
        self.free = units
        self.waiters: deque[asyncio.Future[None]] = deque()

    async def take(self) -> None:
        if self.free > 0 and not self.waiters:
            self.free -= 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        await waiter  # the unit was handed over by give()

    def give(self, units: int) -> None:
        for _ in range(units):
            while self.waiters:
                waiter = self.waiters.popleft()
                if not waiter.done():  # (a cancelled waiter takes nothing)
                    waiter.set_result(None)
                    break
            else:
                self.free += 1


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
        android_channel: str = "notices",
        apns_sound: str = "default",
        apns_topic: str = "",
        proxy: str = "",
        no_proxy: str = "",
        ssl_context: ssl.SSLContext | None = None,
        http2: bool = True,
        h2c: bool = False,
        ca_file: str = "",
    ) -> None:
        """``proxy``/``no_proxy``: HTTPS_PROXY and NO_PROXY (settings hands them over);
        ``ssl_context``: a verifying context with more trusted CAs (tests, benches);
        ``ca_file``: FCM_CA_FILE, a PEM bundle of the CAs trusted instead of the system's, for
        FCM and for the OAuth token endpoint;
        ``http2``: offer HTTP/2 by ALPN (FCM takes it); ``h2c``: HTTP/2 on a plain-http
        endpoint with prior knowledge (a test server)."""
        if not (credentials_file or credentials):
            raise ValueError("FcmSender needs a service-account file or credentials")
        if credentials is not None and not project_id:
            raise ValueError("FcmSender with explicit credentials needs a project id")
        if project_id:
            check_project_id(project_id)
        endpoint = check_endpoint(endpoint or DEFAULT_ENDPOINT)
        if credentials is None:
            assert credentials_file
            credentials = service_account.Credentials.from_service_account_file(
                credentials_file, scopes=[FCM_SCOPE]
            )
        project = project_id or getattr(credentials, "project_id", None) or ""
        if not project:
            raise ValueError("FCM project id missing (FCM_PROJECT_ID)")
        self.project_id = check_project_id(project)  # also one read from the credentials
        self.url = f"{endpoint}/{self.project_id}/messages:send"
        if ca_file and ssl_context is None:
            ssl_context = _trusting(ca_file)
        self.tokens = _AccessTokens(credentials, ca_file)
        self._headers: dict[str, dict[str, str]] = {}
        #: pyfcm, for its public parse_payload only
        self.fcm = FCMNotification(credentials=credentials, project_id=self.project_id)
        self.android_channel = android_channel
        self.apns_sound = apns_sound
        self.apns_topic = apns_topic
        self.max_concurrency = max(1, max_concurrency)
        self.timeout = timeout
        self.transport = PushTransport(
            self.max_concurrency,
            timeout,
            proxy=Proxy.parse(proxy, no_proxy),
            ssl_context=ssl_context,
            http2=http2,
            h2c=h2c,
        )

    # --- the neutral interface (senders.base.Sender) --------------------------------------------
    def send(
        self, pushes: Sequence[tuple[K, Push]], concurrency: int | None = None, window: int = 256
    ) -> Generator[list[tuple[K, SendResult]], None, None]:
        """senders.base.Sender.send: each Push becomes its FCM message (one per post and
        platform, shared by the batch), then goes out as :meth:`send_stream` sends."""
        messages: dict[tuple[Any, ...], Mapping[str, Any] | SendResult] = {}
        items: list[BatchItem] = []
        for key, push in pushes:
            shape = (push.post_id, push.collapse_id, push.board, push.board_title,
                     push.post_title, push.url, push.platform)  # fmt: skip
            if shape not in messages:
                messages[shape] = self._message(push)
            items.append((key, push.token, messages[shape]))  # type: ignore[arg-type]
        yield from self.send_stream(items, concurrency, window)

    def send_push(self, push: Push) -> SendResult:
        (result,) = [r for chunk in self.send([(None, push)]) for _, r in chunk]
        return result

    def _message(self, push: Push) -> Mapping[str, Any] | SendResult:
        try:
            return message_of(
                push,
                self.android_channel,
                apns_sound=self.apns_sound,
                apns_topic=self.apns_topic,
            )
        except ValueError as exc:  # an unknown platform
            return SendResult(Outcome.INVALID, error=f"message not built: {exc}")

    # --- pyfcm's notify() kwargs (tests, benches) ----------------------------------------------
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
        budget = _Budget(window)  # pushes started and not yet handled by the caller
        chunks: queue.SimpleQueue[list[tuple[int, SendResult]] | None] = queue.SimpleQueue()

        async def send_all() -> None:
            templates: dict[int, _Template] = {}
            done: list[tuple[int, SendResult]] = []
            todo = iter(enumerate(items))

            async def lane() -> None:
                # `limit` lanes take the items one after another from the shared iterator:
                # `limit` pushes in flight, without a task and a semaphore per push
                for index, (_, token, kwargs) in todo:
                    await budget.take()
                    payload = self._payload(token, kwargs, templates)
                    done.append((index, await self._send(payload)))
                    if len(done) >= step:
                        chunks.put(done.copy())
                        done.clear()

            try:
                await asyncio.gather(*(lane() for _ in range(min(limit, len(items)))))
                if done:
                    chunks.put(done)
            finally:
                chunks.put(None)

        running = asyncio.run_coroutine_threadsafe(send_all(), loop)
        try:
            while (chunk := chunks.get()) is not None:
                yield chunk
                loop.call_soon_threadsafe(budget.give, len(chunk))
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
        if isinstance(message_kwargs, SendResult):
            return message_kwargs  # the message could not be built (senders.base.Push)
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

    async def _send(self, payload: bytes | SendResult) -> SendResult:
        if isinstance(payload, SendResult):
            return payload
        stale: str | None = None
        for attempt in range(2):
            try:
                access = await self._access_token(stale)
            except google.auth.exceptions.GoogleAuthError as exc:
                return SendResult(Outcome.RETRY, error=f"credentials refresh failed: {exc!r}")
            headers = self._headers.get(access)
            if headers is None:  # one dict per access token, not one per push
                headers = {"Content-Type": "application/json", "Authorization": f"Bearer {access}"}
                self._headers = {access: headers}
            try:
                reply = await self.transport.post(self.url, payload, headers)
            except HeaderError as exc:  # the access token: a credentials problem
                return SendResult(Outcome.RETRY, error=f"request not built: {exc}")
            except NETWORK_ERRORS as exc:
                return SendResult(Outcome.RETRY, error=f"{type(exc).__name__}: {exc}")
            if (
                attempt == 0
                and reply.status == 401
                and is_auth_failure(reply.status, parse_error(reply.body))
            ):
                stale = access  # refresh the token and send once more
                continue
            break
        return classify(reply.status, reply.headers, reply.body)

    async def _access_token(self, stale: str | None) -> str:
        token = self.tokens.cached(stale)
        if token is not None:
            return token
        if self.tokens.fresh(stale):
            return self.tokens.get(stale)
        # a refresh is a blocking HTTP call to Google: not on the transport's loop
        return await asyncio.get_running_loop().run_in_executor(None, self.tokens.get, stale)

    def close(self) -> None:
        self.transport.close()
        self.tokens.close()
