"""Rows to model objects."""

from __future__ import annotations

from typing import Any

import orjson

from hubbub.core.model import (
    ApiToken,
    Conversation,
    ConversationKind,
    Member,
    MemberRole,
    Message,
    MessageKind,
    Role,
    SessionInfo,
    User,
    Visibility,
)

from . import schema as t


def user(row: Any) -> User:
    return User(id=row.id, name=row.name, role=Role(row.role), created_at=row.created_at)


def session(row: Any) -> SessionInfo:
    return SessionInfo(
        id=row.id,
        user_id=row.user_id,
        created_at=row.created_at,
        last_seen=row.last_seen,
        expires_at=row.expires_at,
        user_agent=row.user_agent,
        address=row.address,
    )


def token(row: Any) -> ApiToken:
    return ApiToken(
        id=row.id,
        user_id=row.user_id,
        name=row.name,
        created_at=row.created_at,
        last_used=row.last_used,
    )


CONVERSATION_COLUMNS = (
    t.conversations.c.id,
    t.conversations.c.network_id,
    t.conversations.c.kind,
    t.conversations.c.name,
    t.conversations.c.name_key,
    t.conversations.c.topic,
    t.conversations.c.visibility,
    t.conversations.c.created_at,
    t.conversations.c.last_seq,
)


def conversation(row: Any) -> Conversation:
    return Conversation(
        id=row.id,
        network_id=row.network_id,
        kind=ConversationKind(row.kind),
        name=row.name,
        topic=row.topic,
        visibility=Visibility(row.visibility),
        created_at=row.created_at,
        last_seq=row.last_seq,
    )


def member(row: Any) -> Member:
    return Member(
        conversation_id=row.conversation_id,
        user_id=row.user_id,
        name=row.name,
        role=MemberRole(row.role),
        read_seq=row.read_seq,
    )


MESSAGE_COLUMNS = (
    t.messages.c.id,
    t.messages.c.conversation_id,
    t.messages.c.seq,
    t.messages.c.ts,
    t.messages.c.sender_id,
    t.messages.c.sender,
    t.messages.c.kind,
    t.messages.c.text,
    t.messages.c.meta,
    t.messages.c.nonce,
)


def message(row: Any) -> Message:
    return Message(
        id=row.id,
        conversation_id=row.conversation_id,
        seq=row.seq,
        ts=row.ts,
        sender_id=row.sender_id,
        sender=row.sender,
        kind=MessageKind(row.kind),
        text=row.text,
        meta=None if row.meta is None else orjson.loads(row.meta),
        nonce=row.nonce,
    )


def dump_json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()
