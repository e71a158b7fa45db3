"""Networks (a user's IRC networks) and the conversations that belong to them.

A network's ``config`` is JSON the store does not interpret (the IRC service
keeps server, nick and its encrypted secrets there). IRC channels and queries
are found by their name folded with IRC's rfc1459 casemapping
(:func:`hubbub.core.model.irc_fold`); the network's owner is their only member.
"""

from __future__ import annotations

from typing import Any

import orjson
import sqlalchemy as sa

from hubbub.core.errors import NameTaken, NotFound
from hubbub.core.model import (
    Conversation,
    ConversationKind,
    MemberRole,
    Message,
    Network,
    NetworkKind,
    Visibility,
    irc_fold,
    now_ms,
)

from . import rows
from . import schema as t
from .base import StoreBase, translating

n = t.networks
c = t.conversations


def _network(row: Any) -> Network:
    return Network(
        id=row.id,
        user_id=row.user_id,
        kind=NetworkKind(row.kind),
        name=row.name,
        config=orjson.loads(row.config or "{}"),
    )


class NetworkQueries(StoreBase):
    async def create_network(
        self, user_id: int, *, kind: NetworkKind, name: str, config: dict[str, Any]
    ) -> Network:
        """A new network of ``user_id``; NameTaken when the user has one of that name."""
        async with self._write() as conn:
            taken = await conn.scalar(
                sa.select(n.c.id).where(n.c.user_id == user_id, n.c.name == name)
            )
            if taken is not None:
                raise NameTaken(f"you already have a network named {name!r}")
            with translating(missing="no such user"):
                network_id = await conn.scalar(
                    sa.insert(n)
                    .values(user_id=user_id, kind=kind.value, name=name, config=_dump(config))
                    .returning(n.c.id)
                )
        assert network_id is not None
        return Network(network_id, user_id, kind, name, config)

    async def get_network(self, network_id: int) -> Network | None:
        async with self._read() as conn:
            row = (await conn.execute(sa.select(n).where(n.c.id == network_id))).first()
        return None if row is None else _network(row)

    async def list_networks(
        self, user_id: int | None = None, *, kind: NetworkKind | None = None
    ) -> list[Network]:
        """The networks of one user (or of everyone with ``user_id=None``), by id."""
        stmt = sa.select(n).order_by(n.c.id)
        if user_id is not None:
            stmt = stmt.where(n.c.user_id == user_id)
        if kind is not None:
            stmt = stmt.where(n.c.kind == kind.value)
        async with self._read() as conn:
            return [_network(row) for row in await conn.execute(stmt)]

    async def update_network(
        self, network_id: int, *, name: str | None = None, config: dict[str, Any] | None = None
    ) -> Network:
        async with self._write() as conn:
            row = (await conn.execute(sa.select(n).where(n.c.id == network_id))).first()
            if row is None:
                raise NotFound("no such network")
            values: dict[str, Any] = {}
            if name is not None and name != row.name:
                taken = await conn.scalar(
                    sa.select(n.c.id).where(n.c.user_id == row.user_id, n.c.name == name)
                )
                if taken is not None:
                    raise NameTaken(f"you already have a network named {name!r}")
                values["name"] = name
            if config is not None:
                values["config"] = _dump(config)
            if values:
                await conn.execute(sa.update(n).where(n.c.id == network_id).values(**values))
        return Network(
            network_id,
            row.user_id,
            NetworkKind(row.kind),
            name if name is not None else row.name,
            config if config is not None else orjson.loads(row.config or "{}"),
        )

    async def delete_network(self, network_id: int) -> bool:
        """Remove a network with its conversations and their messages."""
        async with self._write() as conn:
            result = await conn.execute(
                sa.delete(n).where(n.c.id == network_id, n.c.kind != NetworkKind.LOCAL.value)
            )
        return bool(result.rowcount)

    async def network_conversation(
        self, network_id: int, owner_id: int, kind: ConversationKind, name: str
    ) -> tuple[Conversation, bool]:
        """The channel or query ``name`` of an IRC network (found by its IRC-folded
        name), created with ``owner_id`` as its only member; and whether it is new."""
        key = irc_fold(name)
        found = await self.find_network_conversation(network_id, name)
        if found is not None:
            return found, False
        now = now_ms()
        try:
            with translating(unique=NameTaken("exists"), missing="no such network or user"):
                async with self._write() as conn:
                    conversation_id = await conn.scalar(
                        sa.insert(c)
                        .values(
                            network_id=network_id,
                            kind=kind.value,
                            name=name,
                            name_key=key,
                            topic="",
                            visibility=Visibility.PRIVATE.value,
                            created_at=now,
                            last_seq=0,
                        )
                        .returning(c.c.id)
                    )
                    await conn.execute(
                        sa.insert(t.members).values(
                            conversation_id=conversation_id,
                            user_id=owner_id,
                            role=MemberRole.OWNER.value,
                            joined_at=now,
                            read_seq=0,
                        )
                    )
        except NameTaken:  # created by someone else a moment ago
            found = await self.find_network_conversation(network_id, name)
            if found is None:
                raise
            return found, False
        assert conversation_id is not None
        conversation = Conversation(
            conversation_id, network_id, kind, name, "", Visibility.PRIVATE, now, 0
        )
        return conversation, True

    async def find_network_conversation(self, network_id: int, name: str) -> Conversation | None:
        stmt = sa.select(*rows.CONVERSATION_COLUMNS).where(
            c.c.network_id == network_id, c.c.name_key == irc_fold(name)
        )
        async with self._read() as conn:
            row = (await conn.execute(stmt)).first()
        return None if row is None else rows.conversation(row)

    async def network_conversations(self, network_id: int) -> list[Conversation]:
        stmt = (
            sa.select(*rows.CONVERSATION_COLUMNS)
            .where(c.c.network_id == network_id)
            .order_by(c.c.id)
        )
        async with self._read() as conn:
            return [rows.conversation(row) for row in await conn.execute(stmt)]

    async def delete_conversation(self, conversation_id: int) -> bool:
        """Remove a conversation and its messages (an IRC query closed by its owner)."""
        async with self._write() as conn:
            result = await conn.execute(sa.delete(c).where(c.c.id == conversation_id))
        return bool(result.rowcount)

    async def rename_network_conversation(self, conversation_id: int, name: str) -> bool:
        """Rename an IRC conversation (a query whose peer changed nick). False when
        the network has a conversation of that (IRC-folded) name already."""
        try:
            with translating(unique=NameTaken("exists")):
                async with self._write() as conn:
                    result = await conn.execute(
                        sa.update(c)
                        .where(c.c.id == conversation_id, c.c.network_id.is_not(None))
                        .values(name=name, name_key=irc_fold(name))
                    )
        except NameTaken:
            return False
        return bool(result.rowcount)

    async def set_ext_key(self, message_id: str, ext_key: str, meta: dict[str, Any] | None) -> bool:
        """Give a stored message its IRC key (and IRC meta) once its echo came back:
        a later CHATHISTORY replay of it is then recognised. False when the key is
        taken already in that conversation, or there is no such message."""
        try:
            with translating(unique=NameTaken("taken")):
                async with self._write() as conn:
                    result = await conn.execute(
                        sa.update(t.messages)
                        .where(t.messages.c.id == message_id, t.messages.c.ext_key.is_(None))
                        .values(ext_key=ext_key, meta=rows.dump_json(meta))
                    )
        except NameTaken:
            return False
        return bool(result.rowcount)

    async def add_ext_key(self, message_id: str, ext_key: str) -> bool:
        """One more key of a stored message (``message_ext_keys``): the echo of a
        later part of a message sent to IRC in several lines. The message row is
        not changed. False when the key leads to a message of that conversation
        already (its own key or one added), or there is no such message."""
        m, k = t.messages, t.message_ext_keys
        try:
            with translating(unique=NameTaken("taken")):
                async with self._write() as conn:
                    conversation_id = await conn.scalar(
                        sa.select(m.c.conversation_id).where(m.c.id == message_id)
                    )
                    if conversation_id is None:
                        return False
                    taken = await conn.scalar(
                        sa.select(m.c.id).where(
                            m.c.conversation_id == conversation_id, m.c.ext_key == ext_key
                        )
                    )
                    if taken is not None:
                        return False
                    await conn.execute(
                        sa.insert(k).values(
                            conversation_id=conversation_id, ext_key=ext_key, message_id=message_id
                        )
                    )
        except NameTaken:
            return False
        return True

    async def message_by_ext_key(self, conversation_id: int, ext_key: str) -> Message | None:
        """The message with that key: its own (``messages.ext_key``) or one added
        (``add_ext_key``: a later part of a message sent in several lines)."""
        m, k = t.messages, t.message_ext_keys
        own = sa.select(*rows.MESSAGE_COLUMNS).where(
            m.c.conversation_id == conversation_id, m.c.ext_key == ext_key
        )
        added = sa.select(*rows.MESSAGE_COLUMNS).where(
            m.c.id
            == sa.select(k.c.message_id)
            .where(k.c.conversation_id == conversation_id, k.c.ext_key == ext_key)
            .scalar_subquery()
        )
        async with self._read() as conn:
            row = (await conn.execute(own)).first()
            if row is None:
                row = (await conn.execute(added)).first()
        return None if row is None else rows.message(row)

    async def message_ext_keys(self, message_id: str) -> list[str]:
        """Every external key of a message: its own first, then those added."""
        m, k = t.messages, t.message_ext_keys
        async with self._read() as conn:
            own = await conn.scalar(sa.select(m.c.ext_key).where(m.c.id == message_id))
            added = await conn.scalars(
                sa.select(k.c.ext_key).where(k.c.message_id == message_id).order_by(k.c.ext_key)
            )
            return ([own] if own else []) + list(added)


def _dump(config: dict[str, Any]) -> str:
    return orjson.dumps(config).decode()
