"""The native WebSocket path (``HubbubWebSocketProtocol`` speaking RFC 6455 itself)
over real sockets: framing rules, keepalive, no task while idle, the base path
and forwarded headers, and other WebSocket paths still going through ASGI."""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from wshelp import TIMEOUT, Account, LiveServer, make_account, open_client

from hubbub.app import build_services, close_services
from hubbub.config import Settings
from hubbub.web.wsproto import HubbubWebSocketProtocol
from testenv import start_server


@pytest.fixture
async def custom_server(
    make_settings: Callable[..., Settings],
) -> AsyncIterator[Callable[..., Any]]:
    """``await custom_server(ws_ping_interval=0.3)``: a server with changed settings."""
    running: list[Any] = []

    async def start(**changes: Any) -> LiveServer:
        services = await build_services(make_settings(**changes))
        server = await start_server(services)
        running.append(server)
        return LiveServer(services, server.port, server.uvicorn)

    yield start
    for server in running:
        server.uvicorn.should_exit = True
        await asyncio.wait_for(server.task, 15)
        await close_services(server.services)


class Raw:
    """A WebSocket client written by hand, for what a library will not send."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(
        cls, port: int, headers: dict[str, str], path: str = "/api/ws", version: str = "13"
    ) -> tuple[Raw, bytes]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            f"GET {path} HTTP/1.1",
            f"Host: 127.0.0.1:{port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            f"Sec-WebSocket-Version: {version}",
            *(f"{k}: {v}" for k, v in headers.items()),
        ]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
        return cls(reader, writer), head

    def send(self, opcode: int, payload: bytes, *, masked: bool = True) -> None:
        n = len(payload)
        assert n < 126
        if masked:
            mask = os.urandom(4)
            body = mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            self.writer.write(bytes((0x80 | opcode, 0x80 | n)) + body)
        else:
            self.writer.write(bytes((0x80 | opcode, n)) + payload)

    async def frame(self) -> tuple[int, bytes]:
        b0, b1 = await asyncio.wait_for(self.reader.readexactly(2), TIMEOUT)
        n = b1 & 0x7F
        if n == 126:
            n = int.from_bytes(await self.reader.readexactly(2), "big")
        elif n == 127:
            n = int.from_bytes(await self.reader.readexactly(8), "big")
        return b0 & 0x0F, await self.reader.readexactly(n)

    async def close_code(self) -> int:
        """Read on to the server's close frame: its code."""
        while True:
            opcode, payload = await self.frame()
            if opcode == 0x8:
                return int.from_bytes(payload[:2], "big")

    def close(self) -> None:
        self.writer.close()


def bearer(account: Account) -> dict[str, str]:
    return {"Authorization": f"Bearer {account.token}"}


async def test_connections_are_native_and_idle_ones_run_no_task(ws_server: LiveServer) -> None:
    alice = await make_account(ws_server.services, "alice")
    clients = [await open_client(ws_server, alice) for _ in range(3)]
    writers = {type(c.writer) for c in ws_server.services.fanout.everyone}
    assert writers == {HubbubWebSocketProtocol}
    await clients[0].send(op="ping", nonce="p")
    await clients[0].expect("pong", nonce="p")
    await asyncio.sleep(0.05)
    assert not ws_server.uvicorn.server_state.tasks  # no task per connection while idle
    for c in clients:
        await c.close()


async def test_pings_and_fragmented_messages(ws_server: LiveServer) -> None:
    alice = await make_account(ws_server.services, "alice")
    client = await open_client(ws_server, alice)
    pong = await client.ws.ping(b"abc")
    await asyncio.wait_for(pong, TIMEOUT)
    await client.ws.send(['{"op": "pi', 'ng", "nonce"', ': "frag"}'])  # three frames
    await client.expect("pong", nonce="frag")
    await client.close()


async def test_framing_violations_close_with_their_codes(ws_server: LiveServer) -> None:
    alice = await make_account(ws_server.services, "alice")
    cases = [
        (lambda raw: raw.send(0x1, b"\xff\xfe"), 1007),  # not UTF-8
        (lambda raw: raw.send(0x1, b"{}", masked=False), 1002),
        (lambda raw: raw.send(0x3, b""), 1002),  # a reserved opcode
    ]
    for act, code in cases:
        raw, head = await Raw.open(ws_server.port, bearer(alice))
        assert head.startswith(b"HTTP/1.1 101 ")
        assert orjson.loads((await raw.frame())[1])["type"] == "ready"
        act(raw)
        assert await raw.close_code() == code
        raw.close()


