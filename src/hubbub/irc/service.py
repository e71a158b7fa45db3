"""Per-user IRC networks inside Hubbub: one :class:`Connection` per connected network.

The :class:`IrcService` is built by the composition root (``hubbub.app``):

- ``start()`` connects every network whose config says ``enabled`` (Hubbub
  restarted: networks come back by themselves and rejoin their channels);
  ``close()`` QUITs them all;
- its events side (:mod:`.inbound`) turns IRC events into messages, creates
  conversations and publishes member lists and the network's state;
- it is the Hub's :class:`~hubbub.core.ports.Outbound`: a user's message in an
  IRC conversation is committed, published, then sent; its echo (or the
  client's own copy without echo-message) is recognised and not stored again;
- :meth:`IrcService.command` runs a composer command (``/join`` …, parsed in
  :mod:`.commands`);
- scale-out (:mod:`.cluster`): with several processes on one Redis, each
  network is connected by the one process holding its lease. Every process
  claims free leases of enabled networks at start and then every third of
  ``irc_lease_seconds`` (and renews its own); the others forward sends,
  commands, stop/reload/forget to the owner and answer reads from the state
  and member lists the owner shares (claim rounds and shared caches:
  :mod:`.scaleout`). One process alone (no Redis) has a
  :class:`~.cluster.LocalCluster`: no lease, no forwarding, as before.

What admins allow and the errors are in :mod:`.policy`. Secrets live sealed
in the network's config (:mod:`.secrets`) and are opened only to build a
:class:`NetworkConfig`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from typing import Any

import orjson

from ..core.errors import HubbubError, InvalidInput, NotFound
from ..core.events import Event as BusEvent
from ..core.events import Scope
from ..core.hub import Hub
from ..core.model import (
    Conversation,
    ConversationKind,
    Message,
    MessageKind,
    Network,
    NetworkKind,
    irc_fold,
)
from ..core.ports import Bus, Store
from . import certs
from .cluster import LocalCluster
from .commands import parse, send_command, word
from .config import ClientConfig, Sasl, SaslMechanism
from .connection import Connection as IrcConnection
from .connection import ConnState, NetworkConfig
from .errors import NotConnected, SendQueueFull
from .history import Anchor
from .inbound import SERVER_BUFFER_KEY, log, mentions
from .policy import (
    IrcDisabled,
    IrcNotConnected,
    IrcPolicy,
    IrcSendQueueFull,
    IrcUnavailable,
    ServerNotAllowed,
    TooManyNetworks,
    UnknownCommand,
)
from .running import MAX_PENDING_ECHOES, _Pending, _Running
from .scaleout import DISCONNECTED, ScaleOut
from .secrets import SecretBox

__all__ = [
    "IrcDisabled",
    "IrcNotConnected",
    "IrcPolicy",
    "IrcSendQueueFull",
    "IrcService",
    "IrcUnavailable",
    "ServerNotAllowed",
    "TooManyNetworks",
    "UnknownCommand",
    "mentions",
]

SECRET_FIELDS = ("password", "sasl_password")
_PRESENCE_EVENT = b'{"type":"presence",'  # how Hub._publish_presence begins its payload


class IrcService(ScaleOut):
    def __init__(
        self,
        store: Store,
        hub: Hub,
        bus: Bus,
        box: SecretBox,
        policy: IrcPolicy,
        cluster: LocalCluster | None = None,
    ) -> None:
        self.store = store
        self.hub = hub
        self.bus = bus
        self.box = box
        self.policy = policy
        self.cluster = cluster or LocalCluster()
        # scale-out: the state of networks other processes own, as they shared it
        self._remote_state: dict[int, dict[str, Any]] = {}
        # scale-out: until when (monotonic) our lease of each network we run is sure
        self._lease_until: dict[int, float] = {}
        self._claimer: asyncio.Task[None] | None = None
        self._stopping: set[asyncio.Task[None]] = set()
        self._running: dict[int, _Running] = {}
        # conversation id -> (network id, name): every IRC conversation known
        self._conversations: dict[int, tuple[int, str]] = {}
        self._by_name: dict[tuple[int, str], Conversation] = {}
        self._members: dict[int, list[dict[str, str]]] = {}
        self._anchors: dict[tuple[int, str], Anchor] = {}
        self._closed = False
        if self.cluster.shared:  # member lists of networks other processes run
            bus.add_listener(self._on_bus_event)
        bus.add_listener(self._on_presence)

    # -- away while no browser is attached (Inbound._apply_away) ------------------

    def _on_presence(self, event: BusEvent) -> None:
        """A user's presence changed (``Hub`` publishes it after its grace period):
        networks of theirs this process runs go away or come back."""
        if event.scope is not Scope.ALL or not event.payload.startswith(_PRESENCE_EVENT):
            return
        try:
            user_id = int(orjson.loads(event.payload)["user_id"])
        except (ValueError, KeyError, TypeError):
            return
        for running in list(self._running.values()):
            if running.network.user_id == user_id:
                self._apply_away(running)

    def _attached(self, user_id: int) -> bool:
        """Whether the user has a browser attached, in any process: the Hub's
        presence is global (core/presence.py; its bus listener was added before
        ours, so it has taken in the event that woke us)."""
        return self.hub.is_online(user_id)

    # -- lifecycle ------------------------------------------------------------

    async def start(self) -> None:
        networks = await self.store.list_networks(kind=NetworkKind.IRC)
        for network in networks:
            for conversation in await self.store.network_conversations(network.id):
                self._remember(conversation)
                await self._load_anchor(conversation)
        if not self.policy.enabled:
            return
        if self.cluster.shared:
            await self.cluster.start(self._serve_request, self._on_notice, self._resync)
            await self._resync()  # again, now subscribed: nothing created meanwhile is missed
            await self._claim()
            self._claimer = asyncio.create_task(self._lease_loops(), name="irc-leases")
            return
        for network in networks:
            if network.config.get("enabled"):
                try:
                    await self.connect(network.id)
                except HubbubError as exc:
                    log.warning("irc network %d not started: %s", network.id, exc.message)

    async def close(self) -> None:
        """QUIT every network this process runs, release their leases."""
        self._closed = True
        if self._claimer is not None:
            self._claimer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._claimer
        await asyncio.gather(
            *(
                self._stop(network_id, "Hubbub is shutting down")
                for network_id in list(self._running)
            ),
            *self._stopping,
            return_exceptions=True,
        )
        await self.cluster.close()

    # -- networks ---------------------------------------------------------------

    def state(self, network_id: int) -> dict[str, Any]:
        running = self._running.get(network_id)
        if running is None:
            return self._remote_state.get(network_id, DISCONNECTED)
        return {
            "state": running.conn.state.value,
            "nick": running.nick or None,
            "error": running.error or running.conn.last_error,
        }

    def running_count(self) -> int:
        """How many networks this process runs (the ``hubbub_irc_networks_running`` gauge)."""
        return len(self._running)

    def runs(self, network_id: int) -> bool:
        """Whether this process runs the network's connection (scale-out: holds its lease)."""
        return network_id in self._running

    async def connect(self, network_id: int, *, ours: bool = False) -> None:
        """Start (or keep) the network's connection and remember it as enabled."""
        network = await self._network(network_id)
        host, port = str(network.config.get("host", "")), int(network.config.get("port", 6697))
        self.policy.check_server(host, port)  # addresses: checked by the connection itself
        if not network.config.get("enabled"):
            network = await self.store.update_network(
                network.id, config={**network.config, "enabled": True}
            )
        if network_id in self._running or self._closed:
            return
        if self.cluster.shared and not await self._acquire(network_id, ours=ours):
            return  # another process holds it, connected
        self._start(network)

    def _start(self, network: Network) -> None:
        if network.id in self._running or self._closed:
            return
        nid = network_id = network.id

        def anchor_for(target: str) -> Anchor | None:
            return self._anchors.get((nid, irc_fold(target)))

        conn = IrcConnection(self.network_config(network), anchor_for=anchor_for)
        running = _Running(network, conn)
        self._running[network_id] = running
        running.task = asyncio.create_task(self._consume(running), name=f"irc-net-{network_id}")
        conn.start()

    async def disconnect(self, network_id: int, *, remember: bool = True) -> None:
        network = await self._network(network_id)
        if remember and network.config.get("enabled"):
            await self.store.update_network(network.id, config={**network.config, "enabled": False})
        if network_id in self._running or not self.cluster.shared:
            await self._stop(network_id, "")
        else:  # the owner also sees "enabled" off at its next claim round
            with contextlib.suppress(IrcNotConnected, IrcUnavailable):
                await self._forward(network_id, "stop", {})

    async def reload(self, network_id: int, *, forwarded: bool = False) -> None:
        """After an edit: a connected network reconnects with its new config."""
        if network_id in self._running:
            await self._stop(network_id, "reconfiguring", release=False)
            await self.connect(network_id, ours=True)
        elif self.cluster.shared and not forwarded:
            with contextlib.suppress(IrcNotConnected):
                await self._forward(network_id, "reload", {})

    async def forget(self, network_id: int, *, forwarded: bool = False) -> None:
        """Before a network is deleted: stop it and drop what is known of it."""
        if self.cluster.shared and not forwarded and network_id not in self._running:
            with contextlib.suppress(IrcNotConnected, IrcUnavailable):
                await self._forward(network_id, "forget", {})
        await self._stop(network_id, "")
        dropped = self._drop_network(network_id)
        if self.cluster.shared and not forwarded:
            await self.cluster.forget_shared(network_id, dropped)

    def _drop_network(self, network_id: int) -> list[int]:
        dropped = [cid for cid, (nid, _) in self._conversations.items() if nid == network_id]
        for cid in dropped:
            del self._conversations[cid]
            self._members.pop(cid, None)
        self._by_name = {k: v for k, v in self._by_name.items() if k[0] != network_id}
        self._remote_state.pop(network_id, None)
        return dropped

    async def _stop(self, network_id: int, reason: str, *, release: bool = True) -> None:
        running = self._running.pop(network_id, None)
        if running is None:
            return
        self._lease_until.pop(network_id, None)
        if self.cluster.shared:  # what the consumer may still publish while it stops
            self._remote_state[network_id] = DISCONNECTED
        await running.conn.stop(reason)
        if running.task is not None:
            running.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running.task
        await self._publish_state(running.network, DISCONNECTED)
        if release and self.cluster.shared:
            try:
                await self.cluster.release(network_id)
            except IrcUnavailable as exc:  # it expires by itself
                log.warning("irc network %d: lease not released: %s", network_id, exc.message)

    def network_config(self, network: Network) -> NetworkConfig:
        cfg = network.config
        secrets = self.box.open(str(cfg.get("secrets", "")), network.id)
        sasl = None
        mechanism = str(cfg.get("sasl_mechanism") or "")
        if mechanism:
            sasl = Sasl(
                mechanism=SaslMechanism(mechanism),
                username=str(cfg.get("sasl_username") or cfg.get("nick", "")),
                password=secrets.get("sasl_password", ""),
            )
        joined = [*cfg.get("autojoin", []), *cfg.get("channels", [])]
        channels = tuple(dict.fromkeys(joined))
        client_cert, client_key = certs.network_files(cfg, secrets)  # SASL EXTERNAL / CertFP
        return NetworkConfig(
            host=str(cfg["host"]),
            port=int(cfg.get("port", 6697)),
            tls=bool(cfg.get("tls", True)),
            accept_self_signed=bool(cfg.get("accept_self_signed", False)),
            tls_fingerprint=cfg.get("tls_fingerprint") or None,
            client_cert=client_cert,
            client_key=client_key,
            channels=channels,
            connect_commands=tuple(cfg.get("connect_commands", [])),
            allow_private_addresses=self.policy.private_allowed(
                str(cfg["host"]), int(cfg.get("port", 6697))
            ),
            client=ClientConfig(
                nick=str(cfg["nick"]),
                alt_nick=str(cfg.get("alt_nick", "")),
                username=str(cfg.get("username", "")),
                realname=str(cfg.get("realname", "")),
                password=secrets.get("password", ""),
                sasl=sasl,
            ),
        )

    # -- the Hub's outbound port -----------------------------------------------

    def handles(self, conversation_id: int) -> bool:
        return conversation_id in self._conversations

    def check_send(self, conversation_id: int) -> None:
        network_id, name = self._conversations[conversation_id]
        running = self._running.get(network_id)
        if running is not None:
            connected = running.conn.state is ConnState.CONNECTED
        else:  # owned by another process (scale-out) or not connected at all
            connected = self.state(network_id)["state"] == ConnState.CONNECTED.value
        if not connected:
            raise IrcNotConnected("this IRC network is not connected")
        if irc_fold(name) == SERVER_BUFFER_KEY:
            raise InvalidInput("the server buffer takes commands, not messages")

    async def send(self, message: Message) -> None:
        """Write a committed message to IRC. When it cannot be (the network went
        down since ``check_send``, the send queue is full, the owning process did
        not answer), a ``system`` note in the same conversation says so, naming the
        message's seq (``meta.not_sent``), and the error is raised as before."""
        try:
            await self._send(message)
        except (IrcNotConnected, IrcSendQueueFull, IrcUnavailable) as exc:
            await self._not_sent(message, exc)
            raise

    async def _not_sent(self, message: Message, exc: HubbubError) -> None:
        reason = {
            "irc_not_connected": "the network is not connected",
            "irc_send_queue_full": "the IRC send queue is full",
            "irc_unavailable": "the process connected to this network did not answer",
        }.get(exc.code, exc.message)
        # irc_unavailable: the owner may have sent it, its answer lost
        await self._note_unsent(message, exc.code, reason, maybe=isinstance(exc, IrcUnavailable))

    async def _send(self, message: Message) -> None:
        network_id, name = self._conversations[message.conversation_id]
        running = self._running.get(network_id)
        if running is None and self.cluster.shared:
            body = {"network": network_id, "name": name, "message": message.to_json()}
            try:
                await self._forward(network_id, "send", body)
            except IrcUnavailable as exc:
                raise IrcUnavailable(f"stored, but maybe not sent: {exc.message}") from exc
            except IrcNotConnected as exc:
                raise IrcNotConnected(f"stored, but not sent: {exc.message}") from exc
            return
        if running is None:
            raise IrcNotConnected("this IRC network is not connected")
        self._send_on(running, name, message)

    def _send_on(self, running: _Running, name: str, message: Message) -> None:
        queue = running.pending.setdefault(irc_fold(name), deque(maxlen=MAX_PENDING_ECHOES))
        queue.append(_Pending(message.kind, message.text, message))
        try:
            if message.kind is MessageKind.ACTION:
                running.conn.action(name, message.text)
            elif message.kind is MessageKind.NOTICE:
                running.conn.notice(name, message.text)
            else:
                running.conn.privmsg(name, message.text)
        except NotConnected as exc:
            queue.pop()
            raise IrcNotConnected(f"stored, but not sent: {exc}") from exc
        except SendQueueFull as exc:
            queue.pop()
            raise IrcSendQueueFull("stored, but not sent: the IRC send queue is full") from exc

    # -- commands ------------------------------------------------------------------

    async def command(
        self,
        network_id: int,
        text: str,
        conversation_id: int | None = None,
        *,
        forwarded: bool = False,
    ) -> dict[str, Any]:
        """Run a composer command (``/join #c``); returns what it did. Scale-out: a
        command for a network another process runs is run there."""
        verb, rest = parse(text)
        network = await self._network(network_id)
        here: str | None = None
        if conversation_id is not None:
            found = await self._known(conversation_id)
            if found is None or found[0] != network_id:
                raise NotFound("no such conversation on this network")
            here = None if irc_fold(found[1]) == SERVER_BUFFER_KEY else found[1]
        if verb == "connect":
            await self.connect(network_id)
            return {"done": "connect"}
        if verb == "disconnect":
            await self.disconnect(network_id)
            return {"done": "disconnect"}
        if self.cluster.shared and not forwarded and network_id not in self._running:
            body = {"network": network_id, "text": text, "conversation": conversation_id}
            with contextlib.suppress(IrcNotConnected):  # nobody runs it: done here
                result: dict[str, Any] = await self._forward(network_id, "command", body)
                if isinstance(result.get("conversation"), int):
                    await self._known(result["conversation"])  # /query made it there
                return result
        if verb == "query":
            nick = word(rest, "a nick")
            conversation = await self._conversation(network, ConversationKind.QUERY, nick)
            return {"done": "query", "conversation": conversation.id}
        if verb == "close":
            target = word(rest, "a conversation") if rest else here
            if target is None:
                raise InvalidInput("/close needs a channel or nick")
            return await self._close(network, target)
        running = self._running.get(network_id)
        if running is None:
            raise IrcNotConnected("this IRC network is not connected")
        send_command(running.conn, verb, rest, here)
        if verb == "nick":
            nick = word(rest, "a nick")
            await self.store.update_network(network_id, config={**network.config, "nick": nick})
        return {"done": verb}

    async def _close(self, network: Network, target: str) -> dict[str, Any]:
        conversation = await self.store.find_network_conversation(network.id, target)
        if conversation is None:
            raise NotFound(f"no conversation {target!r} on this network")
        running = self._running.get(network.id)
        if conversation.kind is ConversationKind.CHANNEL and running is not None:
            with contextlib.suppress(NotConnected):
                running.conn.part(conversation.name)
        await self.store.delete_conversation(conversation.id)
        self._conversations.pop(conversation.id, None)
        self._by_name.pop((network.id, irc_fold(conversation.name)), None)
        if self.cluster.shared:
            await self.cluster.notify({"t": "drop", "conversation": conversation.id})
        if network.user_id is not None:
            await self.hub.unsubscribe(network.user_id, conversation.id)
        return {"done": "close", "conversation": conversation.id}

    # -- scale-out: requests forwarded to this process (the rest: .scaleout) ------

    async def _serve_request(self, body: dict[str, Any]) -> Any:
        """A request forwarded by another process (we hold the network's lease)."""
        op, network_id = body["op"], int(body["network"])
        if op == "send":
            running = self._running.get(network_id)
            if running is None:
                raise IrcNotConnected("this IRC network is not connected")
            data = body["message"]
            message = Message(
                id=str(data["id"]),
                conversation_id=int(data["conversation"]),
                seq=int(data["seq"]),
                ts=int(data["ts"]),
                sender_id=data.get("sender_id"),
                sender=str(data.get("sender", "")),
                kind=MessageKind(data["kind"]),
                text=str(data["text"]),
                meta=data.get("meta"),
            )
            # our own name of it: a query renamed here (its peer's nick) wins
            known = self._conversations.get(message.conversation_id)
            self._send_on(running, known[1] if known else str(body["name"]), message)
            return None
        if op == "command":
            return await self.command(
                network_id, str(body["text"]), body.get("conversation"), forwarded=True
            )
        if op == "stop":
            await self._stop(network_id, "")
        elif op == "reload":
            await self.reload(network_id, forwarded=True)
        elif op == "forget":
            await self.forget(network_id, forwarded=True)
        return None

    # -- internals ------------------------------------------------------------------

    async def _network(self, network_id: int) -> Network:
        network = await self.store.get_network(network_id)
        if network is None or network.kind is not NetworkKind.IRC:
            raise NotFound("no such network")
        return network
