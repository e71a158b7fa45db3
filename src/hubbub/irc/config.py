"""What one IRC session needs to know about the user and the network."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from .throttle import DEFAULT_BURST, DEFAULT_INTERVAL

#: IRCv3 capabilities requested when the server offers them.
WANTED_CAPS: frozenset[str] = frozenset(
    {
        "server-time",
        "message-tags",
        "echo-message",
        "batch",
        "labeled-response",
        "away-notify",
        "account-notify",
        "extended-join",
        "multi-prefix",
        "userhost-in-names",
        "chghost",
        "setname",
        "draft/chathistory",
        "cap-notify",
        # sasl is added only when SASL is configured
    }
)


class SaslMechanism(enum.StrEnum):
    PLAIN = "PLAIN"
    EXTERNAL = "EXTERNAL"


@dataclass(frozen=True, slots=True)
class Sasl:
    mechanism: SaslMechanism = SaslMechanism.PLAIN
    username: str = ""
    password: str = field(default="", repr=False)
    #: Abort registration (QUIT, no reconnect) when SASL fails or is not offered.
    required: bool = False


@dataclass(frozen=True, slots=True)
class ClientConfig:
    nick: str
    username: str = ""
    realname: str = ""
    alt_nick: str = ""
    password: str = field(default="", repr=False)  # server password (PASS)
    sasl: Sasl | None = None
    version: str = "Hubbub"
    caps: frozenset[str] = WANTED_CAPS
    throttle_burst: int = DEFAULT_BURST
    throttle_interval: float = DEFAULT_INTERVAL
    #: Send our own PING after this long without any line from the server.
    ping_interval: float = 90.0
    #: Give up on the connection after this long without any line.
    ping_timeout: float = 240.0
    #: Registration (CAP, SASL, 001) must finish within this.
    register_timeout: float = 60.0
    #: Without MONITOR, ask ISON for the wanted nick this often.
    regain_interval: float = 30.0
    #: Lines that may wait in the send queue.
    max_queue: int = 2000

    @property
    def user(self) -> str:
        return self.username or self.nick

    @property
    def real(self) -> str:
        return self.realname or self.nick
