"""Group commit: every concurrent append shares one transaction.

Rules of this file:

- Callers enqueue a message and wait on a future. One writer task takes all
  that is queued (at most ``max_batch``) and commits it in ONE transaction, so
  throughput is one fsync per batch, not per message (DESIGN.md, point 4).
  While a batch commits, the next one fills: no timer, no added latency when idle.
- Seqs are handed out at commit, under a row lock: per conversation,
  ``UPDATE conversations SET last_seq = last_seq + k ... RETURNING last_seq``.
  Another process doing the same waits on that row (PostgreSQL) or on the
  database write lock (SQLite, ``BEGIN IMMEDIATE``), so seqs stay dense and
  unique across processes. Conversations are locked in id order, so two
  processes' batches cannot deadlock.
- Idempotency: a (sender_id, nonce) already stored gives back the stored
  message with ``duplicate=True``; the same pair twice in one batch stores one
  message and the later callers get it with ``duplicate=True``.
- A caller's future resolves only after the commit. If a batch fails (say a
  unique violation because another process stored the same nonce a moment
  ago), its items are retried one by one, each in its own transaction, so one
  bad item fails only its own caller.
- A message's id (ULID, unique in ``messages``) is made once, at ``append``,
  and every try inserts that id. A batch tried again after the database failed
  under it (the connection lost after COMMIT reached the server, say) first
  looks its ids up, so what the earlier try stored is given back, not stored
  twice, with or without a nonce; one committed after that lookup takes the id
  first, and the INSERT fails instead of storing it twice.
- SQLite: each transaction is one trip to a thread with a connection of its
  own, and checkpoints run off the commit path (``SqliteThread`` below).
- ``close()`` commits everything queued before it returns.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import queue
import sqlite3
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from hubbub.core.errors import InvalidInput, NotFound
from hubbub.core.model import AppendResult, Message, NewMessage, new_message_id, now_ms

from . import engine as engine_module
from . import rows
from . import schema as t
from .base import is_transient, translate
from .errors import StoreClosed, StoreUnavailable

log = logging.getLogger(__name__)

MAX_BATCH = 512

_T = TypeVar("_T")


@dataclass(slots=True)
class _Item:
    message: NewMessage
    future: asyncio.Future[AppendResult]
    # The message's ULID, made once: every try of its batch inserts the same id
    # (unique in ``messages``), so a retry finds what an earlier try committed.
    id: str


Outcome = AppendResult | Exception


@dataclass(slots=True)
class WriterStats:
    batches: int = 0  # transactions committed by the batch path
    messages: int = 0  # messages stored (duplicates not counted)
    duplicates: int = 0
    retried_batches: int = 0  # batches that failed and were retried item by item
    largest_batch: int = 0


class GroupWriter:
    def __init__(
        self,
        write: Callable[[], AbstractAsyncContextManager[AsyncConnection]],
        *,
        max_batch: int = MAX_BATCH,
        on_batch: Callable[[int], None] | None = None,
        sqlite_path: str | None = None,
        write_lock: asyncio.Lock | None = None,
    ) -> None:
        """``write()`` opens one write transaction (``StoreBase._write``).

        ``on_batch(n)`` is called after each committed transaction with its
        number of appends (for metrics); it must be quick and must not raise.

        ``sqlite_path``: a SQLite database file; its transactions then run on
        a thread and connection of the writer's own (``SqliteThread``), each in
        one trip, holding ``write_lock`` (the store's, which its other writes
        take too) meanwhile.
        """
        self._write = write
        self._thread = SqliteThread(sqlite_path) if sqlite_path is not None else None
        self._write_lock = write_lock if write_lock is not None else asyncio.Lock()
        self._on_batch = on_batch
        self._max_batch = max_batch
        self._queue: deque[_Item] = deque()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.stats = WriterStats()

    def start(self) -> None:
        if self._task is None and not self._closing:
            self._task = asyncio.create_task(self._run(), name="hubbub-store-writer")

    async def append(self, message: NewMessage) -> AppendResult:
        if self._closing:
            raise StoreClosed("the store is closed")
        _check(message)
        self.start()
        future: asyncio.Future[AppendResult] = asyncio.get_running_loop().create_future()
        self._queue.append(_Item(message, future, new_message_id()))
        self._wakeup.set()
        # A caller cancelled here may still have its message committed: like a
        # lost ack, the client resends with the same nonce and gets it back.
        return await future

    async def close(self) -> None:
        """Commit what is queued, then stop."""
        self._closing = True
        self._wakeup.set()
        try:
            if self._task is not None:
                await self._task
        finally:
            if self._thread is not None:
                await self._thread.close()

    async def _run(self) -> None:
        batch: list[_Item] = []
        try:
            while True:
                if not self._queue:
                    if self._closing:
                        return
                    self._wakeup.clear()
                    await self._wakeup.wait()
                    continue
                batch = []
                while self._queue and len(batch) < self._max_batch:
                    item = self._queue.popleft()
                    if not item.future.done():  # skip callers already cancelled
                        batch.append(item)
                if batch:
                    await self._commit(batch)
        except BaseException as exc:
            # Cancelled (loop shutdown) or a bug: nobody may wait forever.
            error = StoreClosed("the store's writer stopped")
            error.__cause__ = exc
            for item in [*batch, *self._queue]:
                _fail(item, error)
            self._queue.clear()
            raise

    async def _commit(self, batch: list[_Item]) -> None:
        try:
            try:
                outcomes = await self._transaction(batch, retry=False)
            except StoreUnavailable as exc:
                # The database, not an item, failed (lost connection, lock
                # timeout): one more try for all, then all fail alike; going
                # item by item would only wait out the timeout once per item.
                # The first try may have committed (a connection lost after
                # COMMIT reached the server): the retry looks up its ids first.
                log.warning("append batch of %d failed (%s); retrying it once", len(batch), exc)
                outcomes = await self._transaction(batch, retry=True)
        except StoreUnavailable as exc:
            for item in batch:
                _fail(item, exc)
            return
        except Exception as exc:
            log.warning("append batch of %d failed (%s); retrying one by one", len(batch), exc)
            self.stats.retried_batches += 1
            for item in batch:
                try:
                    (outcome,) = await self._transaction([item], retry=True)
                except Exception as item_exc:
                    outcome = translate(item_exc)
                    if outcome is not item_exc:
                        outcome.__cause__ = item_exc
                else:
                    self._observe(1)
                _settle(item, outcome)
            return
        self.stats.batches += 1
        self.stats.largest_batch = max(self.stats.largest_batch, len(batch))
        self._observe(len(batch))
        for item, outcome in zip(batch, outcomes, strict=True):
            _settle(item, outcome)

    def _observe(self, size: int) -> None:
        if self._on_batch is not None:
            try:
                self._on_batch(size)
            except Exception:
                log.exception("on_batch listener failed")

    async def _transaction(self, items: list[_Item], *, retry: bool) -> list[Outcome]:
        """One try at storing ``items``; ``retry``: an earlier try may have committed."""
        batch = _Batch([item.message for item in items], [item.id for item in items], retry)
        if self._thread is not None:
            async with self._write_lock:
                try:
                    await self._thread.commit(batch)
                except sqlite3.Error as exc:
                    # As SQLAlchemy and guarded() would have raised it.
                    error = sa.exc.DBAPIError.instance("append batch", None, exc, sqlite3.Error)
                    if is_transient(error):
                        raise StoreUnavailable(
                            "the database is unavailable or busy; try again"
                        ) from error
                    raise error from exc
        else:
            async with self._write() as conn:
                if conn.dialect.name == "sqlite":
                    await _sqlite_transaction(conn, batch)
                else:
                    await _transaction(conn, batch)
        done = batch.outcomes()
        self.stats.messages += len(batch.inserts)
        self.stats.duplicates += sum(
            1 for outcome in done if isinstance(outcome, AppendResult) and outcome.duplicate
        )
        return done


class _Batch:
    """One transaction's appends: what both engines' statements share.

    Built on the event loop, before the transaction: every message that may
    be stored gets its row here (id, JSON) but for seq and ts. Then, inside
    the transaction:
    ``keys`` (the batch's nonces), ``stored`` for each already stored,
    ``groups``, ``assign`` for each group with its new last seq; ``inserts``
    and ``read_markers`` are then what to write. ``outcomes()`` (on the loop
    again, after the commit) makes the results. The part inside the
    transaction is little Python: on SQLite it runs in aiosqlite's thread,
    where it would contend with the loop for the GIL, and it holds the
    database's write lock.
    """

    def __init__(self, messages: list[NewMessage], ids: list[str], retry: bool) -> None:
        self.messages = messages
        # An earlier try of these messages may have committed: look up ``ids`` too.
        self.retry = retry
        self.ids = ids
        self._outcomes: list[Outcome | None] = [None] * len(messages)
        self._first_of: dict[tuple[int, str], int] = {}
        self._followers: dict[int, int] = {}  # {repeat index: first index}
        self._rows: list[list[Any] | None] = [None] * len(messages)
        self._new: list[int] = []  # indexes stored by this batch, in insert order
        for index, message in enumerate(messages):
            if message.sender_id is not None and message.nonce is not None:
                key = (message.sender_id, message.nonce)
                if key in self._first_of:
                    self._followers[index] = self._first_of[key]
                    continue
                self._first_of[key] = index
            self._rows[index] = [
                ids[index],
                message.conversation_id,
                0,  # seq and
                0,  # ts: set by assign(), under the write lock
                message.sender_id,
                message.sender,
                message.kind.value,
                message.text,
                rows.dump_json(message.meta),
                message.nonce,
                message.ext_key,
            ]

    def keys(self) -> list[tuple[int, str]]:
        """The distinct (sender_id, nonce) pairs to look up."""
        return list(self._first_of)

    def stored(self, row: Any) -> None:
        """A row (with MESSAGE_COLUMNS' attributes) already stored under one of ``keys``."""
        self._outcomes[self._first_of[(row.sender_id, row.nonce)]] = AppendResult(
            rows.message(row), duplicate=True
        )

    def stored_by_us(self, row: Any) -> None:
        """A row (with MESSAGE_COLUMNS' attributes) with one of ``ids``: an earlier
        try of this message committed it. Its caller gets it as new (it is
        theirs), after ``stored()`` (its nonce finds it too)."""
        self._outcomes[self.ids.index(row.id)] = AppendResult(rows.message(row), duplicate=False)

    def groups(self) -> list[tuple[int, list[int]]]:
        """(conversation_id, message indexes) to store, in conversation id order."""
        by_conversation: dict[int, list[int]] = {}
        for index, message in enumerate(self.messages):
            if self._outcomes[index] is None and index not in self._followers:
                by_conversation.setdefault(message.conversation_id, []).append(index)
        return sorted(by_conversation.items())

    def assign(self, conversation_id: int, indexes: list[int], last_seq: Any, ts: int) -> None:
        """The group's seqs end at ``last_seq`` (None: no such conversation)."""
        if last_seq is None:
            missing = NotFound("no such conversation", conversation_id=conversation_id)
            for index in indexes:
                self._outcomes[index] = missing
            return
        seq = int(last_seq) - len(indexes)
        for index in indexes:
            seq += 1
            row = self._rows[index]
            assert row is not None
            row[_SEQ] = seq
            row[_TS] = ts
        self._new.extend(indexes)

    @property
    def inserts(self) -> list[list[Any]]:
        """The rows to insert, in ascending seq within each conversation."""
        return [self._rows[index] for index in self._new]  # type: ignore[misc]

    def read_markers(self) -> list[dict[str, object]]:
        """A sender has read what they sent: their read marker moves up to it.

        In the same transaction, so unread counts never include your own
        messages (nor your own join). One per (conversation, sender) in the batch.
        """
        newest: dict[tuple[object, object], object] = {}
        for index in self._new:  # ascending seq within each conversation
            row = self._rows[index]
            assert row is not None
            if row[_SENDER] is not None:
                newest[(row[_CONVERSATION], row[_SENDER])] = row[_SEQ]
        return [{"c": c, "u": u, "s": s} for (c, u), s in newest.items()]

    def outcomes(self) -> list[Outcome]:
        """After the commit: every message's result, in the batch's order."""
        for index in self._new:
            new, row = self.messages[index], self._rows[index]
            assert row is not None
            self._outcomes[index] = AppendResult(
                Message(
                    id=row[0],
                    conversation_id=new.conversation_id,
                    seq=row[_SEQ],
                    ts=row[_TS],
                    sender_id=new.sender_id,
                    sender=new.sender,
                    kind=new.kind,
                    text=new.text,
                    meta=new.meta,
                    nonce=new.nonce,
                ),
                duplicate=False,
            )
        for index, leader in self._followers.items():
            first = self._outcomes[leader]
            self._outcomes[index] = (
                AppendResult(first.message, duplicate=True)
                if isinstance(first, AppendResult)
                else first
            )
        done = [outcome for outcome in self._outcomes if outcome is not None]
        assert len(done) == len(self.messages)
        return done


# -- PostgreSQL (and any engine): SQLAlchemy Core ----------------------------------

_READ_BY_SENDER = (
    sa.update(t.members)
    .where(
        t.members.c.conversation_id == sa.bindparam("c"),
        t.members.c.user_id == sa.bindparam("u"),
        t.members.c.read_seq < sa.bindparam("s"),
    )
    .values(read_seq=sa.bindparam("s"))
)


async def _transaction(conn: AsyncConnection, batch: _Batch) -> None:
    if keys := batch.keys():
        for row in await conn.execute(
            sa.select(*rows.MESSAGE_COLUMNS).where(
                sa.tuple_(t.messages.c.sender_id, t.messages.c.nonce).in_(keys)
            )
        ):
            batch.stored(row)
    if batch.retry:
        # A message committed by an earlier try is never stored twice: the lookup
        # finds it, or (committed after the lookup; it is still running on a
        # lost connection) its id is taken and the INSERT fails, so the batch is
        # retried one by one, each looking its id up again.
        for row in await conn.execute(
            sa.select(*rows.MESSAGE_COLUMNS).where(t.messages.c.id.in_(batch.ids))
        ):
            batch.stored_by_us(row)
    ts = now_ms()
    for conversation_id, indexes in batch.groups():
        last_seq = await conn.scalar(
            sa.update(t.conversations)
            .where(t.conversations.c.id == conversation_id)
            .values(last_seq=t.conversations.c.last_seq + len(indexes))
            .returning(t.conversations.c.last_seq)
        )
        batch.assign(conversation_id, indexes, last_seq, ts)
    if batch.inserts:
        await conn.execute(
            sa.insert(t.messages),
            [dict(zip(_COLUMNS, row, strict=True)) for row in batch.inserts],
        )
        if markers := batch.read_markers():
            await conn.execute(_READ_BY_SENDER, markers)


# -- SQLite: the whole batch in one trip to aiosqlite's thread -----------------------
#
# The same statements as above, in the same transaction (BEGIN IMMEDIATE by
# ``self._write()``, COMMIT when it exits), but run by one function in
# aiosqlite's thread instead of ~19 round trips between the event loop and that
# thread (a cursor, an execute and a close per statement, fetches): 6 trips
# per transaction now (BEGIN, this, COMMIT, the pool's reset) instead of 19.
# At 5,000 appends/s (batches of ~15) the trips were most of the writer's cost:
# CPU per single-message transaction 1.8-2.0 ms -> 0.85-0.93 ms.
# Uses aiosqlite's ``Connection._execute`` (run a function in its thread) and
# ``_conn`` (its sqlite3 connection): private, but SQLAlchemy's aiosqlite
# adapter relies on the same (``_conn``, ``_tx``); tests/store run this path.

# The columns of a new message's row, in the order of ``_Batch``'s rows.
_COLUMNS = (
    "id",
    "conversation_id",
    "seq",
    "ts",
    "sender_id",
    "sender",
    "kind",
    "text",
    "meta",
    "nonce",
    "ext_key",
)
_CONVERSATION, _SEQ, _TS, _SENDER = 1, 2, 3, 4  # their positions

# Rows per statement. Far below SQLite's 32766 variables (3.32+; RETURNING
# needs 3.35 anyway), so a batch of MAX_BATCH is one statement.
_SQLITE_CHUNK = 2048
# One multi-row INSERT per batch, not executemany: FTS5 flushes its pending
# terms to a new segment at the end of every statement that wrote it, so the
# insert trigger cost one segment (and its merging) per message with
# executemany, and one per batch now: 512 messages 19 -> 9.5 ms of SQLite work
# (docs/performance/durable.md). Written out by hand: no SQLAlchemy compilation of
# thousands of expanding parameters per batch.
_SQLITE_INSERT = "INSERT INTO messages (" + ", ".join(_COLUMNS) + ") VALUES "
_SQLITE_ROW = "(" + ", ".join(["?"] * len(_COLUMNS)) + ")"
# Stored nonces of a batch. A join with VALUES uses the (sender_id, nonce)
# index; ``(sender_id, nonce) IN (VALUES ...)``, what SQLAlchemy renders,
# scanned the whole table on every batch (6 ms at 30k messages, growing).
_SQLITE_DUPLICATES = (
    "SELECT " + ", ".join(f"m.{column.key}" for column in rows.MESSAGE_COLUMNS) + " FROM (VALUES "
)
_SQLITE_ON = ") AS v JOIN messages AS m ON m.sender_id = v.column1 AND m.nonce = v.column2"
_SQLITE_BY_ID = (
    "SELECT "
    + ", ".join(str(column.key) for column in rows.MESSAGE_COLUMNS)
    + " FROM messages WHERE id IN ("
)
_SQLITE_SEQ = "UPDATE conversations SET last_seq = last_seq + ? WHERE id = ? RETURNING last_seq"
_SQLITE_READ = (
    "UPDATE members SET read_seq = :s WHERE conversation_id = :c AND user_id = :u AND read_seq < :s"
)
_StoredRow = collections.namedtuple(  # type: ignore[misc]
    "_StoredRow", [str(column.key) for column in rows.MESSAGE_COLUMNS]
)


def _chunks(items: list[_T], size: int) -> Iterator[list[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


async def _sqlite_transaction(conn: AsyncConnection, batch: _Batch) -> None:
    aio: Any = (await conn.get_raw_connection()).driver_connection  # aiosqlite.Connection
    try:
        await aio._execute(_sqlite_batch, aio._conn, batch)
    except sqlite3.Error as exc:
        # As SQLAlchemy would have raised it: translate() and guarded() know these.
        raise sa.exc.DBAPIError.instance("append batch", None, exc, sqlite3.Error) from exc


def _sqlite_batch(db: sqlite3.Connection, batch: _Batch) -> None:
    """Runs in aiosqlite's thread, inside the open write transaction."""
    for keys in _chunks(batch.keys(), _SQLITE_CHUNK):
        sql = _SQLITE_DUPLICATES + ", ".join(["(?, ?)"] * len(keys)) + _SQLITE_ON
        for row in db.execute(sql, [value for key in keys for value in key]).fetchall():
            batch.stored(_StoredRow._make(row))
    if batch.retry:
        for ids in _chunks(batch.ids, _SQLITE_CHUNK):
            sql = _SQLITE_BY_ID + ", ".join(["?"] * len(ids)) + ")"
            for row in db.execute(sql, ids).fetchall():
                batch.stored_by_us(_StoredRow._make(row))
    ts = now_ms()
    for conversation_id, indexes in batch.groups():
        found = db.execute(_SQLITE_SEQ, (len(indexes), conversation_id)).fetchall()
        batch.assign(conversation_id, indexes, found[0][0] if found else None, ts)
    if inserts := batch.inserts:
        for chunk in _chunks(inserts, _SQLITE_CHUNK):
            sql = _SQLITE_INSERT + ", ".join([_SQLITE_ROW] * len(chunk))
            db.execute(sql, [value for row in chunk for value in row])
        if markers := batch.read_markers():
            db.executemany(_SQLITE_READ, markers)


def _sqlite_commit(db: sqlite3.Connection, batch: _Batch) -> None:
    """The whole transaction, in ``SqliteThread``'s thread: one trip from the loop."""
    db.execute("BEGIN IMMEDIATE")
    try:
        _sqlite_batch(db, batch)
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


# -- SQLite: the writer's own thread and connection ----------------------------------
#
# Through SQLAlchemy and aiosqlite a transaction took 5-6 trips between the
# event loop and aiosqlite's thread (checkout, BEGIN IMMEDIATE, the batch,
# COMMIT, the pool's reset), each waiting for the loop to be free, which under
# fan-out means behind a pass of thousands of socket writes. Here the loop puts
# the batch on this thread's queue and gets the outcome by one
# call_soon_threadsafe. Readers use the engine's connections: in WAL they see a
# commit as soon as COMMIT returned, as before.
#
# Checkpoints: SQLite's automatic checkpoint runs inside the COMMIT that takes
# the WAL past 1000 pages, and with synchronous=FULL it writes and fsyncs the
# database file too: one commit in about a hundred (single-message batches)
# paid for it, the commits' p99 (docs/performance/durable.md). The writer's
# connection has it off; ``_Checkpointer`` runs PASSIVE checkpoints from a
# connection and thread of its own (they never block the writer), after
# CHECKPOINT_COMMITS commits or CHECKPOINT_ROWS messages, or when writes
# stopped for CHECKPOINT_IDLE_S. The WAL starts again from its beginning only
# when a write transaction begins with every frame checkpointed; while writes
# go on, one usually commits during the checkpoint, and the WAL grew (to 60 MB
# at 200 appends/s). So once the WAL is past RESET_PAGES, the writer's thread
# checkpoints the few frames left after its next commit (one small checkpoint
# per RESET_PAGES of WAL, where SQLite's own ran a full one every 1000 pages),
# and its next transaction restarts the WAL. Readers on old snapshots can keep
# checkpoints from finishing; past RESTART_PAGES a RESTART checkpoint waits
# for them (and holds the writer off meanwhile), so the WAL stays bounded;
# journal_size_limit shrinks the file after a burst.

CHECKPOINT_COMMITS = 64
CHECKPOINT_ROWS = 2048
CHECKPOINT_IDLE_S = 0.5
RESET_PAGES = 4096
RESTART_PAGES = 16_384
WAL_SIZE_LIMIT = 64 << 20


def _connect(path: str, *, autocheckpoint: bool) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        db.execute(f"PRAGMA busy_timeout = {engine_module.BUSY_TIMEOUT_MS}")
        engine_module.set_wal(db)
        db.execute("PRAGMA synchronous = FULL")
        db.execute("PRAGMA foreign_keys = ON")
        db.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")
        if not autocheckpoint:
            db.execute("PRAGMA wal_autocheckpoint = 0")
    except BaseException:
        db.close()
        raise
    return db


_Job = tuple[asyncio.AbstractEventLoop, "asyncio.Future[None]", _Batch]


class SqliteThread:
    """A thread with a sqlite3 connection of its own (opened at first use) that
    commits the writer's batches, one at a time."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._checkpointer = _Checkpointer(path)

    async def commit(self, batch: _Batch) -> None:
        """Store ``batch`` in one transaction (``_sqlite_commit``)."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._main, name="hubbub-sqlite-writer", daemon=True
            )
            self._thread.start()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._jobs.put((loop, future, batch))
        await future

    async def close(self) -> None:
        if self._thread is not None:
            self._jobs.put(None)
            await asyncio.to_thread(self._thread.join)
            self._thread = None
        await asyncio.to_thread(self._checkpointer.close)

    def _main(self) -> None:
        db: sqlite3.Connection | None = None
        while (job := self._jobs.get()) is not None:
            loop, future, batch = job
            try:
                if db is None:
                    db = _connect(self._path, autocheckpoint=False)
                    self._checkpointer.start()
                _sqlite_commit(db, batch)
            except BaseException as exc:
                _resolve(loop, future.set_exception, future, exc)
            else:
                _resolve(loop, future.set_result, future, None)
                self._checkpointer.wrote(len(batch.inserts))
                if self._checkpointer.reset_wanted:
                    self._reset_wal(db)
        if db is not None:
            db.close()

    def _reset_wal(self, db: sqlite3.Connection) -> None:
        """Checkpoint the WAL's tail here, so that our next transaction restarts
        the WAL from its beginning (see above). After the batch's result went
        to the loop, so only a batch that comes meanwhile waits for it."""
        try:
            busy, pages, done = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()[0]
        except sqlite3.Error as exc:
            log.warning("SQLite checkpoint failed: %s", exc)
            return
        self._checkpointer.tail_checkpoints += 1
        if not busy and done >= pages:
            self._checkpointer.reset_wanted = False


def _resolve(
    loop: asyncio.AbstractEventLoop,
    setter: Callable[[Any], None],
    future: asyncio.Future[Any],
    value: Any,
) -> None:
    def settle() -> None:
        if not future.done():
            setter(value)

    with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
        loop.call_soon_threadsafe(settle)


class _Checkpointer:
    """PASSIVE checkpoints off the commit path (see above), on a thread of its own."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._wake = threading.Condition()
        self._commits = 0
        self._rows = 0
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.checkpoints = 0
        self.restarts = 0
        self.tail_checkpoints = 0  # by the writer's thread, for a WAL restart
        # Set here, read and cleared by the writer's thread (a plain bool: a
        # late or early look costs one checkpoint more or less, nothing else).
        self.reset_wanted = False
        self.largest_wal_pages = 0  # the most a checkpoint found in the WAL

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._main, name="hubbub-sqlite-checkpoint", daemon=True
            )
            self._thread.start()

    def wrote(self, rows: int) -> None:
        """Called by the writer's thread after each commit."""
        with self._wake:
            self._commits += 1
            self._rows += rows
            if (
                self._commits == 1
                or self._commits >= CHECKPOINT_COMMITS
                or self._rows >= CHECKPOINT_ROWS
            ):
                self._wake.notify()

    def close(self) -> None:
        with self._wake:
            self._stopping = True
            self._wake.notify()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _main(self) -> None:
        db: sqlite3.Connection | None = None
        try:
            while True:
                with self._wake:
                    seen = -1
                    # Wait for enough writes, or for writes to stop a while.
                    while not self._stopping and (
                        self._commits == 0
                        or (
                            self._commits < CHECKPOINT_COMMITS
                            and self._rows < CHECKPOINT_ROWS
                            and self._commits != seen
                        )
                    ):
                        seen = self._commits
                        self._wake.wait(CHECKPOINT_IDLE_S if self._commits else None)
                    if self._stopping:
                        return
                    self._commits = self._rows = 0
                try:
                    if db is None:
                        db = _connect(self._path, autocheckpoint=False)
                    self._checkpoint(db)
                except sqlite3.Error as exc:
                    log.warning("SQLite checkpoint failed: %s", exc)
        finally:
            if db is not None:
                db.close()

    def _checkpoint(self, db: sqlite3.Connection) -> None:
        _busy, pages, _done = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()[0]
        self.checkpoints += 1
        self.largest_wal_pages = max(self.largest_wal_pages, pages)
        if pages > RESET_PAGES:
            self.reset_wanted = True
        if pages > RESTART_PAGES:
            # Still growing: readers kept the checkpoints from finishing.
            db.execute("PRAGMA wal_checkpoint(RESTART)").fetchall()
            self.restarts += 1


def _check(message: NewMessage) -> None:
    # PostgreSQL text cannot hold NUL; refuse it on both engines alike, before
    # it can fail a batch.
    for name in ("text", "sender", "nonce"):
        value = getattr(message, name)
        if value is not None and "\x00" in value:
            raise InvalidInput(f"the message's {name} contains a NUL character")


def _settle(item: _Item, outcome: Outcome) -> None:
    if item.future.done():
        return
    if isinstance(outcome, AppendResult):
        item.future.set_result(outcome)
    else:
        item.future.set_exception(outcome)


def _fail(item: _Item, error: Exception) -> None:
    if not item.future.done():
        item.future.set_exception(error)
