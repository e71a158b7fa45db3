"""What every part of the store shares: the engine, connections, error translation.

Errors of the store are core errors (``hubbub.core.errors``), plus::

    HubbubError
    └── StoreUnavailable  unavailable  503   the database is down, or locked too long
        └── StoreClosed                      the store was closed

Database exceptions are translated where they cross into the store's API and
chained (``raise ... from``): unique violations become NameTaken or Conflict,
foreign-key violations NotFound, lost connections and lock timeouts
StoreUnavailable. Anything else is a bug and propagates as is.
"""

from __future__ import annotations

import asyncio
import collections
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hubbub.core.errors import Conflict, HubbubError, NotFound

from .engine import WRITE_OPTION, is_sqlite
from .errors import StoreClosed, StoreUnavailable

if TYPE_CHECKING:
    from sqlalchemy.dialects import postgresql
from .reads import ReadConnections, sqlite_path

_UNIQUE = "unique"
_FOREIGN_KEY = "foreign_key"


def integrity_kind(exc: sa.exc.IntegrityError) -> str | None:
    """``unique``, ``foreign_key`` or None, on both engines."""
    orig: Any = exc.orig
    for candidate in (orig, getattr(orig, "__cause__", None)):
        sqlstate = getattr(candidate, "sqlstate", None)
        if sqlstate == "23505":
            return _UNIQUE
        if sqlstate == "23503":
            return _FOREIGN_KEY
    text = str(orig)
    if "UNIQUE constraint failed" in text:
        return _UNIQUE
    if "FOREIGN KEY constraint failed" in text:
        return _FOREIGN_KEY
    return None


def is_transient(exc: BaseException) -> bool:
    """A failure of the database rather than of the statement: worth a later retry."""
    return isinstance(exc, (sa.exc.OperationalError, OSError)) or (
        isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated
    )


def translate(exc: Exception) -> Exception:
    """A core error for a database error when there is a fitting one, else ``exc``.

    The caller chains it: ``raise translate(exc) from exc``.
    """
    if isinstance(exc, HubbubError):
        return exc
    if isinstance(exc, sa.exc.IntegrityError):
        kind = integrity_kind(exc)
        if kind == _UNIQUE:
            return Conflict("already exists")
        if kind == _FOREIGN_KEY:
            return NotFound("refers to something that does not exist")
    if is_transient(exc):
        return StoreUnavailable("the database is unavailable or busy; try again")
    return exc


@contextmanager
def translating(*, unique: HubbubError | None = None, missing: str | None = None) -> Iterator[None]:
    """Turn integrity errors into core errors, chained to the original.

    ``unique`` is raised for a unique violation; ``missing`` is the message of
    the NotFound raised for a foreign-key violation.
    """
    try:
        yield
    except sa.exc.IntegrityError as exc:
        kind = integrity_kind(exc)
        if kind == _UNIQUE and unique is not None:
            raise unique from exc
        if kind == _FOREIGN_KEY and missing is not None:
            raise NotFound(missing) from exc
        error = translate(exc)
        if error is exc:
            raise
        raise error from exc


@asynccontextmanager
async def guarded(
    context: AbstractAsyncContextManager[AsyncConnection],
) -> AsyncIterator[AsyncConnection]:
    """``async with`` a connection, turning a lost database into StoreUnavailable."""
    try:
        async with context as conn:
            yield conn
    except (sa.exc.DBAPIError, OSError) as exc:  # asyncpg raises OSError when refused
        if is_transient(exc):
            raise StoreUnavailable("the database is unavailable or busy; try again") from exc
        raise


Bound = tuple[str, tuple[Any, ...], Any]
"""SQL, its arguments, the row type (``StoreBase._bind``)."""


