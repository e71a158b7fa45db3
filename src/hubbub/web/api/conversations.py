"""Rooms, DMs and conversations over REST: create, list, join, leave, invite, topic."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from ...core.model import Visibility
from .common import INT32_MAX, PrincipalDep, ServicesDep
from .schemas import (
    ConversationOut,
    MemberOut,
    MessageOut,
    RoomCreateIn,
    RoomNameIn,
    RoomOut,
    TopicIn,
    UserNameIn,
)

router = APIRouter(tags=["conversations"])

ConversationId = Annotated[int, Path(ge=1, le=INT32_MAX, description="a conversation id")]


@router.get("/rooms")
async def public_rooms(
    principal: PrincipalDep,
    services: ServicesDep,
    q: Annotated[str, Query(max_length=200, description="part of the name")] = "",
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[RoomOut]:
    """Public rooms by name, with their member counts."""
    rooms = await services.hub.public_rooms(query=q, limit=limit)
    return [RoomOut(id=c.id, name=c.name, topic=c.topic, members=n) for c, n in rooms]


@router.post("/rooms", status_code=status.HTTP_201_CREATED)
async def create_room(
    body: RoomCreateIn, principal: PrincipalDep, services: ServicesDep
) -> ConversationOut:
    """Create a room; you are its owner. A private room is entered by invitation only."""
    view = await services.hub.create_room(
        principal.user, body.name, visibility=Visibility(body.visibility), topic=body.topic
    )
    return ConversationOut.of(view)


@router.post("/rooms/join")
async def join_room_by_name(
    body: RoomNameIn, principal: PrincipalDep, services: ServicesDep
) -> ConversationOut:
    """Join a public room by its name (a leading ``#`` is ignored)."""
    return ConversationOut.of(await services.hub.join_by_name(principal.user, body.name))


@router.post("/dms")
async def open_dm(
    body: UserNameIn, principal: PrincipalDep, services: ServicesDep
) -> ConversationOut:
    """The DM with another user, opened on first use."""
    return ConversationOut.of(await services.hub.open_dm(principal.user, body.name))


@router.get("/conversations")
async def my_conversations(principal: PrincipalDep, services: ServicesDep) -> list[ConversationOut]:
    """Your conversations, each with its last seq, your read marker and unread count."""
    return [ConversationOut.of(v) for v in await services.hub.conversations(principal.user)]


@router.get("/conversations/{conversation_id}")
async def conversation(
    conversation_id: ConversationId, principal: PrincipalDep, services: ServicesDep
) -> ConversationOut:
    """A conversation you are in, or a public room (``role`` is null until you join)."""
    return ConversationOut.of(await services.hub.conversation(principal.user, conversation_id))


@router.post("/conversations/{conversation_id}/join")
async def join(
    conversation_id: ConversationId, principal: PrincipalDep, services: ServicesDep
) -> ConversationOut:
    return ConversationOut.of(await services.hub.join(principal.user, conversation_id))


@router.post("/conversations/{conversation_id}/leave", status_code=status.HTTP_204_NO_CONTENT)
async def leave(
    conversation_id: ConversationId, principal: PrincipalDep, services: ServicesDep
) -> None:
    await services.hub.leave(principal.user, conversation_id)


@router.get("/conversations/{conversation_id}/members")
async def members(
    conversation_id: ConversationId, principal: PrincipalDep, services: ServicesDep
) -> list[MemberOut]:
    """Members with their role and whether they are online."""
    hub = services.hub
    return [
        MemberOut.of(m, hub.is_online(m.user_id))
        for m in await hub.members(principal.user, conversation_id)
    ]


@router.post("/conversations/{conversation_id}/members", status_code=status.HTTP_201_CREATED)
async def invite(
    conversation_id: ConversationId,
    body: UserNameIn,
    principal: PrincipalDep,
    services: ServicesDep,
) -> MemberOut:
    """Invite a user into a room you are in (the way into a private room)."""
    hub = services.hub
    member = await hub.invite(principal.user, conversation_id, body.name)
    return MemberOut.of(member, hub.is_online(member.user_id))


@router.put("/conversations/{conversation_id}/topic")
async def set_topic(
    conversation_id: ConversationId, body: TopicIn, principal: PrincipalDep, services: ServicesDep
) -> MessageOut:
    """Set a room's topic; the answer is the topic message posted in the room."""
    return MessageOut.of(await services.hub.set_topic(principal.user, conversation_id, body.topic))
