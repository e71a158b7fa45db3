"""Who is online: sessions counted per process, and (several processes) across all.

One process (no registry): a user is online while this process has a session
of theirs, plus ``grace`` seconds after the last one closed; the ``presence``
event (``online``/``offline``) is published on the bus at those transitions.

Several processes (a :class:`PresenceRegistry`, Redis): each process still
counts its own sessions and keeps the grace, and tells the registry only when
a user's count here goes 0 -> 1 (``hold``) and, after the grace, 1 -> 0
(``drop``), without waiting for it. The registry publishes ``online`` when the
first process anywhere holds the user and ``offline`` when the last one
dropped them (or died), atomically with the change, so the events are in the
order of the changes. Every process keeps the set of users online anywhere in
memory: read from the registry once at start (and after a Redis outage), then
kept up to date from those events. A connect never waits for Redis.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

import orjson

from .events import Event, Scope, dumps
from .model import User
from .ports import Bus

log = logging.getLogger(__name__)

PRESENCE_PREFIX = b'{"type":"presence",'  # how every presence payload begins


def presence_payload(user_id: int, name: str, status: str) -> bytes:
    return dumps({"type": "presence", "user": name, "user_id": user_id, "status": status})


class PresenceRegistry(Protocol):
    """Where processes record which users they hold (Redis: bus/presence.py)."""

    async def start(self, resync: Callable[[], Awaitable[None]]) -> None:
        """Register this process; ``resync`` is called whenever the global set
        may have changed unseen (Redis was unreachable)."""

    async def snapshot(self) -> set[int]:
        """Ids of users held by any live process."""
        ...

    def hold(self, user: User) -> None:
        """This process has the user now (no wait: queued)."""

    def drop(self, user: User) -> None:
        """This process no longer has the user (no wait: queued)."""

    async def close(self, linger: float) -> None:
        """Send what is queued and stop; the users still held count as online
        for ``linger`` seconds more (another process may get them back)."""


class Presence:
    def __init__(self, bus: Bus, grace: float, registry: PresenceRegistry | None = None) -> None:
        self.bus = bus
        self.grace = grace
        self.registry = registry
        # user id -> sessions in this process; 0 while in the grace period
        self._online: dict[int, int] = {}
        self._going_offline: dict[int, asyncio.TimerHandle] = {}
        self._background: set[asyncio.Task[None]] = set()
        # several processes: users online anywhere, as the registry and its events
        # say, and always every user with a session here (or in the grace period)
        self._global: set[int] = set()
        # events that arrived while a snapshot was being read, applied after it
        self._buffer: list[tuple[int, bool]] | None = None
        self._resync_lock = asyncio.Lock()
        if registry is not None:
            self._buffer = []  # until the first snapshot
            bus.add_listener(self._on_event)

    async def start(self) -> None:
        """Several processes: register, and read who is online (after the bus subscribed)."""
        if self.registry is not None:
            await self.registry.start(self.resync)
            await self.resync()

    async def resync(self) -> None:
        """Read the global set again; events received meanwhile win over it."""
        assert self.registry is not None
        async with self._resync_lock:
            self._buffer = self._buffer if self._buffer is not None else []
            try:
                snapshot = await self.registry.snapshot()
            except BaseException:
                self._apply_buffer()
                raise
            self._global = snapshot
            self._apply_buffer()
            self._global.update(self._online)  # held here: online, whatever is still queued

    def _apply_buffer(self) -> None:
        buffered, self._buffer = self._buffer or [], None
        for user_id, online in buffered:
            self._set_global(user_id, online)

    def _set_global(self, user_id: int, online: bool) -> None:
        if online:
            self._global.add(user_id)
        elif user_id not in self._online:  # else a hold of ours is on its way
            self._global.discard(user_id)

    def _on_event(self, event: Event) -> None:
        if event.scope is not Scope.ALL or not event.payload.startswith(PRESENCE_PREFIX):
            return
        try:
            body = orjson.loads(event.payload)
            user_id, online = int(body["user_id"]), body["status"] == "online"
        except (ValueError, KeyError, TypeError):
            return
        if self._buffer is not None:
            if len(self._buffer) < 1_000_000:
                self._buffer.append((user_id, online))
            return
        self._set_global(user_id, online)

    # sessions -----------------------------------------------------------------
    async def connected(self, user: User) -> None:
        pending = self._going_offline.pop(user.id, None)
        if pending is not None:
            pending.cancel()  # back within the grace period: nobody saw them leave
        count = self._online.get(user.id, 0) + 1
        self._online[user.id] = count
        if count == 1 and pending is None:
            if self.registry is not None:
                self._global.add(user.id)
                self.registry.hold(user)
            else:
                await self._publish(user, "online")

    async def disconnected(self, user: User) -> None:
        count = self._online.get(user.id, 0) - 1
        if count > 0:
            self._online[user.id] = count
            return
        if self.grace <= 0:
            self._online.pop(user.id, None)
            if self.registry is not None:
                self.registry.drop(user)
            else:
                await self._publish(user, "offline")
            return
        self._online[user.id] = 0
        if user.id not in self._going_offline:
            loop = asyncio.get_running_loop()
            self._going_offline[user.id] = loop.call_later(self.grace, self._grace_over, user)

    def _grace_over(self, user: User) -> None:
        self._going_offline.pop(user.id, None)
        if self._online.get(user.id) != 0:
            return
        del self._online[user.id]
        if self.registry is not None:
            self.registry.drop(user)
            return
        task = asyncio.get_running_loop().create_task(self._publish(user, "offline"))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def close(self) -> None:
        """Stop the grace timers (the process is going away, and its sessions
        with it) and wait for presence events being published. Several
        processes: users held here stay online ``grace`` seconds more, so one
        who reconnects to another process (a restart) is never seen leaving."""
        waiting = list(self._going_offline)
        for handle in self._going_offline.values():
            handle.cancel()
        self._going_offline.clear()
        for user_id in waiting:
            self._online.pop(user_id, None)
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        if self.registry is not None:
            await self.registry.close(linger=self.grace)

    def is_online(self, user_id: int) -> bool:
        return user_id in self._online or user_id in self._global

    def online_user_ids(self) -> list[int]:
        """Every ``ready`` copies this: one list, no Redis, no union."""
        if self.registry is None:
            return list(self._online)
        return list(self._global)

    async def _publish(self, user: User, status: str) -> None:
        await self.bus.publish(Event(Scope.ALL, 0, presence_payload(user.id, user.name, status)))
