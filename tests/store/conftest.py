"""Fixtures: every store test runs on SQLite and, when it is there, on PostgreSQL.

PostgreSQL comes from ``HUBBUB_TEST_PG_URL``; each test gets a schema of its
own (dropped afterwards), so tests never see each other's rows and no test
has to clean up.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest
import sqlalchemy as sa

from hubbub.core.model import ConversationKind, User, Visibility
from hubbub.store import SqlStore, open_store
from testenv import service_missing

PG_URL = os.environ.get("HUBBUB_TEST_PG_URL", "")
_pg_problem: list[str] = []  # the reason PostgreSQL is unusable, found once


def _pg_dsn() -> str:
    return sa.make_url(PG_URL).set(drivername="postgresql").render_as_string(hide_password=False)


async def _pg_unavailable() -> str | None:
    if not PG_URL:
        return "HUBBUB_TEST_PG_URL is not set: PostgreSQL store tests skipped"
    if not _pg_problem:
        try:
            conn = await asyncpg.connect(_pg_dsn(), timeout=5)
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            _pg_problem.append(f"PostgreSQL at HUBBUB_TEST_PG_URL is unreachable: {exc!r}")
        else:
            await conn.close()
            _pg_problem.append("")
    return _pg_problem[0] or None


@dataclass
class Target:
    """Where a test's database lives; ``open()`` makes another store on it."""

    engine: str  # "sqlite" | "postgresql"
    url: str
    schema: str | None = None

    def open(self, **kwargs: Any) -> SqlStore:
        return open_store(self.url, schema=self.schema, **kwargs)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def target(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[Target]:
    if request.param == "sqlite":
        yield Target("sqlite", f"sqlite+aiosqlite:///{tmp_path}/hubbub.db")
        return
    reason = await _pg_unavailable()
    if reason:
        service_missing(reason)
    schema = f"test_{uuid.uuid4().hex[:16]}"
    yield Target("postgresql", PG_URL, schema)
    conn = await asyncpg.connect(_pg_dsn())
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


@pytest.fixture
async def store(target: Target) -> AsyncIterator[SqlStore]:
    s = target.open()
    await s.start()
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
async def alice(store: SqlStore) -> User:
    return await store.create_user("Alice", "hash-a")


@pytest.fixture
async def bob(store: SqlStore, alice: User) -> User:
    return await store.create_user("bob", "hash-b")


async def make_room(
    store: SqlStore, name: str, owner: User | None = None, *, public: bool = True
) -> Any:
    return await store.create_conversation(
        network_id=1,
        kind=ConversationKind.ROOM,
        name=name,
        visibility=Visibility.PUBLIC if public else Visibility.PRIVATE,
        owner_id=owner.id if owner else None,
    )


@pytest.fixture
def room_factory(store: SqlStore) -> Any:
    async def factory(name: str, owner: User | None = None, *, public: bool = True) -> Any:
        return await make_room(store, name, owner, public=public)

    return factory