async def test_a_client_close_is_answered_and_a_bad_version_refused(
    ws_server: LiveServer,
) -> None:
    alice = await make_account(ws_server.services, "alice")
    raw, _ = await Raw.open(ws_server.port, bearer(alice))
    await raw.frame()  # ready
    raw.send(0x8, (4000).to_bytes(2, "big") + b"bye")
    assert await raw.close_code() == 4000
    assert await raw.reader.read() == b""  # and the server closed the TCP connection
    raw.close()
    raw, head = await Raw.open(ws_server.port, bearer(alice), version="8")
    assert head.startswith(b"HTTP/1.1 426 ")
    raw.close()


async def test_keepalive_pings_and_closes_a_silent_peer(custom_server: Any) -> None:
    server: LiveServer = await custom_server(ws_ping_interval=0.3)
    alice = await make_account(server.services, "alice")
    answering = await open_client(server, alice)  # the library answers pings
    raw, _ = await Raw.open(server.port, bearer(alice))
    await raw.frame()  # ready
    opcode, payload = await raw.frame()
    assert opcode == 0x9 and len(payload) == 4  # a ping, not answered
    assert await raw.close_code() == 1011
    raw.close()
    await asyncio.sleep(0.8)
    await answering.send(op="ping", nonce="alive")
    await answering.expect("pong", nonce="alive")
    await answering.close()


async def test_other_websocket_paths_go_through_asgi(ws_server: LiveServer) -> None:
    alice = await make_account(ws_server.services, "alice")
    url = f"ws://127.0.0.1:{ws_server.port}/api/other"
    with pytest.raises(InvalidStatus) as info:
        async with connect(url, additional_headers=bearer(alice), open_timeout=TIMEOUT):
            pass
    assert info.value.response.status_code == 403  # Starlette: no such WebSocket route


async def test_base_path_and_forwarded_headers(custom_server: Any) -> None:
    server: LiveServer = await custom_server(
        base_path="/chat", trust_forwarded=True, trusted_proxies=["127.0.0.1"]
    )
    alice = await make_account(server.services, "alice")
    cookie = {"Cookie": f"hubbub_session={alice.cookie}"}
    for path in ("/chat/api/ws", "/api/ws"):  # a proxy that strips the prefix, or not
        raw, head = await Raw.open(server.port, bearer(alice), path=path)
        assert head.startswith(b"HTTP/1.1 101 "), head
        raw.close()
    raw, head = await Raw.open(server.port, bearer(alice), path="/chat/api/other")
    assert not head.startswith(b"HTTP/1.1 101 ")
    raw.close()
    # the browser's Origin is the proxy's public one, which the forwarded headers name
    proxied = {
        **cookie,
        "Origin": "https://chat.example.org",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "chat.example.org",
    }
    raw, head = await Raw.open(server.port, proxied, path="/chat/api/ws")
    assert head.startswith(b"HTTP/1.1 101 "), head
    raw.close()
    raw, head = await Raw.open(server.port, {**cookie, "Origin": "https://chat.example.org"})
    assert head.startswith(b"HTTP/1.1 403 ")
    assert b'"bad_origin"' in await raw.reader.read()
    raw.close()


async def test_untrusted_forwarded_headers_are_ignored(custom_server: Any) -> None:
    server: LiveServer = await custom_server(trust_forwarded=False)
    alice = await make_account(server.services, "alice")
    proxied = {
        "Cookie": f"hubbub_session={alice.cookie}",
        "Origin": "https://chat.example.org",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "chat.example.org",
    }
    raw, head = await Raw.open(server.port, proxied)
    assert head.startswith(b"HTTP/1.1 403 ")
    raw.close()


async def test_an_upgraded_connection_leaves_no_garbage_cycle(ws_server: LiveServer) -> None:
    """uvicorn's HTTP protocol and its parser are freed by reference counting
    after the hand-over (not left to the cyclic GC: fewer collections)."""
    import gc

    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    alice = await make_account(ws_server.services, "alice")
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for _ in range(5):
            raw, _ = await Raw.open(ws_server.port, bearer(alice))
            await raw.frame()  # ready
            raw.close()
        await asyncio.sleep(0.1)
        gc.collect()
        assert not [o for o in gc.garbage if isinstance(o, HttpToolsProtocol)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
