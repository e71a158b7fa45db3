"""Presence across processes: which process holds which user, in Redis.

Keys, under ``<redis_channel>:presence``:

- ``:nodes``: a set of process (node) ids;
- ``:alive:<node>``: the node's heartbeat, set with a TTL of ``presence_ttl``
  and renewed every third of it;
- ``:held:<node>``: a hash, user id -> the encoded ``offline`` event of that
  user, for every user with a session (or in the grace period) on the node.

Every change runs as one Lua script, so changes are atomic and in one order;
the script publishes the ``presence`` event on the bus channel itself, in
that same order: ``online`` when a node holds a user no other live node holds,
``offline`` when the last live node holding them drops them. Each heartbeat
also reaps nodes whose heartbeat expired (a process that died or was stopped):
their hash is removed and ``offline`` published for every user no live node
still holds. Any process may reap; a reaped node is gone from ``:nodes``, so
it is reaped once. A node that finds itself reaped (Redis stalled or lost its
data) registers again and holds its users again.

A connect never waits for Redis: :meth:`hold` and :meth:`drop` only queue the
user; one writer task sends the queue in batches, and keeps it while Redis is
unreachable (the last wish per user wins).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ..core.events import Event, Scope
from ..core.model import User
from ..core.presence import presence_payload
from .redis import Backoff, _safe

log = logging.getLogger(__name__)

_BATCH = 500  # users per script call
_RESYNC_EVERY = 12  # heartbeats between two reads of the whole online set (60 s by default)

# Is ARGV[uid] held by a live node other than `me` (nil: any node)?
_ELSEWHERE = """
local function elsewhere(prefix, nodes, me, uid)
  for _, n in ipairs(nodes) do
    if n ~= me and redis.call('exists', prefix .. ':alive:' .. n) == 1
       and redis.call('hexists', prefix .. ':held:' .. n, uid) == 1 then
      return true
    end
  end
  return false
end
"""

# ARGV: prefix, me, channel, then (op, uid, online event, offline event) per user;
# op "1" holds, "0" drops (its events are empty then: the stored one is used).
_APPLY = (
    _ELSEWHERE
    + """
local prefix, me, channel = ARGV[1], ARGV[2], ARGV[3]
local mine = prefix .. ':held:' .. me
local nodes = redis.call('smembers', prefix .. ':nodes')
local published = 0
for i = 4, #ARGV, 4 do
  local op, uid = ARGV[i], ARGV[i + 1]
  if op == '1' then
    if redis.call('hset', mine, uid, ARGV[i + 3]) == 1
       and not elsewhere(prefix, nodes, me, uid) then
      redis.call('publish', channel, ARGV[i + 2])
      published = published + 1
    end
  else
    local offline = redis.call('hget', mine, uid)
    if offline then
      redis.call('hdel', mine, uid)
      if not elsewhere(prefix, nodes, me, uid) then
        redis.call('publish', channel, offline)
        published = published + 1
      end
    end
  end
end
return published
"""
)

# ARGV: prefix, me, channel, ttl in ms ("" : do not register, only reap).
# Returns {1 if this node was not registered, nodes reaped}.
_HEARTBEAT = (
    _ELSEWHERE
    + """
local prefix, me, channel, ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local registered = 0
if ttl ~= '' then
  registered = redis.call('sadd', prefix .. ':nodes', me)
  redis.call('set', prefix .. ':alive:' .. me, '1', 'PX', ttl)
end
local reaped = 0
for _, n in ipairs(redis.call('smembers', prefix .. ':nodes')) do
  if redis.call('exists', prefix .. ':alive:' .. n) == 0 then
    local held = redis.call('hgetall', prefix .. ':held:' .. n)
    redis.call('del', prefix .. ':held:' .. n)
    redis.call('srem', prefix .. ':nodes', n)
    reaped = reaped + 1
    local nodes = redis.call('smembers', prefix .. ':nodes')
    for j = 1, #held, 2 do
      if not elsewhere(prefix, nodes, nil, held[j]) then
        redis.call('publish', channel, held[j + 1])
      end
    end
  end
