"""Hot reads on SQLite's long-lived read connections (store/reads.py).

They must see every commit made before they start (by this store, by another
store or process on the same file), be right when many run at once, end with
the store without hanging, recover from a failed connection, and never keep a
read transaction open (or the WAL could not be checkpointed).
"""

from __future__ import annotations

import asyncio
import os
import random
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from hubbub.core.model import (
    ConversationKind,
    MemberRole,
    MessageKind,
    NewMessage,
    User,
    Visibility,
)
from hubbub.store import SqlStore, StoreClosed, StoreUnavailable, open_store
from hubbub.store import reads as reads_module
from hubbub.store.reads import ReadConnections, sqlite_path

Target = Any  # conftest's Target: engine, url, open()


async def make_room(store: SqlStore, name: str, owner: User | None = None) -> Any:
    return await store.create_conversation(
        network_id=1,
        kind=ConversationKind.ROOM,
        name=name,
        visibility=Visibility.PUBLIC,
        owner_id=owner.id if owner else None,
    )


def _reads(store: SqlStore) -> ReadConnections:
    reads = store._reads
    assert reads is not None
    return reads


def _db_path(store: SqlStore) -> Path:
    path = store.engine.url.database
    assert path is not None
    return Path(path)


async def _say(store: SqlStore, conversation_id: int, user: User, text: str) -> int:
    result = await store.append(
        NewMessage(
            conversation_id=conversation_id,
            kind=MessageKind.TEXT,
            text=text,
            sender_id=user.id,
            sender=user.name,
        )
    )
    return result.message.seq


async def test_a_read_sees_the_commit_just_before(
    target: Target, store: SqlStore, alice: User, bob: User
) -> None:
    assert (store._reads is not None) == (target.engine == "sqlite")
    for i in range(20):
        room = await make_room(store, f"room{i}", alice)
        assert room.id in {v.conversation.id for v in await store.conversations_for(alice.id)}
        assert await store.add_member(room.id, bob.id, MemberRole.MEMBER)
        assert room.id in {v.conversation.id for v in await store.conversations_for(bob.id)}
        seq = await _say(store, room.id, alice, f"hello {i}")
        (view,) = [v for v in await store.conversations_for(bob.id) if v.conversation.id == room.id]
        assert view.conversation.last_seq == seq and view.unread == seq
        token = await store.create_token(user_id=bob.id, name=f"t{i}", token_hash=f"h{i}")
        found = await store.token_user(f"h{i}")
        assert found is not None and found[0].id == token.id and found[1] == bob
    if target.engine == "sqlite":
        assert 1 <= _reads(store).opened <= reads_module.CONNECTIONS


async def test_a_read_sees_another_stores_commits(
    target: Target, store: SqlStore, alice: User
) -> None:
    async with target.open() as other:
        for i in range(10):
            room = await make_room(other, f"theirs{i}", alice)
            assert room.id in {v.conversation.id for v in await store.conversations_for(alice.id)}
            seq = await _say(other, room.id, alice, "from the other store")
            (view,) = [
                v for v in await store.conversations_for(alice.id) if v.conversation.id == room.id
            ]
            assert view.conversation.last_seq == seq


async def test_a_read_sees_another_process_commit(
    target: Target, store: SqlStore, alice: User
) -> None:
    if target.engine != "sqlite":
        pytest.skip("the read connections are SQLite's")
    assert await store.conversations_for(alice.id) == []  # the read connection is open
    code = (
        "import asyncio, sys\n"
        "from hubbub.core.model import ConversationKind, Visibility\n"
        "from hubbub.store import open_store\n"
        "async def main():\n"
        "    async with open_store(sys.argv[1]) as s:\n"
        "        c = await s.create_conversation(network_id=1, kind=ConversationKind.ROOM,\n"
        "            name='elsewhere', visibility=Visibility.PUBLIC, owner_id=int(sys.argv[2]))\n"
        "        print(c.id)\n"
        "asyncio.run(main())\n"
    )
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", code, target.url, str(alice.id)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    room_id = int(done.stdout.split()[-1])
    (view,) = await store.conversations_for(alice.id)
    assert view.conversation.id == room_id and view.conversation.name == "elsewhere"


