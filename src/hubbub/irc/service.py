"""Per-user IRC networks inside Hubbub: one :class:`Connection` per connected network.

The :class:`IrcService` is built by the composition root (``hubbub.app``):

- ``start()`` connects every network whose config says ``enabled`` (Hubbub
  restarted: networks come back by themselves and rejoin their channels);
  ``close()`` QUITs them all;
- one consumer task per network turns IRC events into messages through the
  Hub (``post_system`` with an ``ext_key``: commit first, a replayed line is
  never stored twice), creates channel and query conversations (the network's
  owner is their only member), and publishes the member lists and the
  network's state as user events;
- it is the Hub's :class:`~hubbub.core.ports.Outbound`: a user's message in an
  IRC conversation is committed, published, then sent; its echo (or the
  client's own copy without echo-message) is recognised and not stored again;
- :meth:`IrcService.command` runs a composer command (``/join`` …).

Secrets live sealed in the network's config (:mod:`.secrets`) and are opened
only to build a :class:`NetworkConfig`.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import logging
import re
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..core.errors import Conflict, Forbidden, HubbubError, InvalidInput, NotFound
from ..core.events import Event as BusEvent
from ..core.events import Scope, dumps
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
from . import addresses, history
from .config import ClientConfig, Sasl, SaslMechanism
from .connection import Connecting, ConnectionEvent, ConnState, NetworkConfig, Reconnecting
from .connection import Connection as IrcConnection
from .errors import NotConnected, SendQueueFull
from .events import (
    Disconnected,
    Error,
    History,
    Invite,
    Join,
    Kick,
    LabeledResponse,
    Mode,
    Names,
    Nick,
    NickInUse,
    Numeric,
    Part,
    Quit,
    Registered,
    SaslResult,
    Topic,
)
from .events import Message as IrcMessage
from .events import MessageKind as IrcKind
from .history import Anchor
from .secrets import SecretBox

log = logging.getLogger("hubbub.irc.service")

SECRET_FIELDS = ("password", "sasl_password")
MAX_PENDING_ECHOES = 100
RESOLVE_TIMEOUT = 5.0  # seconds, for the address check of a network being saved
SERVER_BUFFER_KEY = "*"  # no nick or channel can be "*": the server buffer's name
# Numerics left out of the server buffer: MOTD, NAMES and topic replies (shown elsewhere).
_QUIET_NUMERICS = frozenset({"372", "375", "376", "353", "366", "332", "333", "422"})


class IrcDisabled(Forbidden):
    code = "irc_disabled"


class ServerNotAllowed(Forbidden):
    code = "irc_server_not_allowed"


class TooManyNetworks(Forbidden):
    code = "irc_too_many_networks"


class IrcNotConnected(Conflict):
    code = "irc_not_connected"


class IrcSendQueueFull(HubbubError):
    code = "irc_send_queue_full"
    status = 503


class UnknownCommand(InvalidInput):
    code = "irc_unknown_command"


@dataclass(frozen=True, slots=True)
class IrcPolicy:
    """What admins allow (settings ``irc_*``)."""

    enabled: bool = True
    allowed_servers: tuple[str, ...] = ()
    max_networks: int = 5
    default_network: str = ""
    #: Loopback, private, link-local … addresses for any server (else only listed ones).
    allow_private_addresses: bool = False

    def check_server(self, host: str, port: int) -> None:
        if not self.enabled:
            raise IrcDisabled("IRC is switched off on this server")
        if not self.allowed_servers or self.listed(host, port):
            return
        raise ServerNotAllowed(f"connecting to {host.lower()}:{port} is not allowed on this server")

    def listed(self, host: str, port: int) -> bool:
        """Whether an entry of ``allowed_servers`` names this server."""
        host = host.lower()
        for entry in self.allowed_servers:
            pattern, _, want_port = entry.lower().partition(":")
            if fnmatch.fnmatchcase(host, pattern) and (not want_port or want_port == str(port)):
                return True
        return False

    def private_allowed(self, host: str, port: int) -> bool:
        """Whether this server may be at a loopback, private, link-local … address."""
        return self.allow_private_addresses or self.listed(host, port)

    async def check_address(self, host: str, port: int) -> None:
        """Refuse a server that is, or now resolves to, a non-public address (unless
        allowed). A name that does not resolve passes: the connection checks again
        every time it connects, and connects only to an address it checked."""
        if self.private_allowed(host, port):
            return
        try:
            async with asyncio.timeout(RESOLVE_TIMEOUT):
                await addresses.resolve(host, port, allow_private=False)
        except addresses.AddressNotAllowed as exc:
            raise ServerNotAllowed(str(exc)) from exc
        except (OSError, TimeoutError, UnicodeError):
            return

    def default_server(self) -> tuple[str, int] | None:
        if not self.default_network:
            return None
        host, _, port = self.default_network.rpartition(":")
        if host and port.isdigit():
            return host, int(port)
        return self.default_network, 6697


@dataclass
class _Pending:
    kind: MessageKind
    text: str
    message: Message
    keyed: bool = False


@dataclass
class _Running:
    network: Network
    conn: IrcConnection
    task: asyncio.Task[None] | None = None
    nick: str = ""
    error: str | None = None
    # folded target -> user messages committed and sent, whose echo is awaited
    pending: dict[str, deque[_Pending]] = field(default_factory=dict)


def mentions(text: str, nick: str, words: list[str]) -> bool:
    """Whether ``text`` names ``nick`` or a highlight word, as a whole word."""
    for word in [nick, *words]:
        if word and re.search(
            r"(?<![\w\[\]\\`^{}|-])" + re.escape(word) + r"(?![\w\[\]\\`^{}|-])",
            text,
            re.IGNORECASE,
        ):
            return True
    return False


def _ms(t: datetime) -> int:
    return int(t.astimezone(UTC).timestamp() * 1000)


class IrcService:
    def __init__(self, store: Store, hub: Hub, bus: Bus, box: SecretBox, policy: IrcPolicy) -> None:
        self.store = store
        self.hub = hub
        self.bus = bus
        self.box = box
        self.policy = policy
        self._running: dict[int, _Running] = {}
        # conversation id -> (network id, name): every IRC conversation known
        self._conversations: dict[int, tuple[int, str]] = {}
        self._by_name: dict[tuple[int, str], Conversation] = {}
        self._members: dict[int, list[dict[str, str]]] = {}
        self._anchors: dict[tuple[int, str], Anchor] = {}
        self._closed = False

    # -- lifecycle ------------------------------------------------------------

    async def start(self) -> None:
        networks = await self.store.list_networks(kind=NetworkKind.IRC)
        for network in networks:
            for conversation in await self.store.network_conversations(network.id):
                self._remember(conversation)
                await self._load_anchor(conversation)
        if not self.policy.enabled:
            return
        for network in networks:
            if network.config.get("enabled"):
                try:
                    await self.connect(network.id)
                except HubbubError as exc:
                    log.warning("irc network %d not started: %s", network.id, exc.message)

    async def close(self) -> None:
        self._closed = True
        await asyncio.gather(
            *(
                self._stop(network_id, "Hubbub is shutting down")
                for network_id in list(self._running)
            ),
            return_exceptions=True,
        )

    # -- networks ---------------------------------------------------------------

    def state(self, network_id: int) -> dict[str, Any]:
        running = self._running.get(network_id)
        if running is None:
            return {"state": "disconnected", "nick": None, "error": None}
        return {
            "state": running.conn.state.value,
            "nick": running.nick or None,
            "error": running.error or running.conn.last_error,
        }

    async def connect(self, network_id: int) -> None:
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
        nid = network.id

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
        await self._stop(network_id, "")

    async def reload(self, network_id: int) -> None:
        """After an edit: a connected network reconnects with its new config."""
        if network_id in self._running:
            await self._stop(network_id, "reconfiguring")
            await self.connect(network_id)

    async def forget(self, network_id: int) -> None:
        """Before a network is deleted: stop it and drop what is known of it."""
        await self._stop(network_id, "")
        for cid, (nid, _) in list(self._conversations.items()):
            if nid == network_id:
                del self._conversations[cid]
                self._members.pop(cid, None)
        self._by_name = {k: v for k, v in self._by_name.items() if k[0] != network_id}

    async def _stop(self, network_id: int, reason: str) -> None:
        running = self._running.pop(network_id, None)
        if running is None:
            return
        await running.conn.stop(reason)
        if running.task is not None:
            running.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running.task
        await self._publish_state(
            running.network, {"state": "disconnected", "nick": None, "error": None}
        )

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
        return NetworkConfig(
            host=str(cfg["host"]),
            port=int(cfg.get("port", 6697)),
            tls=bool(cfg.get("tls", True)),
            accept_self_signed=bool(cfg.get("accept_self_signed", False)),
            tls_fingerprint=cfg.get("tls_fingerprint") or None,
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
        if running is None or running.conn.state is not ConnState.CONNECTED:
            raise IrcNotConnected("this IRC network is not connected")
        if irc_fold(name) == SERVER_BUFFER_KEY:
            raise InvalidInput("the server buffer takes commands, not messages")

    async def send(self, message: Message) -> None:
        network_id, name = self._conversations[message.conversation_id]
        running = self._running.get(network_id)
        if running is None:
            raise IrcNotConnected("this IRC network is not connected")
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
        self, network_id: int, text: str, conversation_id: int | None = None
    ) -> dict[str, Any]:
        """Run a composer command (``/join #c``); returns what it did."""
        text = text.strip()
        if not text.startswith("/") or any(c in text for c in "\r\n\x00"):
            raise InvalidInput("a command is one line that starts with /")
        verb, _, rest = text[1:].partition(" ")
        verb, rest = verb.lower(), rest.strip()
        network = await self._network(network_id)
        here: str | None = None
        if conversation_id is not None:
            found = self._conversations.get(conversation_id)
            if found is None or found[0] != network_id:
                raise NotFound("no such conversation on this network")
            here = None if irc_fold(found[1]) == SERVER_BUFFER_KEY else found[1]
        if verb == "connect":
            await self.connect(network_id)
            return {"done": "connect"}
        if verb == "disconnect":
            await self.disconnect(network_id)
            return {"done": "disconnect"}
        if verb == "query":
            nick = _word(rest, "a nick")
            conversation = await self._conversation(network, ConversationKind.QUERY, nick)
            return {"done": "query", "conversation": conversation.id}
        if verb == "close":
            target = _word(rest, "a conversation") if rest else here
            if target is None:
                raise InvalidInput("/close needs a channel or nick")
            return await self._close(network, target)
        running = self._running.get(network_id)
        if running is None:
            raise IrcNotConnected("this IRC network is not connected")
        conn = running.conn
        args = rest.split()
        try:
            if verb == "join":
                if not args:
                    raise InvalidInput("/join needs a channel")
                conn.client.join(args[0].split(","), args[1].split(",") if len(args) > 1 else ())
            elif verb == "part":
                target, reason = _target_and_rest(rest, here, channel=True)
                conn.part(target, reason)
            elif verb in ("msg", "notice"):
                target, body = _target_and_rest(rest, None)
                if not body:
                    raise InvalidInput(f"/{verb} needs a target and a text")
                if verb == "msg":
                    conn.privmsg(target, body)
                else:
                    conn.notice(target, body)
            elif verb == "me":
                if here is None or not rest:
                    raise InvalidInput("/me needs a text, in a channel or query")
                conn.action(here, rest)
            elif verb == "nick":
                nick = _word(rest, "a nick")
                conn.client.set_nick(nick)
                await self.store.update_network(network_id, config={**network.config, "nick": nick})
            elif verb == "topic":
                target, topic = _target_and_rest(rest, here, channel=True)
                conn.client.send_line("TOPIC", [target, topic] if topic else [target])
            elif verb in ("whois", "names", "invite", "list", "away", "mode", "kick"):
                conn.client.send_raw(_raw(verb, args, rest, here))
            elif verb == "quote":
                if not rest:
                    raise InvalidInput("/quote needs a raw IRC line")
                conn.client.send_raw(rest)
            else:
                raise UnknownCommand(f"unknown command /{verb}")
        except NotConnected as exc:
            raise IrcNotConnected(str(exc)) from exc
        except SendQueueFull as exc:
            raise IrcSendQueueFull("the IRC send queue is full") from exc
        except ValueError as exc:
            raise InvalidInput(f"not a valid IRC line: {exc}") from exc
        conn.flush()
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
        if network.user_id is not None:
            await self.hub.unsubscribe(network.user_id, conversation.id)
        return {"done": "close", "conversation": conversation.id}

    # -- events ------------------------------------------------------------------

    async def _consume(self, running: _Running) -> None:
        while True:
            event = await running.conn.next_event()
            try:
                await self._handle(running, event)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception(
                    "irc network %d: event %s not stored", running.network.id, type(event).__name__
                )

    async def _handle(self, running: _Running, event: ConnectionEvent) -> None:
        network = running.network
        match event:
            case Connecting():
                running.error = None
                await self._publish_state(network, self.state(network.id))
            case Registered():
                running.pending.clear()  # a new session: no echo of the old one comes
                running.nick = event.nick
                running.error = None
                await self._publish_state(network, self.state(network.id))
            case Reconnecting() | Disconnected():
                running.error = event.reason
                await self._publish_state(network, self.state(network.id))
                if isinstance(event, Disconnected):
                    await self._server_note(running, f"disconnected: {event.reason}")
            case Error(fatal=True):
                running.error = event.message
                await self._server_note(running, f"error: {event.message}")
            case IrcMessage():
                await self._store_message(running, event)
            case History():
                for message in event.messages:
                    await self._store_message(running, message, replay=True)
            case Join():
                if event.is_me:
                    await self._remember_channel(running, event.channel, joined=True)
                await self._event(
                    running, event.channel, MessageKind.JOIN, "", event.nick, event.msgid, {}
                )
                await self._publish_channel_members(running, event.channel)
            case Part():
                if event.is_me:
                    await self._remember_channel(running, event.channel, joined=False)
                await self._event(
                    running,
                    event.channel,
                    MessageKind.PART,
                    event.reason,
                    event.nick,
                    event.msgid,
                    {},
                )
                await self._publish_channel_members(running, event.channel)
            case Kick():
                if event.is_me:
                    await self._remember_channel(running, event.channel, joined=False)
                await self._event(
                    running,
                    event.channel,
                    MessageKind.EVENT,
                    event.reason,
                    event.by,
                    event.msgid,
                    {"event": "kick", "nick": event.nick},
                )
                await self._publish_channel_members(running, event.channel)
            case Quit():
                for channel in event.channels:
                    await self._event(
                        running,
                        channel,
                        MessageKind.EVENT,
                        event.reason,
                        event.nick,
                        event.msgid,
                        {"event": "quit"},
                    )
                    await self._publish_channel_members(running, channel)
            case Nick():
                if event.is_me:
                    running.nick = event.new
                    await self._publish_state(network, self.state(network.id))
                for channel in event.channels:
                    await self._event(
                        running,
                        channel,
                        MessageKind.EVENT,
                        event.new,
                        event.old,
                        None,
                        {"event": "nick", "old": event.old, "new": event.new},
                    )
                    await self._publish_channel_members(running, channel)
            case Topic():
                conversation = await self._conversation(
                    network, ConversationKind.CHANNEL, event.channel
                )
                await self.store.set_topic(conversation.id, event.topic)
                if event.is_change:
                    await self._event(
                        running,
                        event.channel,
                        MessageKind.TOPIC,
                        event.topic,
                        event.by or "",
                        None,
                        {},
                    )
            case Mode():
                if self._is_channel(running, event.target):
                    await self._event(
                        running,
                        event.target,
                        MessageKind.EVENT,
                        " ".join(event.modes),
                        event.by or "",
                        None,
                        {"event": "mode"},
                    )
                    await self._publish_channel_members(running, event.target)
            case Names():
                conversation = await self._conversation(
                    network, ConversationKind.CHANNEL, event.channel
                )
                members = [{"nick": m.nick, "prefixes": m.prefixes} for m in event.members]
                await self._publish_members(network, conversation, members)
            case Numeric():
                if event.command not in _QUIET_NUMERICS:
                    await self._server_note(
                        running, " ".join(event.params[1:]), meta={"numeric": event.command}
                    )
            case LabeledResponse():
                for inner in event.events:
                    await self._handle(running, inner)
            case NickInUse():
                await self._server_note(
                    running, f"nick {event.refused} refused ({event.code}); trying {event.trying}"
                )
            case SaslResult():
                await self._server_note(
                    running,
                    f"SASL {event.mechanism}: {'success' if event.success else 'failed'} {event.message}".strip(),
                )
            case Invite():
                await self._server_note(running, f"{event.nick} invites you to {event.channel}")
            case _:
                pass

    async def _store_message(
        self, running: _Running, msg: IrcMessage, *, replay: bool = False
    ) -> None:
        network = running.network
        if msg.own:
            sent = self._take_pending(running, msg)
            if sent is not None:  # ours, stored at its commit before it was sent
                await self._key_sent(running, sent, msg)
                return
        if not msg.conversation:
            await self._server_note(running, msg.text, sender=msg.nick, kind=_KINDS[msg.kind])
            return
        kind = ConversationKind.CHANNEL if msg.is_channel else ConversationKind.QUERY
        conversation = await self._conversation(network, kind, msg.conversation)
        key = history.keys(msg)[0]
        if replay and await self.store.message_by_ext_key(conversation.id, key) is not None:
            return
        meta: dict[str, Any] = {"irc_time": _ms(msg.time)}
        if msg.msgid:
            meta["msgid"] = msg.msgid
        if msg.account:
            meta["account"] = msg.account
        if not msg.own and mentions(
            msg.text, running.nick or msg.target, list(network.config.get("highlight", []))
        ):
            meta["mention"] = True
        try:
            await self.hub.post_system(
                conversation.id,
                msg.text,
                kind=_KINDS[msg.kind],
                sender=msg.nick,
                sender_id=network.user_id if msg.own else None,
                meta=meta,
                ext_key=key,
            )
        except Conflict:
            return  # stored already (a replay raced the live line)
        self._anchors[(network.id, irc_fold(msg.conversation))] = Anchor(msg.msgid, msg.time)

    def _take_pending(self, running: _Running, msg: IrcMessage) -> _Pending | None:
        """Consume the echo of a message the user sent through Hubbub (in parts when
        split). Sends older than the one matched lost their echo (a reconnect in
        between): they are dropped, so they cannot block later matches."""
        queue = running.pending.get(irc_fold(msg.target))
        if not queue:
            return None
        for index, sent in enumerate(queue):
            rest = sent.text.lstrip("\n")
            if sent.kind is _KINDS[msg.kind] and rest.startswith(msg.text):
                for _ in range(index):
                    queue.popleft()
                sent.text = rest[len(msg.text) :]
                if not sent.text.strip():
                    queue.popleft()
                return sent
        return None

    async def _key_sent(self, running: _Running, sent: _Pending, msg: IrcMessage) -> None:
        """The first echo of a sent message keys it (msgid, server time): a replay
        after a restart is then recognised, and it can anchor CHATHISTORY."""
        if sent.keyed or not msg.conversation:
            return
        sent.keyed = True
        meta = {**(sent.message.meta or {}), "irc_time": _ms(msg.time)}
        if msg.msgid:
            meta["msgid"] = msg.msgid
        await self.store.set_ext_key(sent.message.id, history.keys(msg)[0], meta)
        self._anchors[(running.network.id, irc_fold(msg.conversation))] = Anchor(
            msg.msgid, msg.time
        )

    async def _event(
        self,
        running: _Running,
        channel: str,
        kind: MessageKind,
        text: str,
        sender: str,
        msgid: str | None,
        meta: dict[str, Any],
    ) -> None:
        conversation = await self._conversation(running.network, ConversationKind.CHANNEL, channel)
        key = f"id:{msgid}" if msgid else None
        with contextlib.suppress(Conflict):  # a replayed line, stored already
            await self.hub.post_system(
                conversation.id, text, kind=kind, sender=sender, meta=meta or None, ext_key=key
            )

    async def _server_note(
        self,
        running: _Running,
        text: str,
        *,
        sender: str = "",
        kind: MessageKind = MessageKind.SYSTEM,
        meta: dict[str, Any] | None = None,
    ) -> None:
        conversation = await self._conversation(
            running.network, ConversationKind.QUERY, SERVER_BUFFER_KEY
        )
        await self.hub.post_system(
            conversation.id, text or "-", kind=kind, sender=sender, meta=meta
        )

    async def _remember_channel(self, running: _Running, channel: str, *, joined: bool) -> None:
        """Keep the joined channels in the network's config, so a restart rejoins them."""
        network = await self.store.get_network(running.network.id)
        if network is None:
            return
        channels = [
            c for c in network.config.get("channels", []) if irc_fold(c) != irc_fold(channel)
        ]
        if joined:
            channels.append(channel)
        if channels != network.config.get("channels", []):
            running.network = await self.store.update_network(
                network.id, config={**network.config, "channels": channels}
            )

    # -- conversations and members ------------------------------------------------

    async def _conversation(
        self, network: Network, kind: ConversationKind, name: str
    ) -> Conversation:
        key = (network.id, irc_fold(name))
        found = self._by_name.get(key)
        if found is not None:
            return found
        if network.user_id is None:
            raise NotFound("a network without owner")
        conversation, created = await self.store.network_conversation(
            network.id, network.user_id, kind, name
        )
        self._remember(conversation)
        if created:
            await self.hub.subscribe(network.user_id, conversation.id, 0)
        return conversation

    def _remember(self, conversation: Conversation) -> None:
        self._conversations[conversation.id] = (conversation.network_id, conversation.name)
        self._by_name[(conversation.network_id, irc_fold(conversation.name))] = conversation

    async def _load_anchor(self, conversation: Conversation) -> None:
        for message in reversed(await self.store.history(conversation.id, limit=20)):
            meta = message.meta
            if meta and "irc_time" in meta:
                when = datetime.fromtimestamp(int(meta["irc_time"]) / 1000, UTC)
                self._anchors[(conversation.network_id, irc_fold(conversation.name))] = Anchor(
                    meta.get("msgid"), when
                )
                return

    def members(self, conversation_id: int) -> list[dict[str, str]]:
        return self._members.get(conversation_id, [])

    async def _publish_channel_members(self, running: _Running, channel: str) -> None:
        try:
            client = running.conn.client
        except NotConnected:
            return
        folded = client.server.casefold(channel)
        state = client.server.channels.get(folded)
        conversation = self._by_name.get((running.network.id, irc_fold(channel)))
        if state is None or conversation is None:
            return
        order = client.server.isupport.prefix.modes
        prefixes = client.server.isupport.prefix.prefixes
        members = []
        for nick_key, user in state.users.items():
            user_state = client.server.users.get(nick_key)
            nick = user_state.nickname if user_state is not None else nick_key
            modes = sorted((m for m in user.modes if m in order), key=order.index)
            members.append(
                {"nick": nick, "prefixes": "".join(prefixes[order.index(m)] for m in modes)}
            )
        members.sort(key=lambda m: m["nick"].lower())
        await self._publish_members(running.network, conversation, members)

    async def _publish_members(
        self, network: Network, conversation: Conversation, members: list[dict[str, str]]
    ) -> None:
        self._members[conversation.id] = members
        if network.user_id is None:
            return
        payload = dumps(
            {"type": "irc_members", "conversation": conversation.id, "members": members}
        )
        await self.bus.publish(
            BusEvent(Scope.USER, network.user_id, payload, conversation_id=conversation.id)
        )

    async def _publish_state(self, network: Network, state: dict[str, Any]) -> None:
        if network.user_id is None:
            return
        payload = dumps(
            {"type": "network", "network": {"id": network.id, "name": network.name, **state}}
        )
        await self.bus.publish(BusEvent(Scope.USER, network.user_id, payload))

    # -- internals ------------------------------------------------------------------

    async def _network(self, network_id: int) -> Network:
        network = await self.store.get_network(network_id)
        if network is None or network.kind is not NetworkKind.IRC:
            raise NotFound("no such network")
        return network

    def _is_channel(self, running: _Running, target: str) -> bool:
        try:
            return bool(running.conn.client.server.is_channel(target))
        except NotConnected:
            return target[:1] in "#&+!"


_KINDS = {
    IrcKind.PRIVMSG: MessageKind.TEXT,
    IrcKind.ACTION: MessageKind.ACTION,
    IrcKind.NOTICE: MessageKind.NOTICE,
}


def _word(rest: str, what: str) -> str:
    word = rest.split()[0] if rest.split() else ""
    if not word:
        raise InvalidInput(f"the command needs {what}")
    return word


def _target_and_rest(rest: str, here: str | None, *, channel: bool = False) -> tuple[str, str]:
    first, _, tail = rest.partition(" ")
    if first and (not channel or first[:1] in "#&+!"):
        return first, tail.strip()
    if here is None:
        raise InvalidInput("the command needs a target")
    return here, rest


def _raw(verb: str, args: list[str], rest: str, here: str | None) -> str:
    if verb == "away":
        return f"AWAY :{rest}" if rest else "AWAY"
    if verb == "list":
        return "LIST " + rest if rest else "LIST"
    if verb == "kick":
        if here is not None and (not args or args[0][:1] not in "#&+!"):
            args = [here, *args]
        if len(args) < 2:
            raise InvalidInput("/kick needs a nick")
        reason = " ".join(args[2:])
        return f"KICK {args[0]} {args[1]}" + (f" :{reason}" if reason else "")
    if here is not None and (
        (verb == "names" and not args) or (verb == "mode" and (not args or args[0][:1] in "+-"))
    ):
        args = [here, *args]
    if verb == "invite" and len(args) == 1 and here is not None:
        args = [args[0], here]
    if not args:
        raise InvalidInput(f"/{verb} needs an argument")
    return verb.upper() + " " + " ".join(args)
