"""The ASGI WebSocket protocol: uvicorn's, plus a raw write path.

:class:`~hubbub.web.wsproto.HubbubWebSocketProtocol` (the class uvicorn is
given) serves ``/api/ws`` itself and hands every other WebSocket upgrade to
this class, which runs the ASGI application. It is uvicorn's
``websockets``-sans-I/O protocol with four changes:

- it puts itself in the ASGI scope (``scope["extensions"]["hubbub.ws"]``) so
  the endpoint can write pre-built frames straight to the transport
  (:meth:`write_frames`), keeping per-message ASGI machinery off the
  broadcast path (issue 2, "Performance constraints");
- no permessage-deflate: a frame built once is sent as is to every socket;
- incoming messages may be up to :data:`HARD_FRAME_CAP` bytes, above any
  configured ``max_ws_frame``, so that a frame merely too large for the
  protocol gets a ``too_large`` error frame and the connection lives on; above
  the cap the connection is closed with 1009 (RFC 6455, 7.4.1);
- server shutdown closes with 1001 "going away" (not 1012), after writing what
  the application still had pending;
- less memory per idle connection (issue 5): a lazily allocated inbox and
  writable flag instead of ``asyncio.Queue`` and ``asyncio.Event`` (each
  holds empty deques of 600+ bytes), and the handshake's request and response
  (headers and all) are dropped once the connection is accepted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState
from websockets.exceptions import InvalidState
from websockets.http11 import Request
from websockets.server import ServerProtocol


class _Inbox:
    """The part of ``asyncio.Queue`` uvicorn uses, for one consumer (ASGI ``receive``)."""

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: list[Any] | None = None
        self._waiter: asyncio.Future[None] | None = None

    def put_nowait(self, item: Any) -> None:
        if self._items is None:
            self._items = [item]
        else:
            self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def empty(self) -> bool:
        return not self._items

    async def get(self) -> Any:
        while not self._items:
            waiter = self._waiter = asyncio.get_running_loop().create_future()
            try:
                await waiter
            finally:
                self._waiter = None
        item = self._items.pop(0)
        if not self._items:
            self._items = None
        return item


class _Flag:
    """The part of ``asyncio.Event`` uvicorn uses for ``writable``, allocated lazily."""

    __slots__ = ("_set", "_waiters")

    def __init__(self) -> None:
        self._set = True
        self._waiters: list[asyncio.Future[None]] | None = None

    def set(self) -> None:
        self._set = True
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        self._set = False

    def is_set(self) -> bool:
        return self._set

    async def wait(self) -> bool:
        if not self._set:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            if self._waiters is None:
                self._waiters = []
            self._waiters.append(waiter)
            await waiter
        return True


HARD_FRAME_CAP = 2 << 20  # bytes; settings.max_ws_frame is at most 1 MiB
CLOSE_TIMEOUT = 10.0  # seconds to wait for the peer's close frame before aborting
EXTENSION = "hubbub.ws"


class AsgiWebSocketProtocol(WebSocketsSansIOProtocol):
    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.conn = ServerProtocol(
            extensions=[], max_size=HARD_FRAME_CAP, logger=logging.getLogger("uvicorn.error")
        )
        self.queue = _Inbox()  # type: ignore[assignment]
        self.writable = _Flag()  # type: ignore[assignment]
        #: set by the application: write what is pending, before a close frame
        self.before_close: Callable[[], None] | None = None

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        if self.response.status_code == 101:
            # The ASGI task is scheduled, not started: the scope is complete before the app runs.
            self.scope["extensions"][EXTENSION] = self  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self.before_close = None
        scope = getattr(self, "scope", None)
        if scope is not None:
            scope["extensions"].pop(EXTENSION, None)  # break the cycle early

    async def send(self, message: Any) -> None:
        await super().send(message)
        if message["type"] == "websocket.accept":
            # The handshake is done: its request and response are not used again.
            self.request = self.response = None  # type: ignore[assignment]
        elif message["type"] == "websocket.http.response.body" and not message.get("more_body"):
            # A refused upgrade (401, 403 with a body) is a finished handshake too;
            # uvicorn would log "returned without completing handshake" otherwise.
            self.handshake_complete = True

    # the raw write path -------------------------------------------------------------
    def write_frames(self, data: bytes) -> int:
        """Write complete, pre-built frames; return the bytes the transport still holds."""
        transport = self.transport
        if self.close_sent or transport.is_closing():
            return 0
        transport.write(data)
        return transport.get_write_buffer_size()

    def close_now(self, code: int, reason: str = "", timeout: float = CLOSE_TIMEOUT) -> None:
        """Send a close frame now, without waiting for the buffer to drain.

        ASGI ``websocket.close`` waits until the transport is writable, which a
        consumer that stopped reading never makes it; this does not wait, and
        aborts the connection if the peer has not answered within ``timeout``.
        """
        if self.close_sent or self.transport.is_closing():
            return
        self.queue.put_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})
        try:
            self.conn.send_close(code, reason)
        except InvalidState:
            self.transport.abort()
            return
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        self.stop_keepalive()
        if self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()
        self.close_timer = self.loop.call_later(timeout, self.transport.abort)

    # shutdown -----------------------------------------------------------------------
    def shutdown(self) -> None:
        if (
            self.handshake_complete
            and not self.close_sent
            and self.initial_response is None
            and not self.transport.is_closing()
        ):
            self.stop_keepalive()
            if self.before_close is not None:
                self.before_close()
            self.queue.put_nowait(
                {"type": "websocket.disconnect", "code": 1001, "reason": "server shutting down"}
            )
            try:
                self.conn.send_close(1001, "server shutting down")
                self.transport.write(b"".join(self.conn.data_to_send()))
            except InvalidState:
                pass
            self.close_sent = True
            self.transport.close()
            return
        super().shutdown()
