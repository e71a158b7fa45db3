"""Long-lived SQLite read connections for the store's hot small reads.

A read through the engine (``async with self._read() as conn``) checks a
connection out of SQLAlchemy's pool and back in: the pool, a ROLLBACK on
check-in in aiosqlite's thread, and a new aiosqlite connection and thread
whenever more than 5 are out at once. At a reconnect storm that was a quarter
of the server's CPU per WebSocket connect, for a read of a few rows
(docs/performance/connections.md). ``ReadConnections`` keeps one or two
sqlite3 connections open instead, each on a thread of its own, and runs a
plain function on one of them per read: one trip to a thread, no pool.

Why a read here sees every commit made before it starts, and blocks nothing:

- The database is in WAL mode (set at open, as the engine does), so a reader
  never blocks the writer and the writer never blocks a reader.
- The connections are in autocommit mode (``isolation_level=None``) and
  ``query_only``: each statement is its own read transaction, which starts at
  its first step (seeing every transaction committed before, by this process
  or any other) and ends when the statement has returned its last row
  (``fetchall``) and is reset. A job that leaves a transaction open (a bug, or
  an error half-way) is rolled back before the next one, so no snapshot stays
  pinned and checkpoints can always empty the WAL.

A connection whose read fails with a ``sqlite3.Error`` is closed and opened
again at the next read; for ``sqlite3.OperationalError`` (I/O error, locked
for longer than the busy timeout, ...) the caller gets StoreUnavailable, as
from the engine's path.
``stop()`` lets the reads already queued finish, then closes the connections;
a read that comes later gets StoreClosed.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import sqlalchemy as sa

from .engine import BUSY_TIMEOUT_MS
from .errors import StoreClosed, StoreUnavailable
from .threads import settle_from_thread

T = TypeVar("T")

CONNECTIONS = 2
"""Read connections (threads) per store: a slow read (a large history page, a
cold cache) does not hold up the small ones behind it."""

_Job = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[[sqlite3.Connection], Any]]


def sqlite_path(url: sa.URL) -> str | None:
    """The database file of a SQLite URL, or None when the read connections
    could not open the same database (in memory, a ``file:`` URI)."""
    if url.get_backend_name() != "sqlite" or url.query.get("uri"):
        return None
    path = url.database
    if not path or path == ":memory:" or path.startswith("file:"):
        return None
    return path


def connect(path: str) -> sqlite3.Connection:
    """A read connection to ``path``: autocommit, WAL, read only, the engine's busy timeout."""
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        # Already WAL (the engine sets it on every connection, and it persists):
        # then this only reads the mode.
        db.execute("PRAGMA journal_mode = WAL").fetchall()
        db.execute("PRAGMA query_only = ON")
    except BaseException:
        db.close()
        raise
    return db


class _Reader:
    """One connection and its thread (started at the first read)."""

    def __init__(self, path: str, name: str) -> None:
        self.path = path
        self.name = name
        self.jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self.pending = 0  # jobs sent and not yet settled; only touched on the loop
        self.thread: threading.Thread | None = None
        self.opened = 0  # connections opened, for tests

    def submit(self, job: _Job) -> None:
        if self.thread is None:
            self.thread = threading.Thread(target=self._main, name=self.name, daemon=True)
            self.thread.start()
        self.jobs.put(job)

    def _main(self) -> None:
        db: sqlite3.Connection | None = None
        try:
            while (job := self.jobs.get()) is not None:
                loop, future, fn = job
                try:
                    if db is None:
                        db = connect(self.path)
                        self.opened += 1
                    result = fn(db)
                except BaseException as exc:
                    if db is not None and isinstance(exc, sqlite3.Error):
                        _close(db)  # opened again at the next read
                        db = None
                    settle_from_thread(loop, future, exc, failed=True)
                else:
                    settle_from_thread(loop, future, result, failed=False)
                if db is not None and db.in_transaction:
                    try:
                        db.rollback()
                    except sqlite3.Error:
                        _close(db)
                        db = None
            # Stopped: fail whatever came after the stop (run() refuses new
            # reads once stopped, so this is only a race with another thread).
            while True:
                try:
                    late = self.jobs.get_nowait()
                except queue.Empty:
                    break
                if late is not None:
                    settle_from_thread(late[0], late[1], _closed(), failed=True)
        finally:
            if db is not None:
                _close(db)


def _close(db: sqlite3.Connection) -> None:
    with contextlib.suppress(sqlite3.Error):
        db.close()


class ReadConnections:
    """``await reads.run(fn)``: ``fn(connection)`` on one of the read
    connections' threads, its result or its exception back on the loop."""

    def __init__(self, path: str, *, connections: int = CONNECTIONS) -> None:
        self._readers = [_Reader(path, f"hubbub-sqlite-read-{i}") for i in range(connections)]
        self._stopped = False

    @property
    def stopped(self) -> bool:
        return self._stopped

    @property
    def opened(self) -> int:
        """Connections opened so far (a failed one is opened again)."""
        return sum(reader.opened for reader in self._readers)

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``fn(db)`` on the read connection with the fewest reads waiting.

        ``fn`` must not keep a transaction open or hold on to ``db``.
        StoreUnavailable when the database fails; StoreClosed once stopped.
        """
        if self._stopped:
            raise _closed()
        reader = min(self._readers, key=_pending)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        reader.pending += 1
        try:
            reader.submit((loop, future, fn))
            return await future
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable("the database is unavailable or busy; try again") from exc
        finally:
            reader.pending -= 1

    def stop(self) -> None:
        """Take no more reads; the queued ones still run, then the connections
        close. Does not wait (``close`` does)."""
        if self._stopped:
            return
        self._stopped = True
        for reader in self._readers:
            if reader.thread is not None:
                reader.jobs.put(None)

    async def close(self) -> None:
        """``stop()`` and wait until every connection is closed."""
        self.stop()
        for reader in self._readers:
            if reader.thread is not None:
                await asyncio.to_thread(reader.thread.join)


def _closed() -> Exception:
    return StoreClosed("the store is closed")


def _pending(reader: _Reader) -> int:
    return reader.pending
