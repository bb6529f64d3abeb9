"""Signals that interrupt a task (Celery's soft time limit: SIGUSR1 in a pool process), let
through only where an interruption is wanted.

A soft limit raised while a crawl process is being stopped would skip the rest of the stop
(terminate, kill) and end the task in ``SoftTimeLimitExceeded``. So a task holds the signal back
(:func:`held_back`) and lets it through only while it waits for the crawl (:func:`let_through`);
one that arrives anywhere else is dropped.

Held back means: the signal's Python handler is swapped for one that ignores it. (A blocked
signal mask would not do: it is per thread, and Python runs handlers in the main thread
whichever thread the kernel delivered the signal to.) Handlers can only be changed in the main
thread; elsewhere (a thread pool, where Celery has no soft limit) both are no-ops.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

#: the handlers held back, as they were before the outermost held_back
_held: dict[int, Any] = {}


def _ignore(signum: int, frame: Any) -> None:
    """A held-back signal: dropped."""


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def held_back(signals: tuple[int, ...]) -> Iterator[None]:
    """Inside the block a signal of ``signals`` is dropped; nested blocks keep it so."""
    if not signals or not _main_thread():
        yield
        return
    mine = [s for s in signals if s not in _held]
    for s in mine:
        _held[s] = signal.signal(s, _ignore)
    try:
        yield
    finally:
        for s in mine:
            signal.signal(s, _held.pop(s))


@contextmanager
def let_through(signals: tuple[int, ...]) -> Iterator[None]:
    """Inside a :func:`held_back` block: the ``signals`` reach their own handlers again, and
    are held back again after."""
    through = [s for s in signals if s in _held] if _main_thread() else []
    for s in through:
        signal.signal(s, _held[s])
    try:
        yield
    finally:
        for s in through:
            signal.signal(s, _ignore)
