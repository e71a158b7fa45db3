"""Scale-out: two Hubbub processes on one PostgreSQL and one Redis, a real InspIRCd.

Each network is connected by exactly one process (the holder of its Redis
lease); the other forwards sends and commands to it and answers reads from
the state it shares; when the owner goes away without releasing its lease,
the other takes the network over once the lease expires. A raw IRC client in
the channel counts what the IRC side sees.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import sqlalchemy as sa
from ircservers import IrcServer

from hubbub.app import build_services, close_services, create_app
from hubbub.config import Settings
from hubbub.core.model import MessageKind, NetworkKind
from hubbub.irc.cluster import RedisCluster
from hubbub.irc.policy import IrcNotConnected, IrcUnavailable
from hubbub.store import open_store
from hubbub.web.deps import Services
from testenv import RunningServer, scaled, start_server

sys.path.insert(0, str(Path(__file__).parent.parent / "ws"))
from wshelp import Account, LiveServer, open_client

LEASE = 1.5  # seconds: short, so a takeover is quick to test
CHANNEL = "#scale"


async def eventually(check: Callable[[], Awaitable[Any] | Any], timeout: float = 10) -> Any:
    """The first truthy result of ``check()``, polled."""
    async with asyncio.timeout(scaled(timeout)):
        while True:
            result = check()
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return result
            await asyncio.sleep(0.05)


class Watcher:
    """A raw IRC client in the channel that keeps every line it gets."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.lines: list[str] = []
        self.task = asyncio.create_task(self._read())

    @classmethod
    async def join(cls, port: int, nick: str, channel: str) -> Watcher:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        self = cls(reader, writer)
        await self.send(f"NICK {nick}", f"USER {nick} 0 * :{nick}")
        await eventually(lambda: self.seen(r" 001 "))
        await self.send(f"JOIN {channel}")
        await eventually(lambda: self.seen(rf" 366 {nick} {re.escape(channel)} "))
        return self

    async def _read(self) -> None:
        while raw := await self.reader.readline():
            line = raw.rstrip(b"\r\n").decode(errors="replace")
            if line.startswith("PING"):
                await self.send("PONG" + line[4:])
            self.lines.append(line)

    async def send(self, *lines: str) -> None:
        for line in lines:
            self.writer.write(line.encode() + b"\r\n")
        await self.writer.drain()

    def seen(self, pattern: str, since: int = 0) -> list[str]:
        return [line for line in self.lines[since:] if re.search(pattern, line)]

    async def close(self) -> None:
        self.task.cancel()
        self.writer.close()


