"""The WebSocket wire format: server frame bytes and client operations.

Rules of this module (``docs/protocol.md`` is the normative text):

- Every frame either way is one JSON object in one text message (RFC 6455, 5.6).
- Server frames are built once and shared: :func:`text_frame` puts the RFC 6455
  header (FIN, opcode 1, unmasked, no extension bits: 5.2) in front of the
  payload, and the same ``bytes`` go to every socket.
- A client frame is an object with a string ``op``; :func:`parse_op` turns it
  into one of the frozen operation classes below or raises :class:`BadInput`
  with the stable code the client sees in its error frame.
"""

from __future__ import annotations

import enum
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from ..core.model import USER_SENDABLE_KINDS, MessageKind
from ..core.payloads import SHARED_PAYLOADS

_NONCE = re.compile(r"^[\x21-\x7e]{1,64}$")
MAX_ID = (1 << 63) - 1  # ids and seqs are 64-bit signed in the store


class ErrorCode(enum.StrEnum):
    """Codes of error frames raised by the protocol itself.

    Errors from the domain carry their own code (``core.errors``: ``not_member``,
    ``not_found``, ``too_long``, ``rate_limited``, ``bad_request`` ...).
    """

    BAD_JSON = "bad_json"  # not JSON, or not valid UTF-8 text
    BAD_FRAME = "bad_frame"  # JSON, but not an object or a field of the wrong type
    UNKNOWN_OP = "unknown_op"
    TOO_LARGE = "too_large"  # a frame over the server's max frame size
    NOT_RESUMED = "not_resumed"  # an op other than ping before ``resume``
    NOT_MEMBER = "not_member"
    RATE_LIMITED = "rate_limited"
    INTERNAL = "internal_error"  # the server failed; the op may be retried


class CloseCode(enum.IntEnum):
    """WebSocket close codes the server sends (RFC 6455, 7.4.1; 4000-4999 private use)."""

    NORMAL = 1000
    GOING_AWAY = 1001  # server shutting down or restarting: reconnect and resume
    POLICY = 1008
    TOO_BIG = 1009  # a frame above the hard cap: the connection cannot continue
    INTERNAL = 1011
    REVOKED = 4001  # the session or token behind this connection was revoked
    TOO_SLOW = 4008  # the send buffer overflowed: reconnect and resume


# -- server frames ---------------------------------------------------------------


def text_frame(payload: bytes) -> bytes:
    """One unmasked, final text frame (RFC 6455, 5.2) carrying ``payload``.

    Built once for a payload of the catch-up cache (``core.tail``), which a
    reconnect storm sends to thousands of clients.
    """
    slot = SHARED_PAYLOADS.get(id(payload))
    if slot is not None and slot[0] is payload:
        frame: bytes | None = slot[1]
        if frame is None:
            frame = slot[1] = _text_frame(payload)
        return frame
    return _text_frame(payload)


def _text_frame(payload: bytes) -> bytes:
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 65536:
        return struct.pack("!BBH", 0x81, 126, n) + payload
    return struct.pack("!BBQ", 0x81, 127, n) + payload


def frame_payloads(data: bytes) -> list[bytes]:
    """Split bytes made of :func:`text_frame` frames back into their payloads."""
    out = []
    view = memoryview(data)
    i = 0
    while i < len(view):
        n = view[i + 1]
        if n == 126:
            (n,) = struct.unpack_from("!H", view, i + 2)
            i += 4
        elif n == 127:
            (n,) = struct.unpack_from("!Q", view, i + 2)
            i += 10
        else:
            i += 2
        out.append(bytes(view[i : i + n]))
        i += n
    return out


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj)


def error_payload(
    code: str, message: str, *, nonce: str | None = None, **details: Any
) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": "error", "code": code, "message": message}
    if nonce is not None:
        frame["nonce"] = nonce
    frame.update(details)
    return frame


# -- client operations -----------------------------------------------------------


