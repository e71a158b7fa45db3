"""Fixtures for WebSocket tests over real sockets: the full app on uvicorn, on a
free loopback port, in the test's event loop; real ``websockets`` clients."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from wshelp import LiveServer

from hubbub.app import HubbubServer, build_services, close_services, create_app, uvicorn_config
from hubbub.config import Settings


@pytest.fixture
def ws_settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path,
        port=0,
        argon2_time_cost=1,
        argon2_memory_kib=8,
        argon2_parallelism=1,
        access_log=False,
        send_rate=1000.0,
        send_burst=1000,
        shutdown_timeout=2.0,
    )


@pytest.fixture
async def ws_server(ws_settings: Settings) -> AsyncIterator[LiveServer]:
    services = await build_services(ws_settings)
    server = HubbubServer(uvicorn_config(create_app(services), ws_settings), capture_signals=False)
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(10):
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.01)
        assert server.bound_port is not None
        yield LiveServer(services, server.bound_port, server)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)
        await close_services(services)
