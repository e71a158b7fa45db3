"""The IRC conversations of :class:`~hubbub.irc.service.IrcService` and their members.

:class:`Conversations` is a mixin (under :class:`~hubbub.irc.inbound.Inbound`):
it finds or creates a network's channel and query conversations (the
network's owner is their only member, subscribed when one is made; other
processes hear of it first), keeps them by id and by folded name, loads the
anchor of each one's next ``CHATHISTORY AFTER`` from its stored messages,
and publishes a channel's member list as a user event (and to the cluster).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ..core.errors import NotFound
from ..core.events import Event as BusEvent
from ..core.events import Scope, dumps
from ..core.hub import Hub
from ..core.model import Conversation, ConversationKind, Network, irc_fold
from ..core.ports import Bus, Store
from .cluster import LocalCluster
from .errors import NotConnected
from .history import Anchor
from .running import _Running


class Conversations:
    """The conversations side of :class:`~hubbub.irc.service.IrcService` (a mixin)."""

    store: Store
    hub: Hub
    bus: Bus
    cluster: LocalCluster
    # conversation id -> (network id, name): every IRC conversation known
    _conversations: dict[int, tuple[int, str]]
    _by_name: dict[tuple[int, str], Conversation]
    _members: dict[int, list[dict[str, str]]]
    _anchors: dict[tuple[int, str], Anchor]

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
        if created and self.cluster.shared:  # before the user's sessions hear of it
            await self.cluster.notify(_conv_notice(conversation))
        if created:
            await self.hub.subscribe(network.user_id, conversation.id, 0)
        return conversation

    def _remember(self, conversation: Conversation) -> None:
        known = self._conversations.get(conversation.id)
        if known is not None and irc_fold(known[1]) != irc_fold(conversation.name):  # renamed
            stale = (known[0], irc_fold(known[1]))
            if (found := self._by_name.get(stale)) is not None and found.id == conversation.id:
                del self._by_name[stale]
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
        if self.cluster.shared:
            await self.cluster.share_members(conversation.id, members)
        if network.user_id is None:
            return
        payload = dumps(  # "type" first: other processes recognise it by its start
            {"type": "irc_members", "conversation": conversation.id, "members": members}
        )
        await self.bus.publish(
            BusEvent(Scope.USER, network.user_id, payload, conversation_id=conversation.id)
        )


def _conv_notice(conversation: Conversation) -> dict[str, Any]:
    """What other processes learn of a conversation made (or renamed) here."""
    return {
        "t": "conv",
        "id": conversation.id,
        "network": conversation.network_id,
        "kind": conversation.kind.value,
        "name": conversation.name,
        "visibility": conversation.visibility.value,
        "created_at": conversation.created_at,
    }
