"""Each message event's JSON, encoded once while the catch-up cache holds the message.

:func:`encode_message` is what live fan-out and catch-up replay both send.
A message held by the catch-up cache (:mod:`.tail`) is encoded once, when
the cache takes it (:func:`hold`), and :func:`message_payload` returns that
payload again; :data:`SHARED_PAYLOADS` lists the same payloads, for
``protocols.wire.text_frame`` to build each one's WebSocket frame once too.
The payload and its frame go when the cache lets the message go (:func:`release`).
"""

from __future__ import annotations

from typing import Any

from .events import dumps
from .model import Message

MESSAGE_OVERHEAD = 400  # bytes per cached message besides its JSON: Message, strs, dicts

# id(message) -> (message, its payload), for the messages held by a tail. The
# entry keeps the message alive, so its id cannot be reused while it is here.
_ENCODED: dict[int, tuple[Message, bytes]] = {}
# id(payload) -> [payload, its WebSocket frame or None]: the same payloads,
# for ``protocols.wire.text_frame`` to build each one's frame once too.
SHARED_PAYLOADS: dict[int, list[Any]] = {}


def encode_message(message: Message) -> bytes:
    """The JSON of a message event: what live fan-out and catch-up replay both send."""
    return dumps({"type": "message", **message.to_json()})


def message_payload(message: Message) -> bytes:
    """:func:`encode_message`, encoded once for a message held by a tail."""
    hit = _ENCODED.get(id(message))
    if hit is not None and hit[0] is message:
        return hit[1]
    return encode_message(message)


def hold(message: Message) -> int:
    """Encode a message the catch-up cache takes, once; its estimated size in bytes."""
    payload = encode_message(message)
    _ENCODED[id(message)] = (message, payload)
    SHARED_PAYLOADS[id(payload)] = [payload, None]
    return 3 * len(payload) + MESSAGE_OVERHEAD  # the payload, its frame, the Message's strs


def release(message: Message) -> None:
    """Let go of a message's payload (and its frame): the catch-up cache dropped it."""
    key = id(message)
    hit = _ENCODED.get(key)
    if hit is not None and hit[0] is message:
        del _ENCODED[key]
        payload = hit[1]
        slot = SHARED_PAYLOADS.get(id(payload))
        if slot is not None and slot[0] is payload:
            del SHARED_PAYLOADS[id(payload)]
