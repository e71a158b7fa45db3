"""A scripted fake IRCv3 server, for what InspIRCd and ngircd do not offer here:
SASL without services, draft/chathistory, odd replies and garbage.

Each accepted connection runs the next coroutine of the script with a
:class:`Peer`; the test asserts on what the client sent, line by line.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Awaitable, Callable

from testenv import scaled

Script = Callable[["Peer"], Awaitable[None]]


class Peer:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.received: list[str] = []

    async def line(self, timeout: float = 5) -> str:
        async with asyncio.timeout(scaled(timeout)):
            raw = await self.reader.readline()
        if not raw:
            raise ConnectionError("client closed")
        text = raw.decode("utf-8", "replace").rstrip("\r\n")
        self.received.append(text)
        return text

    async def expect(self, start: str, timeout: float = 5) -> str:
        """Read until a line that starts with ``start`` (after any tags); return it."""
        while True:
            text = await self.line(timeout)
            body = text.split(" ", 1)[1] if text.startswith("@") else text
            if body.startswith(start):
                return text

    async def send(self, *lines: str | bytes) -> None:
        for line in lines:
            data = line.encode() if isinstance(line, str) else line
            self.writer.write(data if data.endswith(b"\n") and data != b"\n" else data + b"\r\n")
        await self.writer.drain()

    async def register(self, nick: str = "hubbub", caps: str = "") -> list[str]:
        """Answer CAP LS with ``caps``, ACK every request, and welcome the client."""
        await self.expect("CAP LS")
        await self.send(f":fake CAP * LS :{caps}")
        acked: list[str] = []
        if caps:
            while True:
                text = await self.line()
                if text.startswith("CAP REQ"):
                    wanted = text.split(" ", 2)[2].lstrip(":")
                    acked += wanted.split()
                    await self.send(f":fake CAP * ACK :{wanted}")
                elif text.startswith("CAP END"):
                    break
        await self.welcome(nick)
        return acked

    async def welcome(self, nick: str = "hubbub") -> None:
        await self.send(
            f":fake 001 {nick} :Welcome to the fake network",
            f":fake 005 {nick} CHANTYPES=# PREFIX=(ov)@+ CHATHISTORY=100 :are supported",
            f":fake 422 {nick} :MOTD File is missing",
        )

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await self.writer.wait_closed()


class FakeServer:
    def __init__(self, scripts: list[Script], ssl_context: ssl.SSLContext | None = None) -> None:
        self.scripts = list(scripts)
        self.ssl_context = ssl_context
        self.connections = 0
        self.errors: list[BaseException] = []
        self.done = asyncio.Event()
        self.peers: list[Peer] = []
        self._server: asyncio.Server | None = None
        self.port = 0

    async def __aenter__(self) -> FakeServer:
        self._server = await asyncio.start_server(
            self._handle, "127.0.0.1", 0, ssl=self.ssl_context
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for peer in self.peers:
            await peer.close()
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        index = self.connections
        self.connections += 1
        peer = Peer(reader, writer)
        self.peers.append(peer)
        if index >= len(self.scripts):
            await peer.close()
            return
        try:
            await self.scripts[index](peer)
        except Exception as exc:  # the test reports it
            self.errors.append(exc)
        finally:
            if index == len(self.scripts) - 1:
                self.done.set()
