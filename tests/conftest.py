"""Shared fixtures: settings, services, a real server on loopback, PostgreSQL, Redis.

- ``settings``: a fresh data dir on SQLite, cheap argon2, rate limits high
  enough not to get in the way. A module that needs other values overrides
  the fixture (``def settings(settings): return settings.model_copy(update=...)``)
  or uses ``make_settings(**changes)``.
- ``services``: :func:`hubbub.app.build_services` on ``settings``, closed after.
- ``server``: the whole app (proxy, metrics, API, WebSocket protocol class) on
  real uvicorn on a free 127.0.0.1 port, in the test's event loop. Yields a
  :class:`RunningServer` with ``.url``, ``.ws_url``, ``.services`` and
  ``await .stop()`` (graceful, like SIGTERM).
- ``pg_url``: ``HUBBUB_TEST_PG_URL``, or the test is skipped with the reason.
- ``redis_url``: Redis at 127.0.0.1:6379, or the test is skipped with the reason.
- ``timeout_scale``: ``HUBBUB_TEST_TIMEOUT_SCALE`` (default 1); multiply every
  wait in a test by it (``from testenv import scaled``; ``scaled(seconds)``).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from hubbub.app import build_services, close_services
from hubbub.config import Settings
from hubbub.web.deps import Services
from testenv import (
    REDIS_URL,
    TIMEOUT_SCALE,
    RunningServer,
    scaled,
    service_missing,
    start_server,
)


@pytest.fixture
def timeout_scale() -> float:
    return TIMEOUT_SCALE


TEST_SETTINGS: dict[str, Any] = {
    "host": "127.0.0.1",
    "port": 0,
    "database_url": "",
    "redis_url": "",
    "public_url": "",
    "base_path": "",
    "trust_forwarded": False,
    # cheap argon2id: tests hash many passwords
    "argon2_time_cost": 1,
    "argon2_memory_kib": 8,
    "argon2_parallelism": 1,
    # limits that stay out of the way unless a test lowers them
    "send_rate": 10_000.0,
    "send_burst": 10_000,
    "login_attempts_per_account": 1_000,
    "login_attempts_per_address": 1_000,
    "shutdown_timeout": 5.0,
    "access_log": False,
}


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    """Settings for a test: ``make_settings(send_rate=1.0)``; data in the test's tmp dir."""

    def make(**changes: Any) -> Settings:
        values = {**TEST_SETTINGS, "data_dir": tmp_path / "data", **changes}
        return Settings(**values)

    return make


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture
async def services(settings: Settings) -> AsyncIterator[Services]:
    built = await build_services(settings)
    try:
        yield built
    finally:
        await close_services(built)


@pytest.fixture
async def server(services: Services) -> AsyncIterator[RunningServer]:
    running = await start_server(services)
    try:
        yield running
    finally:
        if not running.task.done():
            running.uvicorn.should_exit = True
            try:
                await asyncio.wait_for(running.task, scaled(15))
            except TimeoutError:
                running.uvicorn.force_exit = True
                running.task.cancel()


_service_problems: dict[str, str | None] = {}


async def _pg_problem(url: str) -> str | None:
    if url not in _service_problems:
        import asyncpg
        import sqlalchemy as sa

        dsn = sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        try:
            conn = await asyncpg.connect(dsn, timeout=scaled(5))
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            _service_problems[url] = f"PostgreSQL at HUBBUB_TEST_PG_URL is unreachable: {exc!r}"
        else:
            await conn.close()
            _service_problems[url] = None
    return _service_problems[url]


@pytest.fixture
async def pg_url() -> str:
    url = os.environ.get("HUBBUB_TEST_PG_URL", "")
    if not url:
        service_missing("HUBBUB_TEST_PG_URL is not set (./scripts/test sets it)")
    problem = await _pg_problem(url)
    if problem:
        service_missing(problem)
    return url


@pytest.fixture
async def pg_database(pg_url: str) -> AsyncIterator[str]:
    """A fresh PostgreSQL database of its own (for several processes sharing it),
    dropped afterwards."""
    import asyncpg
    import sqlalchemy as sa

    url = sa.make_url(pg_url)
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"hubbub_test_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    yield url.set(database=name).render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def _redis_problem(url: str) -> str | None:
    if url not in _service_problems:
        import redis.asyncio as aioredis
        from redis.exceptions import RedisError

        client = aioredis.Redis.from_url(url, socket_connect_timeout=scaled(2))
        try:
            await client.ping()
        except (RedisError, OSError) as exc:
            _service_problems[url] = f"Redis at {url} is unreachable: {exc!r}"
        else:
            _service_problems[url] = None
        finally:
            await client.aclose()
    return _service_problems[url]


@pytest.fixture
async def redis_url() -> str:
    problem = await _redis_problem(REDIS_URL)
    if problem:
        service_missing(problem)
    return REDIS_URL
