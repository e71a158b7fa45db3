"""The domain model: users, networks, conversations, members and messages.

Frozen, slotted dataclasses; enums for closed sets. Times are integer
milliseconds since the Unix epoch (UTC), so they survive JSON and both
database engines unchanged.
"""

from __future__ import annotations

import enum
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

LOCAL_NETWORK_ID = 1
"""The ``local`` network (Hubbub's own rooms and DMs) always has id 1."""


class Role(enum.StrEnum):
    ADMIN = "admin"
    MEMBER = "member"


class ConversationKind(enum.StrEnum):
    ROOM = "room"
    DM = "dm"
    CHANNEL = "channel"  # IRC channel
    QUERY = "query"  # IRC private query


class Visibility(enum.StrEnum):
    PUBLIC = "public"
    PRIVATE = "private"


class MemberRole(enum.StrEnum):
    OWNER = "owner"
    MEMBER = "member"


class MessageKind(enum.StrEnum):
    TEXT = "text"
    ACTION = "action"
    NOTICE = "notice"
    JOIN = "join"
    PART = "part"
    TOPIC = "topic"
    SYSTEM = "system"
    EVENT = "event"


USER_SENDABLE_KINDS = frozenset({MessageKind.TEXT, MessageKind.ACTION, MessageKind.NOTICE})
"""Kinds a client may send itself; the others are made by the server."""


def now_ms() -> int:
    return time.time_ns() // 1_000_000


_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_id_lock = threading.Lock()
_id_last = (0, 0)


def new_message_id() -> str:
    """A ULID: 48 bits of milliseconds then 80 random bits, Crockford base32.

    Sortable by time, globally unique without coordination between processes.
    Within one process ids are strictly increasing even inside one millisecond
    (the random part is incremented, as the ULID spec's monotonic mode does).
    """
    global _id_last
    with _id_lock:
        ms = now_ms()
        last_ms, last_rand = _id_last
        if ms <= last_ms:
            ms, rand = last_ms, last_rand + 1
        else:
            rand = int.from_bytes(os.urandom(10), "big") >> 1  # leave room to increment
        _id_last = (ms, rand)
    value = (ms << 80) | (rand & ((1 << 80) - 1))
    out = []
    for _ in range(26):
        out.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(out))


@dataclass(frozen=True, slots=True)
class User:
    id: int
    name: str
    role: Role
    created_at: int

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


@dataclass(frozen=True, slots=True)
class Conversation:
    id: int
    network_id: int
    kind: ConversationKind
    name: str
    topic: str
    visibility: Visibility
    created_at: int
    last_seq: int


@dataclass(frozen=True, slots=True)
class Member:
    conversation_id: int
    user_id: int
    name: str
    role: MemberRole
    read_seq: int


@dataclass(frozen=True, slots=True)
class ConversationView:
    """A conversation as one member sees it: with read marker and unread count."""

    conversation: Conversation
    read_seq: int
    unread: int
    role: MemberRole | None
    peer: str | None = None  # for DMs: the other user's name


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message to append; the store gives it an id, a seq and a time."""

    conversation_id: int
    kind: MessageKind
    text: str
    sender_id: int | None
    sender: str
    nonce: str | None = None
    meta: dict[str, Any] | None = None
    #: The message's key outside Hubbub (IRC msgid or content hash); unique per
    #: conversation, so the same IRC line is never stored twice.
    ext_key: str | None = None


@dataclass(frozen=True, slots=True)
class Message:
    id: str
    conversation_id: int
    seq: int
    ts: int
    sender_id: int | None
    sender: str
    kind: MessageKind
    text: str
    meta: dict[str, Any] | None = None
    nonce: str | None = field(default=None, compare=False)

    def to_json(self) -> dict[str, Any]:
        """The wire form, shared by the REST API and the WebSocket protocol."""
        return {
            "id": self.id,
            "conversation": self.conversation_id,
            "seq": self.seq,
            "ts": self.ts,
            "sender": self.sender,
            "sender_id": self.sender_id,
            "kind": self.kind.value,
            "text": self.text,
            "meta": self.meta,
        }


@dataclass(frozen=True, slots=True)
class AppendResult:
    message: Message
    duplicate: bool  # True when the nonce was seen before: this is the first message


_RFC1459 = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ[]\\~", "abcdefghijklmnopqrstuvwxyz{}|^")


def irc_fold(name: str) -> str:
    """An IRC name's comparison key (rfc1459 casemapping: ``[]\\~`` fold to ``{}|^``)."""
    return name.translate(_RFC1459)


class NetworkKind(enum.StrEnum):
    LOCAL = "local"
    IRC = "irc"


@dataclass(frozen=True, slots=True)
class Network:
    """A network row: ``config`` is its JSON (for IRC: server, nick, encrypted secrets)."""

    id: int
    user_id: int | None
    kind: NetworkKind
    name: str
    config: dict[str, Any]


@dataclass(frozen=True, slots=True)
class SessionInfo:
    id: str  # public id of the session (not the secret)
    user_id: int
    created_at: int
    last_seen: int
    expires_at: int
    user_agent: str
    address: str


@dataclass(frozen=True, slots=True)
class ApiToken:
    id: int
    user_id: int
    name: str
    created_at: int
    last_used: int | None