@pytest.fixture
async def scaleout_settings(
    make_settings: Callable[..., Settings], pg_database: str, redis_url: str
) -> AsyncIterator[Settings]:
    settings = make_settings(
        database_url=pg_database,
        redis_url=redis_url,
        redis_channel=f"hubbub-test:{uuid.uuid4().hex}",
        irc_secret_key="A" * 43,
        irc_lease_seconds=LEASE,
        irc_request_timeout=scaled(3),
    )
    yield settings
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(redis_url)
    try:  # the shared states and member lists outlive the processes: drop them
        keys = [k async for k in client.scan_iter(f"{settings.redis_channel}:irc:*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


async def add_network(services: Services, port: int, nick: str = "ada") -> tuple[int, Any]:
    user = await services.accounts.register(nick, "long enough pw", trusted=True)
    network = await services.store.create_network(
        user.id,
        kind=NetworkKind.IRC,
        name="test",
        config={
            "host": "127.0.0.1",
            "port": port,
            "tls": False,
            "nick": nick,
            "autojoin": [CHANNEL],
            "channels": [],
            "enabled": False,
        },
    )
    return network.id, user


def hubbub_joins(watcher: Watcher, nick: str = "ada") -> list[str]:
    """JOIN lines of Hubbub's nick (or an alternative of it: ada_, ada1 …)."""
    return watcher.seen(rf"^:{nick}[_0-9]*!\S+ JOIN :?{re.escape(CHANNEL)}$")


async def test_one_owner_sends_and_commands_through_the_other_and_takeover(
    inspircd: IrcServer, scaleout_settings: Settings
) -> None:
    bob = await Watcher.join(inspircd.port, "bob", CHANNEL)
    a = await build_services(scaleout_settings)
    b = await build_services(scaleout_settings)
    http: httpx.AsyncClient | None = None
    web: RunningServer | None = None
    closed_a = False
    try:
        nid, ada = await add_network(a, inspircd.port)
        await a.irc.connect(nid)
        owner, other = (a, b) if a.irc.runs(nid) else (b, a)
        assert owner.irc.runs(nid) and not other.irc.runs(nid)
        # REST on the process that does not run the network (in-process ASGI: the API
        # is under test, not the sockets)
        transport = httpx.ASGITransport(app=create_app(other))
        http = httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1", timeout=10)
        await eventually(lambda: hubbub_joins(bob), timeout=15)

        # the other process knows the state and the channel, from what the owner shared
        await eventually(lambda: other.irc.state(nid)["state"] == "connected")
        assert other.irc.state(nid)["nick"] == "ada"
        conversation = await eventually(lambda: a.store.find_network_conversation(nid, CHANNEL))
        cid = conversation.id
        await eventually(lambda: other.irc.handles(cid))
        await eventually(lambda: {"ada", "bob"} <= {m["nick"] for m in other.irc.members(cid)})

        # several claim rounds later, still one connection: one JOIN, one nick in NAMES
        await asyncio.sleep(LEASE * 2)
        mark = len(bob.lines)
        await bob.send(f"NAMES {CHANNEL}")
        names = await eventually(lambda: bob.seen(rf" 353 bob . {re.escape(CHANNEL)} :", mark))
        nicks = {n.lstrip("@+%~&") for n in names[-1].split(":", 2)[2].split()}
        assert nicks == {"ada", "bob"}, names
        assert len(hubbub_joins(bob)) == 1
        assert owner.irc.runs(nid) and not other.irc.runs(nid)

        # a message sent through the other process: committed once, on IRC once
        token, _ = await other.accounts.create_token(ada, "test")
        http.headers["Authorization"] = f"Bearer {token}"
        r = await http.post(  # over REST, like a browser
            f"/api/conversations/{cid}/messages", json={"text": "hello from b", "nonce": "n1"}
        )
        assert r.status_code in (200, 201), r.text
        await eventually(lambda: bob.seen(rf"PRIVMSG {re.escape(CHANNEL)} :hello from b$"))
        # the echo comes back to the owner, and is not stored a second time
        await eventually(lambda: stored_meta(owner, cid, "hello from b"))
        await asyncio.sleep(0.5)
        assert len(bob.seen("hello from b")) == 1
        stored = [m for m in await owner.store.history(cid, limit=100) if m.text == "hello from b"]
        assert len(stored) == 1 and stored[0].kind is MessageKind.TEXT
        assert await rows_with_text(scaleout_settings, "hello from b") == 1  # the table itself

        # the same over a WebSocket of the other process: acked, on IRC once, stored once
        web = await start_server(other)
        secret, session = await other.accounts.start_session(ada, "127.0.0.1", "pytest")
        ws = await open_client(LiveServer(other, web.port), Account(ada, token, secret, session.id))
        await ws.send(op="send", nonce="w1", conversation=cid, text="hello over the socket")
        ack = await ws.expect("ack", nonce="w1")
        assert ack["conversation"] == cid
        await eventually(lambda: bob.seen(rf"PRIVMSG {re.escape(CHANNEL)} :hello over the socket$"))
        await ws.close()
        await eventually(lambda: stored_meta(owner, cid, "hello over the socket"))
        assert await rows_with_text(scaleout_settings, "hello over the socket") == 1
        assert len(bob.seen("hello over the socket")) == 1

        # a command through the other process, run by the owner
        result = await other.irc.command(nid, "/msg bob psst from the command", cid)
        assert result == {"done": "msg"}
        await eventually(lambda: bob.seen(r"PRIVMSG bob :psst from the command$"))
        r = await http.post(
            f"/api/networks/{nid}/command",
            json={"command": "/me waves from b", "conversation": cid},
        )
        assert r.status_code == 200, r.text
        assert r.json() == {"done": "me"}
        await eventually(
            lambda: bob.seen(rf"PRIVMSG {re.escape(CHANNEL)} :\x01ACTION waves from b\x01$")
        )
        r = await http.get(f"/api/networks/{nid}")
        assert r.json()["state"] == "connected" and r.json()["current_nick"] == "ada"
        r = await http.get(f"/api/conversations/{cid}/irc-members")
        assert r.status_code == 200, r.text
        assert {m["nick"] for m in r.json()["members"]} == {"ada", "bob"}
        assert "hubbub_irc_networks_running 0.0" in (await http.get("/metrics")).text
        assert owner.irc.running_count() == 1

        # the owner goes away without releasing its lease (as if it died):
        # the other takes over once the lease has expired, and connects once
        async def no_release(network_id: int) -> None:
            pass

        owner.irc.cluster.release = no_release  # type: ignore[method-assign]
        gone = time.monotonic()
        await close_services(owner)
        if owner is a:
            closed_a = True
        await eventually(lambda: bob.seen(r"^:ada!\S+ QUIT"))
        await eventually(lambda: len(hubbub_joins(bob)) == 2, timeout=LEASE * 2 + 10)
        took = time.monotonic() - gone
        assert other.irc.runs(nid)
        assert took >= LEASE / 2, f"taken over after {took:.2f}s, before the lease expired"
        assert took <= scaled(LEASE + LEASE / 3 + 5), f"taken over after {took:.2f}s"
        assert "hubbub_irc_networks_running 1.0" in (await http.get("/metrics")).text
        await eventually(lambda: other.irc.state(nid)["state"] == "connected")
        await other.hub.post(ada, cid, "after the takeover")
        await eventually(lambda: bob.seen(rf"PRIVMSG {re.escape(CHANNEL)} :after the takeover$"))
        print(f"takeover after {took:.2f}s (lease {LEASE}s)")
    finally:
        if http is not None:
            await http.aclose()
        if web is not None:
            await web.stop()
        await bob.close()
        if not closed_a:
            await close_services(a)
        await close_services(b)


async def test_query_renamed_and_unanswered_send_through_the_other_process(
    inspircd: IrcServer, scaleout_settings: Settings
) -> None:
    """A query renamed on the owner (its peer's NICK) is known by its new name in
    the other process, whose sends reach the new nick; a send through the other
    process that the owner does not answer is marked "maybe not sent"."""
    bob = await Watcher.join(inspircd.port, "bob", CHANNEL)
    a = await build_services(scaleout_settings)
    b = await build_services(scaleout_settings)
    try:
        nid, ada = await add_network(a, inspircd.port)
        await a.irc.connect(nid)
        owner, other = (a, b) if a.irc.runs(nid) else (b, a)
        await eventually(lambda: hubbub_joins(bob), timeout=15)
        await eventually(lambda: other.irc.state(nid)["state"] == "connected")
        channel = await eventually(lambda: a.store.find_network_conversation(nid, CHANNEL))

        await bob.send("PRIVMSG ada :hi from bob")
        query = await eventually(lambda: a.store.find_network_conversation(nid, "bob"))
        await eventually(lambda: other.irc.handles(query.id))
        await bob.send("NICK robert")
        await eventually(lambda: other.irc._conversations.get(query.id) == (nid, "robert"))
        renamed = await a.store.find_network_conversation(nid, "robert")
        assert renamed is not None and renamed.id == query.id
        await other.hub.post(ada, query.id, "to the new nick")
        await eventually(lambda: bob.seen(r"PRIVMSG robert :to the new nick$"))

        async def silent(body: dict[str, Any]) -> None:  # the owner never answers
            return None

        owner.irc.cluster._serve = silent  # type: ignore[attr-defined]
        with pytest.raises(IrcUnavailable):
            await other.hub.post(ada, channel.id, "into the void")
        history = await a.store.history(channel.id, limit=50)
        (sent,) = [m for m in history if m.text == "into the void"]
        (note,) = [m for m in history if (m.meta or {}).get("not_sent") is not None]
        assert note.meta == {"not_sent": sent.seq, "reason": "irc_unavailable", "maybe": True}
        assert note.kind is MessageKind.SYSTEM
    finally:
        await bob.close()
        await close_services(a)
        await close_services(b)


async def rows_with_text(settings: Settings, text: str) -> int:
    """Messages with this text in the PostgreSQL table, past every cache."""
    dsn = sa.make_url(settings.database_url).set(drivername="postgresql")
    conn = await asyncpg.connect(dsn.render_as_string(hide_password=False))
    try:
        return int(await conn.fetchval("SELECT count(*) FROM messages WHERE text = $1", text))
    finally:
        await conn.close()


async def store_of_channel(settings: Settings, network_id: int) -> int | None:
    """The id of the channel's conversation in the PostgreSQL table, once it is there."""
    dsn = sa.make_url(settings.database_url).set(drivername="postgresql")
    conn = await asyncpg.connect(dsn.render_as_string(hide_password=False))
    try:
        sql = "SELECT id FROM conversations WHERE network_id = $1 AND name = $2"
        found = await conn.fetchval(sql, network_id, CHANNEL)
        return None if found is None else int(found)
    finally:
        await conn.close()


async def stored_meta(services: Services, cid: int, text: str) -> bool:
    """Whether the stored message got the echo's msgid (the owner matched the echo)."""
    found = [m for m in await services.store.history(cid, limit=100) if m.text == text]
    return bool(found) and bool((found[0].meta or {}).get("msgid"))


async def test_disconnect_and_connect_through_the_other_and_clean_handover(
    inspircd: IrcServer, scaleout_settings: Settings
) -> None:
    bob = await Watcher.join(inspircd.port, "bob", CHANNEL)
    a = await build_services(scaleout_settings)
    b = await build_services(scaleout_settings)
    closed = set()
    try:
        nid, _ = await add_network(a, inspircd.port)
        await a.irc.connect(nid)
        owner, other = (a, b) if a.irc.runs(nid) else (b, a)
        await eventually(lambda: hubbub_joins(bob), timeout=15)
        await eventually(lambda: other.irc.state(nid)["state"] == "connected")

        # disconnect asked of the process that does not run it: the owner QUITs
        await other.irc.disconnect(nid)
        await eventually(lambda: bob.seen(r"^:ada!\S+ QUIT"))
        await eventually(lambda: not owner.irc.runs(nid))
        await eventually(lambda: other.irc.state(nid)["state"] == "disconnected")
        conversation = await eventually(lambda: a.store.find_network_conversation(nid, CHANNEL))
        with pytest.raises(IrcNotConnected):
            await other.irc.command(nid, "/msg bob hello", conversation.id)
        await asyncio.sleep(LEASE)  # claim rounds: nobody connects a disabled network
        assert not a.irc.runs(nid) and not b.irc.runs(nid)

        # connect through it: exactly one process connects
        await other.irc.connect(nid)
        await eventually(lambda: len(hubbub_joins(bob)) == 2, timeout=15)
        await asyncio.sleep(LEASE)
        assert a.irc.runs(nid) != b.irc.runs(nid)
        assert len(hubbub_joins(bob)) == 2
        owner, other = (a, b) if a.irc.runs(nid) else (b, a)

        # an edit saved through the process that does not run it: the owner reconnects
        network = await other.store.get_network(nid)
        assert network is not None
        await other.store.update_network(nid, config={**network.config, "nick": "ada2"})
        await other.irc.reload(nid)
        await eventually(lambda: bob.seen(rf"^:ada2!\S+ JOIN :?{re.escape(CHANNEL)}$"))
        assert owner.irc.runs(nid) and not other.irc.runs(nid)
        await eventually(lambda: other.irc.state(nid)["nick"] == "ada2")

        # a clean shutdown releases the lease: the other takes over at its next round
        gone = time.monotonic()
        await close_services(owner)
        closed.add(id(owner))
        await eventually(lambda: len(hubbub_joins(bob)) == 4, timeout=10)
        took = time.monotonic() - gone
        assert other.irc.runs(nid)
        assert took <= scaled(LEASE / 3 + 5), f"taken over after {took:.2f}s"
    finally:
        await bob.close()
        for services in (a, b):
            if id(services) not in closed:
                await close_services(services)


async def test_leases_and_requests_between_two_nodes(redis_url: str) -> None:
    prefix = f"hubbub-test:{uuid.uuid4().hex}"
    one = RedisCluster(redis_url, prefix, lease_seconds=0.6, request_timeout=scaled(0.5))
    two = RedisCluster(redis_url, prefix, lease_seconds=0.6, request_timeout=scaled(0.5))
    served: list[dict[str, Any]] = []

    async def serve(body: dict[str, Any]) -> Any:
        served.append(body)
        if body["op"] == "fail":
            raise IrcNotConnected("not here")
        return {"echo": body["x"]}

    async def resync() -> None:
        pass

    await one.start(serve, lambda body: None, resync)
    await two.start(serve, lambda body: None, resync)
    try:
        assert await one.acquire(7)
        assert not await two.acquire(7)
        assert one.paused_until == two.paused_until == 0
        assert await one.acquire(7)  # ours already: renewed
        assert await two.holder(7) == one.node
        assert await two.renew([7]) == set()  # held by the other: not renewed, not taken
        assert await two.holder(7) == one.node
        assert await two.request(one.node, "echo", {"x": 1}) == {"echo": 1}
        with pytest.raises(IrcNotConnected, match="not here"):
            await two.request(one.node, "fail", {})
        with pytest.raises(IrcUnavailable):  # nobody answers for that node
            await two.request("gone", "echo", {"x": 2})
        assert [b["op"] for b in served] == ["echo", "fail"]
        await two.release(7)  # not its lease: nothing happens
        assert await two.holder(7) == one.node
        await asyncio.sleep(0.8)  # not renewed: expired
        assert await two.holder(7) is None
        assert await two.acquire(7)
        assert await one.renew([7]) == set()
        await two.release(7)
        assert await one.holder(7) is None
        await one.share_state(7, {"state": "connected", "nick": "ada", "error": None})
        states, _ = await two.snapshot()
        assert states[7]["nick"] == "ada"

        # Redis lost its data: a missing lease is the owner's again; no one else takes it
        assert await one.acquire(7)
        client = one._client
        await client.delete(f"{prefix}:irc:lease:7", f"{prefix}:irc:epoch")
        assert not await two.acquire(7)
        assert two.paused_until > time.monotonic() + 0.3
        assert await one.renew([7]) == {7}
        assert await two.holder(7) == one.node
    finally:
        await one.forget_shared(7, [])
        await one._client.delete(f"{prefix}:irc:epoch", f"{prefix}:irc:lease:7")
        await one.close()
        await two.close()


async def test_owner_cut_off_from_redis_disconnects_before_the_other_connects(
    inspircd: IrcServer, scaleout_settings: Settings
) -> None:
    """An owner whose lease calls fail (Redis out of its reach, the others still
    reach it) QUITs before its lease may have expired; the other then connects
    under the very nick: the two were never connected at once."""
    bob = await Watcher.join(inspircd.port, "bob", CHANNEL)
    a = await build_services(scaleout_settings)
    b = await build_services(scaleout_settings)
    try:
        nid, _ = await add_network(a, inspircd.port)
        await a.irc.connect(nid)
        owner, other = (a, b) if a.irc.runs(nid) else (b, a)
        await eventually(lambda: hubbub_joins(bob), timeout=15)

        async def unreachable(*args: Any) -> Any:
            raise IrcUnavailable("cannot renew IRC leases: Redis: connection refused")

        owner.irc.cluster.renew = unreachable  # type: ignore[method-assign]
        owner.irc.cluster.acquire = unreachable  # type: ignore[method-assign]
        cut = time.monotonic()
        await eventually(lambda: bob.seen(r"^:ada!\S+ QUIT"), timeout=LEASE + 5)
        quit_after = time.monotonic() - cut
        assert quit_after < LEASE, (
            f"QUIT {quit_after:.2f}s after the cut: the lease may have run out"
        )
        await eventually(lambda: len(hubbub_joins(bob)) == 2, timeout=LEASE * 2 + 10)
        assert other.irc.runs(nid) and not owner.irc.runs(nid)
        quit_at = next(i for i, line in enumerate(bob.lines) if re.search(r"^:ada!\S+ QUIT", line))
        second_join = [i for i, line in enumerate(bob.lines) if line in hubbub_joins(bob)][-1]
        assert quit_at < second_join
        assert bob.lines[second_join].startswith(":ada!"), bob.lines[second_join]

        # removed through the process that does not run it: the owner QUITs, all forget it
        conversation = await other.store.find_network_conversation(nid, CHANNEL)
        assert conversation is not None and owner.irc.handles(conversation.id)
        quits = len(bob.seen(r"^:ada!\S+ QUIT"))
        await owner.irc.forget(nid)
        await eventually(lambda: len(bob.seen(r"^:ada!\S+ QUIT")) == quits + 1)
        assert not other.irc.runs(nid)
        assert not owner.irc.handles(conversation.id)
        await eventually(lambda: not other.irc.handles(conversation.id))
    finally:
        await bob.close()
        await close_services(a)
        await close_services(b)


async def test_redis_losing_the_leases_does_not_make_a_second_connection(
    inspircd: IrcServer, scaleout_settings: Settings, redis_url: str
) -> None:
    """Redis restarted without persistence: the leases are gone while their owner is
    connected. The owner takes its lease back; the other takes no free lease for a
    lease period (the epoch key tells it Redis lost its data)."""
    import redis.asyncio as aioredis

    bob = await Watcher.join(inspircd.port, "bob", CHANNEL)
    a = await build_services(scaleout_settings)
    b = await build_services(scaleout_settings)
    client = aioredis.Redis.from_url(redis_url)
    try:
        nid, _ = await add_network(a, inspircd.port)
        await a.irc.connect(nid)
        owner, other = (a, b) if a.irc.runs(nid) else (b, a)
        await eventually(lambda: hubbub_joins(bob), timeout=15)
        await eventually(lambda: other.irc.state(nid)["state"] == "connected")

        # what a restart without persistence leaves of our keys: nothing
        keys = [k async for k in client.scan_iter(f"{scaleout_settings.redis_channel}:irc:*")]
        assert keys
        await client.delete(*keys)
        await other.irc._claim()  # a claim round of the other right then, before the owner's
        assert other.irc.cluster.paused_until > 0 and not other.irc.runs(nid)
        lease_key = f"{scaleout_settings.redis_channel}:irc:lease:{nid}"
        await eventually(lambda: client.get(lease_key), timeout=LEASE)
        assert (await client.get(lease_key)).decode() == owner.irc.cluster.node
        await asyncio.sleep(LEASE * 2)  # past the pause: the lease is the owner's, in use
        assert owner.irc.runs(nid) and not other.irc.runs(nid)
        assert len(hubbub_joins(bob)) == 1 and not bob.seen(r"^:ada!\S+ QUIT")
    finally:
        await client.aclose()
        await bob.close()
        await close_services(a)
        await close_services(b)


# A Hubbub process without its web server: the services only (IRC included), until killed.
OWNER_PROCESS = """
import asyncio, json, sys
from hubbub.app import build_services
from hubbub.config import Settings

async def main():
    await build_services(Settings(**json.loads(sys.argv[1])))
    print("ready", flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


async def test_owner_killed_the_other_takes_over(
    inspircd: IrcServer, scaleout_settings: Settings
) -> None:
    """The owner is a real process, killed with SIGKILL: no QUIT, no lease released."""
    store = open_store(scaleout_settings.effective_database_url())
    await store.start()  # migrates
    try:
        user = await store.create_user("ada", None)
        network = await store.create_network(
            user.id,
            kind=NetworkKind.IRC,
            name="test",
            config={
                "host": "127.0.0.1",
                "port": inspircd.port,
                "tls": False,
                "nick": "ada",
                "autojoin": [CHANNEL],
                "channels": [],
                "enabled": True,
            },
        )
    finally:
        await store.close()
    nid = network.id
    bob = await Watcher.join(inspircd.port, "bob", CHANNEL)
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("HUBBUB_")}
    owner = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        OWNER_PROCESS,
        scaleout_settings.model_dump_json(),
        env=env,
        stdout=asyncio.subprocess.PIPE,
    )
    other: Services | None = None
    try:
        assert owner.stdout is not None
        async with asyncio.timeout(scaled(30)):
            assert await owner.stdout.readline() == b"ready\n"
        await eventually(lambda: hubbub_joins(bob), timeout=15)
        conversation = await eventually(lambda: store_of_channel(scaleout_settings, nid))
        other = await build_services(scaleout_settings)
        # started after the owner connected: state and members from what it keeps in Redis
        assert other.irc.state(nid)["state"] == "connected"
        assert other.irc.handles(conversation)
        cid = conversation
        await eventually(lambda: {m["nick"] for m in other.irc.members(cid)} == {"ada", "bob"})
        await asyncio.sleep(LEASE)  # claim rounds: the lease is held, nothing to take
        assert not other.irc.runs(nid) and len(hubbub_joins(bob)) == 1

        owner.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        await owner.wait()
        await eventually(lambda: bob.seen(r"^:ada!\S+ QUIT"))
        await eventually(lambda: len(hubbub_joins(bob)) == 2, timeout=LEASE * 2 + 10)
        took = time.monotonic() - killed
        assert other.irc.runs(nid)
        assert took >= LEASE / 2, f"taken over after {took:.2f}s, before the lease expired"
        assert took <= scaled(LEASE + LEASE / 3 + 5), f"taken over after {took:.2f}s"
        mark = len(bob.lines)
        await bob.send(f"NAMES {CHANNEL}")
        names = await eventually(lambda: bob.seen(rf" 353 bob . {re.escape(CHANNEL)} :", mark))
        assert {n.lstrip("@+%~&") for n in names[-1].split(":", 2)[2].split()} == {"ada", "bob"}
        print(f"takeover after SIGKILL: {took:.2f}s (lease {LEASE}s)")
    finally:
        if owner.returncode is None:
            owner.kill()
            await owner.wait()
        await bob.close()
        if other is not None:
            await close_services(other)


def test_errors_from_another_process_keep_their_class_and_code() -> None:
    from hubbub.core.errors import HubbubError, NotFound
    from hubbub.irc.cluster import remote_error
    from hubbub.irc.policy import IrcSendQueueFull

    error = remote_error({"code": "irc_not_connected", "status": 409, "message": "not here"})
    assert isinstance(error, IrcNotConnected) and error.message == "not here"
    assert isinstance(remote_error({"code": "irc_send_queue_full"}), IrcSendQueueFull)
    assert type(remote_error({"code": "not_found", "status": 404})) is NotFound
    odd = remote_error({"code": "brand_new", "status": 418, "message": "?"})
    assert type(odd) is HubbubError and (odd.code, odd.status) == ("brand_new", 418)
