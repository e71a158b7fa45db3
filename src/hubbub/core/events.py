"""Events that travel on the bus from the Hub to every connected session.

An event's JSON ``payload`` is encoded once, by the Hub, and the same bytes
are written to every socket that receives it (DESIGN.md, "Flow of one
message"). Routing and the few facts a session must act on travel beside the
payload, so no receiver ever parses it again.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

import orjson


class Scope(enum.StrEnum):
    CONVERSATION = "c"  # every session subscribed to ``target`` (a conversation id)
    USER = "u"  # every session of user ``target``
    ALL = "a"  # every session (presence)


class Control(enum.StrEnum):
    """What a session must do besides forwarding the payload (user events only)."""

    SUBSCRIBE = "subscribe"  # start following conversation ``conversation_id`` after ``seq``
    UNSUBSCRIBE = "unsubscribe"  # stop following ``conversation_id``
    REVOKE = "revoke"  # the session behind this connection was revoked: close it


@dataclass(frozen=True, slots=True)
class Event:
    scope: Scope
    target: int
    payload: bytes
    conversation_id: int | None = None
    seq: int | None = None  # set for events stored in a conversation's history
    control: Control | None = None

    def encode(self) -> bytes:
        """The form sent across processes (Redis)."""
        return orjson.dumps(
            [
                self.scope.value,
                self.target,
                self.conversation_id,
                self.seq,
                self.control.value if self.control else None,
                self.payload.decode(),
            ]
        )

    @classmethod
    def decode(cls, data: bytes) -> Event:
        scope, target, conversation_id, seq, control, payload = orjson.loads(data)
        return cls(
            scope=Scope(scope),
            target=int(target),
            payload=payload.encode(),
            conversation_id=conversation_id,
            seq=seq,
            control=Control(control) if control else None,
        )


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj)
