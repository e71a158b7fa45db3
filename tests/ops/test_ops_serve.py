"""``hubbub serve`` as a real process: starts fast, answers, stops cleanly on SIGTERM
in the middle of a burst of sends, and every acknowledged message is there after."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from testenv import scaled

PASSWORD = "long enough pw"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def hubbub_env(data: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("HUBBUB_")}
    env.update(
        HUBBUB_DATA_DIR=str(data),
        HUBBUB_ARGON2_TIME_COST="1",
        HUBBUB_ARGON2_MEMORY_KIB="8",
        HUBBUB_ARGON2_PARALLELISM="1",
        HUBBUB_SEND_RATE="100000",
        HUBBUB_SEND_BURST="100000",
        HUBBUB_SHUTDOWN_TIMEOUT="5",
        HUBBUB_LOG_FORMAT="json",
    )
    return env


class Proc:
    def __init__(self, data: Path, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.started = time.perf_counter()
        with log.open("wb") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "hubbub", "serve", "--port", str(self.port)],
                env=hubbub_env(data),
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    async def wait_ready(self) -> float:
        """Seconds from spawning the process to its first answered request."""
        async with httpx.AsyncClient(base_url=self.url) as client:
            deadline = time.perf_counter() + scaled(20)
            while time.perf_counter() < deadline:
                if self.process.poll() is not None:
                    raise AssertionError(f"hubbub serve exited early:\n{self.output()}")
                try:
                    response = await client.get("/api/health")
                except httpx.TransportError:
                    await asyncio.sleep(0.01)
                    continue
                if response.status_code == 200:
                    return time.perf_counter() - self.started
        raise AssertionError(f"hubbub serve did not answer:\n{self.output()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[list[Proc]]:
    started: list[Proc] = []
    yield started
    for proc in started:
        proc.stop()


async def login(url: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=url, headers={"Origin": url}, timeout=scaled(10))
    response = await client.post("/api/login", json={"name": "alice", "password": PASSWORD})
    assert response.status_code == 200, response.text
    return client


async def history_over_rest(url: str, room_id: int) -> list[dict[str, object]]:
    client = await login(url)
    try:
        stored: list[dict[str, object]] = []
        after = 0
        while True:
            page = await client.get(
                f"/api/conversations/{room_id}/messages", params={"after": after, "limit": 200}
            )
            assert page.status_code == 200, page.text
            messages = page.json()["messages"]
            if not messages:
                return stored
            stored.extend(messages)
            after = messages[-1]["seq"]
    finally:
        await client.aclose()


@pytest.mark.slow
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "kill-9"])
async def test_stopped_mid_burst_every_acked_message_is_there_once(
    tmp_path: Path, procs: list[Proc], stop: signal.Signals
) -> None:
    data = tmp_path / "data"
    created = subprocess.run(
        [sys.executable, "-m", "hubbub", "user", "add", "alice", "--password-stdin"],
        input=PASSWORD + "\n",
        env=hubbub_env(data),
        capture_output=True,
        text=True,
        timeout=scaled(30),
    )
    assert created.returncode == 0, created.stderr
    proc = Proc(data, tmp_path / "serve.log")
    procs.append(proc)
    ready = await proc.wait_ready()
    print(f"hubbub serve: first answer {ready * 1000:.0f} ms after spawn")

    client = await login(proc.url)
    room = await client.post("/api/rooms", json={"name": "lobby"})
    assert room.status_code == 201, room.text
    room_id = room.json()["id"]

    acked: dict[str, int] = {}  # nonce -> seq

    async def sender(worker: int) -> None:
        for i in range(10_000):
            nonce = f"w{worker}-{i}"
            try:
                response = await client.post(
                    f"/api/conversations/{room_id}/messages",
                    json={"text": f"text {nonce}", "nonce": nonce},
                )
            except httpx.TransportError:
                return  # the server is going away
            if response.status_code not in (200, 201):
                return
            acked[nonce] = response.json()["seq"]

    workers = [asyncio.create_task(sender(w)) for w in range(8)]
    while len(acked) < 100:  # in the middle of the burst
        await asyncio.sleep(0.005)
    proc.process.send_signal(stop)
    t_signal = time.perf_counter()
    async with asyncio.timeout(scaled(15)):
        await asyncio.gather(*workers)
    code = await asyncio.to_thread(proc.process.wait, scaled(15))
    stopped_in = time.perf_counter() - t_signal
    await client.aclose()
    print(f"{stop.name} -> exit {code} in {stopped_in * 1000:.0f} ms, {len(acked)} acked")
    if stop is signal.SIGTERM:
        assert code == 0, proc.output()
        assert stopped_in < scaled(6)
        assert '"stopped"' in proc.output()
    else:
        assert code == -signal.SIGKILL

    # restart on the same data: every acknowledged message is there, once, with its seq
    again = Proc(data, tmp_path / "serve2.log")
    procs.append(again)
    await again.wait_ready()
    stored = await history_over_rest(again.url, room_id)
    texts = [m["text"] for m in stored if m["kind"] == "text"]
    assert len(texts) == len(set(texts))  # no duplicates
    by_text = {m["text"]: m["seq"] for m in stored}
    missing = [n for n, seq in acked.items() if by_text.get(f"text {n}") != seq]
    assert not missing
    assert [m["seq"] for m in stored] == list(range(1, len(stored) + 1))  # dense


@pytest.mark.slow
async def test_serve_starts_fast_and_stops_on_sigint(tmp_path: Path, procs: list[Proc]) -> None:
    proc = Proc(tmp_path / "data", tmp_path / "serve.log")
    procs.append(proc)
    ready = await proc.wait_ready()
    print(f"hubbub serve (new database): first answer {ready * 1000:.0f} ms after spawn")
    assert ready < scaled(10)
    async with httpx.AsyncClient(base_url=proc.url) as client:
        page = await client.get("/")
        assert page.status_code == 200
        metrics = await client.get("/metrics")
        assert "hubbub_http_requests_total" in metrics.text
    proc.process.send_signal(signal.SIGINT)
    code = await asyncio.to_thread(proc.process.wait, scaled(15))
    assert code == 0, proc.output()
    # a second start on the same data is just as quick (migrations already applied)
    again = Proc(tmp_path / "data", tmp_path / "serve2.log")
    procs.append(again)
    ready = await again.wait_ready()
    print(f"hubbub serve (existing database): first answer {ready * 1000:.0f} ms after spawn")
    again.process.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(again.process.wait, scaled(15)) == 0


async def test_serve_refuses_bad_config_with_exit_2(tmp_path: Path) -> None:
    env = hubbub_env(tmp_path / "data")
    env["HUBBUB_PORT"] = "http"
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "hubbub", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=scaled(30),
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "hubbub: setting port [HUBBUB_PORT]: Input should be a valid integer, "
        "unable to parse string as an integer (got 'http')"
    ]


async def test_serve_on_a_busy_port_fails_with_exit_1(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "hubbub", "serve", "--port", str(port)],
            env=hubbub_env(tmp_path / "data"),
            capture_output=True,
            text=True,
            timeout=scaled(30),
        )
    assert result.returncode == 1
    assert "address already in use" in result.stderr
    assert result.stderr.rstrip().endswith(
        f"hubbub: could not serve on 127.0.0.1:{port} (see the log above)"
    )


def catches_sigterm(pid: int) -> bool:
    """Whether the process has a handler for SIGTERM yet (Linux: /proc/PID/status)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    mask = next(line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:"))
    return bool(int(mask, 16) & (1 << (signal.SIGTERM - 1)))


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("delay", [0.0, 0.2, 0.5])
async def test_sigterm_while_starting_still_exits_0(tmp_path: Path, delay: float) -> None:
    proc = Proc(tmp_path / "data", tmp_path / "serve.log")
    try:
        async with asyncio.timeout(scaled(20)):
            while not catches_sigterm(proc.process.pid):  # before that, SIGTERM kills: fine
                await asyncio.sleep(0.002)
        await asyncio.sleep(delay)  # somewhere in imports, migration or startup
        proc.process.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(proc.process.wait, scaled(15))
        assert code == 0, proc.output()
    finally:
        proc.stop()
