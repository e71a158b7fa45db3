"""The server side of RFC 6455 (WebSocket), without I/O.

What :class:`~hubbub.web.wsproto.HubbubWebSocketProtocol` needs to speak
WebSocket itself instead of through ``websockets`` and ASGI (issue 5: memory
and CPU per connection):

- :func:`parse_request` and :func:`check_upgrade`: the opening handshake's
  request (as uvicorn's HTTP protocol hands it over, or any HTTP/1.1 bytes),
  and :func:`accept_response` / :func:`http_response` for the answer;
- :class:`Reader`: client frames in, whole messages and control frames out,
  with every rule a server must enforce (masking, reserved bits, opcodes,
  control frame sizes, continuation order, a message size cap); a violation
  raises :class:`ProtocolError` with the close code to fail the connection with;
- :func:`server_frame` and :func:`close_frame`: the server's own frames
  (data frames come pre-built from :func:`~hubbub.protocols.wire.text_frame`).

No extension is ever negotiated (no permessage-deflate), so every reserved
bit must be 0. An idle connection's reader holds nothing but two ``None``s.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from http import HTTPStatus

try:
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - the C extension is there on every supported platform
    from websockets.utils import apply_mask

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONT = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA

# RFC 6455, 7.4.1 and the IANA registry: codes a peer may send in a close frame.
_SENDABLE = frozenset({1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014})


class ProtocolError(Exception):
    """The peer broke the protocol: fail the connection with ``code``."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class BadRequest(Exception):
    """The opening handshake cannot be accepted: answer ``status``."""

    def __init__(self, status: int, message: str, headers: tuple[tuple[str, str], ...] = ()):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


# -- the opening handshake ------------------------------------------------------------


def parse_request(data: bytes) -> tuple[bytes, bytes, list[tuple[bytes, bytes]]] | None:
    """``(method, target, headers)`` of an HTTP/1.1 request head, or None while incomplete.

    Header names are lower-cased (as in an ASGI scope); values keep their bytes.
    """
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = data[:end].split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or parts[2] != b"HTTP/1.1":
        raise BadRequest(400, "not an HTTP/1.1 request")
    headers: list[tuple[bytes, bytes]] = []
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        name = name.strip()
        if not colon or not name:
            raise BadRequest(400, "a header line without a name")
        headers.append((name.lower(), value.strip()))
    return parts[0], parts[1], headers


def _tokens(headers: list[tuple[bytes, bytes]], name: bytes) -> list[bytes]:
    return [t.strip().lower() for n, v in headers if n == name for t in v.split(b",")]


def check_upgrade(method: bytes, headers: list[tuple[bytes, bytes]]) -> str:
    """Validate a WebSocket upgrade request; return its ``Sec-WebSocket-Key``."""
    if method != b"GET":
        raise BadRequest(405, "a WebSocket upgrade is a GET")
    if b"websocket" not in _tokens(headers, b"upgrade"):
        raise BadRequest(426, "missing Upgrade: websocket", (("Upgrade", "websocket"),))
    if b"upgrade" not in _tokens(headers, b"connection"):
        raise BadRequest(426, "missing Connection: Upgrade", (("Upgrade", "websocket"),))
    versions = [v for n, v in headers if n == b"sec-websocket-version"]
    if versions != [b"13"]:
        raise BadRequest(
            426, "Sec-WebSocket-Version must be 13", (("Sec-WebSocket-Version", "13"),)
        )
    keys = [v for n, v in headers if n == b"sec-websocket-key"]
    if len(keys) != 1:
        raise BadRequest(400, "one Sec-WebSocket-Key is required")
    try:
        raw = base64.b64decode(keys[0], validate=True)
    except binascii.Error:
        raw = b""
    if len(raw) != 16:
        raise BadRequest(400, "Sec-WebSocket-Key is not 16 bytes in base64")
    return keys[0].decode("ascii")


def accept_key(key: str) -> str:
    digest = hashlib.sha1(key.encode("ascii") + GUID, usedforsecurity=False).digest()  # RFC 6455
    return base64.b64encode(digest).decode("ascii")


def accept_response(key: str, extra: list[tuple[bytes, bytes]]) -> bytes:
    """The ``101 Switching Protocols`` answer to a request with ``key``."""
    out = [
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: ",
        accept_key(key).encode("ascii"),
        b"\r\n",
    ]
    for name, value in extra:
        out += [name, b": ", value, b"\r\n"]
    out.append(b"\r\n")
    return b"".join(out)