async def test_concurrent_reads_are_each_right(store: SqlStore) -> None:
    users = [await store.create_user(f"user{i}", "hash") for i in range(8)]
    expected: dict[int, set[int]] = {u.id: set() for u in users}
    for i in range(12):
        room = await make_room(store, f"r{i}")
        for u in users[i % 3 :: i % 4 + 1]:
            await store.add_member(room.id, u.id, MemberRole.MEMBER)
            expected[u.id].add(room.id)
    peers: dict[int, dict[int, str]] = {u.id: {} for u in users}
    for a, b in [(0, 1), (0, 2), (3, 4)]:
        dm, _ = await store.get_or_create_dm(users[a].id, users[b].id)
        expected[users[a].id].add(dm.id)
        expected[users[b].id].add(dm.id)
        peers[users[a].id][dm.id] = users[b].name
        peers[users[b].id][dm.id] = users[a].name
    tokens = {}
    for u in users:
        await store.create_token(user_id=u.id, name="t", token_hash=f"token-{u.id}")
        tokens[u.id] = f"token-{u.id}"

    asked = [random.choice(users) for _ in range(400)]

    async def one(user: User, n: int) -> None:
        if n % 4 == 0:
            found = await store.token_user(tokens[user.id])
            assert found is not None and found[1] == user
            return
        views = await store.conversations_for(user.id)
        assert {v.conversation.id for v in views} == expected[user.id]
        assert [v.conversation.id for v in views] == sorted(expected[user.id])
        assert {v.conversation.id: v.peer for v in views if v.peer} == peers[user.id]

    await asyncio.gather(*(one(u, n) for n, u in enumerate(asked)))


async def test_close_with_reads_in_flight(target: Target, alice: User) -> None:
    if target.engine != "sqlite":
        # (the pool's connections out at dispose are left to the GC on asyncpg)
        pytest.skip("the read connections are SQLite's")
    store = target.open()
    await store.start()
    room = await make_room(store, "lobby", alice)
    tasks = [asyncio.create_task(store.conversations_for(alice.id)) for _ in range(200)]
    await asyncio.sleep(0)
    await store.close()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            assert isinstance(result, StoreUnavailable), result  # StoreClosed among them
        else:
            assert [v.conversation.id for v in result] == [room.id]
    reads = _reads(store)
    assert reads.stopped
    await reads.close()  # the threads end: this returns
    assert all(r.thread is None or not r.thread.is_alive() for r in reads._readers)
    with pytest.raises(StoreClosed):
        await reads.run(lambda db: None)


