"""A shared in-memory tail of each conversation's newest messages, for catch-up reads.

Every resuming client reads what it missed with ``Store.history(conversation,
after=position)`` (docs/protocol.md, "Positions"). In a reconnect storm
thousands of clients read the same few hundred messages of the same
conversations; :class:`HistoryTail` answers those reads from memory, shared,
and each cached message's JSON is encoded once (:mod:`.payloads`).
:class:`TailedStore` puts it in front of a store without its callers knowing.
What it keeps of each conversation is in :mod:`.tailstate`.

Correctness rules (DESIGN.md, "Flow of one message", 3: no gap, no duplicate):

- A conversation's tail is a **dense** run of stored messages, ``lo .. hi``:
  every seq in between, each message exactly as it was read from the store.
  Stored messages do not change (see the last rule for the exceptions), so a
  page that lies wholly inside the run (``after >= lo - 1`` and ``after +
  limit <= hi``) is exactly what the store would return, at any time.
- Any other answer says where the conversation ends (a short page, or an
  empty one). The tail never knows that by itself: messages committed by
  another process, or published on a bus event this process missed, may be
  newer than ``hi``. Such a request waits for a **store read that starts after
  it arrived** (``after = hi - 1``: the last cached message again, whose id
  must match, plus whatever is newer), then is answered from the extended
  tail. The answer therefore holds every message committed before the request,
  like a direct read. Requests that arrive while such a read runs share the
  next one: a storm reads each conversation's end once per round trip instead
  of once per client.
- A request from before ``lo`` (a client further behind than the tail) reads
  the store directly; when its page joins the tail, the tail grows backwards.
- Anything in doubt goes to the store: a read that fails, a result that is
  not dense, a conversation that changed under the tail (the overlap's id
  differs: deleted, or its id reused), a run that does not reach the end
  within a few reads.
- Stored messages change in three ways, all through the store's API, and
  :class:`TailedStore` drops what they may have changed after they commit:
  ``delete_conversation`` (that conversation), ``delete_network`` and
  ``delete_user`` (every conversation: rare), ``set_ext_key`` (the IRC echo
  keys a message and adds to its ``meta``: that message's conversation). A
  change made by *another* process is seen when the tail is read again,
  ``ttl`` seconds after it was built at the latest (deletions at the next
  end check, by the overlap's id). A conversation created here drops whatever
  is cached under its id (SQLite reuses the highest rowid, and ``hubbub user
  remove`` deletes from a process of its own).

Bounds: at most ``max_messages`` per conversation and ``max_bytes`` (an
estimate of the JSON and the Python objects) over all conversations, the
least recently read conversations dropped first; one conversation holds at
most an eighth of ``max_bytes``.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from .model import Conversation, ConversationKind, Message, Visibility
from .payloads import hold, release
from .ports import Store
from .tailstate import ENTRY_OVERHEAD, NotConfirmed, Round, Tail, dense

log = logging.getLogger(__name__)

MAX_PAGE = 1000  # the store's own cap on one history read
MAX_READS = 4  # store reads of one end check before giving up to direct reads


class HistoryReader(Protocol):
    def __call__(
        self, conversation_id: int, *, after: int | None = ..., limit: int = ...
    ) -> Awaitable[list[Message]]: ...


@dataclass
class TailStats:
    hits: int = 0  # answered from memory at once (a page inside the tail)
    confirmed: int = 0  # answered from memory after an end check
    direct: int = 0  # read from the store
    rounds: int = 0  # end checks (each one store read, or a few)
    reads: int = 0  # store reads by the tail itself


class HistoryTail:
    """Catch-up reads (``history(conversation, after=..., limit=...)``) from memory."""

    def __init__(
        self,
        read: HistoryReader,
        *,
        max_messages: int = 500,
        max_bytes: int = 64 << 20,
        ttl: float = 30.0,
        coalesce: float = 0.005,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``coalesce``: seconds an end check waits when it follows another at
        once, so that more of a storm's requests share its read (an end check
        after a quiet spell starts at once)."""
        if max_messages < 1:
            raise ValueError("max_messages must be at least 1")
        self._read = read
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self.max_entry_bytes = max(max_bytes // 8, 1)
        self.ttl = ttl
        self.coalesce = coalesce
        self._clock = clock
        self._batch = min(max_messages + 1, MAX_PAGE)  # rows per read of the tail's own
        self._tails: collections.OrderedDict[int, Tail] = collections.OrderedDict()
        self._where: dict[str, int] = {}  # message id -> conversation, for set_ext_key
        self._bytes = 0
        self.stats = TailStats()

    # -- reads ------------------------------------------------------------------------
    async def history(self, conversation_id: int, *, after: int, limit: int) -> list[Message]:
        """Messages with seq above ``after``, ascending, at most ``limit``: what
        ``Store.history(conversation_id, after=after, limit=limit)`` returns."""
        limit = max(0, min(limit, MAX_PAGE))
        if limit == 0:
            return []
        tail = self._tails.get(conversation_id)
        if tail is not None:
            if self._clock() - tail.built > self.ttl:
                self._drop(tail)
                tail = None
            else:
                self._tails.move_to_end(conversation_id)
                messages = tail.messages
                if messages:
                    start = after + 1 - tail.lo
                    if start < 0:
                        return await self._direct(tail, after, limit)
                    if start + limit <= len(messages):  # a whole page inside: no end involved
                        self.stats.hits += 1
                        return messages[start : start + limit]
        if tail is None:
            tail = self._tails[conversation_id] = Tail(conversation_id, self._clock())
            self._bytes += tail.size
            self._evict(tail)
        done = self._join_round(tail, after)
        await done.done.wait()
        if done.ok:
            if done.empty:  # nothing after the lowest waiter's position, so after none
                self.stats.confirmed += 1
                return []
            start = after + 1 - done.lo
            if done.messages and start >= 0:
                self.stats.confirmed += 1
                return done.messages[start : start + limit]
        self.stats.direct += 1
        return await self._read(conversation_id, after=after, limit=limit)

    async def _direct(self, tail: Tail, after: int, limit: int) -> list[Message]:
        """A page from before the tail, from the store; kept when it joins the tail."""
        self.stats.direct += 1
        found = await self._read(tail.conversation_id, after=after, limit=limit)
        if tail.dead or not tail.messages or not found:
            return found
        lo = tail.lo
        joint = lo - (after + 1)  # index in ``found`` of the tail's first message
        if (
            0 < joint < len(found)
            and found[joint].id == tail.messages[0].id
            and dense(found, after + 1, tail.conversation_id)
            and len(tail.messages) + joint <= self.max_messages
        ):
            older = found[:joint]
            sizes = [hold(m) for m in older]
            for m in older:
                self._where[m.id] = tail.conversation_id
            tail.messages = older + tail.messages
            tail.sizes = sizes + tail.sizes
            tail.lo = after + 1
            grown = sum(sizes)
            tail.size += grown
            self._bytes += grown
            self._trim(tail)
            self._evict(tail)
        return found

    def _join_round(self, tail: Tail, after: int) -> Round:
        pending = tail.next_round
        if pending is None:
            pending = tail.next_round = Round(after)
            if tail.task is None:
                tail.task = asyncio.get_running_loop().create_task(self._rounds(tail))
        elif after < pending.lowest:
            pending.lowest = after
        return pending

    async def _rounds(self, tail: Tail) -> None:
        """Run end checks while waiters come; each starts after its waiters arrived."""
        loop = asyncio.get_running_loop()
        try:
            while not tail.dead and tail.next_round is not None:
                # right after another check: let more join (the read still starts after them)
                wait = tail.checked + self.coalesce - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                    if tail.dead:
                        break
                current, tail.next_round = tail.next_round, None
                self.stats.rounds += 1
                try:
                    current.empty = await self._check_end(tail, current.lowest)
                    current.ok = not tail.dead
                    current.messages = tail.messages
                    current.lo = tail.lo
                except NotConfirmed:
                    pass  # the waiters read the store themselves
                except Exception as exc:
                    log.warning(
                        "catch-up cache: reading conversation %d failed: %r",
                        tail.conversation_id,
                        exc,
                    )
                finally:
                    tail.checked = loop.time()
                    current.done.set()
        finally:
            tail.task = None
            left, tail.next_round = tail.next_round, None
            if left is not None:  # dropped, or cancelled: they read the store themselves
                left.done.set()

    async def _check_end(self, tail: Tail, lowest: int) -> bool:
        """Read the store until its end (at most MAX_READS reads), into the tail,
        which then holds every message from ``lo`` to the end as of a read that
        started after every waiter of this round arrived. True when the store
        had nothing after ``lowest`` (and the tail holds nothing); raises
        :class:`~.tailstate.NotConfirmed` when the end was not reached."""
        cid = tail.conversation_id
        for _ in range(MAX_READS):
            self.stats.reads += 1
            if tail.messages:
                hi = tail.hi
                found = await self._read(cid, after=hi - 1, limit=self._batch)
                if tail.dead:
                    raise NotConfirmed
                if (
                    found
                    and found[0].seq == hi
                    and found[0].id == tail.messages[-1].id
                    and dense(found, hi, cid)
                ):
                    self._extend(tail, found[1:])
                    if len(found) < self._batch:
                        return False
                    continue
                self._clear(tail)  # changed under us (or not dense): start over
                continue
            found = await self._read(cid, after=lowest, limit=self._batch)
            if tail.dead or not dense(found, lowest + 1, cid):
                raise NotConfirmed
            if not found:
                return True  # nothing after ``lowest``: every waiter gets []
            tail.lo = lowest + 1
            self._extend(tail, found)
            if len(found) < self._batch:
                return False
        raise NotConfirmed

    # -- bookkeeping ------------------------------------------------------------------
    def _extend(self, tail: Tail, newer: list[Message]) -> None:
        if not newer:
            return
        sizes = [hold(m) for m in newer]
        where = self._where
        for m in newer:
            where[m.id] = tail.conversation_id
        tail.messages = tail.messages + newer
        tail.sizes = tail.sizes + sizes
        grown = sum(sizes)
        tail.size += grown
        self._bytes += grown
        self._trim(tail)
        self._evict(tail)

    def _trim(self, tail: Tail) -> None:
        """Drop the oldest messages past the per-conversation bounds (never the newest)."""
        sizes = tail.sizes
        last = len(sizes) - 1
        cut = max(len(sizes) - self.max_messages, 0)
        freed = sum(sizes[:cut])
        while tail.size - freed > self.max_entry_bytes and cut < last:
            freed += sizes[cut]
            cut += 1
        if cut <= 0:
            return
        gone = tail.messages[:cut]
        tail.messages = tail.messages[cut:]
        tail.sizes = sizes[cut:]
        tail.lo += cut
        tail.size -= freed
        self._bytes -= freed
        self._unindex(gone)

    def _evict(self, keep: Tail) -> None:
        """Drop the least recently read conversations while over ``max_bytes``."""
        tails = self._tails
        while self._bytes > self.max_bytes and len(tails) > 1:
            oldest = next(iter(tails.values()))
            if oldest is keep:
                tails.move_to_end(keep.conversation_id)
                continue
            self._drop(oldest)

    def _clear(self, tail: Tail) -> None:
        self._unindex(tail.messages)
        freed = tail.size - ENTRY_OVERHEAD
        self._bytes -= freed
        tail.size = ENTRY_OVERHEAD
        tail.messages = []
        tail.sizes = []
        tail.lo = 0

    def _unindex(self, messages: list[Message]) -> None:
        where = self._where
        for m in messages:
            release(m)
            where.pop(m.id, None)

    def _drop(self, tail: Tail) -> None:
        if tail.dead:
            return
        tail.dead = True
        self._clear(tail)
        self._bytes -= tail.size
        if self._tails.get(tail.conversation_id) is tail:
            del self._tails[tail.conversation_id]

    # -- invalidation -----------------------------------------------------------------
    def forget(self, conversation_id: int) -> None:
        """Drop a conversation's tail (its messages changed, or it is gone)."""
        tail = self._tails.get(conversation_id)
        if tail is not None:
            self._drop(tail)

    def forget_message(self, message_id: str) -> None:
        """Drop the tail holding that message (it changed)."""
        conversation_id = self._where.get(message_id)
        if conversation_id is not None:
            self.forget(conversation_id)

    def forget_all(self) -> None:
        for tail in list(self._tails.values()):
            self._drop(tail)

    async def close(self) -> None:
        """Drop everything and stop the end checks still reading (the store is closing)."""
        tasks = [t.task for t in self._tails.values() if t.task is not None]
        self.forget_all()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- introspection ----------------------------------------------------------------
    def gauges(self) -> dict[str, tuple[str, Callable[[], float]]]:
        """Name -> (description, read) of the figures worth exporting (``/metrics``)."""
        stats = self.stats
        return {
            "answers": (
                "Catch-up reads answered from the cache.",
                lambda: float(stats.hits + stats.confirmed),
            ),
            "store_reads": (
                "Database reads for catch-up: the cache's own and those it passed on.",
                lambda: float(stats.reads + stats.direct),
            ),
            "bytes": ("Estimated bytes held by the catch-up cache.", lambda: float(self._bytes)),
        }

    @property
    def size(self) -> int:
        """Estimated bytes held, all conversations."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._tails)

    def span(self, conversation_id: int) -> tuple[int, int] | None:
        """``(lo, hi)`` of a conversation's cached run, or None."""
        tail = self._tails.get(conversation_id)
        if tail is None or not tail.messages:
            return None
        return tail.lo, tail.hi


class TailedStore:
    """A :class:`~hubbub.core.ports.Store` whose catch-up reads go through a
    :class:`HistoryTail`; everything else is the wrapped store's."""

    def __init__(
        self,
        store: Store,
        *,
        max_messages: int = 500,
        max_bytes: int = 64 << 20,
        ttl: float = 30.0,
    ) -> None:
        """``max_messages=0``: no cache, every read goes to ``store``."""
        self.inner = store
        self.tail = HistoryTail(
            self._read, max_messages=max(max_messages, 1), max_bytes=max_bytes, ttl=ttl
        )
        self.enabled = max_messages > 0

    def __getattr__(self, name: str) -> Any:
        value = getattr(self.inner, name)
        if callable(value):
            setattr(self, name, value)  # bound once: later calls skip __getattr__
        return value

    async def history(
        self,
        conversation_id: int,
        *,
        before: int | None = None,
        after: int | None = None,
        limit: int = 50,
    ) -> list[Message]:
        if after is None or not self.enabled:
            return await self.inner.history(
                conversation_id, before=before, after=after, limit=limit
            )
        return await self.tail.history(conversation_id, after=after, limit=limit)

    def _read(
        self, conversation_id: int, *, after: int | None = None, limit: int = 50
    ) -> Awaitable[list[Message]]:
        return self.inner.history(conversation_id, after=after, limit=limit)

    # A new conversation may have the id of one deleted elsewhere (SQLite reuses
    # the highest rowid; ``hubbub user remove`` deletes in a process of its own):
    # nothing cached under that id may be served for it.
    async def create_conversation(
        self,
        *,
        network_id: int,
        kind: ConversationKind,
        name: str,
        visibility: Visibility,
        topic: str = "",
        owner_id: int | None = None,
    ) -> Conversation:
        made = await self.inner.create_conversation(
            network_id=network_id,
            kind=kind,
            name=name,
            visibility=visibility,
            topic=topic,
            owner_id=owner_id,
        )
        self.tail.forget(made.id)
        return made

    async def get_or_create_dm(self, user_a: int, user_b: int) -> tuple[Conversation, bool]:
        dm, created = await self.inner.get_or_create_dm(user_a, user_b)
        if created:
            self.tail.forget(dm.id)
        return dm, created

    async def network_conversation(
        self, network_id: int, owner_id: int, kind: ConversationKind, name: str
    ) -> tuple[Conversation, bool]:
        found, created = await self.inner.network_conversation(network_id, owner_id, kind, name)
        if created:
            self.tail.forget(found.id)
        return found, created

    # Changes to stored messages: forget what they may have changed, once committed.
    async def delete_conversation(self, conversation_id: int) -> bool:
        try:
            return await self.inner.delete_conversation(conversation_id)
        finally:
            self.tail.forget(conversation_id)

    async def delete_network(self, network_id: int) -> bool:
        try:
            return await self.inner.delete_network(network_id)
        finally:
            self.tail.forget_all()

    async def delete_user(self, user_id: int) -> None:
        try:
            await self.inner.delete_user(user_id)
        finally:
            self.tail.forget_all()

    async def set_ext_key(self, message_id: str, ext_key: str, meta: dict[str, Any] | None) -> bool:
        try:
            return await self.inner.set_ext_key(message_id, ext_key, meta)
        finally:
            self.tail.forget_message(message_id)

    async def close(self) -> None:
        await self.tail.close()
        await self.inner.close()


def _implements_store(store: TailedStore) -> Store:
    return store  # mypy checks here that TailedStore has every method of the Store protocol
