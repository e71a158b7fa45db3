"""Helpers for WebSocket tests: users with credentials, and a small JSON client."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect

from hubbub.core.model import User
from hubbub.web.deps import Services
from testenv import scaled

PASSWORD = "correct horse battery"
TIMEOUT = scaled(10.0)


@dataclass
class LiveServer:
    services: Services
    port: int
    uvicorn: Any = None  # the HubbubServer: set should_exit to stop it

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/api/ws"


@dataclass
class Account:
    user: User
    token: str
    cookie: str
    session_id: str


_names = itertools.count(1)


async def make_account(services: Services, name: str | None = None) -> Account:
    name = name or f"user{next(_names)}"
    user = await services.accounts.register(name, PASSWORD, trusted=True)
    token, _ = await services.accounts.create_token(user, "test")
    cookie, session = await services.accounts.start_session(user, "127.0.0.1", "pytest")
    return Account(user, token, cookie, session.id)


@dataclass
class Client:
    """A JSON-speaking WebSocket client that remembers the last seq per conversation."""

    ws: ClientConnection
    ready: dict[str, Any]
    positions: dict[int, int] = field(default_factory=dict)
    seen: list[tuple[int, int]] = field(default_factory=list)  # (conversation, seq) in order

    async def send(self, **frame: Any) -> None:
        await self.ws.send(orjson.dumps(frame).decode())

    async def recv(self, timeout: float = TIMEOUT) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.ws.recv(), timeout)
        frame: dict[str, Any] = orjson.loads(raw)
        if frame.get("type") == "message":
            self.seen.append((frame["conversation"], frame["seq"]))
            self.positions[frame["conversation"]] = frame["seq"]
        return frame

    async def expect(self, type_: str, timeout: float = TIMEOUT, **match: Any) -> dict[str, Any]:
        """The next frame of ``type_`` (matching ``match``), skipping others."""
        async with asyncio.timeout(timeout):
            while True:
                frame = await self.recv()
                if frame.get("type") == type_ and all(frame.get(k) == v for k, v in match.items()):
                    return frame

    async def resume(self, positions: dict[int, int] | None = None) -> dict[str, Any]:
        await self.send(op="resume", positions={str(k): v for k, v in (positions or {}).items()})
        return await self.expect("resumed")

    async def close(self) -> None:
        await self.ws.close()


async def open_client(
    server: LiveServer,
    account: Account,
    *,
    bearer: bool = True,
    resume: dict[int, int] | None = None,
    do_resume: bool = True,
    **kwargs: Any,
) -> Client:
    headers = (
        {"Authorization": f"Bearer {account.token}"}
        if bearer
        else {"Cookie": f"hubbub_session={account.cookie}", "Origin": server.origin}
    )
    # An unread queue pauses reading, and then a close cannot see the server's
    # answer: tests that do not read everything would wait out close_timeout.
    kwargs.setdefault("max_queue", None)
    ws = await connect(server.url, additional_headers=headers, open_timeout=TIMEOUT, **kwargs)
    ready = orjson.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
    assert ready["type"] == "ready", ready
    client = Client(ws, ready)
    for c in ready["conversations"]:
        client.positions[c["id"]] = c["last_seq"]
    if do_resume:
        positions = dict(client.positions)
        positions.update(resume or {})
        if resume is not None:
            client.positions.update(resume)
        await client.resume(positions)
    return client
