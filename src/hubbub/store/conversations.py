"""Conversations (rooms, DMs, IRC channels and queries), members and read markers."""

from __future__ import annotations

import sqlite3
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from hubbub.core.errors import NameTaken, NotFound, NotMember
from hubbub.core.model import (
    LOCAL_NETWORK_ID,
    Conversation,
    ConversationKind,
    ConversationView,
    Member,
    MemberRole,
    Visibility,
    now_ms,
)
from hubbub.core.names import fold

from . import rows
from . import schema as t
from .base import Bound, StoreBase, fetch_bound, translating

c = t.conversations
m = t.members


def dm_key(user_a: int, user_b: int) -> str:
    """The name key of the DM between two users, the same whoever asks."""
    low, high = sorted((user_a, user_b))
    return f"dm:{low}:{high}"


def dm_peer_id(key: str, user_id: int) -> int | None:
    try:
        _, a, b = key.split(":")
        low, high = int(a), int(b)
    except ValueError:
        return None
    return high if low == user_id else low


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class ConversationQueries(StoreBase):
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
        now = now_ms()
        with translating(
            unique=NameTaken(f"the name {name!r} is taken"), missing="no such network or user"
        ):
            async with self._write() as conn:
                conversation_id = await conn.scalar(
                    sa.insert(c)
                    .values(
                        network_id=network_id,
                        kind=kind.value,
                        name=name,
                        name_key=fold(name),
                        topic=topic,
                        visibility=visibility.value,
                        created_at=now,
                        last_seq=0,
                    )
                    .returning(c.c.id)
                )
                assert conversation_id is not None
                if owner_id is not None:
                    await conn.execute(
                        sa.insert(m).values(
                            conversation_id=conversation_id,
                            user_id=owner_id,
                            role=MemberRole.OWNER.value,
                            joined_at=now,
                            read_seq=0,
                        )
                    )
        return Conversation(
            id=conversation_id,
            network_id=network_id,
            kind=kind,
            name=name,
            topic=topic,
            visibility=visibility,
            created_at=now,
            last_seq=0,
        )

    async def get_conversation(self, conversation_id: int) -> Conversation | None:
        async with self._read() as conn:
            return await _get(conn, c.c.id == conversation_id)

    async def find_conversation(self, network_id: int, name: str) -> Conversation | None:
        async with self._read() as conn:
            return await _get(conn, c.c.network_id == network_id, c.c.name_key == fold(name))

    async def list_public_rooms(
        self, *, query: str = "", limit: int = 100
    ) -> list[tuple[Conversation, int]]:
        """Public rooms of the local network with their member counts, by name."""
        count = (
            sa.select(sa.func.count())
            .where(m.c.conversation_id == c.c.id)
            .scalar_subquery()
            .label("member_count")
        )
        stmt = (
            sa.select(*rows.CONVERSATION_COLUMNS, count)
            .where(
                c.c.network_id == LOCAL_NETWORK_ID,
                c.c.kind == ConversationKind.ROOM.value,
                c.c.visibility == Visibility.PUBLIC.value,
            )
            .order_by(c.c.name_key)
            .limit(max(0, min(limit, 1000)))
        )
        if query.strip():
            pattern = f"%{_like_escape(fold(query.strip()))}%"
            stmt = stmt.where(c.c.name_key.like(pattern, escape="\\"))
        async with self._read() as conn:
            result = await conn.execute(stmt)
            return [(rows.conversation(row), int(row.member_count)) for row in result]

    async def set_topic(self, conversation_id: int, topic: str) -> None:
        async with self._write() as conn:
            result = await conn.execute(
                sa.update(c).where(c.c.id == conversation_id).values(topic=topic)
            )
        if result.rowcount == 0:
            raise NotFound("no such conversation", conversation_id=conversation_id)

    async def get_or_create_dm(self, user_a: int, user_b: int) -> tuple[Conversation, bool]:
        """The DM between two users (both members), and whether it was created now.

        Idempotent under concurrency, across processes too: the unique
        (network, name_key) decides which insert wins; the other reads its row.
        """
        key = dm_key(user_a, user_b)
        now = now_ms()
        async with self._write() as conn:
            live = await conn.scalar(
                sa.select(sa.func.count()).where(
                    t.users.c.id.in_({user_a, user_b}), ~t.users.c.deleted
                )
            )
            if live != len({user_a, user_b}):
                raise NotFound("no such user")
            created_id = await conn.scalar(
                self._insert(c)
                .values(
                    network_id=LOCAL_NETWORK_ID,
                    kind=ConversationKind.DM.value,
                    name=key,
                    name_key=key,
                    topic="",
                    visibility=Visibility.PRIVATE.value,
                    created_at=now,
                    last_seq=0,
                )
                .on_conflict_do_nothing(index_elements=["network_id", "name_key"])
                .returning(c.c.id)
            )
            conversation = await _get(conn, c.c.network_id == LOCAL_NETWORK_ID, c.c.name_key == key)
            assert conversation is not None
            for user_id in sorted({user_a, user_b}):
                await conn.execute(
                    self._insert(m)
                    .values(
                        conversation_id=conversation.id,
                        user_id=user_id,
                        role=MemberRole.MEMBER.value,
                        joined_at=now,
                        read_seq=0,
                    )
                    .on_conflict_do_nothing(index_elements=["conversation_id", "user_id"])
                )
        return conversation, created_id is not None

    async def add_member(self, conversation_id: int, user_id: int, role: MemberRole) -> bool:
        """Add a member; False when already one.

        A new member's read marker starts at the conversation's newest message:
        joining a room with a long history does not make all of it unread.
        """
        with translating(missing="no such user"):
            async with self._write() as conn:
                last_seq = await conn.scalar(
                    sa.select(c.c.last_seq).where(c.c.id == conversation_id)
                )
                if last_seq is None:
                    raise NotFound("no such conversation", conversation_id=conversation_id)
                result = await conn.execute(
                    self._insert(m)
                    .values(
                        conversation_id=conversation_id,
                        user_id=user_id,
                        role=role.value,
                        joined_at=now_ms(),
                        read_seq=last_seq,
                    )
                    .on_conflict_do_nothing(index_elements=["conversation_id", "user_id"])
                )
        return bool(result.rowcount)

    async def remove_member(self, conversation_id: int, user_id: int) -> bool:
        async with self._write() as conn:
            result = await conn.execute(
                sa.delete(m).where(m.c.conversation_id == conversation_id, m.c.user_id == user_id)
            )
        return bool(result.rowcount)

    async def get_member(self, conversation_id: int, user_id: int) -> Member | None:
        async with self._read() as conn:
            row = (
                await conn.execute(
                    _members().where(m.c.conversation_id == conversation_id, m.c.user_id == user_id)
                )
            ).first()
        return None if row is None else rows.member(row)

    async def list_members(self, conversation_id: int) -> list[Member]:
        async with self._read() as conn:
            result = await conn.execute(
                _members()
                .where(m.c.conversation_id == conversation_id)
                .order_by(t.users.c.name_key)
            )
            return [rows.member(row) for row in result]

    async def conversations_for(self, user_id: int) -> list[ConversationView]:
        """Every conversation the user is a member of, by id.

        The ``ready`` frame of every WebSocket connect: on SQLite one trip to a
        read connection (reads.py), no pool checkout."""
        if self._hot_reads() is not None:
            bound = self._bind(_CONVERSATIONS_FOR, {"user_id": user_id})
            found, peers = await self._run_read(lambda db: _sqlite_for(db, bound, user_id))
        else:
            found, peers = await self._conversations_for(user_id)
        return [
            _view(
                rows.conversation(row),
                row.read_seq,
                MemberRole(row.role),
                peers.get(row.name_key),
            )
            for row in found
        ]

    async def _conversations_for(self, user_id: int) -> tuple[list[Any], dict[str, str]]:
        async with self._read() as conn:
            found = await self._fetch_compiled(conn, _CONVERSATIONS_FOR, user_id=user_id)
            peers = await _peer_names(conn, [row.name_key for row in found], user_id)
        return found, peers

    async def conversation_view(
        self, conversation_id: int, user_id: int
    ) -> ConversationView | None:
        """The conversation as this user sees it; a non-member gets role None and no unread."""
        async with self._read() as conn:
            row = (
                await conn.execute(
                    sa.select(*rows.CONVERSATION_COLUMNS, m.c.read_seq, m.c.role)
                    .outerjoin(m, sa.and_(m.c.conversation_id == c.c.id, m.c.user_id == user_id))
                    .where(c.c.id == conversation_id)
                )
            ).first()
            if row is None:
                return None
            peers = await _peer_names(conn, [row.name_key], user_id)
        conversation = rows.conversation(row)
        if row.role is None:
            return ConversationView(
                conversation=conversation,
                read_seq=conversation.last_seq,
                unread=0,
                role=None,
                peer=peers.get(row.name_key),
            )
        return _view(conversation, row.read_seq, MemberRole(row.role), peers.get(row.name_key))

    async def set_read(self, conversation_id: int, user_id: int, seq: int) -> int:
        """Move the read marker forward only (never past the newest message).

        Returns the marker now stored; NotMember when the user is not a member.
        """
        async with self._write() as conn:
            last_seq = await conn.scalar(sa.select(c.c.last_seq).where(c.c.id == conversation_id))
            if last_seq is None:
                raise NotFound("no such conversation", conversation_id=conversation_id)
            target = max(0, min(seq, int(last_seq)))
            # The guard keeps it monotonic even against a concurrent set_read.
            await conn.execute(
                sa.update(m)
                .where(
                    m.c.conversation_id == conversation_id,
                    m.c.user_id == user_id,
                    m.c.read_seq < target,
                )
                .values(read_seq=target)
            )
            stored = await conn.scalar(
                sa.select(m.c.read_seq).where(
                    m.c.conversation_id == conversation_id, m.c.user_id == user_id
                )
            )
        if stored is None:
            raise NotMember("not a member of this conversation")
        return int(stored)


