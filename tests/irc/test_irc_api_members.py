"""GET /api/conversations/{id}/irc-members against a real InspIRCd channel:
nicks with their prefixes, following joins and modes; others cannot read it."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from ircservers import IrcServer
from rawirc import RawIrc

from testenv import RunningServer, scaled

sys.path.insert(0, str(Path(__file__).parent.parent / "ws"))
from wshelp import make_account


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 15) -> Any:
    async with asyncio.timeout(scaled(timeout)):
        while True:
            result = await check()
            if result:
                return result
            await asyncio.sleep(0.1)


async def test_channel_members_with_prefixes_over_rest(
    inspircd: IrcServer, server: RunningServer
) -> None:
    ada = await make_account(server.services, "ada")
    eve = await make_account(server.services, "eve")
    auth = {"Authorization": f"Bearer {ada.token}"}
    async with (
        httpx.AsyncClient(base_url=server.url, headers=auth, timeout=10) as http,
        httpx.AsyncClient(
            base_url=server.url, headers={"Authorization": f"Bearer {eve.token}"}, timeout=10
        ) as other,
    ):
        r = await http.post(
            "/api/networks",
            json={
                "name": "real",
                "host": "127.0.0.1",
                "port": inspircd.port,
                "tls": False,
                "nick": "ada",
                "autojoin": ["#members"],
            },
        )
        assert r.status_code == 201, r.text
        network = r.json()

        async def channel() -> dict[str, Any] | None:
            convs = (await http.get("/api/conversations")).json()
            return next((c for c in convs if c["name"] == "#members"), None)

        conv = await eventually(channel)
        url = f"/api/conversations/{conv['id']}/irc-members"

        async def members(want: dict[str, str]) -> dict[str, Any] | None:
            r = await http.get(url)
            assert r.status_code == 200, r.text
            body: dict[str, Any] = r.json()
            got = {m["nick"]: m["prefixes"] for m in body["members"]}
            return body if got == want else None

        body = await eventually(lambda: members({"ada": "@"}))
        assert body["network"] == network["id"] and body["channel"] == "#members"
        assert body["state"] == "connected"

        bob = await RawIrc.connect(inspircd.port, "bob")
        try:
            await bob.send("JOIN #members")
            await bob.expect(lambda line: b" 366 " in line)
            body = await eventually(lambda: members({"ada": "@", "bob": ""}))
            assert [m["nick"] for m in body["members"]] == ["ada", "bob"]

            r = await http.post(
                f"/api/networks/{network['id']}/command",
                json={"command": "/mode +v bob", "conversation": conv["id"]},
            )
            assert r.status_code == 200, r.text
            await eventually(lambda: members({"ada": "@", "bob": "+"}))
            await bob.send("PART #members")
            await eventually(lambda: members({"ada": "@"}))
        finally:
            await bob.close()

        # another user, a missing conversation, a conversation that is not a channel
        r = await other.get(url)  # a private conversation is not revealed to others
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", r.text
        assert (await http.get("/api/conversations/999999/irc-members")).status_code == 404
        convs = (await http.get("/api/conversations")).json()
        buffer = next(c for c in convs if c["network"] == network["id"] and c["name"] == "*")
        r = await http.get(f"/api/conversations/{buffer['id']}/irc-members")
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"

        # documented in the OpenAPI schema
        schema = (await http.get("/api/openapi.json")).json()
        assert "/api/conversations/{conversation_id}/irc-members" in schema["paths"]
        assert "/api/networks/{network_id}/certificate" in schema["paths"]

        await http.post(f"/api/networks/{network['id']}/disconnect")
