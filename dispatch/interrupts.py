"""Signals that interrupt a task (Celery's soft time limit: SIGUSR1 in a pool process), let
through only where an interruption is wanted.

A soft limit raised while a crawl process is being stopped would skip the rest of the stop
(terminate, kill) and end the task in ``SoftTimeLimitExceeded``. So a task holds the signal back
(:func:`held_back`) and lets it through only while it waits for the crawl (:func:`let_through`);
one that arrives anywhere else is dropped when the task is done with it.

Holding back swaps the signal's handler for one that only notes the arrival, instead of
blocking the signal: a blocked signal is still delivered to another thread of the process that
does not block it, and Python then runs the handler in the main thread all the same.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

#: the handlers the held-back signals had (what :func:`let_through` puts back)
_handlers: dict[int, Any] = {}
#: held-back signals that arrived and were not let through yet
_arrived: set[int] = set()


def _note(signum: int, frame: FrameType | None) -> None:
    _arrived.add(signum)


@contextmanager
def held_back(signals: tuple[int, ...]) -> Iterator[None]:
    """Inside the block the ``signals`` wait; one that arrived meanwhile is dropped at the end,
    so its handler never runs. Nested blocks restore what they found. Main thread only."""
    if not signals:
        yield
        return
    found = {s: signal.getsignal(s) for s in signals}
    for s in signals:
        if found[s] is not _note:
            _handlers[s] = found[s]
        signal.signal(s, _note)
    try:
        yield
    finally:
        for s, handler in found.items():
            signal.signal(s, handler)
            if handler is not _note:
                _arrived.discard(s)


@contextmanager
def let_through(signals: tuple[int, ...]) -> Iterator[None]:
    """Inside a :func:`held_back` block: the ``signals`` are delivered again (one that arrived
    while held back, at once), and held back again after."""
    if not signals:
        yield
        return
    for s in signals:
        signal.signal(s, _handlers.get(s, signal.SIG_DFL))
    try:
        for s in signals:
            if s in _arrived:
                _arrived.discard(s)
                handler: Callable[[int, FrameType | None], Any] | Any = _handlers.get(s)
                if callable(handler):
                    handler(s, None)
        yield
    finally:
        for s in signals:
            signal.signal(s, _note)
