"""kill -9 loses no acknowledged message (DESIGN.md, "Flow of one message", 1)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

WRITER = Path(__file__).with_name("crash_writer.py")


@pytest.mark.slow
async def test_kill_minus_nine_loses_no_acked_message(target) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(WRITER),
        target.url,
        target.schema or "",
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    acked: dict[int, str] = {}
    try:
        ready = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert ready.startswith(b"ready"), ready
        room_id = int(ready.split()[1])
        while len(acked) < 400:
            line = await asyncio.wait_for(proc.stdout.readline(), 30)
            assert line, "the writer died on its own"
            seq, message_id = line.decode().split()
            acked[int(seq)] = message_id
    finally:
        proc.kill()  # SIGKILL: no flush, no close, no atexit
        rest = await proc.stdout.read()
        await proc.wait()
    for line in rest.decode().splitlines():  # acks already written before the kill
        seq, message_id = line.split()
        acked[int(seq)] = message_id

    stored: dict[int, str] = {}
    async with target.open() as store:
        after = 0
        while page := await store.history(room_id, after=after, limit=1000):
            stored.update((m.seq, m.id) for m in page)
            after = page[-1].seq
    assert all(stored.get(seq) == message_id for seq, message_id in acked.items())
    assert sorted(stored) == list(range(1, len(stored) + 1))  # dense, even after a crash
