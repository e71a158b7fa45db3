"""Networks per user, their IRC conversations, and idempotent IRC messages."""

from __future__ import annotations

import pytest

from hubbub.core.errors import Conflict, NameTaken
from hubbub.core.model import ConversationKind, MessageKind, NetworkKind, NewMessage, User
from hubbub.store import SqlStore


async def test_networks_crud_per_user(store: SqlStore, alice: User, bob: User) -> None:
    net = await store.create_network(
        alice.id, kind=NetworkKind.IRC, name="libera", config={"host": "irc.example"}
    )
    assert net.config == {"host": "irc.example"}
    with pytest.raises(NameTaken):
        await store.create_network(alice.id, kind=NetworkKind.IRC, name="libera", config={})
    await store.create_network(bob.id, kind=NetworkKind.IRC, name="libera", config={})
    assert [x.name for x in await store.list_networks(alice.id)] == ["libera"]
    assert len(await store.list_networks(kind=NetworkKind.IRC)) == 2
    updated = await store.update_network(net.id, name="oftc", config={"host": "b"})
    assert (updated.name, updated.config) == ("oftc", {"host": "b"})
    got = await store.get_network(net.id)
    assert got is not None and got.name == "oftc" and got.user_id == alice.id
    assert await store.delete_network(net.id)
    assert await store.get_network(net.id) is None
    assert not await store.delete_network(1)  # the local network stays


async def test_irc_conversations_fold_by_irc_rules(store: SqlStore, alice: User) -> None:
    net = await store.create_network(alice.id, kind=NetworkKind.IRC, name="n", config={})
    chan, created = await store.network_conversation(
        net.id, alice.id, ConversationKind.CHANNEL, "#Chan[x]"
    )
    assert created
    same, created = await store.network_conversation(
        net.id, alice.id, ConversationKind.CHANNEL, "#chan{X}"
    )
    assert not created and same.id == chan.id
    views = await store.conversations_for(alice.id)
    assert [v.conversation.id for v in views if v.conversation.network_id == net.id] == [chan.id]
    assert [x.id for x in await store.network_conversations(net.id)] == [chan.id]
    assert await store.delete_network(net.id)
    assert await store.get_conversation(chan.id) is None


async def test_ext_key_stores_an_irc_line_once(store: SqlStore, alice: User) -> None:
    net = await store.create_network(alice.id, kind=NetworkKind.IRC, name="n", config={})
    chan, _ = await store.network_conversation(net.id, alice.id, ConversationKind.CHANNEL, "#c")
    line = NewMessage(chan.id, MessageKind.TEXT, "hi", None, "bob", ext_key="id:abc")
    first = await store.append(line)
    with pytest.raises(Conflict):
        await store.append(line)
    found = await store.message_by_ext_key(chan.id, "id:abc")
    assert found is not None and found.id == first.message.id
    assert [m.seq for m in await store.history(chan.id)] == [1]
    # NULL keys are never checked
    plain = NewMessage(chan.id, MessageKind.TEXT, "x", None, "bob")
    await store.append(plain)
    await store.append(plain)
    assert len(await store.history(chan.id)) == 3


async def test_set_ext_key_keys_a_sent_message_once(store: SqlStore, alice: User) -> None:
    net = await store.create_network(alice.id, kind=NetworkKind.IRC, name="n", config={})
    chan, _ = await store.network_conversation(net.id, alice.id, ConversationKind.CHANNEL, "#c")
    sent = await store.append(NewMessage(chan.id, MessageKind.TEXT, "hi", alice.id, "alice"))
    assert await store.set_ext_key(sent.message.id, "id:m1", {"msgid": "m1"})
    assert not await store.set_ext_key(sent.message.id, "id:m2", None)  # keyed already
    found = await store.message_by_ext_key(chan.id, "id:m1")
    assert found is not None and found.id == sent.message.id and found.meta == {"msgid": "m1"}
