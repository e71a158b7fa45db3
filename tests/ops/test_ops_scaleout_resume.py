"""Resume through one process after messages committed by another (PostgreSQL +
Redis): the catch-up cache of the process the clients resume on never heard of
those commits from its own Hub, and still every client gets exactly the
messages after its position, once, in order."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

import orjson
import pytest
from websockets.asyncio.client import connect

from hubbub.app import build_services, close_services
from hubbub.config import Settings
from hubbub.core.tail import TailedStore
from hubbub.web.deps import Services
from testenv import RunningServer, scaled, start_server

PASSWORD = "correct horse battery"


@pytest.fixture
def scaleout_settings(
    make_settings: Callable[..., Settings], pg_database: str, redis_url: str
) -> Settings:
    return make_settings(
        database_url=pg_database,
        redis_url=redis_url,
        redis_channel=f"hubbub-test:{uuid.uuid4().hex}",
        irc_enabled=False,
    )


async def resume_and_read(server: RunningServer, token: str, rid: int, position: int, last: int):
    """Connect, resume from ``position``, read this room's messages until ``last``."""
    seqs: list[int] = []
    async with connect(
        server.ws_url, additional_headers={"Authorization": f"Bearer {token}"}, max_queue=None
    ) as ws:
        ready = orjson.loads(await ws.recv())
        assert ready["type"] == "ready"
        await ws.send(orjson.dumps({"op": "resume", "positions": {str(rid): position}}).decode())
        async with asyncio.timeout(scaled(20)):
            while not seqs or seqs[-1] < last:
                frame = orjson.loads(await ws.recv())
                if frame["type"] == "too_far_behind":
                    raise AssertionError(f"told too far behind: {frame}")
                if frame["type"] == "message" and frame["conversation"] == rid:
                    seqs.append(frame["seq"])
        # anything still coming would be a duplicate: give it a moment to show
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2):
                while True:
                    frame = orjson.loads(await ws.recv())
                    if frame["type"] == "message" and frame["conversation"] == rid:
                        seqs.append(frame["seq"])
    return seqs


async def test_resume_after_commits_by_another_process_has_no_gap_and_no_duplicate(
    scaleout_settings: Settings,
) -> None:
    a = await build_services(scaleout_settings)  # where messages are sent
    b = await build_services(scaleout_settings)  # where clients resume
    server: RunningServer | None = None
    try:
        server = await start_server(b)
        assert isinstance(b.store, TailedStore)
        alice = await a.accounts.register("alice", PASSWORD, trusted=True)
        bob = await a.accounts.register("bob", PASSWORD, trusted=True)
        token, _ = await a.accounts.create_token(bob, "test")
        room = await a.hub.create_room(alice, "lobby")
        rid = room.conversation.id
        joined = await a.hub.join(bob, rid)
        start = joined.conversation.last_seq
        tail = b.store.tail

        async def post(n: int) -> int:
            last = 0
            for i in range(n):
                last = (await a.hub.post(alice, rid, f"m{i}")).message.seq
            return last

        # 1: thirty messages from A, twenty clients resume on B at once
        last = await post(30)
        runs = await asyncio.gather(
            *(resume_and_read(server, token, rid, start, last) for _ in range(20))
        )
        assert all(seqs == list(range(start + 1, last + 1)) for seqs in runs), runs
        assert tail.span(rid) == (start + 1, last)  # B's cache holds them now

        # 2: more from A while nobody is connected: B's cache is behind the store
        position, last = last, await post(25)
        assert tail.span(rid) == (start + 1, position)
        # a page over REST on B ends where the store ends, not where B's cache did
        page = await b.hub.history(bob, rid, after=position - 10, limit=100)
        assert [m.seq for m in page] == list(range(position - 9, last + 1))
        runs = await asyncio.gather(
            *(resume_and_read(server, token, rid, p, last) for p in (position, start + 10) * 10)
        )
        for p, seqs in zip((position, start + 10) * 10, runs, strict=True):
            assert seqs == list(range(p + 1, last + 1))

        # 3: clients resume while A keeps sending
        position = last
        sending = asyncio.create_task(post(40))
        runs = await asyncio.gather(
            *(resume_and_read(server, token, rid, position - 5, position + 40) for _ in range(20))
        )
        last = await sending
        assert last == position + 40
        assert all(seqs == list(range(position - 4, last + 1)) for seqs in runs)
        stats = tail.stats
        assert stats.hits + stats.confirmed > stats.direct  # the cache answered most reads
        assert stats.reads < 40 + 20 + 20  # far fewer store reads than resuming clients
    finally:
        if server is not None:
            server.uvicorn.should_exit = True
            await asyncio.wait_for(server.task, scaled(15))
        await close_services(b)
        await close_services(a)


async def test_messages_are_read_from_the_store_again_when_another_process_changes_one(
    make_settings: Callable[..., Settings],
) -> None:
    """set_ext_key and deletions in this process drop what they changed."""
    services: Services = await build_services(make_settings(irc_enabled=False))
    try:
        store = services.store
        assert isinstance(store, TailedStore)
        alice = await services.accounts.register("alice", PASSWORD, trusted=True)
        room = await services.hub.create_room(alice, "lobby")
        rid = room.conversation.id
        sent = [await services.hub.post(alice, rid, f"m{i}") for i in range(5)]
        before = await store.history(rid, after=0, limit=50)
        assert [m.text for m in before][-5:] == [f"m{i}" for i in range(5)]
        assert store.tail.span(rid) is not None
        assert await store.history(rid, after=2, limit=3) == before[2:5]  # from memory
        assert services.metrics is not None
        text = services.metrics.render().decode()
        assert "hubbub_catchup_cache_answers 2.0" in text
        assert "hubbub_catchup_cache_store_reads 1.0" in text
        assert "hubbub_catchup_cache_bytes " in text
        await store.set_ext_key(sent[2].message.id, "key", {"msgid": "abc"})
        after = await store.history(rid, after=0, limit=50)
        assert [m.meta for m in after if m.id == sent[2].message.id] == [{"msgid": "abc"}]
        assert await store.delete_conversation(rid)
        assert await store.history(rid, after=0, limit=50) == []
        assert len(store.tail) <= 1
    finally:
        await close_services(services)