def http_response(
    status: int,
    body: bytes,
    content_type: bytes,
    extra: list[tuple[bytes, bytes]],
    headers: tuple[tuple[str, str], ...] = (),
) -> bytes:
    """A complete HTTP/1.1 answer that refuses the upgrade; the connection closes after it."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    out = [f"HTTP/1.1 {status} {phrase}\r\n".encode("latin-1")]
    for name, value in extra:
        out += [name, b": ", value, b"\r\n"]
    for hname, hvalue in headers:
        out.append(f"{hname}: {hvalue}\r\n".encode("latin-1"))
    out += [
        b"content-type: ",
        content_type,
        b"\r\ncontent-length: ",
        str(len(body)).encode("ascii"),
        b"\r\nconnection: close\r\n\r\n",
        body,
    ]
    return b"".join(out)


# -- frames -----------------------------------------------------------------------------


def server_frame(opcode: int, payload: bytes = b"") -> bytes:
    """One unmasked, final server frame (control frames: at most 125 bytes)."""
    n = len(payload)
    if n < 126:
        return bytes((0x80 | opcode, n)) + payload
    if n < 1 << 16:
        return bytes((0x80 | opcode, 126)) + n.to_bytes(2, "big") + payload
    return bytes((0x80 | opcode, 127)) + n.to_bytes(8, "big") + payload


def close_frame(code: int | None, reason: str = "") -> bytes:
    """A close frame; ``code`` None sends none (the answer to a close without a code)."""
    if code is None:
        return server_frame(OP_CLOSE)
    payload = code.to_bytes(2, "big") + reason.encode()[:123]
    return server_frame(OP_CLOSE, payload)


def parse_close(payload: bytes) -> tuple[int | None, str]:
    """The code and reason of a client's close frame (RFC 6455, 5.5.1, 7.4)."""
    if not payload:
        return None, ""
    if len(payload) == 1:
        raise ProtocolError(1002, "a close frame of one byte")
    code = int.from_bytes(payload[:2], "big")
    if code not in _SENDABLE and not 3000 <= code < 5000:
        raise ProtocolError(1002, f"invalid close code {code}")
    try:
        reason = payload[2:].decode()
    except UnicodeDecodeError:
        raise ProtocolError(1007, "a close reason that is not UTF-8") from None
    return code, reason


class Reader:
    """Client frames in, messages out: feed bytes, then take :meth:`next` until None."""

    __slots__ = ("_buf", "_frag", "_frag_op", "_frag_size", "max_size")

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self._buf: bytes | bytearray | None = None
        self._frag: list[bytes] | None = None  # a fragmented message being assembled
        self._frag_op = 0
        self._frag_size = 0

    def feed(self, data: bytes) -> None:
        buf = self._buf
        if not buf:
            self._buf = data
        elif isinstance(buf, bytearray):
            buf += data
        else:
            self._buf = bytearray(buf) + data

    def pending(self) -> int:
        """Bytes received and not yet parsed."""
        return len(self._buf) if self._buf else 0

    def next(self) -> tuple[int, bytes] | None:
        """The next control frame or complete message as ``(opcode, payload)``, or None."""
        while True:
            buf = self._buf
            if not buf:
                return None
            n = len(buf)
            if n < 2:
                return None
            b0 = buf[0]
            b1 = buf[1]
            if b0 & 0x70:
                raise ProtocolError(1002, "reserved bits must be 0")
            if not b1 & 0x80:
                raise ProtocolError(1002, "client frames must be masked")
            opcode = b0 & 0x0F
            fin = b0 & 0x80
            length = b1 & 0x7F
            pos = 2
            if length == 126:
                if n < 4:
                    return None
                length = int.from_bytes(buf[2:4], "big")
                pos = 4
            elif length == 127:
                if n < 10:
                    return None
                length = int.from_bytes(buf[2:10], "big")
                pos = 10
            frag = self._frag
            if opcode >= 8:
                if opcode not in (OP_CLOSE, OP_PING, OP_PONG):
                    raise ProtocolError(1002, f"invalid opcode {opcode}")
                if not fin or length > 125:
                    raise ProtocolError(1002, "a fragmented or oversized control frame")
            elif opcode == OP_CONT:
                if frag is None:
                    raise ProtocolError(1002, "a continuation frame without a message")
                if self._frag_size + length > self.max_size:
                    raise ProtocolError(1009, f"a message is at most {self.max_size} bytes")
            elif opcode in (OP_TEXT, OP_BINARY):
                if frag is not None:
                    raise ProtocolError(1002, "a new message inside a fragmented one")
                if length > self.max_size:
                    raise ProtocolError(1009, f"a message is at most {self.max_size} bytes")
            else:
                raise ProtocolError(1002, f"invalid opcode {opcode}")
            end = pos + 4 + length
            if n < end:
                return None
            payload = apply_mask(buf[pos + 4 : end], buf[pos : pos + 4])
            if end == n:
                self._buf = None
            elif isinstance(buf, bytearray):
                del buf[:end]
            else:
                self._buf = buf[end:]
            if opcode >= 8:
                return opcode, payload
            if frag is None:
                if fin:
                    return opcode, payload
                self._frag = [payload]
                self._frag_op = opcode
                self._frag_size = length
                continue
            frag.append(payload)
            self._frag_size += length
            if fin:
                self._frag = None
                return self._frag_op, b"".join(frag)
