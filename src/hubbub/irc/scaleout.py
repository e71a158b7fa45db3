"""Scale-out for :class:`~hubbub.irc.service.IrcService`: claim rounds and shared caches.

A mixin. With a :class:`~hubbub.irc.cluster.RedisCluster`, every process
renews the leases of the networks it runs and takes the free leases of
enabled networks at start and every third of ``irc_lease_seconds`` (a claim
round); it forwards what only the owner can do (:meth:`ScaleOut._forward`)
and keeps what the owners share: network states, member lists and the IRC
conversations other processes created (:meth:`ScaleOut._on_notice`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import orjson

from ..core.events import Event as BusEvent
from ..core.events import Scope
from ..core.model import Conversation, ConversationKind, Network, NetworkKind, Visibility, irc_fold
from ..core.ports import Store
from .inbound import Inbound, log
from .policy import IrcNotConnected, IrcPolicy, IrcUnavailable

DISCONNECTED: dict[str, Any] = {"state": "disconnected", "nick": None, "error": None}
_MEMBERS_EVENT = b'{"type":"irc_members",'  # how Conversations._publish_members begins its payload


class ScaleOut(Inbound):
    store: Store
    policy: IrcPolicy
    _closed: bool
    # until when (monotonic) our lease of each network we run is sure
    _lease_until: dict[int, float]
    _stopping: set[asyncio.Task[None]]

    def _start(self, network: Network) -> None:
        raise NotImplementedError

    async def _stop(self, network_id: int, reason: str, *, release: bool = True) -> None:
        raise NotImplementedError

    def _drop_network(self, network_id: int) -> list[int]:
        raise NotImplementedError

    async def _acquire(self, network_id: int, *, ours: bool = False) -> bool:
        """Take the network's free lease; or, when it is ``ours`` (a reload),
        keep it. No free lease is taken while Redis's owners take theirs back
        after Redis lost its data (``cluster.paused_until``)."""
        started = time.monotonic()
        if ours:
            held = network_id in await self.cluster.renew([network_id])
        else:
            held = started >= self.cluster.paused_until and await self.cluster.acquire(network_id)
        if not held:
            return False
        self._lease_until[network_id] = started + self.cluster.lease_seconds
        return True

    async def _lease_loops(self) -> None:
        await asyncio.gather(self._renew_loop(), self._claim_loop())

    async def _renew_loop(self) -> None:
        """Renew our leases every third of the lease; after a failure, retry sooner
        and stop each network before its lease may have run out."""
        interval = self.cluster.lease_seconds / 3
        while True:
            ok = await self._renew()
            await asyncio.sleep(interval if ok else min(1.0, interval))

    async def _renew(self) -> bool:
        owned = list(self._running)
        if not owned:
            return True
        interval = self.cluster.lease_seconds / 3
        call_timeout = min(interval, 2.0)  # a Redis that hangs counts as a failure
        started = time.monotonic()
        try:
            async with asyncio.timeout(call_timeout):
                held = await self.cluster.renew(owned)
        except (IrcUnavailable, TimeoutError) as exc:
            log.warning("irc: leases not renewed: %s", getattr(exc, "message", "timeout"))
            # keep a network only while the next attempt can still end before its lease
            now, retry = time.monotonic(), min(1.0, interval)
            held = {n for n in owned if self._lease_until.get(n, 0.0) - now > retry + call_timeout}
            ok = False
        else:
            self._lease_until.update((n, started + self.cluster.lease_seconds) for n in held)
            ok = True
            for network_id in held - set(self._running):  # stopped (and released) meanwhile
                with contextlib.suppress(IrcUnavailable):
                    await self.cluster.release(network_id)
        for network_id in owned:
            if network_id not in held and network_id in self._running:
                log.warning("irc network %d: lease lost or at risk: disconnecting", network_id)
                self._stop_soon(network_id)
        return ok

    def _stop_soon(self, network_id: int) -> None:
        """Stop a network without holding up the renewal of the others."""
        task = asyncio.create_task(self._stop(network_id, ""), name=f"irc-stop-{network_id}")
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)

    async def _claim_loop(self) -> None:
        while True:
            await asyncio.sleep(self.cluster.lease_seconds / 3)
            try:
                await self._claim()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("irc: claiming networks failed")

    async def _claim(self) -> None:
        """Stop networks disabled or removed elsewhere, and take the free leases of
        enabled networks (and connect them)."""
        networks = await self.store.list_networks(kind=NetworkKind.IRC)
        enabled = {n.id: n for n in networks if n.config.get("enabled")}
        for network_id in list(self._running):
            if network_id not in enabled:
                await self._stop(network_id, "")
        for network_id in list(self._remote_state):  # an owner gone without a word
            if network_id not in enabled and network_id not in self._running:
                self._remote_state[network_id] = DISCONNECTED
        if not self.policy.enabled or self._closed:
            return
        for network_id, network in enabled.items():
            if network_id in self._running:
                continue
            try:
                if await self._acquire(network_id):
                    self._start(network)
            except IrcUnavailable as exc:
                log.warning("irc network %d not claimed: %s", network_id, exc.message)
                return

    def _on_bus_event(self, event: BusEvent) -> None:
        """A member list, from the ``irc_members`` user event its owner published
        (whole lists, in the bus's one order: the last one is the list now)."""
        cid = event.conversation_id
        if cid is None or event.scope is not Scope.USER:
            return
        if not event.payload.startswith(_MEMBERS_EVENT):
            return
        found = self._conversations.get(cid)
        if found is not None and found[0] in self._running:
            return  # ours: kept first-hand, this copy may be older
        with contextlib.suppress(ValueError, KeyError, TypeError):
            self._members[cid] = list(orjson.loads(event.payload)["members"])

    async def _forward(self, network_id: int, op: str, body: dict[str, Any]) -> Any:
        """Have the process that runs the network do ``op``; IrcNotConnected when none does."""
        holder = await self.cluster.holder(network_id)
        if holder is None or holder == self.cluster.node:
            if network_id not in self._running:  # nobody runs it: stop saying otherwise
                self._remote_state[network_id] = DISCONNECTED
            raise IrcNotConnected("this IRC network is not connected")
        return await self.cluster.request(holder, op, {**body, "network": network_id})

    def _on_notice(self, body: dict[str, Any]) -> None:
        """What another process shared: a state, members, conversations."""
        kind = body["t"]
        if kind == "state":
            self._remote_state[int(body["network"])] = dict(body["state"])
        elif kind == "conv":
            self._remember(
                Conversation(
                    id=int(body["id"]),
                    network_id=int(body["network"]),
                    kind=ConversationKind(body["kind"]),
                    name=str(body["name"]),
                    topic="",
                    visibility=Visibility(body.get("visibility", "private")),
                    created_at=int(body.get("created_at", 0)),
                    last_seq=0,
                )
            )
        elif kind == "drop":
            found = self._conversations.pop(int(body["conversation"]), None)
            if found is not None:
                self._by_name.pop((found[0], irc_fold(found[1])), None)
        elif kind == "forget":
            self._drop_network(int(body["network"]))

    async def _resync(self, *, reload: bool = True) -> None:
        """Read the shared states and member lists (at start, and after the
        subscription came back: notices may have been missed meanwhile)."""
        states, members = await self.cluster.snapshot()
        self._remote_state.update(states)
        self._members.update(members)
        if reload:
            for network in await self.store.list_networks(kind=NetworkKind.IRC):
                for conversation in await self.store.network_conversations(network.id):
                    self._remember(conversation)

    async def _known(self, conversation_id: int) -> tuple[int, str] | None:
        """``(network id, name)`` of an IRC conversation; one made by another process
        that this one has not heard of yet is read from the store."""
        found = self._conversations.get(conversation_id)
        if found is None and self.cluster.shared:
            conversation = await self.store.get_conversation(conversation_id)
            if conversation is not None and conversation.kind in (
                ConversationKind.CHANNEL,
                ConversationKind.QUERY,
            ):
                self._remember(conversation)
                found = self._conversations.get(conversation_id)
        return found
