"""The catch-up cache (``hubbub.core.tail``) against a fake store whose reads
take a snapshot when they start, like a database's: answers are dense, hold
every message committed before the request, and the store is read once per
round, not once per client."""

from __future__ import annotations

import asyncio
import itertools
import random
from typing import Any

import pytest

from hubbub.core import payloads
from hubbub.core.model import Message, MessageKind
from hubbub.core.payloads import encode_message, message_payload
from hubbub.core.tail import HistoryTail
from hubbub.protocols.wire import frame_payloads, text_frame

_ids = itertools.count(1)


class FakeStore:
    """Messages per conversation; a read takes its snapshot first, then yields."""

    def __init__(self) -> None:
        self.rows: dict[int, list[Message]] = {}
        self.reads = 0
        self.gate: asyncio.Event | None = None
        self.fail = False

    def add(self, cid: int, n: int = 1, *, text: str = "x") -> list[Message]:
        rows = self.rows.setdefault(cid, [])
        made = []
        for _ in range(n):
            seq = len(rows) + 1
            m = Message(
                id=f"id{next(_ids):08d}",
                conversation_id=cid,
                seq=seq,
                ts=1000 + seq,
                sender_id=1,
                sender="alice",
                kind=MessageKind.TEXT,
                text=f"{text} {cid}/{seq}",
            )
            rows.append(m)
            made.append(m)
        return made

    def last(self, cid: int) -> int:
        return len(self.rows.get(cid, []))

    def expected(self, cid: int, after: int, limit: int) -> list[Message]:
        return [m for m in self.rows.get(cid, []) if m.seq > after][:limit]

    async def history(
        self, conversation_id: int, *, after: int | None = None, limit: int = 50
    ) -> list[Message]:
        self.reads += 1
        if self.fail:
            raise RuntimeError("database down")
        found = self.expected(conversation_id, after or 0, limit)  # the snapshot
        if self.gate is not None:
            await self.gate.wait()
        else:
            await asyncio.sleep(0)
        return found


def ids(messages: list[Message]) -> list[str]:
    return [m.id for m in messages]


def check(got: list[Message], store: FakeStore, cid: int, after: int, limit: int, before: int):
    """Dense from after + 1, the stored messages, and everything committed before
    the request (``before`` was the last seq then), up to ``limit``."""
    assert len(got) <= limit
    assert [m.seq for m in got] == list(range(after + 1, after + 1 + len(got)))
    assert ids(got) == ids(store.rows[cid][after : after + len(got)]) if got else True
    assert len(got) >= min(limit, max(before - after, 0))


async def test_pages_match_the_store_and_storms_share_reads() -> None:
    store = FakeStore()
    store.add(1, 120)
    tail = HistoryTail(store.history, max_messages=500)
    first = await tail.history(1, after=50, limit=100)
    assert ids(first) == ids(store.expected(1, 50, 100))
    reads = store.reads
    # 2000 clients resume from the same place at once: one round, one read
    pages = await asyncio.gather(*(tail.history(1, after=50, limit=100) for _ in range(2000)))
    assert all(ids(p) == ids(first) for p in pages)
    assert store.reads - reads <= 2
    # a whole page inside the tail needs no read at all
    reads = store.reads
    assert ids(await tail.history(1, after=60, limit=50)) == ids(store.expected(1, 60, 50))
    assert store.reads == reads
    assert tail.stats.hits >= 1


async def test_a_message_committed_elsewhere_is_never_hidden() -> None:
    """The tail does not hear of commits by another process; the end is still right."""
    store = FakeStore()
    store.add(1, 10)
    tail = HistoryTail(store.history)
    assert len(await tail.history(1, after=0, limit=100)) == 10
    store.add(1, 3)  # another process: nothing tells the tail
    assert [m.seq for m in await tail.history(1, after=5, limit=100)] == list(range(6, 14))
    assert [m.seq for m in await tail.history(1, after=10, limit=100)] == [11, 12, 13]
    assert await tail.history(1, after=13, limit=100) == []
    store.add(1, 1)
    assert [m.seq for m in await tail.history(1, after=13, limit=100)] == [14]


async def test_a_request_never_rides_on_a_read_that_started_before_it() -> None:
    store = FakeStore()
    store.add(1, 10)
    tail = HistoryTail(store.history)
    await tail.history(1, after=0, limit=100)
    store.gate = asyncio.Event()
    early = asyncio.create_task(tail.history(1, after=5, limit=100))
    await asyncio.sleep(0.01)  # its end check has taken its snapshot and waits
    store.add(1, 2)  # committed after that snapshot, before the next request
    late = asyncio.create_task(tail.history(1, after=5, limit=100))
    await asyncio.sleep(0.01)
    store.gate.set()
    assert [m.seq for m in await early] == list(range(6, 11))  # as a read would have
    assert [m.seq for m in await late] == list(range(6, 13))  # includes what came before it