def _members() -> sa.Select:
    return sa.select(m.c.conversation_id, m.c.user_id, t.users.c.name, m.c.role, m.c.read_seq).join(
        t.users, t.users.c.id == m.c.user_id
    )


# The ready frame of every WebSocket: compiled once (StoreBase._bind).
_CONVERSATIONS_FOR = (
    sa.select(*rows.CONVERSATION_COLUMNS, m.c.read_seq, m.c.role)
    .join(m, m.c.conversation_id == c.c.id)
    .where(m.c.user_id == sa.bindparam("user_id"))
    .order_by(c.c.id)
)


async def _get(conn: AsyncConnection, *where: sa.ColumnElement[bool]) -> Conversation | None:
    row = (await conn.execute(sa.select(*rows.CONVERSATION_COLUMNS).where(*where))).first()
    return None if row is None else rows.conversation(row)


def _peer_ids(keys: list[str], user_id: int) -> dict[str, int]:
    return {
        key: peer
        for key in keys
        if key.startswith("dm:") and (peer := dm_peer_id(key, user_id)) is not None
    }


def _sqlite_for(
    db: sqlite3.Connection, bound: Bound, user_id: int
) -> tuple[list[Any], dict[str, str]]:
    """``conversations_for``'s rows and DM peers' names, on a read connection.

    Two statements, each its own read transaction: a user's name never
    changes and its row is never removed (kept after deletion), so the
    second needs no snapshot shared with the first."""
    found = fetch_bound(db, bound)
    peer_ids = _peer_ids([row.name_key for row in found], user_id)
    if not peer_ids:
        return found, {}
    ids = sorted(set(peer_ids.values()))
    u = t.users
    marks = ", ".join("?" * len(ids))
    sql = f"SELECT {u.c.id.name}, {u.c.name.name} FROM {u.name} WHERE {u.c.id.name} IN ({marks})"
    names = dict(db.execute(sql, ids).fetchall())
    return found, {key: names[peer] for key, peer in peer_ids.items() if peer in names}


async def _peer_names(conn: AsyncConnection, keys: list[str], user_id: int) -> dict[str, str]:
    """For DM keys among ``keys``: the other user's name (kept after deletion)."""
    peer_ids = _peer_ids(keys, user_id)
    if not peer_ids:
        return {}
    result = await conn.execute(
        sa.select(t.users.c.id, t.users.c.name).where(t.users.c.id.in_(set(peer_ids.values())))
    )
    names = {row.id: row.name for row in result}
    return {key: names[peer] for key, peer in peer_ids.items() if peer in names}


def _view(
    conversation: Conversation, read_seq: int, role: MemberRole, peer: str | None
) -> ConversationView:
    return ConversationView(
        conversation=conversation,
        read_seq=read_seq,
        unread=max(0, conversation.last_seq - read_seq),
        role=role,
        peer=peer if conversation.kind is ConversationKind.DM else None,
    )
