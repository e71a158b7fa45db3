"""Test-suite knobs from the environment and a live-server helper, importable from any
test module (``from testenv import scaled, start_server``)."""

from __future__ import annotations

import asyncio
import os
import socket
from dataclasses import dataclass

from hubbub.app import HubbubServer, create_app, uvicorn_config
from hubbub.config import Settings
from hubbub.web.deps import Services

TIMEOUT_SCALE = float(os.environ.get("HUBBUB_TEST_TIMEOUT_SCALE", "1") or 1)
REDIS_URL = os.environ.get("HUBBUB_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def service_missing(reason: str) -> None:
    """Skip a test whose real peer (PostgreSQL, Redis) is missing; in CI, fail it.

    CI must run the PostgreSQL and Redis paths (``./scripts/services`` starts
    them), so a skip there would hide a broken machine behind a green run.
    """
    import pytest

    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI needs this service)", pytrace=False)
    pytest.skip(reason)


def scaled(seconds: float) -> float:
    """A timeout, stretched on slow machines by ``HUBBUB_TEST_TIMEOUT_SCALE``."""
    return seconds * TIMEOUT_SCALE


@dataclass
class RunningServer:
    url: str  # http://127.0.0.1:PORT
    ws_url: str  # ws://127.0.0.1:PORT/api/ws
    port: int
    services: Services
    uvicorn: HubbubServer
    task: asyncio.Task[None]

    @property
    def settings(self) -> Settings:
        return self.services.settings

    async def stop(self, timeout: float = 10.0) -> None:
        """Shut down as on SIGTERM: stop accepting, finish requests, close sockets."""
        self.uvicorn.should_exit = True
        await asyncio.wait_for(asyncio.shield(self.task), scaled(timeout))


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


async def start_server(services: Services) -> RunningServer:
    """Serve ``services`` on real uvicorn on a free loopback port, in this loop."""
    sock = free_socket()
    port = sock.getsockname()[1]
    config = uvicorn_config(create_app(services), services.settings)
    server = HubbubServer(config, capture_signals=False)
    task = asyncio.create_task(server.serve(sockets=[sock]), name=f"uvicorn:{port}")
    deadline = asyncio.get_running_loop().time() + scaled(10)
    while not server.started:
        if task.done():
            sock.close()
            task.result()  # raises what stopped it
            raise RuntimeError("uvicorn stopped before it started")
        if asyncio.get_running_loop().time() > deadline:
            server.should_exit = True
            raise TimeoutError("uvicorn did not start")
        await asyncio.sleep(0.005)
    return RunningServer(
        url=f"http://127.0.0.1:{port}",
        ws_url=f"ws://127.0.0.1:{port}/api/ws",
        port=port,
        services=services,
        uvicorn=server,
        task=task,
    )
