from __future__ import annotations

import asyncio
from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from hubbub.core.model import (
    LOCAL_NETWORK_ID,
    ConversationKind,
    MessageKind,
    NewMessage,
    Visibility,
    now_ms,
)
from hubbub.store import migrate, open_store
from hubbub.store.schema import metadata


async def test_migrate_twice_and_concurrently(target) -> None:
    await asyncio.gather(
        migrate(target.url, schema=target.schema), migrate(target.url, schema=target.schema)
    )
    await migrate(target.url, schema=target.schema)
    store = target.open(auto_migrate=False)
    await store.start()
    try:
        async with store.engine.connect() as conn:
            version = await conn.scalar(sa.text("SELECT version_num FROM alembic_version"))
            networks = (await conn.execute(sa.text("SELECT id, kind, name FROM networks"))).all()
        assert version == "0003"
        assert [tuple(row) for row in networks] == [(LOCAL_NETWORK_ID, "local", "local")]
    finally:
        await store.close()


def _ignore_search_objects(obj: Any, name: str | None, type_: str, *_: Any) -> bool:
    # Engine-specific full-text search, made by the migration on purpose.
    return not (name or "").startswith(("messages_fts", "text_tsv", "ix_messages_text_tsv"))


async def test_migrations_match_schema_module(target) -> None:
    await migrate(target.url, schema=target.schema)
    store = target.open(auto_migrate=False)
    try:

        def diff(connection: sa.Connection) -> list[Any]:
            context = MigrationContext.configure(
                connection, opts={"include_object": _ignore_search_objects}
            )
            return compare_metadata(context, metadata)

        async with store.engine.connect() as conn:
            assert await conn.run_sync(diff) == []
    finally:
        await store.close()


async def test_data_survives_close_and_reopen(target) -> None:
    async with target.open() as store:
        alice = await store.create_user("Alice", "hash")
        room = await store.create_conversation(
            network_id=LOCAL_NETWORK_ID,
            kind=ConversationKind.ROOM,
            name="lobby",
            visibility=Visibility.PUBLIC,
            owner_id=alice.id,
        )
        await store.create_session(
            secret_hash="s",
            user_id=alice.id,
            expires_at=now_ms() + 60_000,
            user_agent="",
            address="",
        )
        sent = [
            (
                await store.append(  # from no user: a sender's own messages are read
                    NewMessage(room.id, MessageKind.TEXT, f"m{i}", None, "server")
                )
            ).message
            for i in range(3)
        ]
        await store.set_read(room.id, alice.id, 2)

    async with target.open() as store:
        assert await store.get_user_by_name("alice") == alice
        assert await store.get_password_hash(alice.id) == "hash"
        assert await store.session_user("s", now_ms()) is not None
        assert await store.history(room.id) == sent
        assert [m.text for m in await store.search([room.id], "m1")] == ["m1"]
        (view,) = await store.conversations_for(alice.id)
        assert (view.read_seq, view.unread, view.conversation.last_seq) == (2, 1, 3)
        nxt = await store.append(NewMessage(room.id, MessageKind.TEXT, "m3", alice.id, "Alice"))
        assert nxt.message.seq == 4


async def test_sqlite_settings(tmp_path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/x.db")  # the plain driver name is upgraded
    async with store, store.engine.connect() as conn:
        pragmas = {
            name: await conn.scalar(sa.text(f"PRAGMA {name}"))
            for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
        }
    assert pragmas == {
        "journal_mode": "wal",
        "synchronous": 2,
        "foreign_keys": 1,
        "busy_timeout": 10000,
    }


def test_head_revision_is_alembics_head() -> None:
    """The start-up fast path (no alembic import when at head) names the same head."""
    from alembic.script import ScriptDirectory

    from hubbub.store.migrate import alembic_config, head_revision

    assert head_revision() == ScriptDirectory.from_config(alembic_config()).get_current_head()
