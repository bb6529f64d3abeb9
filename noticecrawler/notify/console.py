"""A sender that prints pushes instead of sending them (no FCM credentials configured)."""

from __future__ import annotations

import itertools
import sys
import threading
from collections.abc import Generator, Mapping, Sequence
from typing import Any, TextIO

from noticecrawler.notify.fcm_errors import BatchItem, Outcome, SendResult


class ConsoleSender:
    """Same interface as FcmSender; one line per push: board, title, token prefix."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream
        self._counter = itertools.count(1)
        self._lock = threading.Lock()

    def send_one(self, token: str, message_kwargs: Mapping[str, Any]) -> SendResult:
        board = message_kwargs.get("notification_title") or "-"
        title = message_kwargs.get("notification_body") or "-"
        with self._lock:
            number = next(self._counter)
            stream = self._stream or sys.stdout  # looked up late: tests capture stdout
            print(f"push [{board}] {title} -> {token[:12]}…", file=stream, flush=True)
        return SendResult(Outcome.SENT, message_name=f"console/{number}")

    def send_batch(
        self, items: Sequence[BatchItem], concurrency: int | None = None
    ) -> list[tuple[Any, SendResult]]:
        return [(key, self.send_one(token, kwargs)) for key, token, kwargs in items]

    def send_stream(
        self, items: Sequence[BatchItem], concurrency: int | None = None, window: int = 256
    ) -> Generator[list[tuple[Any, SendResult]], None, None]:
        step = max(1, window // 2)
        for start in range(0, len(items), step):
            yield self.send_batch(items[start : start + step])

    def close(self) -> None:
        """Nothing to release: the console holds no connection."""