async def test_concurrent_reads_and_commits_stay_dense_and_complete() -> None:
    rng = random.Random(5)
    store = FakeStore()
    for cid in (1, 2, 3):
        store.add(cid, rng.randint(0, 40))
    # small bounds: trimming, eviction and reads from before the tail all happen
    tail = HistoryTail(store.history, max_messages=30, max_bytes=40_000)
    failures: list[str] = []

    async def client(n: int) -> None:
        for _ in range(30):
            cid = rng.choice((1, 2, 3))
            last = store.last(cid)
            after = max(0, last - rng.randint(0, 60))
            limit = rng.randint(1, 100)
            got = await tail.history(cid, after=after, limit=limit)
            try:
                check(got, store, cid, after, limit, last)
            except AssertionError as exc:
                failures.append(f"{cid} after={after} limit={limit}: {exc}")
            await asyncio.sleep(rng.random() / 1000)

    async def writer() -> None:
        for _ in range(300):
            store.add(rng.choice((1, 2, 3)), rng.randint(1, 4))
            await asyncio.sleep(rng.random() / 500)

    await asyncio.gather(writer(), *(client(n) for n in range(40)))
    assert not failures, failures[:5]
    assert tail.size <= 40_000
    assert tail.stats.hits + tail.stats.confirmed > 0


async def test_bounds_trim_and_evict() -> None:
    store = FakeStore()
    for cid in range(1, 21):
        store.add(cid, 50, text="y" * 200)
    tail = HistoryTail(store.history, max_messages=20, max_bytes=60_000)
    for cid in range(1, 21):
        got = await tail.history(cid, after=40, limit=100)
        assert [m.seq for m in got] == list(range(41, 51))
        span = tail.span(cid)
        assert span is not None and span[1] == 50 and span[1] - span[0] < 20
        assert tail.size <= 60_000
    assert len(tail) < 20  # the least recently read went first
    assert tail.span(20) is not None and tail.span(1) is None
    # per conversation: at most max_messages, the newest kept
    got = await tail.history(20, after=0, limit=100)
    assert [m.seq for m in got] == list(range(1, 51))  # read from the store: before the tail
    span = tail.span(20)
    assert span is not None and span[1] - span[0] + 1 <= 20
    tail.forget_all()
    assert tail.size == 0 and len(tail) == 0


async def test_one_conversation_holds_at_most_an_eighth_of_the_memory() -> None:
    store = FakeStore()
    store.add(1, 100, text="z" * 1000)
    tail = HistoryTail(store.history, max_messages=1000, max_bytes=80_000)
    got = await tail.history(1, after=0, limit=100)
    assert len(got) == 100
    span = tail.span(1)
    assert span is not None and span[1] == 100 and span[0] > 1
    assert tail.size <= 10_000 + 5_000  # one message over is allowed: the newest stays


async def test_an_older_page_joins_the_tail() -> None:
    store = FakeStore()
    store.add(1, 100)
    tail = HistoryTail(store.history, max_messages=100)
    await tail.history(1, after=80, limit=50)
    assert tail.span(1) == (81, 100)
    got = await tail.history(1, after=70, limit=50)  # before the tail: from the store
    assert [m.seq for m in got] == list(range(71, 101))
    assert tail.span(1) == (71, 100)
    reads = store.reads
    assert [m.seq for m in await tail.history(1, after=70, limit=20)] == list(range(71, 91))
    assert store.reads == reads


async def test_a_conversation_replaced_under_the_tail_is_read_again() -> None:
    """A deleted conversation whose id came back (SQLite reuses the highest rowid)."""
    store = FakeStore()
    store.add(1, 30, text="old")
    tail = HistoryTail(store.history)
    await tail.history(1, after=10, limit=100)
    store.rows[1] = []
    store.add(1, 40, text="new")
    got = await tail.history(1, after=25, limit=100)
    assert ids(got) == ids(store.expected(1, 25, 100))
    assert all(m.text.startswith("new") for m in got)
    store.rows[1] = []  # deleted
    assert await tail.history(1, after=5, limit=100) == []


async def test_forget_drops_what_changed() -> None:
    store = FakeStore()
    made = store.add(1, 10)
    store.add(2, 10)
    tail = HistoryTail(store.history)
    await tail.history(1, after=0, limit=100)
    await tail.history(2, after=0, limit=100)
    tail.forget_message(made[3].id)
    assert tail.span(1) is None and tail.span(2) == (1, 10)
    tail.forget(2)
    assert len(tail) == 0 and tail.size == 0


async def test_a_failed_read_reaches_the_caller_and_the_tail_recovers() -> None:
    store = FakeStore()
    store.add(1, 10)
    tail = HistoryTail(store.history)
    store.fail = True
    with pytest.raises(RuntimeError):
        await tail.history(1, after=0, limit=100)
    store.fail = False
    assert [m.seq for m in await tail.history(1, after=0, limit=100)] == list(range(1, 11))


