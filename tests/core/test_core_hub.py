"""The Hub on a real store: what it commits, and what it publishes, in which order."""

from __future__ import annotations

import asyncio

import pytest

from hubbub.core.errors import Forbidden, InvalidInput, NotFound, NotMember, TooLong
from hubbub.core.events import Control, Event, Scope
from hubbub.core.model import MessageKind, User, Visibility
from hubbub.web.deps import Services


@pytest.fixture
def events(services: Services) -> list[Event]:
    seen: list[Event] = []
    services.bus.add_listener(seen.append)
    return seen


@pytest.fixture
async def alice(services: Services) -> User:
    return await services.store.create_user("alice", None)


@pytest.fixture
async def bob(services: Services, alice: User) -> User:
    return await services.store.create_user("bob", None)


async def test_post_commits_then_publishes_once(
    services: Services, alice: User, events: list[Event]
) -> None:
    hub = services.hub
    room = await hub.create_room(alice, "lobby")
    events.clear()
    first = await hub.post(alice, room.conversation.id, "hello", nonce="n1")
    assert not first.duplicate
    (event,) = events
    assert event.scope is Scope.CONVERSATION
    assert (event.conversation_id, event.seq) == (room.conversation.id, first.message.seq)
    assert b'"text":"hello"' in event.payload
    # the stored message is there before anyone hears of it
    stored = await services.store.history(room.conversation.id, after=first.message.seq - 1)
    assert [m.id for m in stored] == [first.message.id]

    again = await hub.post(alice, room.conversation.id, "hello", nonce="n1")
    assert again.duplicate
    assert again.message.id == first.message.id
    assert len(events) == 1


async def test_post_rules(services: Services, alice: User, bob: User) -> None:
    hub = services.hub
    room = await hub.create_room(alice, "lobby")
    cid = room.conversation.id
    with pytest.raises(NotMember):
        await hub.post(bob, cid, "hi")
    with pytest.raises(InvalidInput):
        await hub.post(alice, cid, "hi", kind=MessageKind.JOIN)
    with pytest.raises(TooLong):
        await hub.post(alice, cid, "x" * (hub.max_message_length + 1))
    for nonce in ["", "with space", "ü", "x" * 65]:
        with pytest.raises(InvalidInput):
            await hub.post(alice, cid, "hi", nonce=nonce)
    action = await hub.post(alice, cid, "waves", kind=MessageKind.ACTION)
    assert action.message.kind is MessageKind.ACTION


async def test_membership_events(
    services: Services, alice: User, bob: User, events: list[Event]
) -> None:
    hub = services.hub
    secret = await hub.create_room(alice, "secret", visibility=Visibility.PRIVATE)
    cid = secret.conversation.id
    with pytest.raises(NotFound):
        await hub.join(bob, cid)
    events.clear()
    await hub.invite(alice, cid, "bob")
    join, subscribe = events
    assert join.scope is Scope.CONVERSATION
    assert subscribe.scope is Scope.USER
    assert subscribe.target == bob.id
    assert subscribe.control is Control.SUBSCRIBE
    assert subscribe.seq == join.seq - 1  # bob's sessions get his own join too
    events.clear()
    await hub.leave(bob, cid)
    part, unsubscribe = events
    assert b'"kind":"part"' in part.payload
    assert (unsubscribe.target, unsubscribe.control) == (bob.id, Control.UNSUBSCRIBE)
    with pytest.raises(NotMember):
        await hub.leave(bob, cid)


async def test_dm_subscribes_both(
    services: Services, alice: User, bob: User, events: list[Event]
) -> None:
    dm = await services.hub.open_dm(alice, "BOB")
    assert dm.peer == "bob"
    assert {(e.target, e.control) for e in events} == {
        (alice.id, Control.SUBSCRIBE),
        (bob.id, Control.SUBSCRIBE),
    }
    events.clear()
    assert (await services.hub.open_dm(bob, "alice")).conversation.id == dm.conversation.id
    assert events == []
    with pytest.raises(Forbidden):
        await services.hub.join(alice, dm.conversation.id)


async def test_presence_counts_sessions(
    services: Services, alice: User, events: list[Event]
) -> None:
    hub = services.hub
    hub.presence_grace = 0  # offline at once
    await hub.connected(alice)
    await hub.connected(alice)
    assert hub.is_online(alice.id)
    await hub.disconnected(alice)
    assert hub.is_online(alice.id)
    await hub.disconnected(alice)
    assert not hub.is_online(alice.id)
    statuses = [e.payload for e in events if e.scope is Scope.ALL]
    assert len(statuses) == 2
    assert b'"status":"online"' in statuses[0]
    assert b'"status":"offline"' in statuses[1]


async def test_presence_waits_out_the_grace_period(
    services: Services, alice: User, events: list[Event]
) -> None:
    hub = services.hub
    hub.presence_grace = 0.2
    await hub.connected(alice)
    await hub.disconnected(alice)
    await hub.connected(alice)  # back within the grace: no offline, no second online
    await hub.disconnected(alice)
    assert hub.is_online(alice.id)
    await asyncio.sleep(0.05)
    assert hub.is_online(alice.id)
    for _ in range(100):
        if not hub.is_online(alice.id):
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.02)  # the offline event is published by a task
    statuses = [e.payload for e in events if e.scope is Scope.ALL]
    assert len(statuses) == 2, statuses
    assert b'"status":"online"' in statuses[0]
    assert b'"status":"offline"' in statuses[1]
    assert not hub.is_online(alice.id)


async def test_read_marker_is_clamped(services: Services, alice: User) -> None:
    hub = services.hub
    room = await hub.create_room(alice, "lobby")
    cid = room.conversation.id
    await hub.post(alice, cid, "one")
    assert await hub.mark_read(alice, cid, 1000) == 2
    assert await hub.mark_read(alice, cid, 0) == 2
    with pytest.raises(InvalidInput):
        await hub.mark_read(alice, cid, -1)


async def test_membership_is_cached_and_forgotten_on_leave_in_any_process(
    services: Services, alice: User, bob: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A send checks membership once per (conversation, user); a leave made by
    another process (another Hub on the same store and bus) ends it here too."""
    from hubbub.core.hub import Hub

    here = services.hub
    there = Hub(services.store, services.bus)  # a second process, as far as the bus tells
    room = await here.create_room(alice, "lobby")
    cid = room.conversation.id
    await here.join(bob, cid)

    lookups: list[tuple[int, int]] = []
    real_get_member = services.store.get_member

    async def counting_get_member(conversation_id: int, user_id: int):  # type: ignore[no-untyped-def]
        lookups.append((conversation_id, user_id))
        return await real_get_member(conversation_id, user_id)

    monkeypatch.setattr(services.store, "get_member", counting_get_member)
    for i in range(3):
        await here.post(bob, cid, f"m{i}")
    assert lookups == [(cid, bob.id)]

    await there.leave(bob, cid)
    with pytest.raises(NotMember):
        await here.post(bob, cid, "after leaving")
    assert [m.text for m in await services.store.history(cid)][-1] == ""  # the part, no more


async def test_removed_user_memberships_are_forgotten(
    services: Services, alice: User, bob: User
) -> None:
    hub = services.hub
    room = await hub.create_room(alice, "lobby")
    cid = room.conversation.id
    await hub.join(bob, cid)
    await hub.post(bob, cid, "cached now")
    await services.accounts.remove_user("bob")
    with pytest.raises(NotMember):
        await hub.post(bob, cid, "from beyond")
