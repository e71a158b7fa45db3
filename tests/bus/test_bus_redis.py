"""The Redis bus, against the real Redis at 127.0.0.1:6379 (skipped when absent)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio as aioredis

from hubbub.bus.redis import Backoff, BusUnavailable, RedisBus
from hubbub.core.events import Control, Event, Scope
from testenv import scaled


def event(origin: int, n: int) -> Event:
    return Event(
        Scope.CONVERSATION,
        origin,
        b'{"type":"message","text":"\xc3\xa9 %d"}' % n,
        conversation_id=origin,
        seq=n,
    )


@pytest.fixture
def channel() -> str:
    return f"hubbub-test:{uuid.uuid4().hex}"


@pytest.fixture
async def make_bus(redis_url: str, channel: str) -> AsyncIterator[Callable[[], RedisBus]]:
    buses: list[RedisBus] = []

    def make() -> RedisBus:
        bus = RedisBus(redis_url, channel)
        buses.append(bus)
        return bus

    yield make
    for bus in buses:
        await bus.close()


async def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(scaled(timeout)):
        while not predicate():
            await asyncio.sleep(0.002)


async def test_two_buses_see_each_others_events_in_order(
    make_bus: Callable[[], RedisBus],
) -> None:
    a, b = make_bus(), make_bus()
    seen_a: list[Event] = []
    seen_b: list[Event] = []
    a.add_listener(seen_a.append)
    b.add_listener(seen_b.append)
    await a.start()
    await b.start()
    count = 300
    for n in range(1, count + 1):
        await a.publish(event(1, n))
        await b.publish(event(2, n))
    await wait_for(lambda: len(seen_a) == 2 * count and len(seen_b) == 2 * count)
    for seen in (seen_a, seen_b):
        # each publisher's events arrive in its order, each exactly once
        assert [e.seq for e in seen if e.target == 1] == list(range(1, count + 1))
        assert [e.seq for e in seen if e.target == 2] == list(range(1, count + 1))
    # and every process sees the one order Redis gave them
    assert seen_a == seen_b
    assert seen_a[0].payload.decode().startswith('{"type":"message","text":"é')


async def test_own_events_are_delivered_once(make_bus: Callable[[], RedisBus]) -> None:
    bus = make_bus()
    seen: list[Event] = []
    bus.add_listener(seen.append)
    await bus.start()
    sent = Event(Scope.USER, 7, b"{}", conversation_id=3, seq=4, control=Control.SUBSCRIBE)
    await bus.publish(sent)
    await wait_for(lambda: len(seen) == 1)
    await asyncio.sleep(0.05)
    assert seen == [sent]


async def test_close_sends_what_is_queued(make_bus: Callable[[], RedisBus]) -> None:
    a, b = make_bus(), make_bus()
    seen: list[Event] = []
    b.add_listener(seen.append)
    await a.start()
    await b.start()
    for n in range(1, 101):
        await a.publish(event(1, n))
    await a.close()  # flushes the outbox before it returns
    await wait_for(lambda: len(seen) == 100)


async def test_resubscribes_after_the_connection_is_killed(
    make_bus: Callable[[], RedisBus], redis_url: str
) -> None:
    a, b = make_bus(), make_bus()
    seen: list[Event] = []
    b.add_listener(seen.append)
    await a.start()
    await b.start()
    await a.publish(event(1, 1))
    await wait_for(lambda: len(seen) == 1)
    # Kill every pub/sub client connection on the server: b must come back.
    admin = aioredis.Redis.from_url(redis_url)
    try:
        await admin.client_kill_filter(_type="pubsub")
    finally:
        await admin.aclose()
    n = 1

    async def until_delivered() -> None:
        nonlocal n
        while not any(e.seq == n for e in seen if n > 1):
            n += 1
            await a.publish(event(1, n))
            await asyncio.sleep(0.05)

    async with asyncio.timeout(scaled(10)):
        await until_delivered()
    assert b._subscription is not None and b._subscription._pubsub is not None


async def test_unreachable_redis_fails_start_clearly() -> None:
    bus = RedisBus("redis://127.0.0.1:1/0", "x", connect_timeout=0.5)
    with pytest.raises(
        BusUnavailable, match=r"cannot subscribe to Redis at redis://127\.0\.0\.1:1"
    ):
        await bus.start()


def test_backoff_grows_to_a_ceiling_with_jitter() -> None:
    backoff = Backoff(first=0.1, most=1.0)
    delays = [backoff.delay() for _ in range(8)]
    assert 0.05 <= delays[0] <= 0.1
    assert all(d <= 1.0 for d in delays)
    assert delays[-1] >= 0.5
    backoff.reset()
    assert backoff.delay() <= 0.1