async def test_entries_are_read_again_after_the_ttl() -> None:
    now = [0.0]
    store = FakeStore()
    made = store.add(1, 10)
    tail = HistoryTail(store.history, ttl=30.0, clock=lambda: now[0])
    await tail.history(1, after=0, limit=100)
    # another process changed a stored message (an IRC echo's msgid in meta)
    store.rows[1][4] = Message(**{**_fields(made[4]), "meta": {"msgid": "abc"}})
    assert (await tail.history(1, after=0, limit=5))[4].meta is None  # cached, as expected
    now[0] = 31.0
    assert (await tail.history(1, after=0, limit=5))[4].meta == {"msgid": "abc"}


def _fields(m: Message) -> dict[str, Any]:
    return {k: getattr(m, k) for k in Message.__dataclass_fields__}


async def test_payloads_are_encoded_once_while_cached() -> None:
    store = FakeStore()
    store.add(1, 5)
    tail = HistoryTail(store.history)
    got = await tail.history(1, after=0, limit=100)
    first = message_payload(got[0])
    assert first is message_payload(got[0])
    assert first == encode_message(got[0])
    outside = store.add(1)[0]
    assert message_payload(outside) == encode_message(outside)
    # and its WebSocket frame once
    frame = text_frame(first)
    assert frame is text_frame(first)
    assert frame_payloads(frame) == [first]
    copy = bytes(bytearray(first))  # equal, but not the cached object
    assert text_frame(copy) == frame and text_frame(copy) is not frame
    tail.forget_all()
    assert not any(id(m) in payloads._ENCODED for m in got)
    assert id(first) not in payloads.SHARED_PAYLOADS


async def test_back_to_back_end_checks_wait_a_little_to_share_a_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A storm's requests trickle in: each end check after another at once waits
    ``coalesce`` first, so reads are bounded per second, not per request."""
    store = FakeStore()
    store.add(1, 60)
    tail = HistoryTail(store.history, coalesce=0.005)
    loop = asyncio.get_running_loop()
    started = loop.time()

    async def client(k: int) -> list[Message]:
        await asyncio.sleep(k * 0.0005)
        return await tail.history(1, after=10, limit=100)

    pages = await asyncio.gather(*(client(k) for k in range(400)))
    elapsed = loop.time() - started
    assert all(ids(p) == ids(store.expected(1, 10, 100)) for p in pages)
    assert store.reads <= elapsed / 0.005 + 1 < 400 / 4
    # after a quiet spell the next end check starts at once
    await asyncio.sleep(0.02)
    store.add(1, 1)
    slept: list[float] = []
    real_sleep = asyncio.sleep

    def sleep(delay: float) -> Any:
        slept.append(delay)
        return real_sleep(delay)

    monkeypatch.setattr(asyncio, "sleep", sleep)
    assert [m.seq for m in await tail.history(1, after=60, limit=100)] == [61]
    assert slept == [0]  # the fake store's own yield, no wait before the read


async def test_close_stops_end_checks_in_flight() -> None:
    store = FakeStore()
    store.add(1, 10)
    tail = HistoryTail(store.history)
    store.gate = asyncio.Event()  # the read never finishes by itself
    waiting = asyncio.create_task(tail.history(1, after=0, limit=100))
    await asyncio.sleep(0.01)
    store.gate = None  # the waiter's own read after the close goes through
    await tail.close()
    assert [m.seq for m in await waiting] == list(range(1, 11))
    assert len(tail) == 0 and tail.size == 0


async def test_a_new_conversation_never_sees_what_was_cached_under_its_id(services) -> None:
    """SQLite reuses the highest rowid: a conversation deleted by another process
    (``hubbub user remove``) can come back under the same id."""
    from hubbub.core.model import ConversationKind, Visibility
    from hubbub.core.tail import TailedStore

    store = services.store
    assert isinstance(store, TailedStore)
    alice = await services.accounts.register("alice", "long enough pw", trusted=True)
    room = await services.hub.create_room(alice, "old")
    rid = room.conversation.id
    for i in range(30):
        await services.hub.post(alice, rid, f"old {i}")
    assert len(await store.history(rid, after=0, limit=20)) == 20
    assert store.tail.span(rid) is not None
    await store.inner.delete_conversation(rid)  # as another process would: the tail is not told
    again = await store.create_conversation(
        network_id=1,
        kind=ConversationKind.ROOM,
        name="new",
        visibility=Visibility.PUBLIC,
        owner_id=alice.id,
    )
    assert again.id == rid  # the id came back
    assert store.tail.span(again.id) is None
    assert all(not m.text.startswith("old") for m in await store.history(again.id, after=0))
