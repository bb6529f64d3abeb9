"""Per-token rate limits: a token bucket per token, in the memory of this API process."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable


class RateLimiter:
    """``rate`` requests per second on average, up to ``burst`` at once; ``rate`` 0: no limit.

    Buckets of tokens not seen for a while are dropped, so memory stays bounded by the tokens
    active in the last minute or so."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = max(1, burst)
        self.clock = clock
        self._buckets: dict[int, tuple[float, float]] = {}  # key -> (tokens, last update)
        self._lock = threading.Lock()
        self._next_prune = 0.0

    def take(self, key: int) -> float:
        """0.0 when the request may go; else the seconds until it would be allowed."""
        if self.rate <= 0:
            return 0.0
        now = self.clock()
        with self._lock:
            tokens, last = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                wait = 0.0
            else:
                self._buckets[key] = (tokens, now)
                wait = (1.0 - tokens) / self.rate
            if now >= self._next_prune:
                self._prune(now)
        return wait

    def _prune(self, now: float) -> None:
        full = self.burst / self.rate  # a bucket idle this long is full again: forget it
        self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < full}
        self._next_prune = now + max(60.0, full)


def retry_after(wait: float) -> str:
    return str(max(1, math.ceil(wait)))