end
return {registered, reaped}
"""
)

# ARGV: prefix. The users held by live nodes.
_SNAPSHOT = """
local prefix = ARGV[1]
local out = {}
for _, n in ipairs(redis.call('smembers', prefix .. ':nodes')) do
  if redis.call('exists', prefix .. ':alive:' .. n) == 1 then
    for _, uid in ipairs(redis.call('hkeys', prefix .. ':held:' .. n)) do
      out[#out + 1] = uid
    end
  end
end
return out
"""


def _event(user_id: int, name: str, status: str) -> bytes:
    return Event(Scope.ALL, 0, presence_payload(user_id, name, status)).encode()


class RedisPresence:
    """:class:`hubbub.core.presence.PresenceRegistry` in Redis."""

    def __init__(
        self,
        url: str,
        channel: str = "hubbub:events",
        *,
        ttl: float = 15.0,
        connect_timeout: float = 5.0,
        backoff_max: float = 10.0,
    ) -> None:
        self.url = url
        self.channel = channel
        self.prefix = f"{channel}:presence"
        self.node = uuid.uuid4().hex
        self.ttl = ttl
        self.connect_timeout = connect_timeout
        self.backoff_max = backoff_max
        self._client: aioredis.Redis | None = None
        self._held: dict[int, str] = {}  # what this process holds: user id -> name
        self._pending: dict[int, str | None] = {}  # to send: name to hold, None to drop
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._resync: Callable[[], Awaitable[None]] | None = None
        self._closing = False
        self._scripts: dict[str, Any] = {}

    # PresenceRegistry ---------------------------------------------------------
    async def start(self, resync: Callable[[], Awaitable[None]]) -> None:
        self._resync = resync
        self._client = aioredis.Redis.from_url(
            self.url,
            socket_connect_timeout=self.connect_timeout,
            socket_timeout=self.connect_timeout,  # a hung Redis fails the call, retried later
            socket_keepalive=True,
        )
        for name, source in (("apply", _APPLY), ("heartbeat", _HEARTBEAT), ("snap", _SNAPSHOT)):
            self._scripts[name] = self._client.register_script(source)
        try:
            await self._heartbeat()
        except (RedisError, OSError, TimeoutError) as exc:
            await self._client.aclose()
            self._client = None
            raise ConnectionError(f"presence: Redis at {_safe(self.url)}: {exc}") from exc
        self._tasks = [
            asyncio.create_task(self._write_loop(), name="hubbub-presence-writer"),
            asyncio.create_task(self._heartbeat_loop(), name="hubbub-presence-heartbeat"),
        ]

    async def snapshot(self) -> set[int]:
        assert self._client is not None
        ids = await self._scripts["snap"](args=[self.prefix])
        return {int(uid) for uid in ids}

    def hold(self, user: User) -> None:
        self._held[user.id] = user.name
        self._pending[user.id] = user.name
        self._wake.set()

    def drop(self, user: User) -> None:
        self._held.pop(user.id, None)
        self._pending[user.id] = None
        self._wake.set()

    async def close(self, linger: float) -> None:
        if self._client is None:
            return
        self._closing = True
        self._wake.set()
        self._tasks[1].cancel()  # the heartbeat: from now on this node only expires
        await asyncio.wait({self._tasks[0]}, timeout=self.connect_timeout)  # queue sent
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        try:
            if linger > 0:  # the survivors reap this node once it is over
                await self._client.pexpire(f"{self.prefix}:alive:{self.node}", int(linger * 1000))
            else:
                await self._client.delete(f"{self.prefix}:alive:{self.node}")
                await self._scripts["heartbeat"](args=[self.prefix, self.node, self.channel, ""])
        except (RedisError, OSError, TimeoutError) as exc:
            log.warning("presence: could not leave cleanly (%s); the heartbeat expires", exc)
        with contextlib.suppress(RedisError, OSError):
            await self._client.aclose()
        self._client = None

    # internals ----------------------------------------------------------------
    async def _heartbeat(self) -> None:
        ttl_ms = str(max(1, int(self.ttl * 1000)))
        registered, reaped = await self._scripts["heartbeat"](
            args=[self.prefix, self.node, self.channel, ttl_ms]
        )
        if reaped:
            log.info("presence: %d stopped process(es) reaped", reaped)
        if registered and self._held:
            # Reaped while alive (Redis stalled) or Redis lost its data: hold again.
            log.warning("presence: this process was not registered; holding its users again")
            for user_id, name in self._held.items():
                self._pending.setdefault(user_id, name)
            self._wake.set()

    async def _heartbeat_loop(self) -> None:
        backoff = Backoff(first=min(0.1, self.ttl / 3), most=self.backoff_max)
        failed = False
        beats = 0
        while True:
            await asyncio.sleep(self.ttl / 3 if not failed else backoff.delay())
            try:
                await self._heartbeat()
            except (RedisError, OSError, TimeoutError) as exc:
                if not failed:
                    log.warning("presence: heartbeat failed (%s)", exc)
                failed = True
                continue
            beats += 1
            # After an outage, and now and then anyway: an event missed while the
            # bus's subscription was down would otherwise stay wrong here.
            if failed or beats % _RESYNC_EVERY == 0:
                failed = False
                backoff.reset()
                if self._resync is not None:
                    try:
                        await self._resync()
                    except (RedisError, OSError, TimeoutError) as exc:
                        failed = True
                        log.warning("presence: resync failed (%s)", exc)

    async def _write_loop(self) -> None:
        backoff = Backoff(most=self.backoff_max)
        while True:
            if not self._pending:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            batch = list(self._pending.items())[:_BATCH]
            args: list[Any] = [self.prefix, self.node, self.channel]
            for user_id, name in batch:
                if name is None:
                    args += ["0", user_id, "", ""]
                else:
                    args += [
                        "1",
                        user_id,
                        _event(user_id, name, "online"),
                        _event(user_id, name, "offline"),
                    ]
            try:
                await self._scripts["apply"](args=args)
            except (RedisError, OSError, TimeoutError) as exc:
                if self._closing:
                    return
                delay = backoff.delay()
                log.warning("presence: cannot update Redis (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                continue
            backoff.reset()
            for user_id, name in batch:  # a newer wish made meanwhile stays queued
                if user_id in self._pending and self._pending[user_id] == name:
                    del self._pending[user_id]
