"""Which Hubbub process connects which IRC network, when several share Redis.

:class:`LocalCluster` is the single process: it owns every network, there is
nobody to ask or tell, and every call returns at once without I/O.

:class:`RedisCluster` is for scale-out (``redis_url`` set). Per network it
keeps a **lease**: the Redis key ``<redis_channel>:irc:lease:<network id>``
holding the owner's node id, taken with ``SET NX PX`` (``irc_lease_seconds``)
and renewed by its owner every third of that with a compare-and-renew script;
released (compare-and-delete) when the owner stops the network or shuts down.
A process that dies stops renewing: the key expires and another process takes
the network over at its next claim round.

Beside the leases, one pub/sub channel, ``<redis_channel>:irc``, carries

- **requests** to the owner (``to`` = its node id) and their **replies**
  (``to`` = the asker): a send into an IRC conversation, a composer command,
  stop, reload, forget. The asker waits ``irc_request_timeout`` seconds, then
  raises :class:`~hubbub.irc.policy.IrcUnavailable` (503). A request id is
  served once even if it arrives twice;
- **notices** from the owner to every process: the network's state, a
  conversation created or closed, a network forgotten. (A channel's members
  reach every process as the ``irc_members`` user events of the event bus.)
  The last state and member list are also kept in two Redis hashes, read when
  a process starts and after its subscription came back, so every process can
  answer reads.

Messages are JSON objects; ``t`` says which kind (``req``, ``rep``, ``state``,
``conv``, ``drop``, ``forget``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import orjson

from ..core.errors import HubbubError
from .policy import IrcNotConnected, IrcUnavailable

log = logging.getLogger("hubbub.irc.cluster")

RequestHandler = Callable[[dict[str, Any]], Awaitable[Any]]
NoticeHandler = Callable[[dict[str, Any]], None]
ResyncHandler = Callable[[], Awaitable[None]]

_SEEN_REQUESTS = 10_000  # request ids remembered, so a repeated request is served once

# KEYS: the leases of networks we run; ARGV[1]: our node id, ARGV[2]: lease in
# ms. Returns the 1-based positions of the keys still ours, now renewed. A key
# that is missing is taken again: while we run a network its lease cannot have
# expired (we stop first) and only we release it, so a missing key means Redis
# lost its data (a restart without persistence), and the network is still ours.
_RENEW = """
local renewed = {}
for i, key in ipairs(KEYS) do
  local holder = redis.call('get', key)
  if holder == ARGV[1] then
    redis.call('pexpire', key, ARGV[2])
    renewed[#renewed + 1] = i
  elseif not holder then
    redis.call('set', key, ARGV[1], 'PX', ARGV[2])
    renewed[#renewed + 1] = i
  end
end
return renewed
"""
# Take a free lease, or renew it when it is ours already; -1 when the epoch
# (KEYS[2]) is not the one we know (ARGV[3]): Redis lost its data since.
_ACQUIRE = """
if redis.call('get', KEYS[2]) ~= ARGV[3] then return -1 end
if redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
if redis.call('get', KEYS[1]) == ARGV[1] then
  redis.call('pexpire', KEYS[1], ARGV[2])
  return 1
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


class LocalCluster:
    """One process: it owns every network; nothing to forward or share."""

    shared = False

    def __init__(self, *, lease_seconds: float = 20.0, request_timeout: float = 5.0) -> None:
        self.node = "local"
        self.lease_seconds = lease_seconds
        self.request_timeout = request_timeout
        #: no free lease may be taken before this (monotonic): see RedisCluster.acquire
        self.paused_until = 0.0

    async def start(
        self, on_request: RequestHandler, on_notice: NoticeHandler, on_resync: ResyncHandler
    ) -> None:
        pass

    async def close(self) -> None:
        pass

    async def acquire(self, network_id: int) -> bool:
        return True

    async def renew(self, network_ids: list[int]) -> set[int]:
        return set(network_ids)

    async def release(self, network_id: int) -> None:
        pass

    async def holder(self, network_id: int) -> str | None:
        return self.node

    async def request(self, node: str, op: str, body: dict[str, Any]) -> Any:
        raise IrcNotConnected("this IRC network is not connected")

    async def notify(self, body: dict[str, Any]) -> None:
        pass

    async def share_state(self, network_id: int, state: dict[str, Any]) -> None:
        pass

    async def share_members(self, conversation_id: int, members: list[dict[str, str]]) -> None:
        pass

    async def forget_shared(self, network_id: int, conversation_ids: Iterable[int]) -> None:
        pass

    async def snapshot(self) -> tuple[dict[int, dict[str, Any]], dict[int, list[dict[str, str]]]]:
        """The last states (by network) and member lists (by conversation) shared."""
        return {}, {}


class RedisCluster(LocalCluster):
    """Leases and a request/notice channel over Redis (see the module's text)."""

    shared = True

    def __init__(
        self,
        url: str,
        prefix: str,
        *,
        lease_seconds: float = 20.0,
        request_timeout: float = 5.0,
        connect_timeout: float = 5.0,
    ) -> None:
        super().__init__(lease_seconds=lease_seconds, request_timeout=request_timeout)
        self.node = uuid.uuid4().hex
        self.url = url
        self.prefix = f"{prefix}:irc"
        self.channel = self.prefix
        self.connect_timeout = connect_timeout
        self._client: Any = None
        self._subscription: Any = None  # bus.redis.Subscription (redis imported when used)
        self._reader: asyncio.Task[None] | None = None
        self._serving: set[asyncio.Task[None]] = set()
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._on_request: RequestHandler | None = None
        self._on_notice: NoticeHandler | None = None
        self._on_resync: ResyncHandler | None = None
        self._scripts: dict[str, Any] = {}
        self._epoch = ""

    def _lease_key(self, network_id: int) -> str:
        return f"{self.prefix}:lease:{network_id}"

    @property
    def _lease_ms(self) -> int:
        return max(1, int(self.lease_seconds * 1000))

    # lifecycle -------------------------------------------------------------------
    async def start(
        self, on_request: RequestHandler, on_notice: NoticeHandler, on_resync: ResyncHandler
    ) -> None:
        import redis.asyncio as aioredis

        self._on_request, self._on_notice, self._on_resync = on_request, on_notice, on_resync
        self._client = aioredis.Redis.from_url(
            self.url,
            socket_connect_timeout=self.connect_timeout,
            socket_timeout=self.connect_timeout,
            socket_keepalive=True,
            health_check_interval=30,
        )
        for name, script in (("renew", _RENEW), ("acquire", _ACQUIRE), ("release", _RELEASE)):
            self._scripts[name] = self._client.register_script(script)
        from ..bus.redis import Subscription

        self._subscription = Subscription(
            self._client,
            self.channel,
            self._deliver,
            name="irc cluster",
            connect_timeout=self.connect_timeout,
            on_resubscribed=self._resubscribed,
        )
        try:
            await self._adopt_epoch()
            await self._subscription.open()
        except Exception:
            await self._client.aclose()
            self._client = None
            raise
        self._reader = asyncio.create_task(self._subscription.run(), name="hubbub-irc-cluster")

    async def close(self) -> None:
        if self._client is None:
            return
        tasks = [t for t in (self._reader, *self._serving) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(IrcUnavailable("this Hubbub process is shutting down"))
        if self._subscription is not None:
            await self._subscription.close()
        with contextlib.suppress(Exception):
            await self._client.aclose()
        self._client = None

    # leases ----------------------------------------------------------------------
    async def acquire(self, network_id: int) -> bool:
        """Take a free lease (or renew ours).

        Redis without persistence loses every lease when it restarts, while
        their owners are still connected: a free lease then does not mean a
        free network. The epoch key (``…:irc:epoch``, set once, no expiry)
        tells: when it is not the one this process read, Redis lost its data,
        and no free lease is taken for one lease period, in which every live
        owner takes its own back (:meth:`renew` re-takes a missing key)."""
        epoch_key = f"{self.prefix}:epoch"
        async with self._redis("take an IRC network's lease"):
            result = int(
                await self._scripts["acquire"](
                    keys=[self._lease_key(network_id), epoch_key],
                    args=[self.node, self._lease_ms, self._epoch],
                )
            )
        if result < 0:
            self.paused_until = time.monotonic() + self.lease_seconds
            log.warning(
                "irc cluster: Redis lost the leases (a restart?): taking none for %.0f s, "
                "while their owners take them back",
                self.lease_seconds,
            )
            async with self._redis("read the lease epoch"):
                await self._adopt_epoch()
            return False
        return bool(result)

    async def _adopt_epoch(self) -> None:
        key = f"{self.prefix}:epoch"
        await self._client.set(key, uuid.uuid4().hex, nx=True)
        value = await self._client.get(key)
        self._epoch = value.decode() if value else ""

    async def renew(self, network_ids: list[int]) -> set[int]:
        if not network_ids:
            return set()
        async with self._redis("renew IRC leases"):
            positions = await self._scripts["renew"](
                keys=[self._lease_key(n) for n in network_ids], args=[self.node, self._lease_ms]
            )
        return {network_ids[int(i) - 1] for i in positions}

    async def release(self, network_id: int) -> None:
        async with self._redis("release an IRC network's lease"):
            await self._scripts["release"](keys=[self._lease_key(network_id)], args=[self.node])

    async def holder(self, network_id: int) -> str | None:
        async with self._redis("find the process connected to an IRC network"):
            value = await self._client.get(self._lease_key(network_id))
        return value.decode() if value else None

    # requests ----------------------------------------------------------------------
    async def request(self, node: str, op: str, body: dict[str, Any]) -> Any:
        """Ask process ``node`` to do ``op``; its result, or its error raised here."""
        rid = uuid.uuid4().hex
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[rid] = future
        try:
            await self._publish(
                {**body, "t": "req", "id": rid, "from": self.node, "to": node, "op": op}
            )
            try:
                async with asyncio.timeout(self.request_timeout):
                    reply = await future
            except TimeoutError:
                raise IrcUnavailable(
                    "the Hubbub process connected to this IRC network did not answer in time"
                ) from None
        finally:
            self._waiting.pop(rid, None)
        error = reply.get("error")
        if error:
            raise remote_error(error)
        return reply.get("result")

    # notices -------------------------------------------------------------------------
    async def notify(self, body: dict[str, Any]) -> None:
        """Tell every process (errors are logged: a notice is best effort)."""
        try:
            await self._publish({**body, "from": self.node})
        except IrcUnavailable as exc:
            log.warning("irc cluster: notice %s not sent: %s", body.get("t"), exc.message)

    async def share_state(self, network_id: int, state: dict[str, Any]) -> None:
        data = orjson.dumps(
            {"t": "state", "network": network_id, "state": state, "from": self.node}
        )
        await self._share(f"{self.prefix}:state", network_id, data, orjson.dumps(state))

    async def share_members(self, conversation_id: int, members: list[dict[str, str]]) -> None:
        """Kept for processes that start later; the changes themselves reach the
        running ones as the ``irc_members`` user events of the event bus."""
        await self._share(f"{self.prefix}:members", conversation_id, None, orjson.dumps(members))

    async def forget_shared(self, network_id: int, conversation_ids: Iterable[int]) -> None:
        try:
            async with (
                self._redis("forget an IRC network's state"),
                self._client.pipeline(transaction=False) as pipe,
            ):
                pipe.hdel(f"{self.prefix}:state", network_id)
                for cid in conversation_ids:
                    pipe.hdel(f"{self.prefix}:members", cid)
                await pipe.execute()
        except IrcUnavailable as exc:
            log.warning("irc cluster: %s", exc.message)
        await self.notify({"t": "forget", "network": network_id})

    async def snapshot(self) -> tuple[dict[int, dict[str, Any]], dict[int, list[dict[str, str]]]]:
        async with self._redis("read the IRC networks' states"):
            states = await self._client.hgetall(f"{self.prefix}:state")
            members = await self._client.hgetall(f"{self.prefix}:members")
        return (
            {int(k): orjson.loads(v) for k, v in states.items()},
            {int(k): orjson.loads(v) for k, v in members.items()},
        )

    # internals -------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def _redis(self, what: str) -> Any:
        """Turn Redis failures into :class:`IrcUnavailable`."""
        from redis.exceptions import RedisError

        if self._client is None:
            raise IrcUnavailable(f"cannot {what}: not connected to Redis")
        try:
            yield
        except (RedisError, OSError, TimeoutError) as exc:
            raise IrcUnavailable(f"cannot {what}: Redis: {exc}") from exc

    async def _publish(self, body: dict[str, Any]) -> None:
        async with self._redis("reach the other Hubbub processes"):
            await self._client.publish(self.channel, orjson.dumps(body))

    async def _share(self, key: str, field: int, notice: bytes | None, value: bytes) -> None:
        try:
            async with (
                self._redis("share an IRC network's state"),
                self._client.pipeline(transaction=False) as pipe,
            ):
                pipe.hset(key, field, value)
                if notice is not None:
                    pipe.publish(self.channel, notice)
                await pipe.execute()
        except IrcUnavailable as exc:
            log.warning("irc cluster: %s", exc.message)

    def _resubscribed(self) -> None:
        if self._on_resync is not None:
            self._spawn(self._on_resync())

    def _deliver(self, data: bytes) -> None:
        try:
            body = orjson.loads(data)
            kind = body["t"]
        except Exception:
            log.warning("irc cluster: ignoring a message that does not decode")
            return
        if kind == "rep":
            future = self._waiting.get(str(body.get("id")))
            if body.get("to") == self.node and future is not None and not future.done():
                future.set_result(body)
        elif kind == "req":
            if body.get("to") != self.node or self._seen_before(str(body.get("id"))):
                return
            self._spawn(self._serve(body))
        elif body.get("from") != self.node and self._on_notice is not None:
            try:
                self._on_notice(body)
            except Exception:
                log.exception("irc cluster: notice %s not applied", kind)

    def _seen_before(self, rid: str) -> bool:
        if rid in self._seen:
            return True
        self._seen[rid] = None
        if len(self._seen) > _SEEN_REQUESTS:
            self._seen.popitem(last=False)
        return False

    async def _serve(self, body: dict[str, Any]) -> None:
        assert self._on_request is not None
        reply: dict[str, Any] = {"t": "rep", "id": body.get("id"), "to": body.get("from")}
        try:
            reply["result"] = await self._on_request(body)
        except HubbubError as exc:
            reply["error"] = {"code": exc.code, "status": exc.status, "message": exc.message}
        except Exception as exc:
            log.exception("irc cluster: request %s failed", body.get("op"))
            reply["error"] = {"code": "error", "status": 500, "message": f"internal error: {exc}"}
        try:
            await self._publish(reply)
        except IrcUnavailable as exc:
            log.warning("irc cluster: reply to %s not sent: %s", body.get("op"), exc.message)

    def _spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._serving.add(task)
        task.add_done_callback(self._serving.discard)


def remote_error(error: dict[str, Any]) -> HubbubError:
    """The error another process raised, as the same class here when it is known."""
    code, message = str(error.get("code", "error")), str(error.get("message", ""))
    cls = _error_classes().get(code)
    if cls is not None:
        return cls(message)
    exc = HubbubError(message)
    exc.code = code
    exc.status = int(error.get("status", 500))
    return exc


def _error_classes() -> dict[str, type[HubbubError]]:
    found: dict[str, type[HubbubError]] = {}
    todo: list[type[HubbubError]] = [HubbubError]
    while todo:
        cls = todo.pop(0)  # parents first: a subclass may keep its parent's code
        found.setdefault(cls.code, cls)
        todo.extend(cls.__subclasses__())
    return found
