"""One IRC network as :class:`~hubbub.irc.service.IrcService` runs it.

A :class:`_Running` holds the network's connection and consumer task, the nick
and error shown as its state, whether we set AWAY, and the user's messages
sent through Hubbub whose echo is awaited (:class:`_Pending`, at most
:data:`MAX_PENDING_ECHOES` per target), also those of a connection that
dropped, which the next ``CHATHISTORY`` replay may show sent.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field

from ..core.model import Message, MessageKind, Network
from .connection import Connection as IrcConnection

MAX_PENDING_ECHOES = 100


@dataclass
class _Pending:
    kind: MessageKind
    text: str
    message: Message
    keyed: bool = False  # the echo of its first part keyed it (``messages.ext_key``)


@dataclass
class _Running:
    network: Network
    conn: IrcConnection
    task: asyncio.Task[None] | None = None
    nick: str = ""
    error: str | None = None
    away: bool = False  # we set AWAY because no browser was attached
    # folded target -> user messages committed and sent, whose echo is awaited
    pending: dict[str, deque[_Pending]] = field(default_factory=dict)
    # folded target -> sends still unechoed (in part) when the connection dropped:
    # their lines in the next CHATHISTORY replay of that target key them instead
    # of being stored as lines of their own
    lost: dict[str, deque[_Pending]] = field(default_factory=dict)
