"""Hubbub's uvicorn WebSocket protocol: ``/api/ws`` served without ASGI.

uvicorn takes this class by import string (``ws="hubbub.web.wsproto:HubbubWebSocketProtocol"``)
and hands it every WebSocket upgrade its HTTP protocol parsed. For the
endpoint of :mod:`hubbub.web.ws` (``/api/ws``, under the base path if any),
the class speaks the protocol itself (:mod:`hubbub.protocols.rfc6455`): the
ASGI application, its middleware, routing, the ASGI scope and the
``websockets`` protocol objects were most of the memory of an idle connection
(22.9 KB traced of 24.3 KiB RSS) and about half of the CPU of a connect
(issue 5). Any other WebSocket path goes to the ASGI protocol
(:class:`~hubbub.web.wsasgi.AsgiWebSocketProtocol`), unchanged.

What the endpoint guarantees stays, through the same functions as the ASGI
path: the reverse proxy's forwarded headers and base path
(:class:`~hubbub.web.proxy.ProxyMiddleware`'s rules on a scope of our own),
the Origin check, authentication by cookie or bearer token, metrics, and the
session (:mod:`hubbub.web.ws`). Per connection, once open, there is this
object, the transport, the :class:`~hubbub.web.ws.WsConnection` and its
session, and one keepalive timer: no task and no coroutine frame while idle.
A message that asks for Hub calls starts a task that ends with them; reading
is paused meanwhile, so a client's ops run one at a time in the order sent.
"""

from __future__ import annotations

import asyncio
import logging
import random
import weakref
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import orjson

from ..protocols.rfc6455 import (
    OP_BINARY,
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    BadRequest,
    ProtocolError,
    Reader,
    accept_response,
    check_upgrade,
    close_frame,
    http_response,
    parse_close,
    parse_request,
    server_frame,
)
from .auth import principal_from_scope
from .proxy import _FORWARDED_HEADERS, ProxyMiddleware, set_base_path
from .ws import (
    BAD_ORIGIN,
    PATH,
    UNAUTHORIZED,
    WsConnection,
    announce,
    finish,
    new_connection,
    origin_refused,
)
from .wsasgi import CLOSE_TIMEOUT, EXTENSION, HARD_FRAME_CAP, AsgiWebSocketProtocol, _Flag, _Inbox

if TYPE_CHECKING:
    from uvicorn.config import Config
    from uvicorn.server import ServerState

    from .deps import Services

__all__ = [
    "CLOSE_TIMEOUT",
    "EXTENSION",
    "HARD_FRAME_CAP",
    "AsgiWebSocketProtocol",
    "HubbubWebSocketProtocol",
    "_Flag",
    "_Inbox",
]

log = logging.getLogger("uvicorn.error")
MAX_REQUEST_HEAD = 65536  # bytes of the upgrade request's head

# states
_HANDSHAKE = 0  # reading the request
_AUTH = 1  # checking the credential (a task)
_OPENING = 2  # 101 sent; reading the snapshot and sending ready (a task)
_OPEN = 3
_CLOSED = 4  # the transport is gone


class _Target:
    """What the native path serves, found once per uvicorn config."""

    __slots__ = ("proxy", "services")

    def __init__(self, services: Services | None, proxy: ProxyMiddleware | None) -> None:
        self.services = services
        self.proxy = proxy


_targets: weakref.WeakKeyDictionary[Any, _Target] = weakref.WeakKeyDictionary()


def _target(config: Config) -> _Target:
    """The Hubbub services behind uvicorn's app (and the proxy middleware in front)."""
    found = _targets.get(config)
    if found is not None:
        return found
    app: Any = config.loaded_app
    proxy: ProxyMiddleware | None = None
    services: Services | None = None
    for _ in range(32):  # middleware wrap the app through ``.app``
        if app is None:
            break
        if isinstance(app, ProxyMiddleware) and proxy is None:
            proxy = app
        state = getattr(app, "state", None)
        services = getattr(state, "services", None) if state is not None else None
        if services is not None:
            break
        app = getattr(app, "app", None)
    found = _targets[config] = _Target(services, proxy)
    return found


def _apply_proxy(proxy: ProxyMiddleware | None, scope: dict[str, Any]) -> None:
    """What :class:`ProxyMiddleware` does to the scope, done to ours."""
    if proxy is None:
        return
    client = scope.get("client")
    base = proxy.base_path
    if proxy.trust and client and proxy.is_trusted(client[0]):
        base = proxy._apply_forwarded(scope) or base
    elif any(name in _FORWARDED_HEADERS for name, _ in scope["headers"]):
        scope["headers"] = [(n, v) for n, v in scope["headers"] if n not in _FORWARDED_HEADERS]
    if base:
        set_base_path(scope, base)


