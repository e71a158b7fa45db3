"""Interfaces the domain needs from the outside: the Store and the Bus.

``hubbub.store`` implements :class:`Store` for SQLite and PostgreSQL;
``hubbub.bus`` implements :class:`Bus` in-process and over Redis. The Hub and
the web layer only ever see these protocols.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from .events import Event
from .model import (
    ApiToken,
    AppendResult,
    Conversation,
    ConversationKind,
    ConversationView,
    Member,
    MemberRole,
    Message,
    Network,
    NetworkKind,
    NewMessage,
    Role,
    SessionInfo,
    User,
    Visibility,
)


class Store(Protocol):
    """Persistent state. Every method is a coroutine; errors are ``core.errors``.

    Names are compared case-insensitively: the store keeps a folded key
    (:func:`hubbub.core.names.fold`) beside the name as given.
    """

    async def start(self) -> None:
        """Open connections and start the group-commit writer."""

    async def close(self) -> None:
        """Flush pending appends, stop the writer and dispose the engine."""

    # users -----------------------------------------------------------------
    async def create_user(self, name: str, password_hash: str | None) -> User:
        """Create a user; the very first user becomes admin (atomically).

        Raises NameTaken when the folded name exists.
        """

    async def get_user(self, user_id: int) -> User | None: ...
    async def get_user_by_name(self, name: str) -> User | None: ...
    async def list_users(self, *, after_id: int = 0, limit: int = 100) -> list[User]: ...
    async def count_users(self) -> int: ...
    async def get_password_hash(self, user_id: int) -> str | None: ...
    async def set_password_hash(self, user_id: int, password_hash: str) -> None: ...
    async def set_role(self, user_id: int, role: Role) -> None: ...

    async def delete_user(self, user_id: int) -> None:
        """Remove the account's sessions, tokens and memberships.

        The name stays reserved (a name is an identity): the row is kept,
        marked deleted, and ``get_user``/``get_user_by_name`` return None.
        """

    # sessions and tokens -----------------------------------------------------
    async def create_session(
        self, *, secret_hash: str, user_id: int, expires_at: int, user_agent: str, address: str
    ) -> SessionInfo: ...

    async def session_user(self, secret_hash: str, now: int) -> tuple[SessionInfo, User] | None:
        """The live session and its user for a secret's hash, touching last_seen."""

    async def list_sessions(self, user_id: int) -> list[SessionInfo]: ...
    async def delete_session(self, user_id: int, session_id: str) -> bool: ...
    async def delete_session_by_hash(self, secret_hash: str) -> None: ...
    async def create_token(self, *, user_id: int, name: str, token_hash: str) -> ApiToken: ...
    async def token_user(self, token_hash: str) -> tuple[ApiToken, User] | None: ...
    async def list_tokens(self, user_id: int) -> list[ApiToken]: ...
    async def delete_token(self, user_id: int, token_id: int) -> bool: ...

    # conversations and members ----------------------------------------------
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
        """Create it (and make ``owner_id`` its owner). NameTaken if the name exists."""

    async def get_conversation(self, conversation_id: int) -> Conversation | None: ...
    async def find_conversation(self, network_id: int, name: str) -> Conversation | None: ...

    async def list_public_rooms(
        self, *, query: str = "", limit: int = 100
    ) -> list[tuple[Conversation, int]]:
        """Public rooms of the local network with their member counts, by name."""

    async def set_topic(self, conversation_id: int, topic: str) -> None: ...

    async def get_or_create_dm(self, user_a: int, user_b: int) -> tuple[Conversation, bool]:
        """The DM between two users (both members), and whether it was created now."""

    async def add_member(self, conversation_id: int, user_id: int, role: MemberRole) -> bool:
        """Add a member; False when already one."""

    async def remove_member(self, conversation_id: int, user_id: int) -> bool: ...
    async def get_member(self, conversation_id: int, user_id: int) -> Member | None: ...
    async def list_members(self, conversation_id: int) -> list[Member]: ...
    async def conversations_for(self, user_id: int) -> list[ConversationView]: ...
    async def conversation_view(
        self, conversation_id: int, user_id: int
    ) -> ConversationView | None: ...

    async def set_read(self, conversation_id: int, user_id: int, seq: int) -> int:
        """Move the read marker forward only; returns the marker now stored."""

    # messages -------------------------------------------------------------
    async def append(self, message: NewMessage) -> AppendResult:
        """Commit one message, group-committed with concurrent appends.

        ``seq`` is dense and increasing per conversation, assigned at commit.
        A ``nonce`` already used by the same sender returns the first message
        with ``duplicate=True`` and stores nothing.
        """

    async def history(
        self,
        conversation_id: int,
        *,
        before: int | None = None,
        after: int | None = None,
        limit: int = 50,
    ) -> list[Message]:
        """Messages in ascending seq: the newest ``limit`` below ``before``, or
        the oldest ``limit`` above ``after`` (``after`` wins when both are set)."""

    async def search(
        self, conversation_ids: Sequence[int], query: str, *, limit: int = 50
    ) -> list[Message]:
        """Full-text search in those conversations, newest first."""

    # networks (IRC) -----------------------------------------------------------
    async def create_network(
        self, user_id: int, *, kind: NetworkKind, name: str, config: dict[str, Any]
    ) -> Network:
        """NameTaken when the user has a network of that name."""

    async def get_network(self, network_id: int) -> Network | None: ...
    async def list_networks(
        self, user_id: int | None = None, *, kind: NetworkKind | None = None
    ) -> list[Network]: ...
    async def update_network(
        self, network_id: int, *, name: str | None = None, config: dict[str, Any] | None = None
    ) -> Network: ...
    async def delete_network(self, network_id: int) -> bool:
        """Remove it with its conversations and their messages."""

    async def network_conversation(
        self, network_id: int, owner_id: int, kind: ConversationKind, name: str
    ) -> tuple[Conversation, bool]:
        """The channel/query by IRC-folded name, created (owner its only member) when new."""

    async def find_network_conversation(
        self, network_id: int, name: str
    ) -> Conversation | None: ...
    async def network_conversations(self, network_id: int) -> list[Conversation]: ...
    async def delete_conversation(self, conversation_id: int) -> bool: ...
    async def rename_network_conversation(self, conversation_id: int, name: str) -> bool:
        """An IRC query follows its peer's new nick; False when that name is taken."""

    async def set_ext_key(self, message_id: str, ext_key: str, meta: dict[str, Any] | None) -> bool:
        """Key a stored message by its IRC echo (msgid), so a replay of it is recognised."""

    async def message_by_ext_key(self, conversation_id: int, ext_key: str) -> Message | None:
        """The message stored with that external key (IRC msgid or content hash),
        its own or one added by ``add_ext_key``."""

    async def add_ext_key(self, message_id: str, ext_key: str) -> bool:
        """One more external key of a stored message (a later part of a message
        sent to IRC in several lines); the message itself is not changed. False
        when the key is taken in that conversation or there is no such message."""

    async def message_ext_keys(self, message_id: str) -> list[str]:
        """Every external key of a message: its own first, then those added."""


class Outbound(Protocol):
    """Where a user's message goes after its commit when its conversation lives
    elsewhere (an IRC channel or query): implemented by ``hubbub.irc.service``."""

    def handles(self, conversation_id: int) -> bool:
        """Whether the conversation is one of this adapter's (no I/O)."""

    def check_send(self, conversation_id: int) -> None:
        """Raise a core error when a message could not be sent now (before the commit)."""

    async def send(self, message: Message) -> None:
        """Send a committed message out (after the commit and its publication)."""


EventListener = Callable[[Event], None]


class Bus(Protocol):
    """Fan-out of events to every process; in-process by default, Redis to scale out."""

    async def start(self) -> None: ...
    async def close(self) -> None: ...
    async def publish(self, event: Event) -> None: ...
    def add_listener(self, listener: EventListener) -> None:
        """Call ``listener`` in the event loop for every event, this process's own too."""
