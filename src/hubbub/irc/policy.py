"""What admins allow for IRC (settings ``irc_*``) and the errors the IRC service raises.

The error codes are the REST API's (docs/api.md): ``irc_disabled``,
``irc_server_not_allowed``, ``irc_too_many_networks`` (403),
``irc_not_connected`` (409), ``irc_send_queue_full`` and ``irc_unavailable`` (503),
``irc_unknown_command`` (400).
"""

from __future__ import annotations

import asyncio
import fnmatch
from dataclasses import dataclass

from ..core.errors import Conflict, Forbidden, HubbubError, InvalidInput
from . import addresses

RESOLVE_TIMEOUT = 5.0  # seconds, for the address check of a network being saved


class IrcDisabled(Forbidden):
    code = "irc_disabled"


class ServerNotAllowed(Forbidden):
    code = "irc_server_not_allowed"


class TooManyNetworks(Forbidden):
    code = "irc_too_many_networks"


class IrcNotConnected(Conflict):
    code = "irc_not_connected"


class IrcSendQueueFull(HubbubError):
    code = "irc_send_queue_full"
    status = 503


class IrcUnavailable(HubbubError):
    """Scale-out: the process connected to the network did not answer in time, or
    Redis, through which the processes talk, could not be reached."""

    code = "irc_unavailable"
    status = 503


class UnknownCommand(InvalidInput):
    code = "irc_unknown_command"


@dataclass(frozen=True, slots=True)
class IrcPolicy:
    """What admins allow (settings ``irc_*``)."""

    enabled: bool = True
    allowed_servers: tuple[str, ...] = ()
    max_networks: int = 5
    default_network: str = ""
    #: Loopback, private, link-local … addresses for any server (else only listed ones).
    allow_private_addresses: bool = False

    def check_server(self, host: str, port: int) -> None:
        if not self.enabled:
            raise IrcDisabled("IRC is switched off on this server")
        if not self.allowed_servers or self.listed(host, port):
            return
        raise ServerNotAllowed(f"connecting to {host.lower()}:{port} is not allowed on this server")

    def listed(self, host: str, port: int) -> bool:
        """Whether an entry of ``allowed_servers`` names this server."""
        host = host.lower()
        for entry in self.allowed_servers:
            pattern, _, want_port = entry.lower().partition(":")
            if fnmatch.fnmatchcase(host, pattern) and (not want_port or want_port == str(port)):
                return True
        return False

    def private_allowed(self, host: str, port: int) -> bool:
        """Whether this server may be at a loopback, private, link-local … address."""
        return self.allow_private_addresses or self.listed(host, port)

    async def check_address(self, host: str, port: int) -> None:
        """Refuse a server that is, or now resolves to, a non-public address (unless
        allowed). A name that does not resolve passes: the connection checks again
        every time it connects, and connects only to an address it checked."""
        if self.private_allowed(host, port):
            return
        try:
            async with asyncio.timeout(RESOLVE_TIMEOUT):
                await addresses.resolve(host, port, allow_private=False)
        except addresses.AddressNotAllowed as exc:
            raise ServerNotAllowed(str(exc)) from exc
        except (OSError, TimeoutError, UnicodeError):
            return

    def default_server(self) -> tuple[str, int] | None:
        if not self.default_network:
            return None
        host, _, port = self.default_network.rpartition(":")
        if host and port.isdigit():
            return host, int(port)
        return self.default_network, 6697
