"""Helpers for the sans-I/O session tests: messages, events, a driven session."""

from __future__ import annotations

from typing import Any

import orjson

from hubbub.core.events import Control, Event, Scope
from hubbub.core.hub import message_payload
from hubbub.core.model import Message, MessageKind
from hubbub.protocols.session import Action, Limits, Session


def message(cid: int, seq: int) -> Message:
    return Message(
        id=f"M{cid}-{seq}",
        conversation_id=cid,
        seq=seq,
        ts=1000 + seq,
        sender_id=7,
        sender="carol",
        kind=MessageKind.TEXT,
        text=f"text {seq}",
    )


def message_event(cid: int, seq: int) -> Event:
    return Event(
        Scope.CONVERSATION,
        cid,
        message_payload(message(cid, seq)),
        conversation_id=cid,
        seq=seq,
    )


def conversation(cid: int, last_seq: int) -> dict[str, Any]:
    return {
        "id": cid,
        "network": 1,
        "kind": "room",
        "name": f"room{cid}",
        "topic": "",
        "visibility": "public",
        "last_seq": last_seq,
        "read_seq": 0,
        "unread": last_seq,
        "role": "member",
        "peer": None,
    }


def subscribe_event(user_id: int, cid: int, after: int) -> Event:
    payload = orjson.dumps({"type": "conversation", "conversation": conversation(cid, after + 1)})
    return Event(
        Scope.USER, user_id, payload, conversation_id=cid, seq=after, control=Control.SUBSCRIBE
    )


def unsubscribe_event(user_id: int, cid: int) -> Event:
    payload = orjson.dumps({"type": "left", "conversation": cid})
    return Event(Scope.USER, user_id, payload, conversation_id=cid, control=Control.UNSUBSCRIBE)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Driver:
    """A session plus what it said, decoded: frames (dicts) and actions."""

    def __init__(self, limits: Limits | None = None, *, credential: str | None = "sess1") -> None:
        self.clock = Clock()
        self.session = Session(1, "alice", credential, limits, clock=self.clock)

    def frames(self) -> list[dict[str, Any]]:
        return [orjson.loads(p) for p in self.session.data_to_send()]

    def actions(self) -> list[Action]:
        return self.session.actions_to_run()

    def text(self, frame: Any) -> list[dict[str, Any]]:
        self.session.receive_text(frame if isinstance(frame, str) else orjson.dumps(frame).decode())
        return self.frames()

    def start(self, *convs: tuple[int, int], online: list[int] | None = None) -> dict[str, Any]:
        self.session.start([conversation(c, s) for c, s in convs], online or [])
        frames = self.frames()
        self.actions()
        assert len(frames) == 1
        return frames[0]

    def resume(self, positions: dict[int, int] | None = None) -> list[dict[str, Any]]:
        return self.text(
            {"op": "resume", "positions": {str(k): v for k, v in (positions or {}).items()}}
        )
