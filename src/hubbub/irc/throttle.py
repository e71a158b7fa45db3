"""The send throttle: a token bucket, as a pure schedule.

Servers disconnect clients that send too fast ("Excess Flood"). InspIRCd,
Solanum and ngircd all allow a small burst and then about one line per second
or two; irssi's defaults are 5 at once then one per 2.2 s. Hubbub's default:

- **burst 5** lines at once,
- then **one line per 1.0 s** (the bucket refills one token per second).

The bucket only answers questions; the I/O layer obeys them. Time is given
explicitly (a monotonic clock in seconds), so the schedule is tested without
sleeping.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_BURST = 5
DEFAULT_INTERVAL = 1.0


@dataclass(slots=True)
class TokenBucket:
    burst: int = DEFAULT_BURST
    interval: float = DEFAULT_INTERVAL
    _tokens: float = -1.0
    _stamp: float = 0.0

    def __post_init__(self) -> None:
        if self.burst < 1 or self.interval < 0:
            raise ValueError("burst must be >= 1 and interval >= 0")
        self._tokens = float(self.burst)

    def _refill(self, now: float) -> None:
        if self.interval == 0:
            self._tokens = float(self.burst)
        elif now > self._stamp:
            self._tokens = min(
                float(self.burst), self._tokens + (now - self._stamp) / self.interval
            )
        self._stamp = max(self._stamp, now)

    def delay(self, now: float) -> float:
        """Seconds to wait before the next line may go (0.0: now)."""
        self._refill(now)
        if self._tokens >= 1.0:
            return 0.0
        return (1.0 - self._tokens) * self.interval

    def take(self, now: float) -> bool:
        """Spend one token if there is one; False if the line must wait."""
        self._refill(now)
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def reset(self, now: float) -> None:
        self._tokens = float(self.burst)
        self._stamp = now
