"""Events the sans-I/O client emits.

All events are frozen, slotted dataclasses. Times are aware UTC datetimes: the
IRCv3 ``server-time`` tag when the server sent one, else the client's clock at
the moment the line was received.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

_NO_TAGS: Mapping[str, str] = MappingProxyType({})


class MessageKind(enum.StrEnum):
    PRIVMSG = "privmsg"
    ACTION = "action"
    NOTICE = "notice"


@dataclass(frozen=True, slots=True)
class Message:
    """A PRIVMSG, CTCP ACTION or NOTICE.

    ``target`` is the raw target of the line (a channel or our nick);
    ``conversation`` is where it belongs: the channel, or for a private
    message the other party's nick (the sender, or the target of our own).
    ``own`` is true for messages we sent; ``is_echo`` when the server echoed
    it back (IRCv3 echo-message) rather than the client synthesising it.
    """

    target: str
    conversation: str
    nick: str
    text: str
    kind: MessageKind
    time: datetime
    msgid: str | None = None
    tags: Mapping[str, str] = field(default_factory=lambda: _NO_TAGS, compare=False)
    is_echo: bool = False
    own: bool = False
    is_channel: bool = False
    userhost: str | None = None
    account: str | None = None
    batch: str | None = None
    label: str | None = None


@dataclass(frozen=True, slots=True)
class CtcpRequest:
    """A CTCP request other than ACTION (VERSION, PING, TIME, ...)."""

    nick: str
    target: str
    command: str
    argument: str
    time: datetime
    replied: bool


@dataclass(frozen=True, slots=True)
class CtcpReply:
    nick: str
    command: str
    argument: str
    time: datetime


@dataclass(frozen=True, slots=True)
class Join:
    channel: str
    nick: str
    time: datetime
    userhost: str | None = None
    account: str | None = None
    realname: str | None = None
    is_me: bool = False
    msgid: str | None = None


@dataclass(frozen=True, slots=True)
class Part:
    channel: str
    nick: str
    reason: str
    time: datetime
    is_me: bool = False
    msgid: str | None = None


@dataclass(frozen=True, slots=True)
class Kick:
    channel: str
    nick: str
    by: str
    reason: str
    time: datetime
    is_me: bool = False
    msgid: str | None = None


@dataclass(frozen=True, slots=True)
class Quit:
    nick: str
    reason: str
    time: datetime
    channels: tuple[str, ...] = ()
    msgid: str | None = None


@dataclass(frozen=True, slots=True)
class Nick:
    old: str
    new: str
    time: datetime
    channels: tuple[str, ...] = ()
    is_me: bool = False


@dataclass(frozen=True, slots=True)
class Topic:
    channel: str
    topic: str
    time: datetime
    by: str | None = None
    is_change: bool = False


@dataclass(frozen=True, slots=True)
class Mode:
    target: str
    modes: tuple[str, ...]
    time: datetime
    by: str | None = None


@dataclass(frozen=True, slots=True)
class Member:
    nick: str
    prefixes: str = ""


@dataclass(frozen=True, slots=True)
class Names:
    """The member list of a channel after NAMES ended (366), with prefixes."""

    channel: str
    members: tuple[Member, ...]


@dataclass(frozen=True, slots=True)
class UserUpdate:
    """away-notify, account-notify, chghost or setname about a user."""

    nick: str
    what: str  # "away", "account", "host", "realname"
    value: str | None
    time: datetime


@dataclass(frozen=True, slots=True)
class Invite:
    nick: str
    channel: str
    time: datetime


@dataclass(frozen=True, slots=True)
class Registered:
    """Registration completed (001 and the end of CAP negotiation)."""

    nick: str
    caps: frozenset[str]
    network: str | None = None


@dataclass(frozen=True, slots=True)
class CapsChanged:
    enabled: frozenset[str]
    added: frozenset[str] = frozenset()
    removed: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class SaslResult:
    success: bool
    mechanism: str
    account: str | None = None
    message: str = ""


@dataclass(frozen=True, slots=True)
class NickInUse:
    """The server refused a nick (433, 432, 437); ``trying`` is our next choice."""

    refused: str
    code: str
    trying: str | None


@dataclass(frozen=True, slots=True)
class Numeric:
    """A reply the client has no dedicated event for (WHOIS, LIST, errors...)."""

    command: str
    params: tuple[str, ...]
    time: datetime
    label: str | None = None


@dataclass(frozen=True, slots=True)
class Batch:
    """An IRCv3 batch, closed: its events in order (nested batches inline)."""

    ref: str
    type: str
    params: tuple[str, ...]
    events: tuple[Event, ...]
    label: str | None = None


@dataclass(frozen=True, slots=True)
class History:
    """A ``draft/chathistory`` batch for one target, messages in order."""

    target: str
    messages: tuple[Message, ...]
    label: str | None = None


@dataclass(frozen=True, slots=True)
class LabeledResponse:
    """The reply to a labeled command (IRCv3 labeled-response), correlated."""

    label: str
    events: tuple[Event, ...]


@dataclass(frozen=True, slots=True)
class Error:
    """Something went wrong that the client survived (a garbage line, a refusal)."""

    message: str
    line: str | None = None
    fatal: bool = False


@dataclass(frozen=True, slots=True)
class Disconnected:
    """The session is over: the server closed, an ERROR line, a fatal error."""

    reason: str
    retry: bool = True


Event = (
    Message
    | CtcpRequest
    | CtcpReply
    | Join
    | Part
    | Kick
    | Quit
    | Nick
    | Topic
    | Mode
    | Names
    | UserUpdate
    | Invite
    | Registered
    | CapsChanged
    | SaslResult
    | NickInUse
    | Numeric
    | Batch
    | History
    | LabeledResponse
    | Error
    | Disconnected
)
