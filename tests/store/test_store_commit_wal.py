"""SQLite: the writer's checkpoints run off the commit path and keep the WAL bounded.

The writer's connection has SQLite's automatic checkpoint off; a thread of its
own checkpoints (PASSIVE), and the writer's thread checkpoints the WAL's tail
now and then so that the WAL restarts from its beginning (writer.py). Written
here with small limits, so that a few thousand messages go round the WAL many
times over.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest

from hubbub.core.model import ConversationKind, MessageKind, NewMessage, Visibility
from hubbub.store import open_store, sqlite_writer

PAGE = 4096


@pytest.fixture
def small_wal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_writer, "CHECKPOINT_COMMITS", 8)
    monkeypatch.setattr(sqlite_writer, "CHECKPOINT_ROWS", 64)
    monkeypatch.setattr(sqlite_writer, "RESET_PAGES", 64)
    monkeypatch.setattr(sqlite_writer, "RESTART_PAGES", 256)


def _wal_size(db: Path) -> int:
    try:
        return os.path.getsize(f"{db}-wal")
    except FileNotFoundError:
        return 0


@pytest.mark.parametrize("readers", [False, True], ids=["writes", "writes-and-reads"])
async def test_wal_stays_bounded_under_sustained_writes(
    tmp_path: Any, small_wal: None, readers: bool
) -> None:
    db = tmp_path / "h.db"
    async with open_store(f"sqlite+aiosqlite:///{db}") as store:
        alice = await store.create_user("Alice", None)
        room = await store.create_conversation(
            network_id=1, kind=ConversationKind.ROOM, name="r", visibility=Visibility.PUBLIC
        )
        text = "lorem ipsum dolor sit amet " * 40  # ~1 KB
        sizes: list[int] = []
        stop = asyncio.Event()

        async def read() -> None:  # history pages meanwhile: snapshots in the WAL
            while not stop.is_set():
                await store.history(room.id, limit=50)
                await asyncio.sleep(0)

        reading = [asyncio.create_task(read()) for _ in range(3 if readers else 0)]
        n, per_batch = 6000, 12
        try:
            for start in range(0, n, per_batch):
                await asyncio.gather(
                    *(
                        store.append(
                            NewMessage(room.id, MessageKind.TEXT, f"{i} {text}", alice.id, "Alice")
                        )
                        for i in range(start, start + per_batch)
                    )
                )
                sizes.append(_wal_size(db))
        finally:
            stop.set()
            await asyncio.gather(*reading)
        checkpointer = store._writer._thread._checkpointer  # type: ignore[union-attr]
        # Without checkpoints (the same writes, the checkpointer's limits raised
        # out of reach) the WAL grew to 50 MB; it stays a few RESTART_PAGES here
        # (1.9-4.2 MB seen; a checkpoint's interval of writes comes on top).
        assert max(sizes) < 8 * sqlite_writer.RESTART_PAGES * PAGE, (max(sizes), vars(checkpointer))
        assert checkpointer.checkpoints > 0 and checkpointer.tail_checkpoints > 0
        assert [m.seq for m in await store.history(room.id, limit=1000, after=n - 1000)] == list(
            range(n - 999, n + 1)
        )
    assert _wal_size(db) == 0  # the last connection's close checkpoints and removes it