class StoreBase:
    """Holds the engine; subclasses add the queries of one noun each."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._write_engine = engine.execution_options(**{WRITE_OPTION: True})
        self._sqlite = is_sqlite(engine)
        # SQLite has one writer at a time. Queue this process's writers here, in
        # order, instead of letting them poll the file lock (its busy handler
        # sleeps up to 100 ms a turn); other processes still meet the file lock.
        self._write_lock = asyncio.Lock() if self._sqlite else None
        self._compiled: dict[sa.Select[Any], tuple[str, tuple[str, ...], Any, dict[str, Any]]] = {}
        # SQLite: hot small reads on long-lived connections of their own, not
        # through the pool (reads.py); stopped when the engine is disposed
        # (SqlStore.close), after which reads go through the pool as before.
        path = sqlite_path(engine.url) if self._sqlite else None
        self._reads = None if path is None else ReadConnections(path)
        if self._reads is not None:
            reads = self._reads
            sa.event.listen(engine.sync_engine, "engine_disposed", lambda _e: reads.stop())

    def _read(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """``async with self._read() as conn``: a connection for reads."""
        return guarded(self._engine.connect())

    def _write(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """``async with self._write() as conn``: one write transaction, committed on exit."""
        if self._write_lock is None:
            return guarded(self._write_engine.begin())
        return self._locked_write(self._write_lock)

    @asynccontextmanager
    async def _locked_write(self, lock: asyncio.Lock) -> AsyncIterator[AsyncConnection]:
        async with lock, guarded(self._write_engine.begin()) as conn:
            yield conn

    def _insert(self, table: sa.Table) -> sqlite.Insert | postgresql.Insert:
        """An INSERT that knows ON CONFLICT on this engine."""
        if self._sqlite:
            return sqlite.insert(table)
        # here, not at the top: a server on SQLite never loads the PostgreSQL
        # dialect (~30 ms of startup); the engine loaded it already on PostgreSQL
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table)

    def _hot_reads(self) -> ReadConnections | None:
        """The read connections for a hot read, or None: use ``_read()``."""
        reads = self._reads
        return None if reads is None or reads.stopped else reads

    async def _fetch(self, stmt: sa.Select[Any], **params: Any) -> list[Any]:
        """``_fetch_compiled`` in a read of its own: on SQLite on a read
        connection (no pool checkout), on PostgreSQL through the pool."""
        reads = self._hot_reads()
        if reads is None:
            async with self._read() as conn:
                return await self._fetch_compiled(conn, stmt, **params)
        bound = self._bind(stmt, params)
        return await reads.run(lambda db: fetch_bound(db, bound))

    async def _run_read(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        """``fn(db)`` on a SQLite read connection (``_hot_reads()`` was not None)."""
        reads = self._hot_reads()
        if reads is None:
            raise StoreClosed("the store is closed")
        return await reads.run(fn)

    def _bind(self, stmt: sa.Select[Any], params: dict[str, Any]) -> Bound:
        """``stmt``'s SQL (compiled once per store), its arguments from
        ``params``, and its row type."""
        compiled = self._compiled.get(stmt)
        if compiled is None:
            c = stmt.compile(dialect=self._engine.dialect)
            make_row: Any = collections.namedtuple(  # type: ignore[misc]
                "Row", [str(col.key) for col in stmt.selected_columns]
            )
            # c.params: the values compiled in (e.g. SQLite's OFFSET with a LIMIT)
            compiled = self._compiled[stmt] = (
                c.string,
                tuple(c.positiontup or ()),
                make_row,
                {k: v for k, v in c.params.items() if v is not None},
            )
        sql, names, row_type, fixed = compiled
        args = tuple(params[name] if name in params else fixed[name] for name in names)
        return sql, args, row_type

    async def _fetch_compiled(
        self, conn: AsyncConnection, stmt: sa.Select[Any], **params: Any
    ) -> list[Any]:
        """The rows of a hot read built once at import (``stmt``, with named
        ``bindparam``s), from SQL compiled once per store; rows have the
        attributes of ``stmt``'s columns.

        ``conn.execute(stmt)`` looks the statement up in SQLAlchemy's compiled
        cache each time (its cache key, the parameters, result processors),
        and on aiosqlite it takes four trips to the database thread (cursor,
        execute, fetch, close); here SQLite takes one (``execute_fetchall``)
        and PostgreSQL runs the compiled SQL through ``exec_driver_sql``. About
        a quarter of a WebSocket handshake's cost at a reconnect storm
        (docs/performance.md). Only for plain columns (ints and text): no
        type processing is applied.
        """
        sql, args, row_type = self._bind(stmt, params)
        if self._sqlite:
            raw = await conn.get_raw_connection()
            found = await raw.driver_connection.execute_fetchall(sql, args)  # type: ignore[union-attr]
            return [row_type._make(row) for row in found]
        return list(await conn.exec_driver_sql(sql, args))


def fetch_bound(db: sqlite3.Connection, bound: Bound) -> list[Any]:
    """The rows of a bound statement on a sqlite3 connection (in its thread).

    ``fetchall`` steps the statement to its end, so its read transaction is
    over when this returns."""
    sql, args, row_type = bound
    return list(map(row_type._make, db.execute(sql, args).fetchall()))
