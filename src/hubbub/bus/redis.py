"""The Redis bus: events shared by every Hubbub process through one pub/sub channel.

Delivery goes only through Redis, the publishing process included: every
process receives every event exactly once (its own too), and all of them in
the one order in which Redis received them. A process never short-cuts its own
events to its local listeners, which would give each process a different
interleaving of local and remote events.

``publish`` never waits for Redis and never fails: the message is already
committed when it is published (DESIGN.md, "Flow of one message"), so a Redis
hiccup must not turn into an error for the sender. Events wait in a bounded
outbox that one writer task sends, in order, in pipelined batches; the reader
task dispatches what the subscription receives. Both reconnect with
exponential backoff and jitter. Events published while the subscription was
down are missed by this process: a session notices the jump in ``seq`` on the
next event of a conversation and reads the gap from the store (positions are
published, STYLE.md #6), so a missed wake-up loses nothing. Conversely, a
batch whose connection broke mid-way is sent again whole, so after such a
break an event can arrive twice; receivers drop what is at or below the
position they have already sent.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import random
import time
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ..core.events import Event
from ..core.ports import EventListener
from .local import dispatch

log = logging.getLogger(__name__)

_BATCH = 512  # events per pipelined round trip


class BusUnavailable(Exception):
    """Redis could not be reached when the bus started."""


class Backoff:
    """Exponential backoff with full jitter; :meth:`reset` after a success."""

    def __init__(self, first: float = 0.1, most: float = 10.0) -> None:
        self.first = first
        self.most = most
        self._next = first

    def delay(self) -> float:
        delay = random.uniform(self._next / 2, self._next)
        self._next = min(self.most, self._next * 2)
        return delay

    def reset(self) -> None:
        self._next = self.first


class Subscription:
    """One Redis pub/sub channel, read until cancelled. :meth:`open` subscribes
    (and raises when it cannot); :meth:`run` hands every message to ``deliver``
    and, when the subscription is lost, subscribes again with backoff, then
    calls ``on_resubscribed`` (what was published meanwhile was missed)."""

    def __init__(
        self,
        client: Any,
        channel: str,
        deliver: Callable[[bytes], None],
        *,
        name: str,
        connect_timeout: float,
        backoff_max: float = 10.0,
        on_resubscribed: Callable[[], None] | None = None,
    ) -> None:
        self.client = client
        self.channel = channel
        self.deliver = deliver
        self.name = name
        self.connect_timeout = connect_timeout
        self.backoff_max = backoff_max
        self.on_resubscribed = on_resubscribed
        self._pubsub: Any = None

    async def open(self) -> None:
        self._pubsub = await self._subscribe()

    async def close(self) -> None:
        if self._pubsub is not None:
            with contextlib.suppress(RedisError, OSError):
                await self._pubsub.aclose()
            self._pubsub = None

    async def _subscribe(self) -> Any:
        pubsub: Any = self.client.pubsub()
        try:
            async with asyncio.timeout(self.connect_timeout):
                await pubsub.subscribe(self.channel)
                # Wait for Redis to confirm: from then on no message is missed.
                while True:
                    message = await pubsub.get_message(timeout=self.connect_timeout)
                    if message is not None and message["type"] == "subscribe":
                        return pubsub
        except BaseException:
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()
            raise

    async def run(self) -> None:
        backoff = Backoff(most=self.backoff_max)
        while True:
            try:
                if self._pubsub is None:
                    self._pubsub = await self._subscribe()
                    log.info("%s subscribed again to %s", self.name, self.channel)
                    if self.on_resubscribed is not None:
                        self.on_resubscribed()
                backoff.reset()
                async for message in self._pubsub.listen():
                    if message["type"] == "message":
                        self.deliver(message["data"])
                raise ConnectionError("subscription ended")
            except (RedisError, OSError, TimeoutError, ConnectionError) as exc:
                await self.close()
                delay = backoff.delay()
                log.warning("%s subscription lost (%s); retrying in %.1fs", self.name, exc, delay)
                await asyncio.sleep(delay)


class RedisBus:
    """:class:`hubbub.core.ports.Bus` over Redis pub/sub (``redis.asyncio``)."""

    def __init__(
        self,
        url: str,
        channel: str = "hubbub:events",
        *,
        outbox_limit: int = 100_000,
        connect_timeout: float = 5.0,
        backoff_max: float = 10.0,
    ) -> None:
        self.url = url
        self.channel = channel
        self.outbox_limit = outbox_limit
        self.connect_timeout = connect_timeout
        self.backoff_max = backoff_max
        self.dropped = 0  # events dropped because the outbox was full
        self._listeners: list[EventListener] = []
        self._outbox: collections.deque[bytes] = collections.deque()
        self._wake = asyncio.Event()
        self._client: aioredis.Redis | None = None
        self._subscription: Subscription | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        self._last_drop_log = 0.0

    # Bus ------------------------------------------------------------------------
    async def start(self) -> None:
        """Connect and subscribe; raise :class:`BusUnavailable` if Redis is not there."""
        self._client = aioredis.Redis.from_url(
            self.url,
            socket_connect_timeout=self.connect_timeout,
            socket_keepalive=True,
            health_check_interval=30,
        )
        self._subscription = Subscription(
            self._client,
            self.channel,
            self._deliver,
            name="redis bus",
            connect_timeout=self.connect_timeout,
            backoff_max=self.backoff_max,
        )
        try:
            await self._subscription.open()
        except (RedisError, OSError, TimeoutError) as exc:
            await self._client.aclose()
            self._client = None
            raise BusUnavailable(f"cannot subscribe to Redis at {_safe(self.url)}: {exc}") from exc
        self._tasks = [
            asyncio.create_task(self._subscription.run(), name="hubbub-redis-bus-reader"),
            asyncio.create_task(self._write_loop(), name="hubbub-redis-bus-writer"),
        ]

    async def close(self, *, flush_timeout: float = 5.0) -> None:
        """Send what is still in the outbox (bounded), then disconnect."""
        if self._client is None:
            return
        self._closing = True
        self._wake.set()
        writer = self._tasks[1]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(writer), flush_timeout)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._outbox:
            log.warning("redis bus closed with %d events not sent", len(self._outbox))
        if self._subscription is not None:
            await self._subscription.close()
        with contextlib.suppress(RedisError, OSError):
            await self._client.aclose()
        self._client = None

    async def publish(self, event: Event) -> None:
        if len(self._outbox) >= self.outbox_limit:
            self._outbox.popleft()
            self.dropped += 1
            now = time.monotonic()
            if now - self._last_drop_log > 10:
                self._last_drop_log = now
                log.warning("redis bus outbox full: dropped %d events so far", self.dropped)
        self._outbox.append(event.encode())
        self._wake.set()

    def add_listener(self, listener: EventListener) -> None:
        self._listeners.append(listener)

    # internals ----------------------------------------------------------------
    def _deliver(self, data: bytes) -> None:
        try:
            event = Event.decode(data)
        except Exception:
            log.exception("redis bus: ignoring an event that does not decode")
            return
        dispatch(self._listeners, event)

    async def _write_loop(self) -> None:
        assert self._client is not None
        backoff = Backoff(most=self.backoff_max)
        while True:
            if not self._outbox:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            batch = [self._outbox[i] for i in range(min(_BATCH, len(self._outbox)))]
            try:
                async with self._client.pipeline(transaction=False) as pipe:
                    for data in batch:
                        pipe.publish(self.channel, data)
                    await pipe.execute()
            except (RedisError, OSError, TimeoutError) as exc:
                if self._closing:
                    return
                delay = backoff.delay()
                log.warning("redis bus cannot publish (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                continue
            backoff.reset()
            # Publish never removes from the left while a batch is in flight unless
            # the outbox overflowed; drop only what was sent and is still at the head.
            for data in batch:
                if self._outbox and self._outbox[0] is data:
                    self._outbox.popleft()


def _safe(url: str) -> str:
    """The URL without its password, for messages."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.rsplit("@", 1)[1]
    return scheme + sep + rest
