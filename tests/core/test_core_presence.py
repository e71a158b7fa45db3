"""Presence with a registry (several processes): the Hub tells the registry on the
local transitions, publishes nothing itself, and keeps the global set from the
registry's snapshot and the presence events."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from hubbub.bus import LocalBus
from hubbub.core.events import Event, Scope
from hubbub.core.model import Role, User
from hubbub.core.presence import Presence, presence_payload


class FakeRegistry:
    def __init__(self, snapshot: set[int]) -> None:
        self.calls: list[tuple[str, int]] = []
        self._snapshot = snapshot
        self.during_snapshot: Callable[[], None] = lambda: None
        self.lingered: float | None = None

    async def start(self, resync: Callable[[], Awaitable[None]]) -> None:
        pass

    async def snapshot(self) -> set[int]:
        self.during_snapshot()
        await asyncio.sleep(0)
        return set(self._snapshot)

    def hold(self, user: User) -> None:
        self.calls.append(("hold", user.id))

    def drop(self, user: User) -> None:
        self.calls.append(("drop", user.id))

    async def close(self, linger: float) -> None:
        self.lingered = linger


def user(uid: int, name: str) -> User:
    return User(id=uid, name=name, role=Role.MEMBER, created_at=0)


def presence_event(uid: int, status: str) -> Event:
    return Event(Scope.ALL, 0, presence_payload(uid, f"u{uid}", status))


async def test_registry_hears_local_transitions_only() -> None:
    bus = LocalBus()
    published: list[Event] = []
    bus.add_listener(published.append)
    registry = FakeRegistry(set())
    presence = Presence(bus, 0.05, registry)
    await presence.start()
    alice = user(1, "alice")
    await presence.connected(alice)
    await presence.connected(alice)
    await presence.disconnected(alice)
    await presence.disconnected(alice)
    await presence.connected(alice)  # back within the grace
    await presence.disconnected(alice)
    assert registry.calls == [("hold", 1)]
    await asyncio.sleep(0.15)
    assert registry.calls == [("hold", 1), ("drop", 1)]
    assert published == []  # the registry publishes, atomically with its change
    await presence.close()
    assert registry.lingered == 0.05


async def test_global_set_from_snapshot_then_events() -> None:
    bus = LocalBus()
    registry = FakeRegistry({7, 8})

    async def publish_meanwhile() -> None:
        await bus.publish(presence_event(8, "offline"))  # newer than the snapshot
        await bus.publish(presence_event(9, "online"))

    pending: list[asyncio.Task[None]] = []
    registry.during_snapshot = lambda: pending.append(asyncio.create_task(publish_meanwhile()))
    presence = Presence(bus, 0, registry)
    await presence.start()
    await asyncio.sleep(0.01)
    assert sorted(presence.online_user_ids()) == [7, 9]
    assert presence.is_online(7) and not presence.is_online(8)
    await bus.publish(presence_event(7, "offline"))
    await presence.connected(user(3, "carol"))  # local: online here at once
    assert sorted(presence.online_user_ids()) == [3, 9]
    assert presence.is_online(3)
    # an offline for a user with a session here (our hold is on its way) is overruled
    await bus.publish(presence_event(3, "offline"))
    assert sorted(presence.online_user_ids()) == [3, 9]
