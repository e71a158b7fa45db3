"""IRC: a sans-I/O client core (:mod:`.client`) and its asyncio connection
(:mod:`.connection`), shared by per-user networks and the relay bot.

The names below are loaded on first use: importing a module of this package
(``hubbub.irc.service``, say) does not import the client, whose libraries
(``ircstates``, which imports ``pendulum``) cost startup time on a server
with no IRC network to connect (docs/performance/startup.md).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .client import Client
    from .config import ClientConfig, Sasl, SaslMechanism
    from .state import State

__all__ = ["Client", "ClientConfig", "Sasl", "SaslMechanism", "State"]

_HOMES = {
    "Client": ".client",
    "ClientConfig": ".config",
    "Sasl": ".config",
    "SaslMechanism": ".config",
    "State": ".state",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOMES})
