"""The WebSocket endpoint at ``/api/ws`` (``docs/protocol.md``).

The thin asyncio layer around :class:`~hubbub.protocols.session.Session`
(STYLE.md, 2): check the Origin and the credential at the handshake, accept,
register with the :class:`~hubbub.web.fanout.Fanout`, send ``ready``
(:func:`new_connection`, :func:`announce`), then feed the session the
client's frames and run what it asks for: Hub calls in order, catch-up reads
one at a time; :func:`finish` at the end.

Two ways in, one behaviour. Under Hubbub's uvicorn protocol class
(:class:`~hubbub.web.wsproto.HubbubWebSocketProtocol`) there is no ASGI at
all: it parses the frames itself and calls :meth:`WsConnection.receive`, and
an idle connection runs no task. Under any other server, the ASGI endpoint
(:func:`serve_websocket`) reads frames through ``receive`` and writes through
:class:`AsgiWriter`: the same protocol, slower. Everything outbound goes
through the fan-out's pending lists, written straight to the transport when
the protocol class is Hubbub's.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

import orjson
from starlette.datastructures import Headers
from starlette.routing import WebSocketRoute
from starlette.types import Receive, Scope, Send

from ..core.errors import HubbubError, RateLimited
from ..core.hub import conversation_json
from ..core.model import User
from ..protocols.session import Action, Call, Fetch, Limits, Session
from ..protocols.wire import ErrorCode, Read, Typing, frame_payloads
from ..protocols.wire import Send as SendOp
from .auth import Principal, origin_allowed, principal_from_scope
from .fanout import Connection, Fanout, FrameWriter
from .wsasgi import EXTENSION

if TYPE_CHECKING:
    from ..config import Settings
    from .deps import Services

log = logging.getLogger(__name__)

PATH = "/api/ws"


def limits_from(settings: Settings) -> Limits:
    """The session's limits (``ws_ops_rate``/``ws_ops_burst``); its frame budget
    stays at least twice the Hub's send rate, so ``send_rate``/``send_burst`` are
    the limits that apply to sends."""
    return Limits(
        max_frame=settings.max_ws_frame,
        replay_limit=settings.ws_replay_limit,
        ops_per_second=max(settings.ws_ops_rate, 2 * settings.send_rate),
        ops_burst=max(settings.ws_ops_burst, 2 * settings.send_burst),
    )


class WsConnection(Connection):
    """A connection with the I/O the session asks for: Hub calls and store reads."""

    __slots__ = (
        "_fetcher",
        "_fetches",
        "_worker",
        "announced",
        "calls",
        "on_idle",
        "services",
        "tasks",
        "user",
    )

    def __init__(
        self,
        services: Services,
        user: User,
        session: Session,
        writer: FrameWriter,
        tasks: set[asyncio.Task[Any]] | None = None,
    ) -> None:
        super().__init__(services.fanout, session, writer)
        self.services = services
        self.user = user
        # plain lists, not deques: both are short, and an empty deque costs 600 bytes
        # per connection (issue 5: memory per idle connection)
        self.calls: list[SendOp | Typing | Read] = []
        self._fetches: list[Fetch] = []
        self._fetcher: asyncio.Task[None] | None = None
        self._worker: asyncio.Task[None] | None = None
        #: the native protocol: called when the calls a message started are done
        self.on_idle: Callable[[], None] | None = None
        #: where short-lived tasks are registered (the server's, so shutdown waits for them)
        self.tasks = tasks
        self.announced = False  # Hub.connected was called: Hub.disconnected is owed

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        tasks = self.tasks
        if tasks is not None:
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        return task

    def run(self, action: Action) -> None:
        if isinstance(action, Call):
            self.calls.append(action.op)
        elif isinstance(action, Fetch):
            self._fetches.append(action)
            if self._fetcher is None:
                self._fetcher = asyncio.create_task(self._fetch_all())

    def flush_pending(self) -> None:
        """Write what is pending now (before the server's close frame)."""
        self.settle()
        pending, self.pending = self.pending, []
        if pending and not self.closed:
            self.writer.write_frames(b"".join(pending))

    def receive(self, text: str | None, size: int = 0) -> bool:
        """One client message, without awaiting (the native protocol).

        Returns whether the connection is now busy running the calls it asked
        for; :attr:`on_idle` is called once they are done. Until then the caller
        feeds no further message: a client's ops run in the order sent.
        """
        # No settle: what a client frame asks for reads no position, and the
        # answer is the connection's own (Connection.reply).
        session = self.session
        if text is not None:
            session.receive_text(text)
        else:
            session.receive_binary(size)
        self.reply()
        if self.calls and self._worker is None:
            self._worker = self.spawn(self._run_calls())
        return self._worker is not None

    async def _run_calls(self) -> None:
        try:
            while self.calls:  # one at a time: a client's sends commit in the order sent
                await self._call(self.calls.pop(0))
        finally:
            self._worker = None
        on_idle = self.on_idle
        if on_idle is not None and not self.closed:
            on_idle()

    async def serve(self, receive: Receive) -> None:
        """Read client frames until the connection ends."""
        session = self.session
        while True:
            message = await receive()
            kind = message["type"]
            if kind == "websocket.disconnect":
                return
            if kind != "websocket.receive":
                continue
            text = message.get("text")
            if text is not None:
                session.receive_text(text)
            else:
                session.receive_binary(len(message.get("bytes") or b""))
            self.reply()
            while self.calls:  # one at a time: a client's sends commit in the order sent
                await self._call(self.calls.pop(0))

    async def _call(self, op: SendOp | Typing | Read) -> None:
        """Run one op; its outcome (``ack`` or ``error``) is the connection's own
        answer and reads no position: no settle (Connection.reply)."""
        hub = self.services.hub
        session = self.session
        try:
            if isinstance(op, SendOp):
                result = await hub.post(
                    self.user, op.conversation, op.text, kind=op.kind, nonce=op.nonce
                )
                session.op_done(op, result.message)
            elif isinstance(op, Typing):
                await hub.typing(self.user, op.conversation)
            else:
                await hub.mark_read(self.user, op.conversation, op.seq)
        except RateLimited as exc:
            session.op_failed(op, exc.code, exc.message, retry_after=exc.retry_after)
        except HubbubError as exc:
            session.op_failed(op, exc.code, exc.message)
        except Exception:
            log.exception("WebSocket op %s failed", type(op).__name__)
            session.op_failed(op, ErrorCode.INTERNAL, "the server failed; try again")
        self.reply()

    async def _fetch_all(self) -> None:
        """Catch-up reads, one at a time per connection (a reconnect storm stays bounded)."""
        store = self.services.store
        session = self.session
        try:
            while self._fetches and not self.closed:
                fetch = self._fetches.pop(0)
                if fetch.delay:
                    await asyncio.sleep(fetch.delay)
                try:
                    messages = await store.history(
                        fetch.conversation, after=fetch.after, limit=fetch.limit
                    )
                except Exception:
                    log.exception("catch-up read of conversation %d failed", fetch.conversation)
                    self.settle()
                    session.fetch_failed(fetch.id, fetch.conversation)
                else:
                    self.settle()
                    session.fetched(fetch.id, fetch.conversation, messages)
                self.drain()
        finally:
            self._fetcher = None

    async def stop(self) -> None:
        """The connection ended: leave the fan-out, stop catching up, let a call in
        flight finish (its commit is not undone by the client going away)."""
        self.lost()
        self.on_idle = None
        task = self._fetcher
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        worker = self._worker
        if worker is not None:
            await asyncio.wait([worker])


class AsgiWriter:
    """The fallback :class:`FrameWriter`: frames sent one by one through ASGI ``send``."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self._queue: collections.deque[bytes] = collections.deque()
        self._buffered = 0
        self._close: tuple[int, str] | None = None
        self._wake = asyncio.Event()
        self.task = asyncio.create_task(self._run())

    def write_frames(self, data: bytes) -> int:
        if self._close is None:
            self._queue.append(data)
            self._buffered += len(data)
            self._wake.set()
        return self._buffered

    def close_now(self, code: int, reason: str) -> None:
        if self._close is None:
            self._close = (code, reason)
            self._wake.set()

    async def _run(self) -> None:
        with contextlib.suppress(Exception):  # the client went away: nothing more to send
            while True:
                await self._wake.wait()
                self._wake.clear()
                while self._queue:
                    data = self._queue.popleft()
                    for payload in frame_payloads(data):
                        await self._send({"type": "websocket.send", "text": payload.decode()})
                    self._buffered -= len(data)
                if self._close is not None:
                    code, reason = self._close
                    await self._send({"type": "websocket.close", "code": code, "reason": reason})
                    return

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


async def _deny(scope: Scope, send: Send, status: int, code: str, message: str) -> None:
    """Refuse the upgrade with an HTTP error (or a bare 403 where the server cannot)."""
    if "websocket.http.response" in scope.get("extensions", {}):
        body = orjson.dumps({"code": code, "message": message})
        await send(
            {
                "type": "websocket.http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await send({"type": "websocket.close", "code": 1008})


BAD_ORIGIN = (403, "bad_origin", "the Origin is not this server's")
UNAUTHORIZED = (401, "unauthorized", "log in, or send an API token")


def origin_refused(settings: Settings, scope: Scope) -> bool:
    """Cross-site WebSocket hijacking: browsers always send Origin, and a cookie
    rides along with any site's request; a bearer token does not."""
    authorization = Headers(scope=scope).get("authorization", "")
    bearer = authorization[:7].lower() == "bearer "
    return not origin_allowed(settings, scope, required=not bearer)


def new_connection(
    services: Services,
    principal: Principal,
    writer: FrameWriter,
    tasks: set[asyncio.Task[Any]] | None = None,
) -> WsConnection:
    """The accepted connection of ``principal``, following the user's own events
    already (so a join while the snapshot is read is not missed)."""
    user = principal.user
    credential = (
        principal.session_id if principal.via == "cookie" else f"token:{principal.token_id}"
    )
    session = Session(user.id, user.name, credential, limits_from(services.settings))
    conn = WsConnection(services, user, session, writer, tasks)
    services.fanout.add(conn)
    if services.metrics is not None:
        services.metrics.ws_opened()
    return conn


async def announce(conn: WsConnection) -> None:
    """Read the snapshot, send ``ready``, and tell the Hub the user is here."""
    services = conn.services
    views = await services.hub.conversations(conn.user)
    start_snapshot(conn, services.fanout, [conversation_json(v) for v in views], services)
    if conn.closed:
        return
    await services.hub.connected(conn.user)
    conn.announced = True


async def finish(conn: WsConnection) -> None:
    """The end of a connection, however it ended."""
    await conn.stop()
    services = conn.services
    if services.metrics is not None:
        services.metrics.ws_closed()
    if conn.announced:
        conn.announced = False
        await services.hub.disconnected(conn.user)


async def serve_websocket(services: Services, scope: Scope, receive: Receive, send: Send) -> None:
    """One WebSocket connection through ASGI, from the handshake to the end."""
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    if origin_refused(services.settings, scope):
        await _deny(scope, send, *BAD_ORIGIN)
        return
    principal = await principal_from_scope(services, scope, services.fanout.credentials)
    if principal is None:
        await _deny(scope, send, *UNAUTHORIZED)
        return
    await send({"type": "websocket.accept"})

    proto = scope.get("extensions", {}).get(EXTENSION)
    fallback: AsgiWriter | None = None
    writer: FrameWriter
    if proto is not None:
        writer = proto
    else:
        writer = fallback = AsgiWriter(send)
    conn = new_connection(services, principal, writer)
    try:
        await announce(conn)
        if proto is not None:
            proto.before_close = conn.flush_pending
        await conn.serve(receive)
    finally:
        if fallback is not None:
            await fallback.stop()
        await finish(conn)


def start_snapshot(
    conn: Connection, fanout: Fanout, conversations: list[dict[str, Any]], services: Services
) -> None:
    """Send ``ready`` and subscribe the conversations, in one step with no await:
    the snapshot is never older than what the fan-out has seen."""
    for c in conversations:
        known = fanout.known_seq(c["id"])
        if known > c["last_seq"]:
            c["unread"] += known - c["last_seq"]
            c["last_seq"] = known
    conn.start(conversations, services.hub.online_user_ids())


class WebSocketEndpoint:
    """ASGI app of the route; the services come from the application's state."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        services: Services = scope["app"].state.services
        await serve_websocket(services, scope, receive, send)


websocket_route = WebSocketRoute(PATH, WebSocketEndpoint(), name="websocket")
