"""Reconnect policy: exponential backoff with jitter, capped.

Attempt ``n`` (0 for the first retry) waits ``min(cap, base * 2**n)`` scaled by
a random factor in ``[0.5, 1.0]`` ("equal jitter"), so many networks dropped
by one outage do not come back in lockstep. Defaults: base 2 s, cap 300 s; the
attempt counter resets once a connection stayed registered for 60 s.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

DEFAULT_BASE = 2.0
DEFAULT_CAP = 300.0
DEFAULT_STABLE_AFTER = 60.0


@dataclass(slots=True)
class Backoff:
    base: float = DEFAULT_BASE
    cap: float = DEFAULT_CAP
    stable_after: float = DEFAULT_STABLE_AFTER
    rng: random.Random = field(default_factory=random.Random)
    attempt: int = 0

    def next_delay(self) -> float:
        """The wait before the next attempt; advances the counter."""
        exp = min(self.attempt, 30)
        ceiling = min(self.cap, self.base * float(1 << exp))
        self.attempt += 1
        jitter: float = self.rng.random()
        return ceiling * (0.5 + jitter / 2)

    def connected_for(self, seconds: float) -> None:
        """Report how long the last connection lived; a stable one resets the counter."""
        if seconds >= self.stable_after:
            self.attempt = 0
