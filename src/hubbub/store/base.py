"""What every part of the store shares: the engine, connections, error translation."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hubbub.core.errors import Conflict, HubbubError, NotFound

from .engine import WRITE_OPTION, is_sqlite

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


def translate(exc: Exception) -> Exception:
    """A core error for a database error, when there is a fitting one."""
    if isinstance(exc, HubbubError):
        return exc
    if isinstance(exc, sa.exc.IntegrityError):
        kind = integrity_kind(exc)
        if kind == _UNIQUE:
            return Conflict("already exists")
        if kind == _FOREIGN_KEY:
            return NotFound("refers to something that does not exist")
    return exc


@contextmanager
def translating(
    *, unique: type[HubbubError] | HubbubError | None = None, missing: str | None = None
) -> Iterator[None]:
    """Turn integrity errors into core errors, chained to the original."""
    try:
        yield
    except sa.exc.IntegrityError as exc:
        kind = integrity_kind(exc)
        if kind == _UNIQUE and unique is not None:
            raise (unique() if isinstance(unique, type) else unique) from exc
        if kind == _FOREIGN_KEY and missing is not None:
            raise NotFound(missing) from exc
        raise translate(exc) from exc


class StoreBase:
    """Holds the engine; subclasses add the queries of one noun each."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._write_engine = engine.execution_options(**{WRITE_OPTION: True})
        self._sqlite = is_sqlite(engine)

    def _read(self) -> Any:
        """``async with self._read() as conn``: a connection for reads."""
        return self._engine.connect()

    def _write(self) -> Any:
        """``async with self._write() as conn``: one write transaction, committed on exit."""
        return self._write_engine.begin()

    def _insert(self, table: sa.Table) -> sqlite.Insert | postgresql.Insert:
        """An INSERT that knows ON CONFLICT on this engine."""
        return sqlite.insert(table) if self._sqlite else postgresql.insert(table)


async def scalar_int(conn: AsyncConnection, stmt: sa.Executable) -> int | None:
    value = await conn.scalar(stmt)
    return None if value is None else int(value)
