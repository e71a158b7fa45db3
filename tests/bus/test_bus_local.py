"""The in-process bus."""

from __future__ import annotations

import logging

import pytest

from hubbub.bus import LocalBus
from hubbub.core.events import Event, Scope


def event(n: int) -> Event:
    return Event(Scope.CONVERSATION, 1, b'{"n":%d}' % n, conversation_id=1, seq=n)


async def test_listeners_get_every_event_in_order_before_publish_returns() -> None:
    bus = LocalBus()
    first: list[Event] = []
    second: list[Event] = []
    bus.add_listener(first.append)
    bus.add_listener(second.append)
    await bus.start()
    for n in range(1, 6):
        await bus.publish(event(n))
        assert first[-1].seq == n  # synchronous: delivered before publish returned
    await bus.close()
    assert [e.seq for e in first] == [1, 2, 3, 4, 5]
    assert first == second


async def test_a_failing_listener_does_not_stop_the_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = LocalBus()
    got: list[Event] = []

    def broken(e: Event) -> None:
        raise RuntimeError("boom")

    bus.add_listener(broken)
    bus.add_listener(got.append)
    with caplog.at_level(logging.ERROR):
        await bus.publish(event(1))
    assert len(got) == 1
    assert "bus listener" in caplog.text
