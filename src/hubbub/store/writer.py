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
- ``close()`` commits everything queued before it returns.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import sqlite3
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from hubbub.core.errors import InvalidInput, NotFound
from hubbub.core.model import AppendResult, Message, NewMessage, new_message_id, now_ms

from . import rows
from . import schema as t
from .base import StoreClosed, StoreUnavailable, translate

log = logging.getLogger(__name__)

MAX_BATCH = 512

_T = TypeVar("_T")


@dataclass(slots=True)
class _Item:
    message: NewMessage
    future: asyncio.Future[AppendResult]


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
    ) -> None:
        """``write()`` opens one write transaction (``StoreBase._write``).

        ``on_batch(n)`` is called after each committed transaction with its
        number of appends (for metrics); it must be quick and must not raise.
        """
        self._write = write
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
        self._queue.append(_Item(message, future))
        self._wakeup.set()
        # A caller cancelled here may still have its message committed: like a
        # lost ack, the client resends with the same nonce and gets it back.
        return await future

    async def close(self) -> None:
        """Commit what is queued, then stop."""
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            await self._task

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
        messages = [item.message for item in batch]
        try:
            try:
                outcomes = await self._transaction(messages)
            except StoreUnavailable as exc:
                # The database, not an item, failed (lost connection, lock
                # timeout): one more try for all, then all fail alike; going
                # item by item would only wait out the timeout once per item.
                log.warning("append batch of %d failed (%s); retrying it once", len(batch), exc)
                outcomes = await self._transaction(messages)
        except StoreUnavailable as exc:
            for item in batch:
                _fail(item, exc)
            return
        except Exception as exc:
            log.warning("append batch of %d failed (%s); retrying one by one", len(batch), exc)
            self.stats.retried_batches += 1
            for item in batch:
                try:
                    (outcome,) = await self._transaction([item.message])
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

    async def _transaction(self, messages: list[NewMessage]) -> list[Outcome]:
        batch = _Batch(messages)
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

    def __init__(self, messages: list[NewMessage]) -> None:
        self.messages = messages
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
                new_message_id(),
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
