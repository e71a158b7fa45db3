"""IRC: a sans-I/O client core (:mod:`.client`) and its asyncio connection
(:mod:`.connection`), shared by per-user networks and the relay bot."""

from .client import Client
from .config import ClientConfig, Sasl, SaslMechanism
from .state import State

__all__ = ["Client", "ClientConfig", "Sasl", "SaslMechanism", "State"]
