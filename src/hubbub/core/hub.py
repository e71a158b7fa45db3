"""The Hub: the one service every adapter talks to.

It checks who may do what, commits through the :class:`~hubbub.core.ports.Store`
and only then publishes on the :class:`~hubbub.core.ports.Bus` (commit before
ack, commit before publish: DESIGN.md, "Flow of one message"). Each event's
JSON is encoded here, once.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from .errors import Forbidden, InvalidInput, NotFound, NotMember, TooLong
from .events import Control, Event, Scope, dumps
from .model import (
    LOCAL_NETWORK_ID,
    USER_SENDABLE_KINDS,
    AppendResult,
    Conversation,
    ConversationKind,
    ConversationView,
    Member,
    MemberRole,
    Message,
    MessageKind,
    NewMessage,
    User,
    Visibility,
)
from .names import check_room_name
from .payloads import message_payload as message_payload  # encoded once when in the catch-up cache
from .ports import Bus, Outbound, Store
from .presence import Presence, PresenceRegistry
from .ratelimit import TokenBucket

MAX_NONCE = 64
_NONCE = re.compile(r"^[\x21-\x7e]{1,64}$")
MAX_HISTORY_PAGE = 200
MAX_SEARCH_QUERY = 200


def conversation_json(view: ConversationView) -> dict[str, Any]:
    """The wire form of a conversation as one member sees it."""
    c = view.conversation
    return {
        "id": c.id,
        "network": c.network_id,
        "kind": c.kind.value,
        "name": c.name,
        "topic": c.topic,
        "visibility": c.visibility.value,
        "last_seq": c.last_seq,
        "read_seq": view.read_seq,
        "unread": view.unread,
        "role": view.role.value if view.role else None,
        "peer": view.peer,
    }


class Hub:
    def __init__(
        self,
        store: Store,
        bus: Bus,
        *,
        max_message_length: int = 4000,
        max_topic_length: int = 390,
        send_limiter: TokenBucket | None = None,
        presence_grace: float = 0.0,
        presence_registry: PresenceRegistry | None = None,
    ) -> None:
        """``presence_grace``: seconds a user with no session left still counts
        as online, so a reconnect (a network blip, a reload, a server restart
        behind a balancer) sends no offline/online pair to everyone.
        ``presence_registry``: several processes, who holds whom (Redis)."""
        self.store = store
        self.bus = bus
        self.max_message_length = max_message_length
        self.max_topic_length = max_topic_length
        self.send_limiter = send_limiter or TokenBucket(rate=10.0, burst=20)
        self.presence = Presence(bus, presence_grace, presence_registry)
        # (conversation id, user id) pairs known to be members: a send checks
        # membership without a query. Leaves and removed users come back over
        # the bus (from every process), so the cache forgets them there too.
        self._members: set[tuple[int, int]] = set()
        self.max_cached_members = 200_000
        # Set by the composition root when IRC is on: user messages in IRC
        # conversations go out through it, after their commit.
        self.outbound: Outbound | None = None
        bus.add_listener(self._on_event)

    # messages ----------------------------------------------------------------
    async def post(
        self,
        user: User,
        conversation_id: int,
        text: str,
        *,
        kind: MessageKind = MessageKind.TEXT,
        nonce: str | None = None,
    ) -> AppendResult:
        """Commit a message from a user, then publish it. Idempotent per nonce."""
        if kind not in USER_SENDABLE_KINDS:
            raise InvalidInput(
                f"kind must be one of {sorted(k.value for k in USER_SENDABLE_KINDS)}"
            )
        self._check_text(text)
        if nonce is not None and not _NONCE.match(nonce):
            raise InvalidInput("nonce must be 1 to 64 printable ASCII characters")
        await self._require_member(conversation_id, user.id)
        outbound = self.outbound
        if outbound is not None and not outbound.handles(conversation_id):
            outbound = None
        if outbound is not None:
            outbound.check_send(conversation_id)
        self.send_limiter.take(user.id)
        result = await self.store.append(
            NewMessage(
                conversation_id=conversation_id,
                kind=kind,
                text=text,
                sender_id=user.id,
                sender=user.name,
                nonce=nonce,
            )
        )
        if not result.duplicate:
            await self._publish_message(result.message)
            if outbound is not None:
                await outbound.send(result.message)
        return result

    async def post_system(
        self,
        conversation_id: int,
        text: str,
        *,
        kind: MessageKind = MessageKind.SYSTEM,
        sender: str = "",
        sender_id: int | None = None,
        meta: dict[str, Any] | None = None,
        ext_key: str | None = None,
    ) -> Message:
        """Commit and publish a message the server makes (joins, topics, events,
        IRC lines: ``ext_key`` is then unique per conversation, Conflict if stored)."""
        result = await self.store.append(
            NewMessage(
                conversation_id=conversation_id,
                kind=kind,
                text=text,
                sender_id=sender_id,
                sender=sender,
                meta=meta,
                ext_key=ext_key,
            )
        )
        await self._publish_message(result.message)
        return result.message

    async def history(
        self,
        user: User,
        conversation_id: int,
        *,
        before: int | None = None,
        after: int | None = None,
        limit: int = 50,
    ) -> list[Message]:
        await self._require_reader(conversation_id, user.id)
        if limit < 1 or limit > MAX_HISTORY_PAGE:
            raise InvalidInput(f"limit must be between 1 and {MAX_HISTORY_PAGE}")
        if (before is not None and before < 0) or (after is not None and after < 0):
            raise InvalidInput("before and after are seq numbers, 0 or more")
        return await self.store.history(conversation_id, before=before, after=after, limit=limit)

    async def search(
        self, user: User, query: str, *, conversation_id: int | None = None, limit: int = 50
    ) -> list[Message]:
        query = query.strip()
        if not query:
            raise InvalidInput("the search query is empty")
        if len(query) > MAX_SEARCH_QUERY:
            raise TooLong(f"a search query is at most {MAX_SEARCH_QUERY} characters")
        if limit < 1 or limit > MAX_HISTORY_PAGE:
            raise InvalidInput(f"limit must be between 1 and {MAX_HISTORY_PAGE}")
        ids: Sequence[int]
        if conversation_id is not None:
            await self._require_member(conversation_id, user.id)
            ids = [conversation_id]
        else:
            ids = [v.conversation.id for v in await self.store.conversations_for(user.id)]
        if not ids:
            return []
        return await self.store.search(ids, query, limit=limit)

    async def mark_read(self, user: User, conversation_id: int, seq: int) -> int:
        """Move the user's read marker forward and tell their other sessions."""
        if seq < 0:
            raise InvalidInput("seq must be 0 or more")
        await self._require_member(conversation_id, user.id)
        conversation = await self._conversation(conversation_id)
        stored = await self.store.set_read(
            conversation_id, user.id, min(seq, conversation.last_seq)
        )
        payload = dumps({"type": "read", "conversation": conversation_id, "seq": stored})
        await self.bus.publish(Event(Scope.USER, user.id, payload, conversation_id=conversation_id))
        return stored

    async def typing(self, user: User, conversation_id: int) -> None:
        await self._require_member(conversation_id, user.id)
        payload = dumps({"type": "typing", "conversation": conversation_id, "user": user.name})
        await self.bus.publish(
            Event(Scope.CONVERSATION, conversation_id, payload, conversation_id=conversation_id)
        )

    # conversations ----------------------------------------------------------
    async def conversations(self, user: User) -> list[ConversationView]:
        return await self.store.conversations_for(user.id)

    async def conversation(self, user: User, conversation_id: int) -> ConversationView:
        view = await self.store.conversation_view(conversation_id, user.id)
        if view is None:
            raise NotFound("no such conversation")
        if view.role is None and view.conversation.visibility is not Visibility.PUBLIC:
            raise NotFound("no such conversation")
        return view

    async def public_rooms(
        self, *, query: str = "", limit: int = 100
    ) -> list[tuple[Conversation, int]]:
        if len(query) > MAX_SEARCH_QUERY:
            raise TooLong(f"a room filter is at most {MAX_SEARCH_QUERY} characters")
        return await self.store.list_public_rooms(
            query=query.strip(), limit=min(max(limit, 1), 500)
        )

    async def create_room(
        self, user: User, name: str, *, visibility: Visibility = Visibility.PUBLIC, topic: str = ""
    ) -> ConversationView:
        name = check_room_name(name)
        self._check_topic(topic)
        room = await self.store.create_conversation(
            network_id=LOCAL_NETWORK_ID,
            kind=ConversationKind.ROOM,
            name=name,
            visibility=visibility,
            topic=topic,
            owner_id=user.id,
        )
        joined = await self.post_system(room.id, "", kind=MessageKind.JOIN, **self._by(user))
        return await self._subscribe(user.id, room.id, joined.seq - 1)

    async def join(self, user: User, conversation_id: int) -> ConversationView:
        """Join a public room; joining one you are in already changes nothing."""
        room = await self._conversation(conversation_id)
        if room.kind is not ConversationKind.ROOM:
            raise Forbidden("only rooms can be joined")
        if await self.store.get_member(room.id, user.id) is not None:
            return await self._view(room.id, user.id)
        if room.visibility is Visibility.PRIVATE:
            raise NotFound("no such conversation")  # a private room does not exist to outsiders
        await self.store.add_member(room.id, user.id, MemberRole.MEMBER)
        joined = await self.post_system(room.id, "", kind=MessageKind.JOIN, **self._by(user))
        return await self._subscribe(user.id, room.id, joined.seq - 1)

    async def join_by_name(self, user: User, name: str) -> ConversationView:
        room = await self.store.find_conversation(LOCAL_NETWORK_ID, check_room_name(name))
        if room is None:
            raise NotFound("no such room")
        return await self.join(user, room.id)

    async def leave(self, user: User, conversation_id: int) -> None:
        room = await self._conversation(conversation_id)
        if room.kind is not ConversationKind.ROOM:
            raise Forbidden("only rooms can be left")
        await self._require_member(room.id, user.id)
        await self.post_system(room.id, "", kind=MessageKind.PART, **self._by(user))
        await self.store.remove_member(room.id, user.id)
        self._members.discard((room.id, user.id))
        payload = dumps({"type": "left", "conversation": room.id})
        await self.bus.publish(
            Event(
                Scope.USER,
                user.id,
                payload,
                conversation_id=room.id,
                control=Control.UNSUBSCRIBE,
            )
        )

    async def invite(self, user: User, conversation_id: int, invitee_name: str) -> Member:
        """Make another user a member of a room you are in (the way into a private room)."""
        room = await self._conversation(conversation_id)
        if room.kind is not ConversationKind.ROOM:
            raise Forbidden("only rooms take invitations")
        await self._require_member(room.id, user.id)
        invitee = await self.store.get_user_by_name(invitee_name)
        if invitee is None:
            raise NotFound(f"no user named {invitee_name!r}")
        if await self.store.add_member(room.id, invitee.id, MemberRole.MEMBER):
            joined = await self.post_system(
                room.id,
                "",
                kind=MessageKind.JOIN,
                meta={"invited_by": user.name},
                **self._by(invitee),
            )
            await self._subscribe(invitee.id, room.id, joined.seq - 1)
        member = await self.store.get_member(room.id, invitee.id)
        assert member is not None
        return member

    async def set_topic(self, user: User, conversation_id: int, topic: str) -> Message:
        room = await self._conversation(conversation_id)
        if room.kind is not ConversationKind.ROOM:
            raise Forbidden("only rooms have topics")
        self._check_topic(topic)
        await self._require_member(room.id, user.id)
        await self.store.set_topic(room.id, topic)
        return await self.post_system(room.id, topic, kind=MessageKind.TOPIC, **self._by(user))

    async def members(self, user: User, conversation_id: int) -> list[Member]:
        await self._require_reader(conversation_id, user.id)
        return await self.store.list_members(conversation_id)

    async def open_dm(self, user: User, other_name: str) -> ConversationView:
        other = await self.store.get_user_by_name(other_name)
        if other is None:
            raise NotFound(f"no user named {other_name!r}")
        if other.id == user.id:
            raise InvalidInput("a DM needs another user")
        dm, created = await self.store.get_or_create_dm(user.id, other.id)
        if created:
            await self._subscribe(other.id, dm.id, 0)
            return await self._subscribe(user.id, dm.id, 0)
        return await self._view(dm.id, user.id)

    # presence (core/presence.py) ----------------------------------------------
    async def connected(self, user: User) -> None:
        """A session of ``user`` opened in this process."""
        await self.presence.connected(user)

    async def disconnected(self, user: User) -> None:
        await self.presence.disconnected(user)

    async def start(self) -> None:
        """After the bus started: several processes, register and read who is online."""
        await self.presence.start()

    async def close(self) -> None:
        """Stop the grace timers (the process is going away, and its sessions
        with it) and wait for presence events being published."""
        await self.presence.close()

    def is_online(self, user_id: int) -> bool:
        """Whether the user has a session here or (several processes) in any process."""
        return self.presence.is_online(user_id)

    def online_user_ids(self) -> list[int]:
        return self.presence.online_user_ids()

    @property
    def presence_grace(self) -> float:
        return self.presence.grace

    @presence_grace.setter
    def presence_grace(self, seconds: float) -> None:
        self.presence.grace = seconds

    # internals ----------------------------------------------------------------
    @staticmethod
    def _by(user: User) -> dict[str, Any]:
        return {"sender": user.name, "sender_id": user.id}

    async def _publish_message(self, message: Message) -> None:
        payload = message_payload(message)
        await self.bus.publish(
            Event(
                Scope.CONVERSATION,
                message.conversation_id,
                payload,
                conversation_id=message.conversation_id,
                seq=message.seq,
            )
        )

    async def subscribe(
        self, user_id: int, conversation_id: int, after_seq: int = 0
    ) -> ConversationView:
        """Tell a user's sessions about a conversation made for them (an IRC channel)."""
        return await self._subscribe(user_id, conversation_id, after_seq)

    async def unsubscribe(self, user_id: int, conversation_id: int) -> None:
        """Tell a user's sessions a conversation is gone for them (an IRC query closed)."""
        self._members.discard((conversation_id, user_id))
        payload = dumps({"type": "left", "conversation": conversation_id})
        await self.bus.publish(
            Event(
                Scope.USER,
                user_id,
                payload,
                conversation_id=conversation_id,
                control=Control.UNSUBSCRIBE,
            )
        )

    async def _subscribe(
        self, user_id: int, conversation_id: int, after_seq: int
    ) -> ConversationView:
        """Tell the user's sessions to follow a conversation from ``after_seq`` on."""
        view = await self._view(conversation_id, user_id)
        payload = dumps({"type": "conversation", "conversation": conversation_json(view)})
        await self.bus.publish(
            Event(
                Scope.USER,
                user_id,
                payload,
                conversation_id=conversation_id,
                seq=after_seq,
                control=Control.SUBSCRIBE,
            )
        )
        return view

    async def _view(self, conversation_id: int, user_id: int) -> ConversationView:
        view = await self.store.conversation_view(conversation_id, user_id)
        if view is None:
            raise NotFound("no such conversation")
        return view

    async def _conversation(self, conversation_id: int) -> Conversation:
        conversation = await self.store.get_conversation(conversation_id)
        if conversation is None:
            raise NotFound("no such conversation")
        return conversation

    async def _require_member(self, conversation_id: int, user_id: int) -> None:
        key = (conversation_id, user_id)
        if key in self._members:
            return
        if await self.store.get_member(conversation_id, user_id) is None:
            raise NotMember("you are not a member of this conversation")
        if len(self._members) >= self.max_cached_members:
            self._members.clear()  # crude but bounded; it refills as people talk
        self._members.add(key)

    def _on_event(self, event: Event) -> None:
        """Forget cached memberships that a leave or a removal ended, in any process."""
        if event.scope is not Scope.USER:
            return
        if event.control is Control.UNSUBSCRIBE and event.conversation_id is not None:
            self._members.discard((event.conversation_id, event.target))
        elif event.control is Control.REVOKE:
            # A removed user's memberships went with them; a revoked session
            # changes none, but forgetting costs one query at their next send.
            self._members = {key for key in self._members if key[1] != event.target}

    async def _require_reader(self, conversation_id: int, user_id: int) -> None:
        """Members read everything; anyone may read a public room before joining it."""
        if await self.store.get_member(conversation_id, user_id) is not None:
            return
        conversation = await self.store.get_conversation(conversation_id)
        if conversation is None or conversation.visibility is not Visibility.PUBLIC:
            raise NotMember("you are not a member of this conversation")

    def _check_text(self, text: str) -> None:
        if not text.strip():
            raise InvalidInput("a message needs some text")
        if len(text) > self.max_message_length:
            raise TooLong(f"a message is at most {self.max_message_length} characters")
        if "\x00" in text:
            raise InvalidInput("a message may not contain NUL characters")

    def _check_topic(self, topic: str) -> None:
        if len(topic) > self.max_topic_length:
            raise TooLong(f"a topic is at most {self.max_topic_length} characters")
        if any(ch in topic for ch in "\x00\r\n"):
            raise InvalidInput("a topic is one line")
