"""Resume over real sockets: the connection is cut at random points during a
burst; each reconnect resumes from the client's positions. No gap, no duplicate."""

from __future__ import annotations

import asyncio
import itertools
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wshelp import Account, Client, LiveServer, make_account, open_client

from hubbub.core.model import User

_rooms = itertools.count(1)
BURST = 40


async def reader(
    server: LiveServer, bob: Account, rid: int, start: int, last: int, cuts: list[int], abort: bool
) -> list[int]:
    """Read the room until ``last``, cutting the connection after each count in ``cuts``."""
    seqs: list[int] = []
    cuts = sorted(cuts)
    position = start
    client: Client | None = None
    received = 0
    while position < last:
        if client is None:
            client = await open_client(server, bob, resume={rid: position})
            received = 0
        frame = await client.recv()
        if frame["type"] == "message" and frame["conversation"] == rid:
            seqs.append(frame["seq"])
            position = frame["seq"]
        received += 1
        if cuts and received >= cuts[0]:
            cuts.pop(0)
            if abort:
                client.ws.transport.abort()  # as if the network died
            else:
                await client.close()
            client = None
    if client is not None:
        await client.close()
    return seqs


async def writer(server: LiveServer, alice: User, rid: int, pauses: list[int]) -> None:
    for n in range(BURST):
        await server.services.hub.post(alice, rid, f"m{n}")
        if pauses and n % len(pauses) == 0 and pauses[n % len(pauses)]:
            await asyncio.sleep(pauses[n % len(pauses)] / 1000)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    cuts=st.lists(st.integers(1, 30), max_size=6),
    abort=st.booleans(),
    pauses=st.lists(st.integers(0, 5), max_size=8),
    behind=st.integers(0, 2),
)
async def test_resume_after_cuts_has_no_gap_and_no_duplicate(
    ws_server: LiveServer, cuts: list[int], abort: bool, pauses: list[int], behind: int
) -> None:
    services = ws_server.services
    n = next(_rooms)
    alice = await make_account(services, f"alice{n}")
    bob = await make_account(services, f"bob{n}")
    room = await services.hub.create_room(alice.user, f"room{n}")
    rid = room.conversation.id
    joined = await services.hub.join(bob.user, rid)
    start = joined.conversation.last_seq - behind  # the client may even lack its own join
    last = joined.conversation.last_seq + BURST
    async with asyncio.timeout(30):
        seqs, _ = await asyncio.gather(
            reader(ws_server, bob, rid, start, last, cuts, abort),
            writer(ws_server, alice.user, rid, pauses),
        )
    assert seqs == list(range(start + 1, last + 1))


async def test_many_clients_resume_at_once(ws_server: LiveServer) -> None:
    """A small reconnect storm: everyone cut, messages sent meanwhile, all resume."""
    services = ws_server.services
    alice = await make_account(services, "storm_alice")
    room = await services.hub.create_room(alice.user, "storm")
    rid = room.conversation.id
    accounts = [await make_account(services, f"storm{i}") for i in range(20)]
    for account in accounts:
        await services.hub.join(account.user, rid)
    clients = [await open_client(ws_server, a) for a in accounts]
    positions = [c.positions[rid] for c in clients]
    for c in clients:
        await c.close()
    for i in range(30):
        await services.hub.post(alice.user, rid, f"while away {i}")
    last = (await services.hub.conversation(alice.user, rid)).conversation.last_seq

    async def catch_up(account: Account, position: int) -> list[int]:
        client = await open_client(ws_server, account, resume={rid: position})
        while client.positions[rid] < last:
            await client.recv()
        await client.close()
        return [s for c, s in client.seen if c == rid]

    order = list(range(len(accounts)))
    random.Random(4).shuffle(order)
    results = await asyncio.gather(*(catch_up(accounts[i], positions[i]) for i in order))
    for i, seqs in zip(order, results, strict=True):
        assert seqs == list(range(positions[i] + 1, last + 1))


async def test_too_far_behind_then_page_over_rest_then_live(ws_server: LiveServer) -> None:
    services = ws_server.services
    services.settings.ws_replay_limit = 5
    alice = await make_account(services, "far_alice")
    room = await services.hub.create_room(alice.user, "far")
    rid = room.conversation.id
    for i in range(10):
        await services.hub.post(alice.user, rid, f"old {i}")
    client = await open_client(ws_server, alice, resume={rid: 0})
    far = await client.expect("too_far_behind")
    assert far == {"type": "too_far_behind", "conversation": rid, "last_seq": 11}
    # the client pages (0, 11] over REST, then live events continue at 12
    paged = await services.hub.history(alice.user, rid, after=0, limit=50)
    assert [m.seq for m in paged] == list(range(1, 12))
    await services.hub.post(alice.user, rid, "new")
    got = await client.expect("message")
    assert (got["seq"], got["text"]) == (12, "new")
    assert [s for c, s in client.seen if c == rid] == [12]
    await client.close()
