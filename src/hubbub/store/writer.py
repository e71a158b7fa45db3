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
  own, and checkpoints run off the commit path (``sqlite_writer.SqliteThread``).
- ``close()`` commits everything queued before it returns.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections import deque
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from hubbub.core.errors import InvalidInput
from hubbub.core.model import AppendResult, NewMessage, new_message_id, now_ms

from . import rows
from . import schema as t
from .base import is_transient, translate
from .batch import COLUMNS, Batch, Outcome
from .errors import StoreClosed, StoreUnavailable
from .sqlite_writer import SqliteThread, sqlite_transaction

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
        batch = Batch([item.message for item in items], [item.id for item in items], retry)
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
                    await sqlite_transaction(conn, batch)
                else:
                    await _transaction(conn, batch)
        done = batch.outcomes()
        self.stats.messages += len(batch.inserts)
        self.stats.duplicates += sum(
            1 for outcome in done if isinstance(outcome, AppendResult) and outcome.duplicate
        )
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


async def _transaction(conn: AsyncConnection, batch: Batch) -> None:
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
            [dict(zip(COLUMNS, row, strict=True)) for row in batch.inserts],
        )
        if markers := batch.read_markers():
            await conn.execute(_READ_BY_SENDER, markers)


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
