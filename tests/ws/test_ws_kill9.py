"""``kill -9`` of ``hubbub serve`` during a burst of sends over WebSockets, then a
restart on the same data directory: every acknowledged message is there exactly
once, and resending every nonce (acked or not) creates no second message."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from hubbub.protocols.wire import text_frame  # noqa: F401  (the wire the clients speak)
from testenv import scaled

pytestmark = pytest.mark.slow
PASSWORD = "correct horse battery"
SENDERS = 4


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def hubbub_serve(data_dir: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    env = {
        **os.environ,
        "HUBBUB_ARGON2_TIME_COST": "1",
        "HUBBUB_ARGON2_MEMORY_KIB": "8",
        "HUBBUB_ARGON2_PARALLELISM": "1",
        "HUBBUB_SEND_RATE": "100000",
        "HUBBUB_SEND_BURST": "100000",
        "HUBBUB_ACCESS_LOG": "false",
    }
    hubbub = Path(sys.executable).with_name("hubbub")
    proc = subprocess.Popen(
        [str(hubbub), "serve", "--port", str(port), "--data-dir", str(data_dir)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=scaled(10))
        if proc.stderr is not None:
            proc.stderr.close()


async def wait_healthy(base: str, proc: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient(base_url=base) as http:
        for _ in range(int(scaled(200))):
            assert proc.poll() is None, "hubbub serve exited"
            with contextlib.suppress(httpx.TransportError):
                if (await http.get("/api/health")).status_code == 200:
                    return
            await asyncio.sleep(0.05)
    raise AssertionError("hubbub serve did not become healthy")


async def sender(
    url: str, token: str, rid: int, index: int, acks: dict[str, Any], sent: list[str]
) -> None:
    """Send messages one after another, each after the previous ack, until cut."""
    headers = {"Authorization": f"Bearer {token}"}
    with contextlib.suppress(ConnectionClosed, OSError):
        async with connect(url, additional_headers=headers, max_queue=None) as ws:
            await ws.send('{"op":"resume"}')
            n = 0
            while True:
                nonce = f"s{index}-{n}"
                sent.append(nonce)
                await ws.send(
                    orjson.dumps(
                        {"op": "send", "nonce": nonce, "conversation": rid, "text": nonce}
                    ).decode()
                )
                while True:
                    frame = orjson.loads(await ws.recv())
                    if frame.get("type") == "ack" and frame["nonce"] == nonce:
                        acks[nonce] = frame
                        break
                    assert frame.get("type") != "error", frame
                n += 1


async def all_messages(http: httpx.AsyncClient, rid: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    after = 0
    while True:
        page = (
            await http.get(
                f"/api/conversations/{rid}/messages", params={"after": after, "limit": 200}
            )
        ).json()["messages"]
        out += page
        if len(page) < 200:
            return out
        after = page[-1]["seq"]


async def test_kill_9_during_a_burst_loses_no_acked_message(tmp_path: Path) -> None:
    data = tmp_path / "data"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    url = f"ws://127.0.0.1:{port}/api/ws"
    acks: dict[str, Any] = {}
    sent: list[str] = []
    with hubbub_serve(data, port) as proc:
        await wait_healthy(base, proc)
        async with httpx.AsyncClient(base_url=base, headers={"Origin": base}) as http:
            assert (
                await http.post("/api/register", json={"name": "alice", "password": PASSWORD})
            ).status_code == 201
            assert (
                await http.post("/api/login", json={"name": "alice", "password": PASSWORD})
            ).status_code == 200
            token = (await http.post("/api/tokens", json={"name": "burst"})).json()["token"]
            rid = (await http.post("/api/rooms", json={"name": "burst"})).json()["id"]
        tasks = [
            asyncio.create_task(sender(url, token, rid, i, acks, sent)) for i in range(SENDERS)
        ]
        async with asyncio.timeout(scaled(30)):
            while len(acks) < 50:
                assert not any(t.done() for t in tasks), [t.result() for t in tasks if t.done()]
                await asyncio.sleep(0.01)
        await asyncio.sleep(random.uniform(0.05, 0.3))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=scaled(10))
        async with asyncio.timeout(scaled(10)):
            await asyncio.gather(*tasks)
    assert len(acks) >= 50

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    url = f"ws://127.0.0.1:{port}/api/ws"
    with hubbub_serve(data, port) as proc:
        await wait_healthy(base, proc)
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=base, headers=headers) as http:
            messages = [m for m in await all_messages(http, rid) if m["kind"] == "text"]
            by_id = {m["id"]: m for m in messages}
            assert len(by_id) == len(messages)
            texts = [m["text"] for m in messages]
            assert len(set(texts)) == len(texts), "a message stored twice"
            for nonce, ack in acks.items():
                assert by_id[ack["id"]]["seq"] == ack["seq"] and by_id[ack["id"]]["text"] == nonce
            seqs = [m["seq"] for m in await all_messages(http, rid)]
            assert seqs == list(range(1, len(seqs) + 1)), "seqs are dense"
            # resend everything: acked nonces get their first ack, nothing is stored twice
            async with connect(url, additional_headers=headers, max_queue=None) as ws:
                await ws.send('{"op":"resume"}')
                for nonce in sent:
                    await ws.send(
                        orjson.dumps(
                            {"op": "send", "nonce": nonce, "conversation": rid, "text": nonce}
                        ).decode()
                    )
                    while True:
                        frame = orjson.loads(await ws.recv())
                        if frame.get("type") == "ack":
                            break
                    if nonce in acks:
                        assert frame == acks[nonce]
            after = [m for m in await all_messages(http, rid) if m["kind"] == "text"]
            assert sorted(m["text"] for m in after) == sorted(set(sent))
