"""A batch retried after its commit's outcome was lost stores nothing twice.

The writer retries a batch once when the database failed under it
(StoreUnavailable). If the connection died after the server committed but
before the reply arrived, the first try is stored: the retry must find it (by
the messages' ids, made once per append) instead of storing messages again,
nonce or not. Every caller is acked once or gets an error; seqs stay dense.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from typing import Any

import pytest
import sqlalchemy as sa

from hubbub.core.model import ConversationKind, MessageKind, NewMessage, Visibility
from hubbub.store import SqlStore, StoreUnavailable, open_store, sqlite_writer
from hubbub.store import batch as batch_module

# The server's reply to COMMIT: CommandComplete, length 11, tag "COMMIT".
COMMIT_DONE = b"C\x00\x00\x00\x0bCOMMIT\x00"
# The client's COMMIT (asyncpg sends it as a simple query).
COMMIT_SENT = b"COMMIT"


class CuttingProxy:
    """TCP proxy to PostgreSQL that, once armed, cuts the connection on which
    it sees ``pattern`` (server to client when ``from_server``) without
    forwarding the data that holds it."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.armed: tuple[bytes, bool] | None = None
        self.cuts = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()
        for w in list(self._writers):
            w.close()
        await self._server.wait_closed()

    async def _client(self, c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        s_reader, s_writer = await asyncio.open_connection(self.host, self.port)
        self._writers |= {c_writer, s_writer}
        cut = asyncio.Event()

        async def pipe(
            reader: asyncio.StreamReader, writer: asyncio.StreamWriter, from_server: bool
        ) -> None:
            tail = b""
            try:
                while data := await reader.read(65536):
                    armed = self.armed
                    if armed is not None and armed[1] == from_server and armed[0] in tail + data:
                        self.armed = None
                        self.cuts += 1
                        break
                    tail = data[-16:]
                    writer.write(data)
                    await writer.drain()
            except OSError:
                pass
            cut.set()

        tasks = [
            asyncio.create_task(pipe(c_reader, s_writer, False)),
            asyncio.create_task(pipe(s_reader, c_writer, True)),
        ]
        await cut.wait()
        for w in (c_writer, s_writer):
            # abort, not close: no FIN after the cut data, as a dead link
            w.transport.abort()
            self._writers.discard(w)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _room_and_user(store: SqlStore) -> tuple[Any, Any]:
    alice = await store.create_user("Alice", None)
    room = await store.create_conversation(
        network_id=1, kind=ConversationKind.ROOM, name="r", visibility=Visibility.PUBLIC
    )
    return room, alice


async def _check_stored_once(store: SqlStore, room_id: int, results: list[Any], n: int) -> None:
    acked = [r for r in results if not isinstance(r, BaseException)]
    failed = [r for r in results if isinstance(r, BaseException)]
    assert all(isinstance(e, StoreUnavailable) for e in failed), failed
    assert not failed, failed  # here the retry reaches the database: all are acked
    assert all(not r.duplicate for r in acked)
    history = await store.history(room_id, limit=1000)
    texts = [m.text for m in history]
    assert sorted(texts) == sorted(f"m{i}" for i in range(n)), texts  # each once
    assert [m.seq for m in history] == list(range(1, n + 1))  # dense
    assert {r.message.id: r.message.seq for r in acked} == {m.id: m.seq for m in history}
    # the writer lives on, the next seq follows
    room = history[0].conversation_id
    again = await store.append(NewMessage(room, MessageKind.TEXT, "after", None, "x"))
    assert again.message.seq == n + 1


@pytest.mark.parametrize(
    "target", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
@pytest.mark.parametrize("committed", [True, False], ids=["after-commit", "before-commit"])
@pytest.mark.parametrize("with_nonce", [False, True], ids=["no-nonce", "nonce"])
async def test_postgres_connection_cut_at_commit_stores_each_once(
    target: Any, committed: bool, with_nonce: bool
) -> None:
    url = sa.make_url(target.url)
    proxy = CuttingProxy(url.host or "127.0.0.1", url.port or 5432)
    port = await proxy.start()
    store = open_store(
        url.set(port=port).render_as_string(hide_password=False), schema=target.schema
    )
    await store.start()
    try:
        room, alice = await _room_and_user(store)
        n = 30
        # After the server committed (its reply is lost) or before it saw COMMIT.
        proxy.armed = (COMMIT_DONE, True) if committed else (COMMIT_SENT, False)
        results = await asyncio.gather(
            *(
                store.append(
                    NewMessage(
                        room.id,
                        MessageKind.TEXT,
                        f"m{i}",
                        alice.id,
                        "Alice",
                        nonce=f"n{i}" if with_nonce else None,
                    )
                )
                for i in range(n)
            ),
            return_exceptions=True,
        )
        assert proxy.cuts == 1
        await _check_stored_once(store, room.id, results, n)
    finally:
        await store.close()
        await proxy.close()


async def test_sqlite_retry_after_a_commit_reported_lost_stores_each_once(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same on SQLite: the first try commits, then reports a failure."""
    commit = sqlite_writer._sqlite_commit
    lost: list[int] = []

    def commit_then_fail(db: sqlite3.Connection, batch: Any) -> None:
        commit(db, batch)
        if not lost and batch.inserts:
            lost.append(len(batch.inserts))
            raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(sqlite_writer, "_sqlite_commit", commit_then_fail)
    async with open_store(f"sqlite+aiosqlite:///{tmp_path}/h.db") as store:
        room, alice = await _room_and_user(store)
        n = 30
        results = await asyncio.gather(
            *(
                store.append(NewMessage(room.id, MessageKind.TEXT, f"m{i}", alice.id, "Alice"))
                for i in range(n)
            ),
            return_exceptions=True,
        )
        assert lost and lost[0] >= 1
        await _check_stored_once(store, room.id, results, n)


async def test_a_retry_whose_lookup_missed_still_stores_once(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first try commits after the retry looked its ids up (on PostgreSQL, a
    transaction still finishing on a lost connection): the retry's INSERT meets
    the taken id, and the item-by-item path that follows finds it."""
    commit = sqlite_writer._sqlite_commit
    calls: list[bool] = []

    def late_commit(db: sqlite3.Connection, batch: Any) -> None:
        calls.append(batch.retry)
        if len(calls) == 1:
            raise sqlite3.OperationalError("database is locked")  # nothing stored yet
        if len(calls) == 2:
            # The "first try" commits now, behind the retry's back, after its lookup.
            with contextlib.closing(sqlite3.connect(tmp_path / "h.db")) as other:
                other.execute("PRAGMA busy_timeout = 5000")
                cols = ", ".join(batch_module.COLUMNS)
                marks = ", ".join("?" * len(batch_module.COLUMNS))
                with other:
                    seq = other.execute(
                        "UPDATE conversations SET last_seq = last_seq + 1 WHERE id = ? "
                        "RETURNING last_seq",
                        (batch.messages[0].conversation_id,),
                    ).fetchone()[0]
                    row = list(batch._rows[0])
                    row[batch_module.SEQ] = seq
                    other.execute(f"INSERT INTO messages ({cols}) VALUES ({marks})", row)
            batch.retry = False  # as if its lookup ran just before that commit
            try:
                commit(db, batch)
            finally:
                batch.retry = True
            return
        commit(db, batch)

    monkeypatch.setattr(sqlite_writer, "_sqlite_commit", late_commit)
    async with open_store(f"sqlite+aiosqlite:///{tmp_path}/h.db") as store:
        room, alice = await _room_and_user(store)
        result = await store.append(NewMessage(room.id, MessageKind.TEXT, "m0", alice.id, "Alice"))
        assert calls == [False, True, True]  # first try, retry (its INSERT failed), alone
        assert store.writer_stats.retried_batches == 1
        await _check_stored_once(store, room.id, [result], 1)