def _route_path(scope: dict[str, Any]) -> str:
    path: str = scope["path"]
    root: str = scope["root_path"]
    if root and path.startswith(root):
        return path[len(root) :] or "/"
    return path


def _address(info: Any) -> tuple[str, int] | None:
    if isinstance(info, (tuple, list)) and len(info) >= 2:
        return str(info[0]), int(info[1])
    return None


def _log_upgrade(scope: dict[str, Any], outcome: str) -> None:
    """uvicorn's line for an upgrade (it logged these for the ASGI path)."""
    if log.isEnabledFor(logging.INFO):
        client = scope.get("client")
        peer = f"{client[0]}:{client[1]}" if client else "-"
        log.info('%s - "WebSocket %s" %s', peer, scope["path"], outcome)


class HubbubWebSocketProtocol(asyncio.Protocol):
    __slots__ = (
        "_app_state",
        "_backlog",
        "_config",
        "_conn",
        "_delegate",
        "_head",
        "_paused",
        "_ping",
        "_reader",
        "_server_state",
        "_state",
        "_timer",
        "busy",
        "close_sent",
        "services",
        "transport",
    )

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        if not config.loaded:
            config.load()  # pragma: no cover
        self._config = config
        self._server_state = server_state
        self._app_state = app_state
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.services: Services | None = None
        self._state = _HANDSHAKE
        self._head: bytes | None = None
        self._delegate: AsgiWebSocketProtocol | None = None
        self._reader: Reader | None = None
        self._conn: WsConnection | None = None
        self._timer: asyncio.TimerHandle | None = None  # keepalive, or the close timeout
        self._ping: bytes | None = None  # the payload of the ping awaiting its pong
        self._paused = False
        #: bytes the transport held when it last went past its high-water mark
        #: (the fan-out's ``send_buffer``), 0 once under it again
        self._backlog = 0
        self.busy = False  # a message's calls are running (or the connection is opening)
        self.close_sent = False

    # -- asyncio.Protocol --------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._server_state.connections.add(self)  # type: ignore[arg-type]
        # uvicorn's HTTP protocol hands the connection over from inside its own
        # data_received and is not used again; it and its parser refer to each
        # other, and only its connection_lost (never called after an upgrade)
        # breaks that cycle. Break it here, so its ~20 objects are freed when
        # the hand-over returns instead of waiting for the cyclic GC.
        http = transport.get_protocol()
        if http is not self and getattr(http, "parser", None) is not None:
            http.parser = None  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        state = self._state
        if state == _OPEN:
            reader = self._reader
            assert reader is not None
            reader.feed(data)
            if not self.busy or self.close_sent:
                self._process()
            return
        if self._delegate is not None:
            self._delegate.data_received(data)
        elif state == _HANDSHAKE:
            self._handshake(data)
        elif state == _OPENING and self._reader is not None:
            self._reader.feed(data)  # read once ready was sent and the Hub knows
            self._pause()
        # _AUTH: a client may not send frames before the 101; _CLOSED: nothing to do

    def eof_received(self) -> bool | None:
        if self._delegate is not None:
            self._delegate.eof_received()
        return None  # close the transport

    def pause_writing(self) -> None:
        if self._delegate is not None:
            self._delegate.pause_writing()
        else:
            # past the high-water mark, which is the fan-out's bound once open
            self._backlog = max(1, self.transport.get_write_buffer_size())

    def resume_writing(self) -> None:
        if self._delegate is not None:
            self._delegate.resume_writing()
        else:
            self._backlog = 0

    def connection_lost(self, exc: Exception | None) -> None:
        if self._delegate is not None:
            self._delegate.connection_lost(exc)
            return
        state = self._state
        self._state = _CLOSED
        self._cancel_timer()
        self._server_state.connections.discard(self)
        if state == _OPEN:
            self._finish()
        # _AUTH and _OPENING: the task running them finishes the connection

    # -- the handshake -------------------------------------------------------------------
    def _handshake(self, data: bytes) -> None:
        head = self._head + data if self._head else data
        try:
            parsed = parse_request(head)
        except BadRequest as exc:
            self._refuse(exc.status, exc.message, headers=exc.headers)
            return
        if parsed is None:
            if len(head) > MAX_REQUEST_HEAD:
                self._refuse(431, "the request head is too large")
            else:
                self._head = head
            return
        self._head = None
        method, target, headers = parsed
        raw_path, _, query = target.partition(b"?")
        config = self._config
        found = _target(config)
        transport = self.transport
        ssl = transport.get_extra_info("sslcontext") is not None
        root = config.root_path
        path = unquote(raw_path.decode("latin-1"))
        scope: dict[str, Any] = {
            "type": "websocket",
            "scheme": "wss" if ssl else "ws",
            "server": _address(transport.get_extra_info("sockname")),
            "client": _address(transport.get_extra_info("peername")),
            "root_path": root,
            "path": root + path,
            "raw_path": root.encode("ascii") + raw_path,
            "query_string": query,
            "headers": headers,
        }
        services = found.services
        if services is not None:
            _apply_proxy(found.proxy, scope)
        if services is None or _route_path(scope) != PATH:
            self._hand_over(head)
            return
        try:
            key = check_upgrade(method, headers)
        except BadRequest as exc:
            self._refuse(exc.status, exc.message, headers=exc.headers)
            return
        if origin_refused(services.settings, scope):
            self._deny(*BAD_ORIGIN, scope=scope)
            return
        self.services = services
        self._state = _AUTH
        self._spawn(self._open(scope, key))

    def _hand_over(self, head: bytes) -> None:
        """Not ours: the ASGI protocol runs the application for this upgrade."""
        delegate = AsgiWebSocketProtocol(self._config, self._server_state, self._app_state)
        self._delegate = delegate
        self._server_state.connections.discard(self)
        delegate.connection_made(self.transport)
        delegate.data_received(head)

    async def _open(self, scope: dict[str, Any], key: str) -> None:
        services = self.services
        assert services is not None
        try:
            principal = await principal_from_scope(services, scope, services.fanout.credentials)
        except Exception:
            log.exception("authenticating a WebSocket upgrade failed")
            self._refuse(500, "the server failed; try again")
            return
        if self._state == _CLOSED:
            return
        if principal is None:
            self._deny(*UNAUTHORIZED, scope=scope)
            return
        transport = self.transport
        transport.write(accept_response(key, self._server_state.default_headers))
        # The fan-out's bound is the high-water mark: pause_writing tells when it
        # is passed, so a write needs no buffer size query (write_frames).
        transport.set_write_buffer_limits(high=services.fanout.send_buffer)
        _log_upgrade(scope, "[accepted]")
        self._state = _OPENING
        self.busy = True
        self._reader = Reader(HARD_FRAME_CAP)
        self._start_keepalive()
        conn = self._conn = new_connection(services, principal, self, self._server_state.tasks)
        conn.on_idle = self._idle
        try:
            await announce(conn)
        except Exception:
            log.exception("opening a WebSocket connection failed")
            conn.close(1011, "the server failed; try again")
        if self._state == _CLOSED:
            self._finish()
            return
        self._state = _OPEN
        self._idle()

    def _refuse(self, status: int, message: str, headers: tuple[tuple[str, str], ...] = ()) -> None:
        self._respond(status, message.encode(), b"text/plain; charset=utf-8", headers)

    def _deny(self, status: int, code: str, message: str, scope: dict[str, Any]) -> None:
        _log_upgrade(scope, str(status))
        body = orjson.dumps({"code": code, "message": message})
        self._respond(status, body, b"application/json")

    def _respond(
        self,
        status: int,
        body: bytes,
        content_type: bytes,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self._state = _CLOSED
        self.close_sent = True
        transport = self.transport
        if not transport.is_closing():
            default = self._server_state.default_headers
            transport.write(http_response(status, body, content_type, default, headers))
            transport.close()

    # -- frames ----------------------------------------------------------------------------
    def _process(self) -> None:
        """Feed the session the messages received, until it is busy or all are read."""
        reader = self._reader
        conn = self._conn
        assert reader is not None and conn is not None
        transport = self.transport
        # While calls run, only control frames matter once a close was sent (the
        # peer's answer to it); otherwise reading waits for the calls.
        while self._state == _OPEN and (not self.busy or self.close_sent):
            try:
                message = reader.next()
            except ProtocolError as exc:
                self._fail(exc.code, exc.reason)
                return
            if message is None:
                break
            opcode, payload = message
            if opcode == OP_TEXT:
                if self.close_sent:
                    continue
                try:
                    text = payload.decode()
                except UnicodeDecodeError:
                    self._fail(1007, "invalid UTF-8 in a text message")
                    return
                self.busy = conn.receive(text)
            elif opcode == OP_BINARY:
                if not self.close_sent:
                    self.busy = conn.receive(None, len(payload))
            elif opcode == OP_PING:
                if not self.close_sent:
                    transport.write(server_frame(OP_PONG, payload))
            elif opcode == OP_PONG:
                self._pong(payload)
            elif opcode == OP_CLOSE:
                self._closed_by_peer(payload)
                return
        if self.busy and not self.close_sent:
            self._pause()
        elif self._paused:
            self._paused = False
            if not transport.is_closing():
                transport.resume_reading()

    def _idle(self) -> None:
        """The calls are done (or the connection is open): read on."""
        self.busy = False
        if self._state == _OPEN:
            self._process()

    def _pause(self) -> None:
        if not self._paused and not self.transport.is_closing():
            self._paused = True
            self.transport.pause_reading()

    def _closed_by_peer(self, payload: bytes) -> None:
        try:
            code, _ = parse_close(payload)
        except ProtocolError as exc:
            self._fail(exc.code, exc.reason)
            return
        transport = self.transport
        if not self.close_sent and not transport.is_closing():
            self.close_sent = True
            transport.write(close_frame(code))  # the echo (RFC 6455, 5.5.1)
        transport.close()

    def _fail(self, code: int, reason: str) -> None:
        """The client broke the protocol: close with ``code`` and drop the connection."""
        transport = self.transport
        if not self.close_sent and not transport.is_closing():
            self.close_sent = True
            transport.write(close_frame(code, reason))
        transport.close()

    # -- FrameWriter (the fan-out's side) ----------------------------------------------
    def write_frames(self, data: bytes) -> int:
        """Write complete, pre-built frames; return the bytes the transport still
        holds once past the fan-out's bound (its high-water mark), else 0.

        The hot path of a pass, once per socket: no buffer size query and no
        ``is_closing`` call (together ~1/3 of the instructions of a write, with
        uvloop's ``write`` itself, which sends at once when nothing is buffered:
        docs/performance/fanout.md). A transport closing on its own (the peer's
        EOF) takes the bytes and drops them with the connection; one closed by
        a failed write refuses them with RuntimeError, and ``connection_lost``
        follows: nothing to do here either way.
        """
        if self.close_sent:
            return 0
        try:
            self.transport.write(data)
        except RuntimeError:
            return 0
        return self._backlog

    def close_now(self, code: int, reason: str = "", timeout: float = CLOSE_TIMEOUT) -> None:
        """Send a close frame now, without waiting for the buffer to drain; abort the
        connection if the peer has not answered within ``timeout``."""
        transport = self.transport
        if self.close_sent or transport.is_closing():
            return
        self.close_sent = True
        transport.write(close_frame(code, reason))
        self._cancel_timer()
        self._timer = asyncio.get_running_loop().call_later(timeout, transport.abort)
        if self._paused:
            self._paused = False
            transport.resume_reading()  # to see the peer's close frame

    # -- keepalive -----------------------------------------------------------------------
    def _start_keepalive(self) -> None:
        interval = self._config.ws_ping_interval
        if interval is not None and interval > 0:
            self._timer = asyncio.get_running_loop().call_later(interval, self._keepalive)

    def _keepalive(self) -> None:
        self._timer = None
        transport = self.transport
        if self.close_sent or transport.is_closing():
            return
        if self._ping is not None:  # no pong in time
            self._ping = None
            log.info("WebSocket keepalive ping timeout")
            self._fail(1011, "keepalive ping timeout")
            return
        payload = self._ping = random.getrandbits(32).to_bytes(4, "big")
        transport.write(server_frame(OP_PING, payload))
        timeout = self._config.ws_ping_timeout
        if timeout is None:
            timeout = self._config.ws_ping_interval or 20.0
        self._timer = asyncio.get_running_loop().call_later(timeout, self._keepalive)

    def _pong(self, payload: bytes) -> None:
        if self._ping is None or payload != self._ping or self.close_sent:
            return  # unsolicited, or stale
        self._ping = None
        self._cancel_timer()
        self._start_keepalive()

    def _cancel_timer(self) -> None:
        timer = self._timer
        if timer is not None:
            timer.cancel()
            self._timer = None

    # -- the end ---------------------------------------------------------------------------
    def _finish(self) -> None:
        conn = self._conn
        if conn is None:
            return
        self._conn = None
        conn.on_idle = None
        conn.lost()
        self._spawn(finish(conn))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        tasks = self._server_state.tasks
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    def shutdown(self) -> None:
        """The server stops: write what is pending, then close with 1001 "going away"."""
        if self._delegate is not None:  # pragma: no cover - it is in the server's set itself
            self._delegate.shutdown()
            return
        transport = self.transport
        if transport.is_closing():
            return
        state = self._state
        if state in (_OPENING, _OPEN) and not self.close_sent:
            self._cancel_timer()
            conn = self._conn
            if conn is not None:
                conn.flush_pending()
            self.close_sent = True
            transport.write(close_frame(1001, "server shutting down"))
            transport.close()
        elif state in (_HANDSHAKE, _AUTH):
            self._refuse(503, "the server is shutting down")
        else:
            self._cancel_timer()
            transport.close()
