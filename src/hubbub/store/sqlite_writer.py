"""SQLite's side of the group writer (``writer.GroupWriter``): each batch's
whole transaction in one trip to a thread with a connection of its own, and
WAL checkpoints off the commit path. See the notes below and
docs/performance/durable.md."""

from __future__ import annotations

import asyncio
import collections
import logging
import queue
import sqlite3
import threading
from collections.abc import Iterator
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from hubbub.core.model import now_ms

from . import engine as engine_module
from . import rows
from .batch import COLUMNS, Batch
from .threads import settle_from_thread

log = logging.getLogger("hubbub.store.writer")

_T = TypeVar("_T")

# -- The batch's statements ------------------------------------------------------------
#
# The same statements as the PostgreSQL path in ``writer``, run by one function
# (``_sqlite_batch``) inside the write transaction: on the writer's own thread
# (``SqliteThread``, below) for a database file; for an in-memory or ``file:``
# URI database in aiosqlite's thread through the engine (``sqlite_transaction``,
# one trip instead of ~19). That uses aiosqlite's ``Connection._execute`` (run a
# function in its thread) and ``_conn`` (its sqlite3 connection): private, but
# SQLAlchemy's aiosqlite adapter relies on the same (``_conn``, ``_tx``).

# Rows per statement. Far below SQLite's 32766 variables (3.32+; RETURNING
# needs 3.35 anyway), so a batch of MAX_BATCH is one statement.
_SQLITE_CHUNK = 2048
# One multi-row INSERT per batch, not executemany: FTS5 flushes its pending
# terms to a new segment at the end of every statement that wrote it, so the
# insert trigger cost one segment (and its merging) per message with
# executemany, and one per batch now: 512 messages 19 -> 9.5 ms of SQLite work
# (docs/performance/durable.md). Written out by hand: no SQLAlchemy compilation of
# thousands of expanding parameters per batch.
_SQLITE_INSERT = "INSERT INTO messages (" + ", ".join(COLUMNS) + ") VALUES "
_SQLITE_ROW = "(" + ", ".join(["?"] * len(COLUMNS)) + ")"
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


async def sqlite_transaction(conn: AsyncConnection, batch: Batch) -> None:
    aio: Any = (await conn.get_raw_connection()).driver_connection  # aiosqlite.Connection
    try:
        await aio._execute(_sqlite_batch, aio._conn, batch)
    except sqlite3.Error as exc:
        # As SQLAlchemy would have raised it: translate() and guarded() know these.
        raise sa.exc.DBAPIError.instance("append batch", None, exc, sqlite3.Error) from exc


def _sqlite_batch(db: sqlite3.Connection, batch: Batch) -> None:
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


def _sqlite_commit(db: sqlite3.Connection, batch: Batch) -> None:
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


_Job = tuple[asyncio.AbstractEventLoop, "asyncio.Future[None]", Batch]


class SqliteThread:
    """A thread with a sqlite3 connection of its own (opened at first use) that
    commits the writer's batches, one at a time."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._checkpointer = _Checkpointer(path)

    async def commit(self, batch: Batch) -> None:
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
                settle_from_thread(loop, future, exc, failed=True)
            else:
                settle_from_thread(loop, future, None, failed=False)
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
