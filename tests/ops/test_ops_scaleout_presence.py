"""Presence across processes (Redis): a user is online while any process has a
session of theirs, and every process knows who is online anywhere.

Two (or three) ``build_services`` instances share one Redis and one database,
as several processes do; short grace and heartbeat settings keep this fast.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable

import orjson
import pytest
from websockets.asyncio.client import connect

from hubbub.app import build_services, close_services
from hubbub.bus.presence import RedisPresence
from hubbub.config import Settings
from hubbub.core.events import Event, Scope
from hubbub.core.model import User
from hubbub.web.deps import Services
from testenv import scaled, start_server

GRACE = 0.2
TTL = 0.6  # heartbeat every 0.2 s; a dead process is reaped within about 0.8 s


@pytest.fixture
def presence_settings(make_settings: Callable[..., Settings], redis_url: str) -> Settings:
    return make_settings(
        redis_url=redis_url,
        redis_channel=f"hubbub-test:{uuid.uuid4().hex}",
        irc_enabled=False,
        presence_grace=GRACE,
        presence_ttl=TTL,
    )


@pytest.fixture
async def processes(presence_settings: Settings) -> AsyncIterator[list[Services]]:
    """Start more with ``processes.append(await build_services(settings))``."""
    started = [await build_services(presence_settings)]
    started.append(await build_services(presence_settings))
    try:
        yield started
    finally:
        for services in started:
            await close_services(services)


class Statuses:
    """The presence events one process receives, as (user id, status)."""

    def __init__(self, services: Services) -> None:
        self.seen: list[tuple[int, str]] = []
        services.bus.add_listener(self._on_event)

    def _on_event(self, event: Event) -> None:
        if event.scope is Scope.ALL and event.payload.startswith(b'{"type":"presence"'):
            body = orjson.loads(event.payload)
            self.seen.append((body["user_id"], body["status"]))

    def of(self, user: User) -> list[str]:
        return [status for uid, status in self.seen if uid == user.id]

    async def wait_for(self, user: User, statuses: list[str], within: float) -> None:
        async with asyncio.timeout(scaled(within)):
            while self.of(user) != statuses:
                await asyncio.sleep(0.01)


def registry(services: Services) -> RedisPresence:
    found = services.hub.presence.registry
    assert isinstance(found, RedisPresence)
    return found


async def test_offline_only_when_the_last_process_lets_go(processes: list[Services]) -> None:
    a, b = processes
    heard = Statuses(a)
    alice = await a.accounts.register("alice", "long enough pw", trusted=True)
    await a.hub.connected(alice)
    await heard.wait_for(alice, ["online"], 5)
    await b.hub.connected(alice)
    async with asyncio.timeout(scaled(5)):  # b hears of her from a too
        while not (b.hub.is_online(alice.id) and alice.id in b.hub.online_user_ids()):
            await asyncio.sleep(0.01)

    await a.hub.disconnected(alice)  # her socket on a closes; she is still on b
    await asyncio.sleep(GRACE + 0.3)
    assert heard.of(alice) == ["online"]
    assert a.hub.is_online(alice.id)
    assert alice.id in a.hub.online_user_ids()

    await b.hub.disconnected(alice)  # the last one: offline, once, after the grace
    await asyncio.sleep(GRACE / 2)
    assert heard.of(alice) == ["online"]
    await heard.wait_for(alice, ["online", "offline"], 5)
    async with asyncio.timeout(scaled(5)):
        while a.hub.is_online(alice.id) or b.hub.is_online(alice.id):
            await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)
    assert heard.of(alice) == ["online", "offline"]
    assert alice.id not in a.hub.online_user_ids() + b.hub.online_user_ids()


async def test_reconnect_to_another_process_within_the_grace(processes: list[Services]) -> None:
    """A restart behind a balancer: the socket closes on a, opens on b."""
    a, b = processes
    heard = Statuses(b)
    bob = await a.accounts.register("bob", "long enough pw", trusted=True)
    await a.hub.connected(bob)
    await heard.wait_for(bob, ["online"], 5)
    await a.hub.disconnected(bob)
    await b.hub.connected(bob)
    await asyncio.sleep(GRACE + 0.4)
    assert heard.of(bob) == ["online"]
    assert a.hub.is_online(bob.id) and b.hub.is_online(bob.id)


async def test_a_process_started_later_sees_who_is_online_in_ready(
    processes: list[Services], presence_settings: Settings
) -> None:
    a, _ = processes
    alice = await a.accounts.register("alice", "long enough pw", trusted=True)
    bob = await a.accounts.register("bob", "long enough pw", trusted=True)
    heard = Statuses(a)
    await a.hub.connected(alice)
    await heard.wait_for(alice, ["online"], 5)

    late = await build_services(presence_settings)
    processes.append(late)
    assert late.hub.is_online(alice.id)  # read at start, before any event about her
    server = await start_server(late)
    try:
        token, _ = await late.accounts.create_token(bob, "test")
        async with connect(
            server.ws_url, additional_headers={"Authorization": f"Bearer {token}"}
        ) as ws:
            ready = orjson.loads(await ws.recv())
            assert ready["type"] == "ready"
            assert alice.id in ready["online"]
        await a.hub.disconnected(alice)  # the late process follows the events from then on
        async with asyncio.timeout(scaled(5)):
            while late.hub.is_online(alice.id):
                await asyncio.sleep(0.01)
    finally:
        await server.stop()


async def test_users_of_a_dead_process_go_offline(processes: list[Services]) -> None:
    a, b = processes
    heard = Statuses(b)
    alice = await a.accounts.register("alice", "long enough pw", trusted=True)
    bob = await a.accounts.register("bob", "long enough pw", trusted=True)
    await a.hub.connected(alice)
    await a.hub.connected(bob)
    await b.hub.connected(alice)  # alice is on both; bob only on a
    await heard.wait_for(bob, ["online"], 5)
    await heard.wait_for(alice, ["online"], 5)

    # a stops without a word: no heartbeat, no drop, no close
    for task in registry(a)._tasks:
        task.cancel()
    died = asyncio.get_running_loop().time()
    await heard.wait_for(bob, ["online", "offline"], TTL * 4 / 3 + 2)
    took = asyncio.get_running_loop().time() - died
    assert took < scaled(TTL * 4 / 3 + 0.5), took
    assert not b.hub.is_online(bob.id)
    assert b.hub.is_online(alice.id)
    await asyncio.sleep(TTL)
    assert heard.of(alice) == ["online"]  # still on b
    assert heard.of(bob) == ["online", "offline"]  # reaped once, whoever reaps


async def test_a_process_stopped_cleanly_lets_its_users_go_after_the_grace(
    processes: list[Services],
) -> None:
    a, b = processes
    heard = Statuses(b)
    carol = await a.accounts.register("carol", "long enough pw", trusted=True)
    await a.hub.connected(carol)
    await heard.wait_for(carol, ["online"], 5)
    await a.hub.disconnected(carol)  # the shutdown closed her socket
    await close_services(a)
    processes.remove(a)
    await heard.wait_for(carol, ["online", "offline"], GRACE + TTL / 3 + 2)
    assert not b.hub.is_online(carol.id)


async def test_the_online_set_is_read_again_now_and_then(
    presence_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An event missed (the bus's subscription was down) is corrected by the next read."""
    import hubbub.bus.presence

    monkeypatch.setattr(hubbub.bus.presence, "_RESYNC_EVERY", 2)
    a = await build_services(presence_settings)
    try:
        dave = await a.accounts.register("dave", "long enough pw", trusted=True)
        a.hub.presence._global.add(12345)  # an "online" whose "offline" never came
        await a.hub.connected(dave)
        a.hub.presence._global.discard(dave.id)  # an "online" that never came
        async with asyncio.timeout(scaled(5)):
            while a.hub.is_online(12345) or dave.id not in a.hub.presence._global:
                await asyncio.sleep(0.02)
    finally:
        await close_services(a)


