"""Request and response bodies of the REST API, so OpenAPI documents them.

Requests are strict (``"5"`` is not a number) and refuse unknown fields; every
string and list has a bound. The limits here are the outer edge; the domain
applies the configured ones (message length, topic length) with its own codes.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ...core.hub import MAX_NONCE
from ...core.model import ApiToken, ConversationView, Member, Message, SessionInfo, User
from .common import SEQ_MAX

MAX_TEXT = 65_536  # the largest max_message_length the configuration allows
MAX_NAME = 64
MAX_TOPIC = 4000


class Request(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME)]
Password = Annotated[str, Field(min_length=1, max_length=1024)]


# accounts -----------------------------------------------------------------------
class RegisterIn(Request):
    name: Name
    password: Password


class LoginIn(Request):
    name: Name
    password: Password


class PasswordIn(Request):
    old_password: Password
    new_password: Password


class UserOut(BaseModel):
    id: int
    name: str
    role: Literal["admin", "member"]
    created_at: int = Field(description="milliseconds since the Unix epoch")

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(id=user.id, name=user.name, role=user.role.value, created_at=user.created_at)


class UserListItem(UserOut):
    online: bool


class SessionOut(BaseModel):
    id: str
    created_at: int
    last_seen: int
    expires_at: int
    user_agent: str
    address: str
    current: bool

    @classmethod
    def of(cls, info: SessionInfo, current_id: str | None) -> SessionOut:
        return cls(
            id=info.id,
            created_at=info.created_at,
            last_seen=info.last_seen,
            expires_at=info.expires_at,
            user_agent=info.user_agent,
            address=info.address,
            current=info.id == current_id,
        )


class LoginOut(BaseModel):
    user: UserOut
    session: SessionOut


class MeOut(BaseModel):
    user: UserOut
    via: Literal["cookie", "token"]
    session: str | None = None
    token: int | None = None


class TokenIn(Request):
    name: Name


class TokenOut(BaseModel):
    id: int
    name: str
    created_at: int
    last_used: int | None

    @classmethod
    def of(cls, token: ApiToken) -> TokenOut:
        return cls(
            id=token.id, name=token.name, created_at=token.created_at, last_used=token.last_used
        )


class TokenCreated(TokenOut):
    token: str = Field(description="the secret: shown only in this answer, store it now")


# rooms and conversations -----------------------------------------------------------
class RoomCreateIn(Request):
    name: Annotated[str, Field(min_length=1, max_length=80)]
    visibility: Literal["public", "private"] = "public"
    topic: Annotated[str, Field(max_length=MAX_TOPIC)] = ""


class RoomNameIn(Request):
    name: Annotated[str, Field(min_length=1, max_length=80)]


class UserNameIn(Request):
    name: Name


class TopicIn(Request):
    topic: Annotated[str, Field(max_length=MAX_TOPIC)]


class RoomOut(BaseModel):
    id: int
    name: str
    topic: str
    members: int


class ConversationOut(BaseModel):
    id: int
    network: int
    kind: Literal["room", "dm", "channel", "query"]
    name: str
    topic: str
    visibility: Literal["public", "private"]
    last_seq: int
    read_seq: int
    unread: int
    role: Literal["owner", "member"] | None = Field(description="null when not a member")
    peer: str | None = Field(description="for a DM, the other user's name")

    @classmethod
    def of(cls, view: ConversationView) -> ConversationOut:
        c = view.conversation
        return cls(
            id=c.id,
            network=c.network_id,
            kind=c.kind.value,
            name=c.name,
            topic=c.topic,
            visibility=c.visibility.value,
            last_seq=c.last_seq,
            read_seq=view.read_seq,
            unread=view.unread,
            role=view.role.value if view.role else None,
            peer=view.peer,
        )


class MemberOut(BaseModel):
    user_id: int
    name: str
    role: Literal["owner", "member"]
    online: bool

    @classmethod
    def of(cls, member: Member, online: bool) -> MemberOut:
        return cls(user_id=member.user_id, name=member.name, role=member.role.value, online=online)


# messages ---------------------------------------------------------------------------
class MessageOut(BaseModel):
    id: str
    conversation: int
    seq: int
    ts: int
    sender: str
    sender_id: int | None
    kind: Literal["text", "action", "notice", "join", "part", "topic", "system", "event"]
    text: str
    meta: dict[str, Any] | None = None

    @classmethod
    def of(cls, message: Message) -> MessageOut:
        return cls(
            id=message.id,
            conversation=message.conversation_id,
            seq=message.seq,
            ts=message.ts,
            sender=message.sender,
            sender_id=message.sender_id,
            kind=message.kind.value,
            text=message.text,
            meta=message.meta,
        )


class MessagesOut(BaseModel):
    messages: list[MessageOut]


class SendIn(Request):
    text: Annotated[str, Field(min_length=1, max_length=MAX_TEXT)]
    kind: Literal["text", "action", "notice"] = "text"
    nonce: Annotated[
        str | None,
        Field(
            max_length=MAX_NONCE,
            description="chosen by the client; the same nonce again returns the first message",
        ),
    ] = None


class SentOut(BaseModel):
    id: str
    conversation: int
    seq: int
    ts: int
    duplicate: bool = Field(description="true when this nonce was sent before")


class ReadIn(Request):
    seq: Annotated[int, Field(ge=0, le=SEQ_MAX)]


class ReadOut(BaseModel):
    conversation: int
    seq: int


class RegistrationOut(BaseModel):
    open: bool = Field(description="anyone may create an account (POST /api/register)")
    first_account: bool = Field(
        description="no account exists yet: the next one registered becomes the admin"
    )


class HealthOut(BaseModel):
    status: Literal["ok"]


class ErrorDetail(BaseModel):
    code: str = Field(description="stable, machine-readable: see docs/api.md")
    message: str
    field: str | None = None
    retry_after: int | None = None


class ErrorOut(BaseModel):
    error: ErrorDetail
