"""Two Hubbub instances sharing one database and one Redis see each other's events."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

from hubbub.app import build_services, close_services
from hubbub.bus.redis import RedisBus
from hubbub.config import Settings
from hubbub.core.events import Event
from testenv import scaled


async def test_two_instances_share_events_over_redis(
    make_settings: Callable[..., Settings], redis_url: str
) -> None:
    settings = make_settings(redis_url=redis_url, redis_channel=f"hubbub-test:{uuid.uuid4().hex}")
    a = await build_services(settings)
    b = await build_services(settings)
    try:
        assert isinstance(a.bus.inner, RedisBus)  # type: ignore[attr-defined]
        seen_a: list[Event] = []
        seen_b: list[Event] = []
        a.bus.add_listener(seen_a.append)
        b.bus.add_listener(seen_b.append)
        alice = await a.accounts.register("alice", "long enough pw", trusted=True)
        room = await a.hub.create_room(alice, "lobby")
        rid = room.conversation.id
        sent = [await a.hub.post(alice, rid, f"m{i}") for i in range(20)]
        seqs = [r.message.seq for r in sent]

        def messages(seen: list[Event]) -> list[int]:
            return [e.seq for e in seen if e.conversation_id == rid and e.seq and not e.control]

        async with asyncio.timeout(scaled(10)):
            while not (set(seqs) <= set(messages(seen_b)) and set(seqs) <= set(messages(seen_a))):
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        # each instance got every message exactly once, in commit order
        assert messages(seen_a) == messages(seen_b)
        assert messages(seen_a) == sorted(messages(seen_a))
        assert len(messages(seen_a)) == len(set(messages(seen_a)))
    finally:
        await close_services(a)
        await close_services(b)
