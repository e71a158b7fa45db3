"""Away across processes: the process that runs a user's network sees the
user's browsers in every process (presence is global with Redis), so it is
away only when no browser is attached anywhere. PostgreSQL, Redis and a real
InspIRCd, as in test_irc_scaleout.py."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

from ircservers import IrcServer
from test_irc_scaleout import (  # noqa: F401  (pytest fixtures used by name)
    CHANNEL,
    Watcher,
    eventually,
    scaleout_settings,
)

from hubbub.app import build_services, close_services
from hubbub.config import Settings
from hubbub.core.model import NetworkKind
from testenv import RunningServer, scaled, start_server

sys.path.insert(0, str(Path(__file__).parent.parent / "ws"))
from wshelp import LiveServer, make_account, open_client


async def whois_away(bob: Watcher, nick: str) -> bool:
    """Whether WHOIS of ``nick`` says away (a 301 before its 318)."""
    mark = len(bob.lines)
    await bob.send(f"WHOIS {nick}")
    await eventually(lambda: bob.seen(rf" 318 bob {nick} ", mark))
    return bool(bob.seen(rf" 301 bob {nick} ", mark))


async def test_away_follows_the_browsers_of_every_process(
    inspircd: IrcServer,
    scaleout_settings: Settings,  # noqa: F811 (the fixture imported above)
) -> None:
    settings = scaleout_settings.model_copy(update={"presence_grace": 0.3})
    bob = await Watcher.join(inspircd.port, "bob", CHANNEL)
    a = await build_services(settings)
    b = await build_services(settings)
    web: RunningServer | None = None
    try:
        ada = await make_account(a, "ada")
        network = await a.store.create_network(
            ada.user.id,
            kind=NetworkKind.IRC,
            name="test",
            config={
                "host": "127.0.0.1",
                "port": inspircd.port,
                "tls": False,
                "nick": "ada",
                "autojoin": [CHANNEL],
                "channels": [],
                "enabled": False,
            },
        )
        await a.irc.connect(network.id)
        assert a.irc.runs(network.id)
        await eventually(lambda: bob.seen(rf"^:ada!\S+ JOIN :?{re.escape(CHANNEL)}$"), timeout=15)
        # no browser anywhere: away
        assert await eventually(lambda: whois_away(bob, "ada"))

        # a browser on the process that does NOT run the network: back
        web = await start_server(b)
        ws = await open_client(LiveServer(b, web.port), ada)

        async def back() -> bool:
            return not await whois_away(bob, "ada")

        assert await eventually(back)
        await asyncio.sleep(scaled(1))  # well past the grace: still back
        assert not await whois_away(bob, "ada")

        # it leaves: away again, after the grace period
        await ws.close()
        assert await eventually(lambda: whois_away(bob, "ada"))
    finally:
        if web is not None:
            web.uvicorn.should_exit = True
            await asyncio.wait_for(web.task, scaled(15))
        await close_services(b)
        await close_services(a)
        bob.writer.close()
