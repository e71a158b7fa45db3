"""``hubbub user`` beside a running server that shares Redis: a password reset or a
removal from the command line closes that user's WebSockets at once."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Callable

import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from hubbub.config import Settings
from testenv import scaled

PASSWORD = "long enough pw"


@pytest.fixture
def settings(make_settings: Callable[..., Settings], redis_url: str) -> Settings:
    return make_settings(redis_url=redis_url, redis_channel=f"hubbub-test:{uuid.uuid4().hex}")


def cli_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("HUBBUB_")}
    env.update(
        HUBBUB_DATA_DIR=str(settings.data_dir),
        HUBBUB_REDIS_URL=settings.redis_url,
        HUBBUB_REDIS_CHANNEL=settings.redis_channel,
        HUBBUB_ARGON2_TIME_COST="1",
        HUBBUB_ARGON2_MEMORY_KIB="8",
        HUBBUB_ARGON2_PARALLELISM="1",
    )
    return env


@pytest.mark.parametrize("command", [["passwd", "alice", "--password-stdin"], ["remove", "alice"]])
async def test_cli_revocation_reaches_the_running_server(server, command: list[str]) -> None:  # type: ignore[no-untyped-def]
    services = server.services
    alice = await services.accounts.register("alice", PASSWORD, trusted=True)
    secret, _ = await services.accounts.start_session(alice, "127.0.0.1", "pytest")
    ws = await connect(
        server.ws_url,
        additional_headers={"Cookie": f"hubbub_session={secret}", "Origin": server.url},
        open_timeout=scaled(10),
    )
    ready = orjson.loads(await asyncio.wait_for(ws.recv(), scaled(10)))
    assert ready["type"] == "ready"
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "hubbub", "user", *command],
        input="a brand new password\n",
        env=cli_env(server.settings),
        capture_output=True,
        text=True,
        timeout=scaled(30),
    )
    assert result.returncode == 0, result.stderr
    with pytest.raises(ConnectionClosed) as closed:
        async with asyncio.timeout(scaled(10)):
            while True:
                await ws.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4001  # revoked
