"""Implementations of :class:`hubbub.core.ports.Bus`.

- :class:`~hubbub.bus.local.LocalBus`: one process; ``publish`` calls every
  listener before it returns.
- :class:`~hubbub.bus.redis.RedisBus`: several processes sharing one Redis
  pub/sub channel; every process, the publisher included, gets each event once,
  in the one order Redis gives them.
"""

from __future__ import annotations

from .local import LocalBus, dispatch

__all__ = ["LocalBus", "dispatch"]
