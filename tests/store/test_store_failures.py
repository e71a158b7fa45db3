"""The database failing under the store: clear errors, nobody waits forever."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from hubbub.core.errors import Forbidden
from hubbub.core.model import ConversationKind, MessageKind, NewMessage, Visibility
from hubbub.store import StoreUnavailable, open_store
from hubbub.store import engine as engine_module


async def test_locked_sqlite_fails_appends_with_unavailable(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(engine_module, "BUSY_TIMEOUT_MS", 50)
    path = tmp_path / "locked.db"
    async with open_store(f"sqlite+aiosqlite:///{path}") as store:
        alice = await store.create_user("Alice", None)
        room = await store.create_conversation(
            network_id=1, kind=ConversationKind.ROOM, name="r", visibility=Visibility.PUBLIC
        )

        def say(text: str) -> NewMessage:
            return NewMessage(room.id, MessageKind.TEXT, text, alice.id, "Alice")

        other_process = sqlite3.connect(path, isolation_level=None)
        try:
            other_process.execute("BEGIN IMMEDIATE")  # holds the write lock
            results = await asyncio.gather(
                *(store.append(say(f"m{i}")) for i in range(5)), return_exceptions=True
            )
            with pytest.raises(StoreUnavailable) as info:
                await store.set_topic(room.id, "t")
            assert info.value.status == 503 and info.value.__cause__ is not None
        finally:
            other_process.execute("ROLLBACK")
            other_process.close()
        assert all(isinstance(r, StoreUnavailable) for r in results), results
        assert store.writer_stats.retried_batches == 0  # not item by item: all alike
        assert (await store.append(say("after"))).message.seq == 1  # the writer lives on


async def test_unavailable_is_not_a_client_error() -> None:
    error = StoreUnavailable("x")
    assert error.code == "unavailable" and not isinstance(error, Forbidden)


async def test_unreachable_postgres_is_unavailable() -> None:
    store = open_store("postgresql+asyncpg://nobody@127.0.0.1:1/none", auto_migrate=False)
    try:
        with pytest.raises(StoreUnavailable):
            await store.get_user(1)
    finally:
        await store.close()
