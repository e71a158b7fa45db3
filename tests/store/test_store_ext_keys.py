"""More external keys per message (migration 0003, ``message_ext_keys``): a message
sent to IRC in several lines is found by the key of any of its parts."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command

from hubbub.core.model import ConversationKind, MessageKind, NetworkKind, NewMessage, User
from hubbub.core.tail import TailedStore
from hubbub.store import SqlStore
from hubbub.store.engine import make_engine
from hubbub.store.migrate import alembic_config, migrate


async def _channel(store: SqlStore, user: User, name: str = "#c") -> int:
    net = await store.create_network(user.id, kind=NetworkKind.IRC, name="n" + name, config={})
    chan, _ = await store.network_conversation(net.id, user.id, ConversationKind.CHANNEL, name)
    return chan.id


async def test_every_part_key_leads_to_the_one_message(store: SqlStore, alice: User) -> None:
    chan = await _channel(store, alice)
    sent = (await store.append(NewMessage(chan, MessageKind.TEXT, "a b c", alice.id, "a"))).message
    assert await store.set_ext_key(sent.id, "id:p1", {"msgid": "p1"})
    assert await store.add_ext_key(sent.id, "id:p2")
    assert await store.add_ext_key(sent.id, "id:p3")
    for key in ("id:p1", "id:p2", "id:p3"):
        found = await store.message_by_ext_key(chan, key)
        assert found is not None and found.id == sent.id and found.text == "a b c"
    assert await store.message_by_ext_key(chan, "id:p4") is None
    assert await store.message_ext_keys(sent.id) == ["id:p1", "id:p2", "id:p3"]
    # the message row is as set_ext_key left it: the added keys do not change it
    (stored,) = await store.history(chan)
    assert stored.meta == {"msgid": "p1"}
    # a key is unique per conversation, across both tables
    assert not await store.add_ext_key(sent.id, "id:p2")
    assert not await store.add_ext_key(sent.id, "id:p1")
    assert not await store.add_ext_key("no-such-message", "id:p9")
    other = await _channel(store, alice, "#d")
    elsewhere = (await store.append(NewMessage(other, MessageKind.TEXT, "x", None, "b"))).message
    assert await store.add_ext_key(elsewhere.id, "id:p2")  # another conversation: free
    there = await store.message_by_ext_key(other, "id:p2")
    here = await store.message_by_ext_key(chan, "id:p2")
    assert there is not None and there.id == elsewhere.id
    assert here is not None and here.id == sent.id


async def test_added_keys_go_with_their_conversation(store: SqlStore, alice: User) -> None:
    chan = await _channel(store, alice)
    sent = (await store.append(NewMessage(chan, MessageKind.TEXT, "ab", alice.id, "a"))).message
    assert await store.add_ext_key(sent.id, "id:q2")
    assert await store.delete_conversation(chan)
    async with store.engine.connect() as conn:
        assert await conn.scalar(sa.text("SELECT count(*) FROM message_ext_keys")) == 0


async def test_an_added_key_is_seen_through_the_tailed_store(store: SqlStore, alice: User) -> None:
    chan = await _channel(store, alice)
    tailed = TailedStore(store)
    sent = (await tailed.append(NewMessage(chan, MessageKind.TEXT, "ab", alice.id, "a"))).message
    before = await tailed.history(chan)
    assert await tailed.add_ext_key(sent.id, "id:r2")
    assert await tailed.history(chan) == before  # the message itself did not change
    found = await tailed.message_by_ext_key(chan, "id:r2")
    assert found is not None and found.id == sent.id


async def _upgrade_to(target, revision: str) -> None:
    engine = make_engine(target.url, schema=target.schema)
    try:
        if target.schema is not None:
            async with engine.begin() as conn:
                await conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{target.schema}"'))

        def upgrade(connection: sa.Connection) -> None:
            config = alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, revision)

        async with engine.begin() as conn:
            await conn.run_sync(upgrade)
    finally:
        await engine.dispose()


async def test_migration_0003_on_a_database_with_messages(target) -> None:
    await _upgrade_to(target, "0002")
    async with target.open(auto_migrate=False) as old:
        user = await old.create_user("Alice", "hash")
        chan = await _channel(old, user)
        first = (await old.append(NewMessage(chan, MessageKind.TEXT, "one", None, "bob"))).message
        async with old.engine.begin() as conn:  # as 0002 stored an IRC line: with its key
            await conn.execute(
                sa.text("UPDATE messages SET ext_key = 'id:old' WHERE id = :id"), {"id": first.id}
            )
        sent = (await old.append(NewMessage(chan, MessageKind.TEXT, "two", user.id, "a"))).message
    await migrate(target.url, schema=target.schema)
    async with target.open(auto_migrate=False) as store:
        async with store.engine.connect() as conn:
            assert await conn.scalar(sa.text("SELECT version_num FROM alembic_version")) == "0003"
        assert [m.text for m in await store.history(chan)] == ["one", "two"]
        found = await store.message_by_ext_key(chan, "id:old")
        assert found is not None and found.id == first.id
        assert await store.set_ext_key(sent.id, "id:t1", None)
        assert await store.add_ext_key(sent.id, "id:t2")
        found = await store.message_by_ext_key(chan, "id:t2")
        assert found is not None and found.id == sent.id
