"""A sender that prints pushes instead of sending them (no FCM credentials configured)."""

from __future__ import annotations

import itertools
import sys
import threading
from collections.abc import Generator, Sequence
from typing import TextIO, TypeVar

from noticecrawler.notify.senders.base import Outcome, Push, SendResult

K = TypeVar("K")


class ConsoleSender:
    """One line per push: board title, post title, token prefix."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream
        self._counter = itertools.count(1)
        self._lock = threading.Lock()

    def send_push(self, push: Push) -> SendResult:
        with self._lock:
            number = next(self._counter)
            stream = self._stream or sys.stdout  # looked up late: tests capture stdout
            line = (
                f"push [{push.board_title or '-'}] {push.post_title or '-'} -> {push.token[:12]}…"
            )
            print(line, file=stream, flush=True)
        return SendResult(Outcome.SENT, message_name=f"console/{number}")

    def send(
        self, pushes: Sequence[tuple[K, Push]], concurrency: int | None = None, window: int = 256
    ) -> Generator[list[tuple[K, SendResult]], None, None]:
        step = max(1, window // 2)
        for start in range(0, len(pushes), step):
            yield [(key, self.send_push(push)) for key, push in pushes[start : start + step]]

    def close(self) -> None:
        """Nothing to release: the console holds no connection."""
