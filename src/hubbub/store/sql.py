"""``SqlStore``: the :class:`hubbub.core.ports.Store` on SQLite or PostgreSQL.

Each noun's queries live in their own module (users, sessions, conversations,
messages); appends go through the group-commit writer (``writer.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType

from sqlalchemy.ext.asyncio import AsyncEngine

from hubbub.core.model import AppendResult, NewMessage
from hubbub.core.ports import Store

from .conversations import ConversationQueries
from .engine import make_engine, sqlite_file
from .errors import StoreClosed, StoreUnavailable
from .messages import MessageQueries
from .migrate import migrate_engine
from .networks import NetworkQueries
from .sessions import SessionQueries
from .users import UserQueries
from .writer import MAX_BATCH, GroupWriter, WriterStats

__all__ = ["SqlStore", "StoreClosed", "StoreUnavailable", "open_store"]


class SqlStore(UserQueries, SessionQueries, ConversationQueries, MessageQueries, NetworkQueries):
    """Persistent state on SQLAlchemy Core (async): aiosqlite or asyncpg."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        auto_migrate: bool = True,
        schema: str | None = None,
        max_batch: int = MAX_BATCH,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        super().__init__(engine)
        self._auto_migrate = auto_migrate
        self._schema = schema
        self._writer = GroupWriter(
            self._write,
            max_batch=max_batch,
            on_batch=on_batch,
            sqlite_path=sqlite_file(engine),
            write_lock=self._write_lock,
        )
        self._closed = False

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    @property
    def writer_stats(self) -> WriterStats:
        return self._writer.stats

    async def start(self) -> None:
        """Migrate to the newest schema (unless told not to) and start the writer."""
        if self._auto_migrate:
            await migrate_engine(self._engine, schema=self._schema)
        self._writer.start()

    async def close(self) -> None:
        """Commit pending appends, stop the writer and dispose the engine.

        The read connections close first (reads from then on take the engine's
        pool): they are read-only, and the last connection to close a SQLite
        database must be one that can checkpoint the WAL into it and remove the
        WAL file, so a stopped server leaves one self-contained database file
        (what a backup of the file alone needs)."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._reads is not None:
                await self._reads.close()  # wait for the read threads to end
        finally:
            try:
                await self._writer.close()
            finally:
                await self._engine.dispose()

    async def __aenter__(self) -> SqlStore:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def append(self, message: NewMessage) -> AppendResult:
        """Commit one message, group-committed with concurrent appends.

        ``seq`` is dense and increasing per conversation, assigned at commit.
        A ``nonce`` already used by the same sender returns the first message
        with ``duplicate=True`` and stores nothing. NotFound for an unknown
        conversation (or sender).
        """
        return await self._writer.append(message)


def open_store(
    url: str,
    *,
    schema: str | None = None,
    auto_migrate: bool = True,
    max_batch: int = MAX_BATCH,
    on_batch: Callable[[int], None] | None = None,
) -> SqlStore:
    """A store for ``url`` (``sqlite+aiosqlite:///path`` or ``postgresql+asyncpg://…``).

    Nothing connects until ``start()``, which also migrates unless
    ``auto_migrate`` is false. ``schema`` (PostgreSQL only) puts the tables in
    that schema, created when missing. ``on_batch(n)`` hears the size of every
    group-commit transaction (e.g. ``Metrics.observe_batch``).
    """
    return SqlStore(
        make_engine(url, schema=schema),
        auto_migrate=auto_migrate,
        schema=schema,
        max_batch=max_batch,
        on_batch=on_batch,
    )


def _implements_store(store: SqlStore) -> Store:
    return store  # mypy checks here that SqlStore has every method of the Store protocol
