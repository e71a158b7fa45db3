"""The server side of RFC 6455 without sockets: handshake, client frames, close frames."""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hubbub.protocols.rfc6455 import (
    OP_BINARY,
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    BadRequest,
    ProtocolError,
    Reader,
    accept_key,
    accept_response,
    check_upgrade,
    close_frame,
    parse_close,
    parse_request,
    server_frame,
)

KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455, 1.3


def client_frame(
    opcode: int, payload: bytes, *, fin: bool = True, masked: bool = True, rsv: int = 0
) -> bytes:
    n = len(payload)
    b0 = (0x80 if fin else 0) | rsv | opcode
    mask_bit = 0x80 if masked else 0
    if n < 126:
        head = bytes((b0, mask_bit | n))
    elif n < 1 << 16:
        head = bytes((b0, mask_bit | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((b0, mask_bit | 127)) + n.to_bytes(8, "big")
    if not masked:
        return head + payload
    mask = os.urandom(4)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def request(*extra: str, version: str = "13", key: str = KEY, method: str = "GET") -> bytes:
    lines = [
        f"{method} /api/ws?x=1 HTTP/1.1",
        "Host: example.org",
        "Upgrade: websocket",
        "Connection: keep-alive, Upgrade",
        f"Sec-WebSocket-Key: {key}",
        f"Sec-WebSocket-Version: {version}",
        *extra,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def messages(reader: Reader) -> list[tuple[int, bytes]]:
    out = []
    while (m := reader.next()) is not None:
        out.append(m)
    return out


# -- handshake ---------------------------------------------------------------------------


def test_accept_key_is_the_rfc_example() -> None:
    assert accept_key(KEY) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    response = accept_response(KEY, [(b"date", b"today")])
    assert response.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" in response
    assert b"date: today\r\n" in response and response.endswith(b"\r\n\r\n")


def test_a_request_is_parsed_with_lower_case_names() -> None:
    parsed = parse_request(request("Origin: http://example.org"))
    assert parsed is not None
    method, target, headers = parsed
    assert (method, target) == (b"GET", b"/api/ws?x=1")
    assert (b"origin", b"http://example.org") in headers
    assert check_upgrade(method, headers) == KEY
    assert parse_request(request()[:-2]) is None  # incomplete


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (request(version="8"), 426),
        (request(key="short"), 400),
        (request(key="!!!!"), 400),
        (request(method="POST"), 405),
        (request().replace(b"Upgrade: websocket", b"Upgrade: h2c"), 426),
        (request().replace(b"keep-alive, Upgrade", b"keep-alive"), 426),
        (request("Sec-WebSocket-Key: " + KEY), 400),  # two keys
    ],
)
def test_bad_upgrades_are_refused(raw: bytes, status: int) -> None:
    parsed = parse_request(raw)
    assert parsed is not None
    with pytest.raises(BadRequest) as info:
        check_upgrade(parsed[0], parsed[2])
    assert info.value.status == status


def test_bad_request_heads_are_refused() -> None:
    with pytest.raises(BadRequest):
        parse_request(b"GET / HTTP/1.0\r\n\r\n")
    with pytest.raises(BadRequest):
        parse_request(b"GET / HTTP/1.1\r\nno colon here\r\n\r\n")


# -- frames ------------------------------------------------------------------------------


def test_messages_and_control_frames_come_out_in_order() -> None:
    reader = Reader(1000)
    reader.feed(
        client_frame(OP_TEXT, "héllo".encode(), fin=False)
        + client_frame(OP_PING, b"p")  # a control frame between fragments
        + client_frame(0, b" wor", fin=False)
        + client_frame(0, b"ld")
        + client_frame(OP_BINARY, b"\x00\x01")
        + client_frame(OP_PONG, b"")
        + client_frame(OP_CLOSE, (1000).to_bytes(2, "big") + b"bye")
    )
    assert messages(reader) == [
        (OP_PING, b"p"),
        (OP_TEXT, "héllo world".encode()),
        (OP_BINARY, b"\x00\x01"),
        (OP_PONG, b""),
        (OP_CLOSE, b"\x03\xe8bye"),
    ]
    assert reader.pending() == 0


@given(st.binary(max_size=70_000), st.lists(st.integers(1, 5000), max_size=40))
def test_any_split_of_the_bytes_gives_the_same_messages(payload: bytes, cuts: list[int]) -> None:
    data = client_frame(OP_BINARY, payload) + client_frame(OP_TEXT, b"after")
    reader = Reader(1 << 20)
    got: list[tuple[int, bytes]] = []
    pos = 0
    sizes = iter(cuts)
    while pos < len(data):
        step = next(sizes, len(data))
        reader.feed(data[pos : pos + step])
        pos += step
        got += messages(reader)
    assert got == [(OP_BINARY, payload), (OP_TEXT, b"after")]


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (client_frame(OP_TEXT, b"x", masked=False), 1002),
        (client_frame(OP_TEXT, b"x", rsv=0x40), 1002),  # no extension: RSV1 must be 0
        (client_frame(0x3, b"x"), 1002),
        (client_frame(0xB, b""), 1002),
        (client_frame(0, b"x"), 1002),  # a continuation without a message
        (client_frame(OP_TEXT, b"a", fin=False) + client_frame(OP_TEXT, b"b"), 1002),
        (client_frame(OP_PING, b"x", fin=False), 1002),
        (client_frame(OP_PING, b"x" * 126), 1002),
        (client_frame(OP_TEXT, b"x" * 101), 1009),
        (client_frame(OP_TEXT, b"x" * 60, fin=False) + client_frame(0, b"x" * 60), 1009),
    ],
)
def test_protocol_violations_fail_with_their_code(data: bytes, code: int) -> None:
    reader = Reader(100)
    reader.feed(data)
    with pytest.raises(ProtocolError) as info:
        messages(reader)
    assert info.value.code == code


def test_a_too_large_message_fails_on_its_header_alone() -> None:
    reader = Reader(100)
    reader.feed(client_frame(OP_TEXT, b"x" * 70_000)[:14])  # the payload never needs to arrive
    with pytest.raises(ProtocolError) as info:
        reader.next()
    assert info.value.code == 1009


def test_close_frames() -> None:
    assert parse_close(b"") == (None, "")
    assert parse_close((4001).to_bytes(2, "big") + "révoqué".encode()) == (4001, "révoqué")
    for bad, code in [(b"\x03", 1002), ((1005).to_bytes(2, "big"), 1002), (b"\x03\xe8\xff", 1007)]:
        with pytest.raises(ProtocolError) as info:
            parse_close(bad)
        assert info.value.code == code
    assert close_frame(None) == b"\x88\x00"
    assert close_frame(1001, "going away") == b"\x88\x0c\x03\xe9going away"
    assert server_frame(OP_TEXT, b"x" * 200)[:4] == b"\x81\x7e\x00\xc8"
    assert server_frame(OP_TEXT, b"x" * 70_000)[:2] == b"\x81\x7f"