async def test_users_of_a_killed_process_go_offline(
    processes: list[Services], presence_settings: Settings
) -> None:
    """``hubbub serve`` killed with SIGKILL: nothing said goodbye, the heartbeat expires."""
    import os
    import signal
    import socket
    import subprocess
    import sys

    import httpx

    b = processes[1]
    heard = Statuses(b)
    erin = await b.accounts.register("erin", "long enough pw", trusted=True)
    token, _ = await b.accounts.create_token(erin, "test")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("HUBBUB_")}
    env.update(
        HUBBUB_DATA_DIR=str(presence_settings.data_dir),
        HUBBUB_REDIS_URL=presence_settings.redis_url,
        HUBBUB_REDIS_CHANNEL=presence_settings.redis_channel,
        HUBBUB_PRESENCE_GRACE=str(GRACE),
        HUBBUB_PRESENCE_TTL=str(TTL),
        HUBBUB_IRC_ENABLED="false",
        HUBBUB_ACCESS_LOG="false",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "hubbub", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            async with asyncio.timeout(scaled(20)):
                while True:
                    assert proc.poll() is None, "hubbub serve exited"
                    try:
                        if (await client.get("/api/health")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    await asyncio.sleep(0.02)
        async with connect(
            f"ws://127.0.0.1:{port}/api/ws",
            additional_headers={"Authorization": f"Bearer {token}"},
        ) as ws:
            assert orjson.loads(await ws.recv())["type"] == "ready"
            await heard.wait_for(erin, ["online"], 5)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            died = asyncio.get_running_loop().time()
            await heard.wait_for(erin, ["online", "offline"], TTL * 4 / 3 + 2)
            took = asyncio.get_running_loop().time() - died
            assert took < scaled(TTL * 4 / 3 + 0.5), took
            assert not b.hub.is_online(erin.id)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
