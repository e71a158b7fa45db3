"""Bring a database up to the newest schema, programmatically (no alembic.ini).

Safe to run on every start and from several processes at once: on PostgreSQL
the whole upgrade is one transaction (DDL is transactional there) behind an
advisory lock; on SQLite it runs inside ``BEGIN IMMEDIATE``, which holds the
database's write lock.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from .engine import WRITE_OPTION, check_schema, make_engine

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")
_LOCK_KEY = 0x4855_4242_5542  # "HUBBUB": pg_advisory_xact_lock key for migrations


def head_revision() -> str:
    """The newest revision: each migration is ``versions/<revision>_<slug>.py``,
    revisions numbered in order (a test checks this against alembic's own head)."""
    return max(p.name.split("_", 1)[0] for p in (MIGRATIONS / "versions").glob("[0-9]*_*.py"))


def alembic_config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


async def migrate(url: str, *, schema: str | None = None) -> None:
    """Upgrade the database at ``url`` (and PostgreSQL ``schema``) to head."""
    engine = make_engine(url, schema=schema)
    try:
        await migrate_engine(engine, schema=schema)
    finally:
        await engine.dispose()


async def migrate_engine(engine: AsyncEngine, *, schema: str | None = None) -> None:
    """Upgrade through an engine that is already open."""
    if schema is not None:
        async with engine.begin() as conn:
            # Several processes may race here; IF NOT EXISTS is not atomic in PG.
            await conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
            await conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{check_schema(schema)}"'))
    async with engine.connect() as conn:
        conn = await conn.execution_options(**{WRITE_OPTION: True})
        async with conn.begin():
            if conn.dialect.name == "postgresql":
                await conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
            await conn.run_sync(_upgrade)


def _at_head(connection: sa.Connection) -> bool:
    """Whether the database is already at the newest revision: then a start needs
    neither alembic nor its imports (~130 ms of a ~1 s startup, issue 5)."""
    if not sa.inspect(connection).has_table("alembic_version"):
        return False
    versions = connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalars()
    return list(versions) == [head_revision()]


def _upgrade(connection: sa.Connection) -> None:
    if _at_head(connection):
        return
    from alembic import command

    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
