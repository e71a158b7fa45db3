"""Engine settings for SQLite and PostgreSQL.

SQLite
    WAL journal, so readers never block the writer. ``synchronous=FULL``: WAL
    with ``NORMAL`` already survives a killed process (a commit is in the WAL
    file, in the OS's cache), but not a power cut or kernel crash, where the
    last commits can be lost. An acknowledged message must never be lost
    (DESIGN.md, "Flow of one message"), and the writer group-commits, so FULL
    costs one fsync per batch, not per message: we pay it.
    ``foreign_keys=ON`` (SQLite's default is off) and a ``busy_timeout`` so that
    another connection or process holding the write lock makes us wait, not fail.
    Writes start with ``BEGIN IMMEDIATE``: a deferred transaction that reads and
    then writes can fail at once with SQLITE_BUSY when another writer went
    first, and the busy timeout does not help it. ``wal_autocheckpoint`` is
    raised: the group writer checkpoints off its commit path (writer.py).

PostgreSQL
    asyncpg; an optional ``schema`` becomes the connection's ``search_path``
    (tests give each case its own schema; a deployment may share a database).
"""

from __future__ import annotations

import re
import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

BUSY_TIMEOUT_MS = 10_000
# SQLite's automatic checkpoint for the engine's connections, in WAL pages.
# The group writer (writer.py) checkpoints on threads of its own and keeps the
# WAL near 4096 pages; at SQLite's default (1000) the other writes (read
# markers, sessions) would run a full checkpoint inside their commit, holding
# the write lock the writer waits for. Still a bound when the writer is idle.
WAL_AUTOCHECKPOINT_PAGES = 8192
WRITE_OPTION = "hubbub_write"
"""Execution option marking a connection that will write (SQLite: BEGIN IMMEDIATE)."""

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def is_sqlite(engine: AsyncEngine | sa.engine.Connection) -> bool:
    return engine.dialect.name == "sqlite"


def sqlite_file(engine: AsyncEngine) -> str | None:
    """The path of a SQLite engine's database file; None for PostgreSQL, an
    in-memory database or a ``file:`` URI (the writer's own connection could
    not open the same database)."""
    url = engine.url
    if not is_sqlite(engine) or url.query.get("uri"):
        return None
    path = url.database
    if not path or path == ":memory:" or path.startswith("file:"):
        return None
    return path


def check_schema(schema: str) -> str:
    if not _SCHEMA_NAME.match(schema):
        raise ValueError(f"invalid schema name {schema!r}")
    return schema


def make_engine(url: str, *, schema: str | None = None) -> AsyncEngine:
    """An async engine for ``url`` with the settings above."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if schema is not None:
            raise ValueError("schema is only for PostgreSQL")
        if parsed.get_driver_name() != "aiosqlite":
            parsed = parsed.set(drivername="sqlite+aiosqlite")
        engine = create_async_engine(parsed)
        _configure_sqlite(engine)
        return engine
    if parsed.get_backend_name() == "postgresql":
        if parsed.get_driver_name() != "asyncpg":
            parsed = parsed.set(drivername="postgresql+asyncpg")
        connect_args: dict[str, Any] = {}
        if schema is not None:
            connect_args["server_settings"] = {"search_path": check_schema(schema)}
        return create_async_engine(parsed, connect_args=connect_args, pool_pre_ping=True)
    raise ValueError(f"unsupported database URL {parsed.render_as_string()!r}")


def set_wal(cursor: Any) -> None:
    """``PRAGMA journal_mode = WAL``, retried while the database is locked.

    SQLite does not call the busy handler for a journal-mode change: a second
    process (or engine) connecting while the first migrates a fresh database
    got "database is locked" at once (tests/store/test_store_migrations.py,
    concurrently, flaky under load). Only the first connections to a new
    database can meet this; once in WAL, the mode persists.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except Exception as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.005)


def _configure_sqlite(engine: AsyncEngine) -> None:
    sync_engine = engine.sync_engine

    @sa.event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let us issue BEGIN ourselves (below), instead of the sqlite3 module's
        # implicit, deferred, DML-only transactions.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            set_wal(cursor)
            cursor.execute("PRAGMA synchronous = FULL")
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute(f"PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_PAGES}")
        finally:
            cursor.close()

    @sa.event.listens_for(sync_engine, "begin")
    def _on_begin(conn: sa.engine.Connection) -> None:
        if conn.get_execution_options().get(WRITE_OPTION):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")
