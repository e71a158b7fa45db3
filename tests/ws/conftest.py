"""Fixtures for WebSocket tests over real sockets: the shared ``server`` fixture
(the full app on uvicorn, on a free loopback port) seen through :class:`LiveServer`."""

from __future__ import annotations

import pytest
from wshelp import LiveServer

from testenv import RunningServer


@pytest.fixture
async def ws_server(server: RunningServer) -> LiveServer:
    return LiveServer(server.services, server.port, server.uvicorn)