class BadInput(Exception):
    """A client frame the server cannot act on; becomes an error frame."""

    def __init__(self, code: str, message: str, nonce: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.nonce = nonce


@dataclass(frozen=True, slots=True)
class Resume:
    positions: dict[int, int]  # conversation id -> last seq the client has
    nonce: str | None = None


@dataclass(frozen=True, slots=True)
class Send:
    nonce: str
    conversation: int
    text: str
    kind: MessageKind = MessageKind.TEXT


@dataclass(frozen=True, slots=True)
class Typing:
    conversation: int
    nonce: str | None = None


@dataclass(frozen=True, slots=True)
class Read:
    conversation: int
    seq: int
    nonce: str | None = None


@dataclass(frozen=True, slots=True)
class Ping:
    nonce: str | None = None


Op = Resume | Send | Typing | Read | Ping


def parse_op(text: str) -> Op:
    """Decode one client text frame. Raises :class:`BadInput`."""
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise BadInput(ErrorCode.BAD_JSON, f"not valid JSON: {exc.msg}") from exc
    if not isinstance(obj, dict):
        raise BadInput(ErrorCode.BAD_FRAME, "a frame is a JSON object")
    nonce = obj.get("nonce")
    if nonce is not None and not (isinstance(nonce, str) and _NONCE.match(nonce)):
        raise BadInput(ErrorCode.BAD_FRAME, "nonce must be 1 to 64 printable ASCII characters")
    op = obj.get("op")
    if not isinstance(op, str):
        raise BadInput(ErrorCode.BAD_FRAME, "a frame needs a string 'op'", nonce)
    parser = _PARSERS.get(op)
    if parser is None:
        raise BadInput(ErrorCode.UNKNOWN_OP, f"unknown op {op[:32]!r}", nonce)
    return parser(obj, nonce)


def _int(obj: dict[str, Any], key: str, nonce: str | None, *, low: int = 0) -> int:
    value = obj.get(key)
    if type(value) is not int or not low <= value <= MAX_ID:
        raise BadInput(ErrorCode.BAD_FRAME, f"{key!r} must be an integer >= {low}", nonce)
    return value


def _resume(obj: dict[str, Any], nonce: str | None) -> Resume:
    raw = obj.get("positions", {})
    if not isinstance(raw, dict):
        raise BadInput(ErrorCode.BAD_FRAME, "'positions' must be an object", nonce)
    positions = {}
    for key, seq in raw.items():
        if not (key.isascii() and key.isdigit() and 0 < len(key) <= 19):
            raise BadInput(
                ErrorCode.BAD_FRAME, "'positions' keys are conversation ids as strings", nonce
            )
        if type(seq) is not int or not 0 <= seq <= MAX_ID:
            raise BadInput(ErrorCode.BAD_FRAME, "'positions' values are seqs, integers >= 0", nonce)
        positions[int(key)] = seq
    return Resume(positions, nonce)


def _send(obj: dict[str, Any], nonce: str | None) -> Send:
    if nonce is None:
        raise BadInput(ErrorCode.BAD_FRAME, "send needs a 'nonce'")
    conversation = _int(obj, "conversation", nonce, low=1)
    text = obj.get("text")
    if not isinstance(text, str):
        raise BadInput(ErrorCode.BAD_FRAME, "'text' must be a string", nonce)
    kind = obj.get("kind", "text")
    if (
        not isinstance(kind, str) or kind not in USER_SENDABLE_KINDS
    ):  # StrEnum members compare equal to their values
        allowed = ", ".join(sorted(k.value for k in USER_SENDABLE_KINDS))
        raise BadInput(ErrorCode.BAD_FRAME, f"'kind' must be one of {allowed}", nonce)
    return Send(nonce, conversation, text, MessageKind(kind))


def _typing(obj: dict[str, Any], nonce: str | None) -> Typing:
    return Typing(_int(obj, "conversation", nonce, low=1), nonce)


def _read(obj: dict[str, Any], nonce: str | None) -> Read:
    return Read(_int(obj, "conversation", nonce, low=1), _int(obj, "seq", nonce), nonce)


def _ping(obj: dict[str, Any], nonce: str | None) -> Ping:
    return Ping(nonce)


_PARSERS: dict[str, Callable[[dict[str, Any], str | None], Op]] = {
    "resume": _resume,
    "send": _send,
    "typing": _typing,
    "read": _read,
    "ping": _ping,
}
