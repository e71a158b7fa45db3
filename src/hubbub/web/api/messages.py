"""Messages over REST: history paging, sending, read markers, search."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from ...core.hub import MAX_HISTORY_PAGE, MAX_SEARCH_QUERY
from ...core.model import MessageKind
from .common import INT32_MAX, SEQ_MAX, PrincipalDep, ServicesDep
from .schemas import MessageOut, MessagesOut, ReadIn, ReadOut, SendIn, SentOut

router = APIRouter(tags=["messages"])

ConversationId = Annotated[int, Path(ge=1, le=INT32_MAX, description="a conversation id")]
Seq = Annotated[int | None, Query(ge=0, le=SEQ_MAX)]
Limit = Annotated[int, Query(ge=1, le=MAX_HISTORY_PAGE)]


@router.get("/conversations/{conversation_id}/messages")
async def history(
    conversation_id: ConversationId,
    principal: PrincipalDep,
    services: ServicesDep,
    before: Annotated[Seq, Query(description="the newest messages below this seq")] = None,
    after: Annotated[Seq, Query(description="the oldest messages above this seq")] = None,
    limit: Limit = 50,
) -> MessagesOut:
    """A page of history in ascending seq.

    Without ``before`` or ``after``: the newest ``limit`` messages. Page back
    with ``before=<first seq of the page>``, forward with ``after=<last seq>``
    (``after`` wins when both are given). A page shorter than ``limit`` is the
    last one in that direction.
    """
    messages = await services.hub.history(
        principal.user, conversation_id, before=before, after=after, limit=limit
    )
    return MessagesOut(messages=[MessageOut.of(m) for m in messages])


@router.post(
    "/conversations/{conversation_id}/messages",
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {
            "model": SentOut,
            "description": "a message with this nonce was sent before: the first one",
        }
    },
)
async def send(
    conversation_id: ConversationId,
    body: SendIn,
    response: Response,
    principal: PrincipalDep,
    services: ServicesDep,
) -> SentOut:
    """Send a message; answered once it is committed.

    With a ``nonce``, sending again (after a timeout, say) returns the first
    message (status 200, ``duplicate: true``) and stores nothing: the same
    idempotency as the WebSocket ``send``.
    """
    result = await services.hub.post(
        principal.user,
        conversation_id,
        body.text,
        kind=MessageKind(body.kind),
        nonce=body.nonce,
    )
    if result.duplicate:
        response.status_code = status.HTTP_200_OK
    m = result.message
    return SentOut(
        id=m.id, conversation=m.conversation_id, seq=m.seq, ts=m.ts, duplicate=result.duplicate
    )


@router.put("/conversations/{conversation_id}/read")
async def mark_read(
    conversation_id: ConversationId, body: ReadIn, principal: PrincipalDep, services: ServicesDep
) -> ReadOut:
    """Move your read marker forward (never back) to ``seq``; returns the marker now stored."""
    seq = await services.hub.mark_read(principal.user, conversation_id, body.seq)
    return ReadOut(conversation=conversation_id, seq=seq)


@router.get("/search")
async def search(
    principal: PrincipalDep,
    services: ServicesDep,
    q: Annotated[str, Query(min_length=1, max_length=MAX_SEARCH_QUERY)],
    conversation: Annotated[int | None, Query(ge=1, le=INT32_MAX)] = None,
    limit: Limit = 50,
) -> MessagesOut:
    """Full-text search in your conversations (or one of them), newest first."""
    messages = await services.hub.search(
        principal.user, q, conversation_id=conversation, limit=limit
    )
    return MessagesOut(messages=[MessageOut.of(m) for m in messages])
