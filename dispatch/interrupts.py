"""Signals that interrupt a task (Celery's soft time limit: SIGUSR1 in a pool process), let
through only where an interruption is wanted.

A soft limit raised while a crawl process is being stopped would skip the rest of the stop
(terminate, kill) and end the task in ``SoftTimeLimitExceeded``. So a task holds the signal back
(:func:`held_back`) and lets it through only while it waits for the crawl (:func:`let_through`);
one that arrives anywhere else is dropped when the task is done with it.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def held_back(signals: tuple[int, ...]) -> Iterator[None]:
    """Inside the block the ``signals`` wait (blocked); one that arrived meanwhile is dropped
    at the end, so its handler never runs. Nested blocks restore the mask they found."""
    if not signals:
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    try:
        yield
    finally:
        while signal.sigtimedwait(signals, 0) is not None:
            pass
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


@contextmanager
def let_through(signals: tuple[int, ...]) -> Iterator[None]:
    """Inside a :func:`held_back` block: the ``signals`` are delivered again (a pending one
    at once), and held back again after."""
    if not signals:
        yield
        return
    signal.pthread_sigmask(signal.SIG_UNBLOCK, signals)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_BLOCK, signals)
