"""A plain IRC client on a raw socket, and helpers to wait on a Connection's events."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from hubbub.irc.connection import Connection, ConnectionEvent
from testenv import scaled


class RawIrc:
    """Just enough of a client to talk to our Connection through a real server."""

    def __init__(self) -> None:
        self.lines: list[bytes] = []
        self.reader: asyncio.StreamReader
        self.writer: asyncio.StreamWriter

    @classmethod
    async def connect(cls, port: int, nick: str) -> RawIrc:
        self = cls()
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", port)
        await self.send(f"NICK {nick}", f"USER {nick} 0 * :{nick}")
        await self.expect(lambda line: b" 001 " in line)
        return self

    async def send(self, *lines: str | bytes) -> None:
        for line in lines:
            data = line.encode() if isinstance(line, str) else line
            self.writer.write(data + b"\r\n")
        await self.writer.drain()

    async def expect(self, match: Callable[[bytes], bool], timeout: float = 10) -> bytes:
        """The first line (seen since the last expect) that matches; PINGs answered."""
        for i, line in enumerate(self.lines):
            if match(line):
                del self.lines[: i + 1]
                return line
        async with asyncio.timeout(scaled(timeout)):
            while True:
                raw = await self.reader.readline()
                if not raw:
                    raise ConnectionError("server closed the raw client")
                line = raw.rstrip(b"\r\n")
                if line.startswith(b"PING"):
                    await self.send(b"PONG" + line[4:])
                    continue
                if match(line):
                    self.lines.clear()
                    return line
                self.lines.append(line)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


class EventLog:
    """Everything a Connection emitted, and a way to wait for the next match."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.seen: list[ConnectionEvent] = []
        self._cursor = 0

    async def wait(self, match: Callable[[Any], bool], timeout: float = 10) -> Any:
        async with asyncio.timeout(scaled(timeout)):
            while True:
                while self._cursor < len(self.seen):
                    event = self.seen[self._cursor]
                    self._cursor += 1
                    if match(event):
                        return event
                self.seen.append(await self.conn.next_event())
