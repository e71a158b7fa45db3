from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa

from hubbub.core.errors import NameTaken, NotFound, NotMember
from hubbub.core.model import (
    LOCAL_NETWORK_ID,
    ConversationKind,
    MemberRole,
    MessageKind,
    NewMessage,
    User,
    Visibility,
)
from hubbub.store import SqlStore
from hubbub.store import schema as t


async def _say(store: SqlStore, conversation_id: int, user: User, n: int = 1) -> None:
    await asyncio.gather(
        *(
            store.append(NewMessage(conversation_id, MessageKind.TEXT, f"m{i}", user.id, user.name))
            for i in range(n)
        )
    )


async def test_create_and_find_room(store: SqlStore, alice: User, room_factory) -> None:
    room = await room_factory("Lobby", alice)
    assert room.network_id == LOCAL_NETWORK_ID and room.kind is ConversationKind.ROOM
    assert room.last_seq == 0 and room.topic == ""
    assert await store.get_conversation(room.id) == room
    assert await store.find_conversation(LOCAL_NETWORK_ID, "LOBBY") == room
    assert await store.find_conversation(LOCAL_NETWORK_ID, "nope") is None
    assert await store.get_conversation(999) is None
    owner = await store.get_member(room.id, alice.id)
    assert owner is not None and owner.role is MemberRole.OWNER and owner.name == "Alice"
    with pytest.raises(NameTaken):
        await room_factory("lobby")
    with pytest.raises(NotFound):
        await store.create_conversation(
            network_id=77, kind=ConversationKind.ROOM, name="x", visibility=Visibility.PUBLIC
        )


async def test_same_name_on_another_network(store: SqlStore, alice: User, room_factory) -> None:
    await room_factory("linux")
    async with store.engine.begin() as conn:
        network_id = await conn.scalar(
            sa.insert(t.networks)
            .values(user_id=alice.id, kind="irc", name="libera", config="{}")
            .returning(t.networks.c.id)
        )
    assert network_id is not None and network_id != LOCAL_NETWORK_ID
    channel = await store.create_conversation(
        network_id=network_id,
        kind=ConversationKind.CHANNEL,
        name="Linux",
        visibility=Visibility.PRIVATE,
    )
    assert await store.find_conversation(network_id, "linux") == channel


async def test_topic(store: SqlStore, room_factory) -> None:
    room = await room_factory("lobby")
    await store.set_topic(room.id, "welcome")
    found = await store.get_conversation(room.id)
    assert found is not None and found.topic == "welcome"
    with pytest.raises(NotFound):
        await store.set_topic(999, "x")


async def test_public_rooms_with_member_counts(
    store: SqlStore, alice: User, bob: User, room_factory
) -> None:
    b = await room_factory("beta", alice)
    a = await room_factory("Alpha")
    await room_factory("secret", alice, public=False)
    await room_factory("100%_real")
    await store.add_member(b.id, bob.id, MemberRole.MEMBER)
    listed = await store.list_public_rooms()
    assert [(c.name, n) for c, n in listed] == [("100%_real", 0), ("Alpha", 0), ("beta", 2)]
    assert [c.id for c, _ in await store.list_public_rooms(query="ALP")] == [a.id]
    # LIKE wildcards in the query are plain characters
    assert [c.name for c, _ in await store.list_public_rooms(query="%")] == ["100%_real"]
    assert [c.name for c, _ in await store.list_public_rooms(query="_")] == ["100%_real"]
    assert len(await store.list_public_rooms(limit=1)) == 1


async def test_members(store: SqlStore, alice: User, bob: User, room_factory) -> None:
    room = await room_factory("lobby", alice)
    assert await store.add_member(room.id, bob.id, MemberRole.MEMBER)
    assert not await store.add_member(room.id, bob.id, MemberRole.MEMBER)
    assert [(m.name, m.role) for m in await store.list_members(room.id)] == [
        ("Alice", MemberRole.OWNER),
        ("bob", MemberRole.MEMBER),
    ]
    assert await store.remove_member(room.id, bob.id)
    assert not await store.remove_member(room.id, bob.id)
    assert await store.get_member(room.id, bob.id) is None
    with pytest.raises(NotFound):
        await store.add_member(999, bob.id, MemberRole.MEMBER)
    with pytest.raises(NotFound):
        await store.add_member(room.id, 999, MemberRole.MEMBER)


async def test_new_member_starts_with_nothing_unread(
    store: SqlStore, alice: User, bob: User, room_factory
) -> None:
    room = await room_factory("lobby", alice)
    await _say(store, room.id, alice, 3)
    await store.add_member(room.id, bob.id, MemberRole.MEMBER)
    view = await store.conversation_view(room.id, bob.id)
    assert view is not None and view.read_seq == 3 and view.unread == 0