async def test_a_failed_connection_is_opened_again(
    target: Target, store: SqlStore, alice: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    if target.engine != "sqlite":
        pytest.skip("the read connections are SQLite's")
    room = await make_room(store, "lobby", alice)
    reads = _reads(store)
    assert len(await store.conversations_for(alice.id)) == 1
    opened = reads.opened

    def fail(db: sqlite3.Connection) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    with pytest.raises(StoreUnavailable) as caught:
        for _ in range(reads_module.CONNECTIONS):  # at least one on each connection
            await store._run_read(fail)
    assert isinstance(caught.value.__cause__, sqlite3.OperationalError)
    views = await asyncio.gather(*(store.conversations_for(alice.id) for _ in range(10)))
    assert all([v.conversation.id for v in found] == [room.id] for found in views)
    assert reads.opened > opened

    # The database cannot be opened: StoreUnavailable, then it can again.
    real_connect = reads_module.connect

    def refuse(path: str) -> sqlite3.Connection:
        raise sqlite3.OperationalError("unable to open database file")

    for _ in range(reads_module.CONNECTIONS):
        with pytest.raises(StoreUnavailable):
            await store._run_read(fail)
    monkeypatch.setattr(reads_module, "connect", refuse)
    with pytest.raises(StoreUnavailable):
        await store.conversations_for(alice.id)
    monkeypatch.setattr(reads_module, "connect", real_connect)
    assert [v.conversation.id for v in await store.conversations_for(alice.id)] == [room.id]


async def test_no_read_transaction_stays_open(target: Target, store: SqlStore, alice: User) -> None:
    if target.engine != "sqlite":
        pytest.skip("the read connections are SQLite's")
    await make_room(store, "lobby", alice)

    def leave_open(db: sqlite3.Connection) -> None:
        db.execute("BEGIN")
        db.execute("SELECT count(*) FROM users").fetchall()

    def in_transaction(db: sqlite3.Connection) -> bool:
        return db.in_transaction

    for _ in range(2 * reads_module.CONNECTIONS):
        await store._run_read(leave_open)
    for _ in range(2 * reads_module.CONNECTIONS):
        assert not await store._run_read(in_transaction)
    # and a read-only connection stays read only
    with pytest.raises(StoreUnavailable):
        await store._run_read(lambda db: db.execute("DELETE FROM users"))
    assert await store.get_user(alice.id) == alice


async def test_the_wal_can_be_checkpointed_while_reading(
    target: Target, store: SqlStore, alice: User
) -> None:
    """Sustained writes and hot reads, a TRUNCATE checkpoint now and then from
    another connection: it completes (no reader pins an old snapshot) and the
    WAL file is emptied each time, so it stays bounded."""
    if target.engine != "sqlite":
        pytest.skip("the WAL is SQLite's")
    room = await make_room(store, "lobby", alice)
    wal = Path(f"{_db_path(store)}-wal")
    checkpointer = sqlite3.connect(_db_path(store), isolation_level=None, check_same_thread=False)
    checkpointer.execute("PRAGMA busy_timeout = 10000")
    stop = asyncio.Event()

    async def read_all_along() -> int:
        n = 0
        while not stop.is_set():
            views = await asyncio.gather(*(store.conversations_for(alice.id) for _ in range(8)))
            assert all(len(v) == 1 for v in views)
            n += 1
        return n

    def checkpoint() -> Any:
        # Busy at once (no busy handler) while the store's own checkpointer
        # runs one (on a slow disk that can take a while): then again. Readers
        # holding a snapshot would keep it busy for good.
        for _ in range(1000):
            result = checkpointer.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()[0]
            if result[0] == 0:
                break
            time.sleep(0.01)
        return result

    try:
        reader = asyncio.create_task(read_all_along())
        last = 0
        for round_ in range(15):
            for i in range(40):
                last = await _say(store, room.id, alice, f"{round_}.{i} " + "x" * 200)
            busy, _log, _done = await asyncio.to_thread(checkpoint)
            assert busy == 0
        stop.set()
        assert await reader > 0
        (view,) = await store.conversations_for(alice.id)
        assert view.conversation.last_seq == last
        assert await asyncio.to_thread(checkpoint) == (0, 0, 0)
        assert wal.stat().st_size == 0
    finally:
        stop.set()
        checkpointer.close()


def test_which_databases_have_read_connections() -> None:
    assert sqlite_path(sa.make_url("sqlite+aiosqlite:////data/hubbub.db")) == "/data/hubbub.db"
    assert sqlite_path(sa.make_url("sqlite+aiosqlite:///hubbub.db")) == "hubbub.db"
    for url in (
        "sqlite+aiosqlite://",
        "sqlite+aiosqlite:///:memory:",
        "sqlite+aiosqlite:///file:db?mode=memory&uri=true",
        "postgresql+asyncpg://localhost/hubbub",
    ):
        assert sqlite_path(sa.make_url(url)) is None, url
    assert open_store("sqlite+aiosqlite:///:memory:")._reads is None


async def test_postgresql_reads_through_the_pool(target: Target) -> None:
    if target.engine == "sqlite":
        pytest.skip("PostgreSQL's")
    async with target.open() as store:
        assert store._reads is None
        user = await store.create_user("carol", "hash")
        assert await store.conversations_for(user.id) == []
