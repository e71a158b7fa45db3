"""Bring a database up to the newest schema, programmatically (no alembic.ini).

Safe to run on every start and from several processes at once: on PostgreSQL
the whole upgrade is one transaction (DDL is transactional there) behind an
advisory lock; on SQLite it runs inside ``BEGIN IMMEDIATE``, which holds the
database's write lock.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.ext.asyncio import AsyncEngine

from .engine import WRITE_OPTION, check_schema, make_engine

MIGRATIONS = Path(__file__).with_name("migrations")
_LOCK_KEY = 0x4855_4242_5542  # "HUBBUB": pg_advisory_xact_lock key for migrations


def alembic_config() -> Config:
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


def _upgrade(connection: sa.Connection) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
