"""IRC events into Hubbub: messages stored through the Hub, notes, AWAY, state.

:class:`Inbound` is a mixin of :class:`~hubbub.irc.service.IrcService`: one
consumer task per connected network turns the connection's events into
messages (``Hub.post_system`` with an ``ext_key``: commit first, a replayed
line is never stored twice) in the network's channel and query conversations
(found or made by :class:`~hubbub.irc.conversations.Conversations`, whose
member lists it keeps up to date), recognises the echo of a message the user
sent through Hubbub (stored at its commit, not again), follows a query's peer
when they change nick, keeps the joined channels in the network's config,
sets AWAY while no browser is attached, and publishes the network's state as
a user event. What it keeps of a connected network: :mod:`.running`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import re
from collections import deque
from datetime import UTC, datetime
from typing import Any

from ..core.errors import Conflict
from ..core.events import Event as BusEvent
from ..core.events import Scope, dumps
from ..core.model import ConversationKind, Message, MessageKind, Network, irc_fold
from . import history
from .connection import Connecting, ConnectionEvent, Reconnecting
from .conversations import Conversations, _conv_notice
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
from .running import MAX_PENDING_ECHOES, _Pending, _Running

log = logging.getLogger("hubbub.irc.service")

DEFAULT_AWAY = "Detached from Hubbub"  # AWAY while no browser is attached
SERVER_BUFFER_KEY = "*"  # no nick or channel can be "*": the server buffer's name
# Numerics left out of the server buffer: MOTD and topic replies (shown elsewhere).
# NAMES replies (353/366) reach here only when no channel state took them (the
# client turns those into a member list): ``/names #c`` of a channel we are not
# in, so they are stored like any reply.
_QUIET_NUMERICS = frozenset({"372", "375", "376", "332", "333", "422"})


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


class Inbound(Conversations):
    """The event side of :class:`~hubbub.irc.service.IrcService` (a mixin)."""

    _running: dict[int, _Running]
    _remote_state: dict[int, dict[str, Any]]

    def state(self, network_id: int) -> dict[str, Any]:
        raise NotImplementedError

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
                running.away = False  # a new session starts present
                await self._publish_state(network, self.state(network.id))
                self._apply_away(running)
            case Reconnecting() | Disconnected():
                running.error = event.reason
                await self._publish_state(network, self.state(network.id))
                if isinstance(event, Disconnected):
                    await self._server_note(running, f"disconnected: {event.reason}")
                await self._unechoed(running)
            case Error(fatal=True):
                running.error = event.message
                await self._server_note(running, f"error: {event.message}")
            case IrcMessage():
                await self._store_message(running, event)
            case History():
                for message in event.messages:
                    await self._store_message(running, message, replay=True)
                running.lost.pop(irc_fold(event.target), None)  # its gap is filled
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
                if not event.is_me:
                    await self._follow_nick(running, event.old, event.new)
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
                    params = list(event.params[1:])  # after our nick, boundaries kept
                    await self._server_note(
                        running,
                        " ".join(params),
                        meta={"numeric": event.command, "params": params},
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
        if msg.own and not replay:
            sent = self._take_pending(running.pending, msg)
            if sent is not None:  # ours, stored at its commit before it was sent
                await self._key_sent(running, sent, msg)
                return
        if not msg.conversation:
            await self._server_note(running, msg.text, sender=msg.nick, kind=_KINDS[msg.kind])
            return
        kind = ConversationKind.CHANNEL if msg.is_channel else ConversationKind.QUERY
        conversation = await self._conversation(network, kind, msg.conversation)
        key = history.keys(msg)[0]
        # A replay, or a line of ours not matched to a pending send (another
        # session's, or a part of a split message seen before): any key of a
        # stored message counts, the added ones of split messages included, which
        # the unique index of ``messages.ext_key`` alone would not catch.
        if (replay or msg.own) and await self.store.message_by_ext_key(
            conversation.id, key
        ) is not None:
            return
        if msg.own and replay:  # not stored under its key: maybe one of ours all the same
            # (a send of this session, or a part whose echo the dropped session lost)
            sent = self._take_pending(running.pending, msg) or self._take_pending(running.lost, msg)
            if sent is not None:
                await self._key_sent(running, sent, msg)
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

    def _take_pending(
        self, pending: dict[str, deque[_Pending]], msg: IrcMessage
    ) -> _Pending | None:
        """Consume the echo of a message the user sent through Hubbub (in parts when
        split). Sends older than the one matched lost their echo (a reconnect in
        between): they are dropped, so they cannot block later matches."""
        queue = pending.get(irc_fold(msg.target))
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
        """The echo of each part of a sent message keys it: the first part's key
        (msgid, else time/nick/kind/text) and server time go on the message
        (``set_ext_key``), every later part's key is added beside it
        (``add_ext_key``, ``message_ext_keys``), so a replay of any part after a
        restart leads to the one stored message. The newest part anchors the next
        ``CHATHISTORY AFTER`` of this process."""
        if not msg.conversation:
            return
        key = history.keys(msg)[0]
        if not sent.keyed:
            sent.keyed = True
            meta = {**(sent.message.meta or {}), "irc_time": _ms(msg.time)}
            if msg.msgid:
                meta["msgid"] = msg.msgid
            await self.store.set_ext_key(sent.message.id, key, meta)
        elif not await self.store.add_ext_key(sent.message.id, key):
            log.warning(
                "irc network %d: key %r of a part of message %s is taken",
                running.network.id,
                key,
                sent.message.id,
            )
        self._anchors[(running.network.id, irc_fold(msg.conversation))] = Anchor(
            msg.msgid, msg.time
        )

    # -- away while no browser is attached -----------------------------------------

    def _attached(self, user_id: int) -> bool:
        raise NotImplementedError

    def _apply_away(self, running: _Running) -> None:
        """AWAY when the network's owner has no browser attached, back when one is
        (the network's ``auto_away``, default on). Only an away we set is undone."""
        user_id = running.network.user_id
        if user_id is None:
            return
        wanted = bool(running.network.config.get("auto_away", True)) and not self._attached(user_id)
        if wanted == running.away:
            return
        text = str(running.network.config.get("away_message") or DEFAULT_AWAY)
        try:
            if wanted:
                running.conn.client.send_line("AWAY", [text])
            else:
                running.conn.client.send_line("AWAY", [])
            running.conn.flush()
        except (NotConnected, SendQueueFull):
            return  # a later registration or presence change tries again
        running.away = wanted

    async def _unechoed(self, running: _Running) -> None:
        """The connection was lost while sent messages awaited their echo
        (echo-message): they may never have left the send queue. Each gets a
        "maybe not sent" note; no echo of the old session comes any more."""
        lost = [sent.message for queue in running.pending.values() for sent in queue]
        for target, queue in running.pending.items():  # a replay may show them sent
            running.lost.setdefault(target, deque(maxlen=MAX_PENDING_ECHOES)).extend(queue)
        running.pending.clear()
        for message in lost:
            await self._note_unsent(
                message,
                "connection_lost",
                "the connection was lost before the server echoed it",
                maybe=True,
            )

    async def _note_unsent(
        self, message: Message, code: str, reason: str, *, maybe: bool = False
    ) -> None:
        """A ``system`` note, in the message's conversation, that it did not reach
        IRC (``maybe``: may not have): ``meta.not_sent`` is its seq. Once per message."""
        meta: dict[str, Any] = {"not_sent": message.seq, "reason": code}
        if maybe:
            meta["maybe"] = True
        text = f"{'maybe ' if maybe else ''}not sent to IRC: {reason} (message {message.seq})"
        try:
            await self.hub.post_system(
                message.conversation_id, text, meta=meta, ext_key=f"not-sent:{message.id}"
            )
        except Conflict:
            pass  # noted already
        except Exception:  # the sender still hears of it (the send's error)
            log.exception("irc: note of an unsent message %s not stored", message.id)

    async def _follow_nick(self, running: _Running, old: str, new: str) -> None:
        """The peer of a query changed nick: the query follows (renamed, with the
        nick event in it) unless a conversation for the new nick exists already;
        then the nick event goes in both, and they stay apart."""
        network = running.network
        query = self._by_name.get((network.id, irc_fold(old)))
        if query is None or query.kind is not ConversationKind.QUERY:
            return
        if irc_fold(old) == SERVER_BUFFER_KEY or irc_fold(new) == SERVER_BUFFER_KEY:
            return
        meta = {"event": "nick", "old": old, "new": new}
        other = self._by_name.get((network.id, irc_fold(new)))
        if other is None or other.id == query.id:
            if await self.store.rename_network_conversation(query.id, new):
                renamed = dataclasses.replace(query, name=new)
                self._remember(renamed)
                key = (network.id, irc_fold(old))
                if (anchor := self._anchors.pop(key, None)) is not None:
                    self._anchors[(network.id, irc_fold(new))] = anchor
                if (pending := running.pending.pop(irc_fold(old), None)) is not None:
                    running.pending[irc_fold(new)] = pending
                if (lost := running.lost.pop(irc_fold(old), None)) is not None:
                    running.lost[irc_fold(new)] = lost
                if self.cluster.shared:  # sends through other processes go to the new nick
                    await self.cluster.notify(_conv_notice(renamed))
                stored = await self.hub.post_system(
                    query.id, new, kind=MessageKind.EVENT, sender=old, meta=meta
                )
                if network.user_id is not None:  # the clients' view gets the new name
                    await self.hub.subscribe(network.user_id, query.id, stored.seq - 1)
                return
            other = await self.store.find_network_conversation(network.id, new)
            if other is None:
                return
            self._remember(other)
        for conversation in (query, other):
            await self.hub.post_system(
                conversation.id, new, kind=MessageKind.EVENT, sender=old, meta=meta
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

    # -- the network's state ---------------------------------------------------------

    async def _publish_state(self, network: Network, state: dict[str, Any]) -> None:
        if self.cluster.shared:
            self._remote_state[network.id] = state
            await self.cluster.share_state(network.id, state)
        if network.user_id is None:
            return
        payload = dumps(
            {"type": "network", "network": {"id": network.id, "name": network.name, **state}}
        )
        await self.bus.publish(BusEvent(Scope.USER, network.user_id, payload))

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