async def test_read_markers_and_unread(store: SqlStore, alice: User, bob: User, room_factory):
    room = await room_factory("lobby", alice)
    await store.add_member(room.id, bob.id, MemberRole.MEMBER)
    await _say(store, room.id, alice, 5)

    (view,) = await store.conversations_for(bob.id)
    assert view.conversation.last_seq == 5
    assert (view.read_seq, view.unread, view.role) == (0, 5, MemberRole.MEMBER)

    assert await store.set_read(room.id, bob.id, 3) == 3
    assert await store.set_read(room.id, bob.id, 2) == 3  # never backwards
    assert await store.set_read(room.id, bob.id, 99) == 5  # never past the newest
    view2 = await store.conversation_view(room.id, bob.id)
    assert view2 is not None and (view2.read_seq, view2.unread) == (5, 0)

    with pytest.raises(NotMember):
        await store.set_read(room.id, 999, 1)
    with pytest.raises(NotFound):
        await store.set_read(999, bob.id, 1)


async def test_own_messages_are_read_by_their_sender(
    store: SqlStore, alice: User, bob: User, room_factory
) -> None:
    room = await room_factory("lobby", alice)
    await store.add_member(room.id, bob.id, MemberRole.MEMBER)
    await _say(store, room.id, bob, 2)
    await _say(store, room.id, alice, 3)  # one batch or several: the newest counts
    alice_view = await store.conversation_view(room.id, alice.id)
    bob_view = await store.conversation_view(room.id, bob.id)
    assert alice_view is not None and (alice_view.read_seq, alice_view.unread) == (5, 0)
    assert bob_view is not None and (bob_view.read_seq, bob_view.unread) == (2, 3)
    # A sender who is not a member (a system message's named sender) changes nothing.
    await store.append(NewMessage(room.id, MessageKind.SYSTEM, "note", None, "server"))
    bob_view = await store.conversation_view(room.id, bob.id)
    assert bob_view is not None and bob_view.unread == 4


async def test_conversation_view_for_non_member(
    store: SqlStore, alice: User, bob: User, room_factory
) -> None:
    room = await room_factory("lobby", alice)
    await _say(store, room.id, alice, 2)
    view = await store.conversation_view(room.id, bob.id)
    assert view is not None and view.role is None and view.unread == 0
    assert await store.conversation_view(999, bob.id) is None
    assert await store.conversations_for(bob.id) == []


async def test_dm_is_one_conversation_whoever_asks(store: SqlStore, alice: User, bob: User):
    dm, created = await store.get_or_create_dm(alice.id, bob.id)
    assert created and dm.kind is ConversationKind.DM and dm.visibility is Visibility.PRIVATE
    again, created_again = await store.get_or_create_dm(bob.id, alice.id)
    assert again == dm and not created_again
    assert {m.user_id for m in await store.list_members(dm.id)} == {alice.id, bob.id}

    (for_alice,) = await store.conversations_for(alice.id)
    (for_bob,) = await store.conversations_for(bob.id)
    assert for_alice.peer == "bob" and for_bob.peer == "Alice"
    view = await store.conversation_view(dm.id, alice.id)
    assert view is not None and view.peer == "bob"

    with pytest.raises(NotFound):
        await store.get_or_create_dm(alice.id, 999)


async def test_dm_created_once_under_concurrency(
    target, store: SqlStore, alice: User, bob: User
) -> None:
    other = target.open()  # a second process, as far as the database can tell
    await other.start()
    try:
        results = await asyncio.gather(
            *(
                s.get_or_create_dm(*pair)
                for s in (store, other)
                for pair in ((alice.id, bob.id), (bob.id, alice.id))
                for _ in range(5)
            )
        )
    finally:
        await other.close()
    assert len({c.id for c, _ in results}) == 1
    assert sum(created for _, created in results) == 1


async def test_dm_peer_survives_deletion(store: SqlStore, alice: User, bob: User) -> None:
    dm, _ = await store.get_or_create_dm(alice.id, bob.id)
    await store.delete_user(bob.id)
    (view,) = await store.conversations_for(alice.id)
    assert view.conversation.id == dm.id and view.peer == "bob"


async def test_dm_with_oneself(store: SqlStore, alice: User) -> None:
    _, created = await store.get_or_create_dm(alice.id, alice.id)
    assert created
    (view,) = await store.conversations_for(alice.id)
    assert view.peer == "Alice"
