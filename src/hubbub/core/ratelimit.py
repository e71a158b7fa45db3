"""Token buckets and sliding windows for rate limits, keyed by any hashable.

Pure bookkeeping with an injectable clock, so tests need no sleeping. Memory is
bounded: the least recently used keys are forgotten past ``max_keys``.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable

from .errors import RateLimited

Clock = Callable[[], float]


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up, per key."""

    def __init__(
        self, rate: float, burst: int, *, max_keys: int = 100_000, clock: Clock = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self.clock = clock
        self._state: OrderedDict[Hashable, tuple[float, float]] = OrderedDict()

    def take(self, key: Hashable, cost: float = 1.0) -> None:
        """Spend ``cost`` tokens or raise RateLimited with the wait needed."""
        now = self.clock()
        tokens, last = self._state.pop(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        if tokens < cost:
            self._remember(key, (tokens, now))
            raise RateLimited(retry_after=round((cost - tokens) / self.rate, 3))
        self._remember(key, (tokens - cost, now))

    def _remember(self, key: Hashable, value: tuple[float, float]) -> None:
        self._state[key] = value
        while len(self._state) > self.max_keys:
            self._state.popitem(last=False)


class WindowCounter:
    """At most ``limit`` events per ``window`` seconds per key (login attempts)."""

    def __init__(
        self, limit: int, window: float, *, max_keys: int = 100_000, clock: Clock = time.monotonic
    ) -> None:
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self.clock = clock
        self._hits: OrderedDict[Hashable, list[float]] = OrderedDict()

    def check(self, key: Hashable) -> None:
        """Raise RateLimited when ``key`` has used up its window."""
        hits = self._live(key)
        if len(hits) >= self.limit:
            raise RateLimited(
                "too many attempts, try again later",
                retry_after=round(hits[0] + self.window - self.clock(), 1),
            )

    def hit(self, key: Hashable) -> None:
        hits = self._live(key)
        hits.append(self.clock())
        self._hits[key] = hits
        self._hits.move_to_end(key)
        while len(self._hits) > self.max_keys:
            self._hits.popitem(last=False)

    def undo(self, key: Hashable) -> None:
        """Take back the latest hit of ``key`` (an attempt that turned out fine)."""
        hits = self._hits.get(key)
        if hits:
            hits.pop()
            if not hits:
                del self._hits[key]

    def reset(self, key: Hashable) -> None:
        self._hits.pop(key, None)

    def _live(self, key: Hashable) -> list[float]:
        cutoff = self.clock() - self.window
        hits = [t for t in self._hits.get(key, ()) if t > cutoff]
        if hits:
            self._hits[key] = hits
        else:
            self._hits.pop(key, None)
        return hits
