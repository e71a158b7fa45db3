"""Big group-commit batches: the multi-row insert and the batch's nonce lookup
(``store/writer.py``), on both engines."""

from __future__ import annotations

import asyncio

import pytest

from hubbub.core.errors import Conflict
from hubbub.core.model import MessageKind, NewMessage, User
from hubbub.store import SqlStore, sqlite_writer


def _msg(conversation_id: int, user: User, text: str, nonce: str | None = None, **kw):
    return NewMessage(
        conversation_id=conversation_id,
        kind=MessageKind.TEXT,
        text=text,
        sender_id=user.id,
        sender=user.name,
        nonce=nonce,
        **kw,
    )


async def test_big_batch_over_two_rooms_is_stored_whole_and_searchable(
    store: SqlStore, alice: User, bob: User, room_factory
):
    lobby = await room_factory("lobby", alice)
    side = await room_factory("side", alice)
    n = 300
    results = await asyncio.gather(
        *(
            store.append(
                _msg(
                    (lobby, side)[i % 2].id,
                    (alice, bob)[i % 3 == 0],
                    f"zebra{i} crossing",
                    f"n{i}",
                    meta={"i": i} if i % 5 == 0 else None,
                )
            )
            for i in range(n)
        )
    )
    assert store.writer_stats.largest_batch == n  # really one batch
    assert not any(r.duplicate for r in results)
    for room in (lobby, side):
        stored = []
        after = 0
        while page := await store.history(room.id, after=after, limit=100):
            stored.extend(page)
            after = page[-1].seq
        assert [m.seq for m in stored] == list(range(1, n // 2 + 1))
        by_id = {r.message.id: r.message for r in results}
        assert all(by_id[m.id] == m for m in stored)  # what the ack said is what is stored
    # Every row of the one INSERT reached the full-text index in the same commit.
    assert len(await store.search([lobby.id, side.id], "crossing", limit=1000)) == n
    assert [m.text for m in await store.search([side.id], "zebra7")] == ["zebra7 crossing"]


async def test_batch_finds_every_stored_nonce(
    store: SqlStore, alice: User, bob: User, room_factory
):
    room = await room_factory("lobby", alice)
    first = await asyncio.gather(
        *(store.append(_msg(room.id, (alice, bob)[i % 2], f"m{i}", f"n{i}")) for i in range(100))
    )
    # Again, mixed with new ones and with the other sender's nonces (not duplicates).
    again = await asyncio.gather(
        *(
            store.append(_msg(room.id, (alice, bob)[i % 2], f"again {i}", f"n{i}"))
            for i in range(100)
        ),
        *(
            store.append(_msg(room.id, (bob, alice)[i % 2], f"swap {i}", f"n{i}"))
            for i in range(10)
        ),
        *(store.append(_msg(room.id, alice, f"new {i}", f"new{i}")) for i in range(20)),
    )
    assert [r.duplicate for r in again] == [True] * 100 + [False] * 30
    assert [r.message for r in again[:100]] == [r.message for r in first]
    assert [r.message.seq for r in again[100:]] == list(range(101, 131))


@pytest.mark.parametrize("chunk", [1, 7])
async def test_batches_bigger_than_a_statement(
    monkeypatch, store: SqlStore, alice: User, room_factory, chunk: int
):
    monkeypatch.setattr(sqlite_writer, "_SQLITE_CHUNK", chunk)
    room = await room_factory("lobby", alice)
    await store.append(_msg(room.id, alice, "old", "n3"))
    results = await asyncio.gather(
        *(store.append(_msg(room.id, alice, f"m{i} word", f"n{i}")) for i in range(40))
    )
    assert [r.duplicate for r in results] == [i == 3 for i in range(40)]
    assert [m.seq for m in await store.history(room.id)] == list(range(1, 41))
    assert len(await store.search([room.id], "word")) == 39


async def test_ext_key_taken_in_a_batch_fails_only_its_caller(
    store: SqlStore, alice: User, room_factory
):
    room = await room_factory("lobby", alice)
    await store.append(_msg(room.id, alice, "irc line", ext_key="k1"))
    results = await asyncio.gather(
        *(store.append(_msg(room.id, alice, f"ok {i}", f"n{i}")) for i in range(5)),
        store.append(_msg(room.id, alice, "replayed", ext_key="k1")),
        return_exceptions=True,
    )
    assert isinstance(results[5], Conflict)
    assert [m.text for m in await store.history(room.id)] == ["irc line"] + [
        f"ok {i}" for i in range(5)
    ]


async def test_sqlite_nonce_lookup_uses_the_index(target, store: SqlStore):
    if target.engine != "sqlite":
        pytest.skip("SQLite's query plan")
    sql = sqlite_writer._SQLITE_DUPLICATES + "(?, ?), (?, ?)" + sqlite_writer._SQLITE_ON
    async with store.engine.connect() as conn:
        plan = [
            row[3]
            for row in await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, (1, "a", 2, "b"))
        ]
    assert not any(step.startswith("SCAN m") for step in plan), plan
    assert any("USING INDEX" in step and "nonce" in step for step in plan), plan
