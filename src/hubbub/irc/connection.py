"""The asyncio connection around the sans-I/O :class:`~hubbub.irc.client.Client`.

One :class:`Connection` is one user's (or the relay bot's) presence on one
network, across many TCP sessions:

- opens TCP or TLS (verification on by default; ``accept_self_signed`` turns
  it off for this network only, optionally pinned by fingerprint; a refused
  certificate is a clear, final error, never a fall-back to plaintext), with a
  client certificate for SASL EXTERNAL;
- resolves the host itself and, unless ``allow_private_addresses``, refuses
  it when any of its addresses is loopback, private, link-local … (a final
  error, :mod:`.addresses`); it connects to an address it checked, with the
  host name kept for TLS (SNI and certificate check);
- feeds the core, writes what it says when the throttle allows, ticks it
  every second;
- after registration: rejoins its channels, runs the connect commands, and
  fills the gap of every known conversation with ``CHATHISTORY`` when the
  server offers it, dropping what was already seen (:mod:`.history`);
- reconnects with exponential backoff and jitter (:mod:`.backoff`) until
  :meth:`Connection.stop`, or until a failure that retrying cannot fix (SASL
  required and refused, a refused certificate, a refused address).

Events go to a bounded queue read with :meth:`Connection.next_event` (or
``async for``); a slow reader pauses reading from the socket, it does not
grow memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import ssl
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from . import addresses, certs
from .backoff import Backoff
from .config import ClientConfig
from .errors import AddressRefused, ConnectError, NotConnected, TLSVerifyError
from .events import (
    Disconnected,
    Error,
    Event,
    History,
    Join,
    Kick,
    Message,
    Nick,
    Part,
    Registered,
)
from .history import Anchor, SeenSet

if TYPE_CHECKING:
    from .client import Client

log = logging.getLogger("hubbub.irc")

READ_SIZE = 16384
QUIT_FLUSH = 2.0
#: Private conversations remembered for gap filling (the most recent ones).
MAX_QUERIES = 200


class ConnState(enum.Enum):
    IDLE = "idle"
    CONNECTING = "connecting"
    REGISTERING = "registering"
    CONNECTED = "connected"
    WAITING = "waiting"  # backoff before the next attempt
    FAILED = "failed"  # a failure retrying cannot fix; stopped
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class NetworkConfig:
    host: str
    port: int
    client: ClientConfig
    tls: bool = True
    accept_self_signed: bool = False
    #: With accept_self_signed: the SHA-256 the server's certificate must have.
    tls_fingerprint: str | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    channels: tuple[str, ...] = ()
    connect_commands: tuple[str, ...] = ()
    connect_timeout: float = 20.0
    history_limit: int = 100
    backoff_base: float = 2.0
    backoff_cap: float = 300.0
    events_queue: int = 1000
    #: Connect to loopback, private, link-local … addresses too (see .addresses).
    allow_private_addresses: bool = False


@dataclass(frozen=True, slots=True)
class Connecting:
    host: str
    port: int
    attempt: int


@dataclass(frozen=True, slots=True)
class Reconnecting:
    delay: float
    reason: str


ConnectionEvent = Event | Connecting | Reconnecting


def ssl_context(config: NetworkConfig) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if config.accept_self_signed:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if config.client_cert is not None:
        ctx.load_cert_chain(config.client_cert, config.client_key)
    return ctx


@dataclass(slots=True)
class _Session:
    client: Client
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    wake: asyncio.Event = field(default_factory=asyncio.Event)


class Connection:
    """A persistent presence on one IRC network."""

    def __init__(
        self,
        config: NetworkConfig,
        *,
        seen: SeenSet | None = None,
        anchor_for: Callable[[str], Anchor | None] | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        self.config = config
        self.state = ConnState.IDLE
        self.last_error: str | None = None
        self.seen = seen or SeenSet()
        self._anchor_for = anchor_for or self.seen.anchor
        self.backoff = backoff or Backoff(config.backoff_base, config.backoff_cap)
        self.channels: dict[str, str] = {c.lower(): c for c in config.channels}
        self.queries: dict[str, str] = {}
        self._events: asyncio.Queue[ConnectionEvent] = asyncio.Queue(config.events_queue)
        self._session: _Session | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._registered_once = False

    # -- control ------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name=f"irc {self.config.host}")

    async def stop(self, reason: str = "") -> None:
        """QUIT (flushed for up to 2 s), close, and stop reconnecting."""
        self._stopping = True
        session = self._session
        if session is not None and not session.client.closed:
            with contextlib.suppress(NotConnected):
                session.client.quit(reason)
            session.wake.set()
        if self._task is not None:
            try:
                if session is None:  # connecting or waiting out a backoff: nothing to flush
                    raise TimeoutError
                await asyncio.wait_for(asyncio.shield(self._task), QUIT_FLUSH)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
            self._task = None
        if self.state is not ConnState.FAILED:
            self.state = ConnState.STOPPED

    async def next_event(self) -> ConnectionEvent:
        return await self._events.get()

    async def __aiter__(self) -> AsyncIterator[ConnectionEvent]:
        while True:
            yield await self._events.get()

    @property
    def client(self) -> Client:
        """The current session's client, to send with; NotConnected between sessions."""
        if self._session is None or self._session.client.closed:
            raise NotConnected(f"not connected ({self.state.value})")
        return self._session.client

    def flush(self) -> None:
        """Tell the writer there is something to send (after using :attr:`client`)."""
        if self._session is not None:
            self._session.wake.set()

    def privmsg(self, target: str, text: str) -> None:
        self.client.privmsg(target, text)
        self.flush()

    def action(self, target: str, text: str) -> None:
        self.client.action(target, text)
        self.flush()

    def notice(self, target: str, text: str) -> None:
        self.client.notice(target, text)
        self.flush()

    def join(self, channel: str) -> None:
        self.client.join([channel])
        self.flush()

    def part(self, channel: str, reason: str = "") -> None:
        self.channels.pop(channel.lower(), None)
        self.client.part(channel, reason)
        self.flush()

    def send_raw(self, line: str) -> None:
        self.client.send_raw(line)
        self.flush()

    # -- the loop -----------------------------------------------------------

    async def _run(self) -> None:
        attempt = 0
        while not self._stopping:
            attempt += 1
            try:
                reason, retry = await self._attempt(attempt)
            except Exception as exc:  # a bug must not end the presence on the network
                log.exception("irc %s: session failed", self.config.host)
                reason, retry = f"internal error: {type(exc).__name__}: {exc}", True
                await self._emit(Disconnected(reason, retry=True))
            if self._stopping:
                break
            if not retry:
                self.state = ConnState.FAILED
                self.last_error = reason
                log.warning("irc %s: giving up: %s", self.config.host, reason)
                break
            delay = self.backoff.next_delay()
            self.state = ConnState.WAITING
            self.last_error = reason
            await self._emit(Reconnecting(delay, reason))
            await asyncio.sleep(delay)

    async def _attempt(self, attempt: int) -> tuple[str, bool]:
        """One session, from TCP connect to close: (reason it ended, retry?)."""
        cfg = self.config
        self.state = ConnState.CONNECTING
        await self._emit(Connecting(cfg.host, cfg.port, attempt))
        try:
            reader, writer = await self._open()
        except (TLSVerifyError, AddressRefused) as exc:
            await self._emit(Error(str(exc), fatal=True))
            await self._emit(Disconnected(str(exc), retry=False))
            return str(exc), False
        except ConnectError as exc:
            await self._emit(Disconnected(str(exc), retry=True))
            return str(exc), True
        self.state = ConnState.REGISTERING
        # Imported on the first connect, not at startup: ircstates imports
        # pendulum (and pendulum time_machine, which imports pytest when installed).
        from .client import Client

        client = Client(cfg.client)
        session = _Session(client, reader, writer)
        self._session = session
        started = time.monotonic()
        client.connect()
        reason, retry = "closed", True
        try:
            reason, retry = await self._pump(session)
        finally:
            self._session = None
            writer.close()
            with contextlib.suppress(OSError, ssl.SSLError, asyncio.CancelledError):
                await asyncio.wait_for(writer.wait_closed(), 1.0)
            if self._registered_once:
                self.backoff.connected_for(time.monotonic() - started)
        return reason, retry

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        cfg = self.config
        ctx = ssl_context(cfg) if cfg.tls else None
        try:
            async with asyncio.timeout(cfg.connect_timeout):
                # Resolved and checked once; we connect to these addresses, never to the
                # name again (a second lookup could answer otherwise: DNS rebinding).
                found = await addresses.resolve(
                    cfg.host, cfg.port, allow_private=cfg.allow_private_addresses
                )
                reader, writer = await self._open_first(found, ctx)
        except addresses.AddressNotAllowed as exc:
            raise AddressRefused(str(exc)) from exc
        except ssl.SSLCertVerificationError as exc:
            raise TLSVerifyError(
                f"TLS certificate of {cfg.host} refused: {exc.verify_message}"
                " (allow self-signed certificates for this network to connect anyway)"
            ) from exc
        except (OSError, TimeoutError) as exc:
            kind = "TLS connection" if ctx is not None else "connection"
            detail = str(exc) or type(exc).__name__
            raise ConnectError(f"{kind} to {cfg.host}:{cfg.port} failed: {detail}") from exc
        if ctx is not None and cfg.tls_fingerprint:
            der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
            got = certs.der_fingerprint(der) if der else ""
            want = cfg.tls_fingerprint.replace(":", "").lower()
            if got != want:
                writer.close()
                raise TLSVerifyError(
                    f"TLS certificate of {cfg.host} has fingerprint {got}, expected {want}"
                )
        return reader, writer

    async def _open_first(
        self, found: list[str], ctx: ssl.SSLContext | None
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Connect to the first of ``found`` that answers (the host name stays the TLS name)."""
        cfg = self.config
        for i, address in enumerate(found):
            try:
                return await asyncio.open_connection(
                    address,
                    cfg.port,
                    ssl=ctx,
                    server_hostname=cfg.host.strip("[]") if ctx else None,
                    limit=READ_SIZE * 2,
                )
            except ssl.SSLError:
                raise
            except OSError:
                if i == len(found) - 1:
                    raise
        raise OSError(f"{cfg.host} has no address")

    async def _pump(self, session: _Session) -> tuple[str, bool]:
        reading = asyncio.create_task(self._read_loop(session))
        writing = asyncio.create_task(self._write_loop(session))
        try:
            done, _ = await asyncio.wait({reading, writing}, return_when=asyncio.FIRST_COMPLETED)
            if writing not in done:  # let the writer flush a QUIT
                session.wake.set()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(writing), QUIT_FLUSH)
        finally:
            for task in (reading, writing):
                task.cancel()
            for task in (reading, writing):
                with contextlib.suppress(asyncio.CancelledError, OSError, ssl.SSLError):
                    await task
        client = session.client
        if not client.closed:
            client.connection_lost("connection closed")
        await self._dispatch(session)
        return client.close_reason_text, client.retry

    async def _read_loop(self, session: _Session) -> None:
        client = session.client
        while not client.closed:
            try:
                data = await session.reader.read(READ_SIZE)
            except (OSError, ssl.SSLError) as exc:
                client.connection_lost(f"read failed: {exc}")
                break
            client.receive_data(data)
            await self._dispatch(session)
            session.wake.set()

    async def _write_loop(self, session: _Session) -> None:
        client = session.client
        while True:
            session.wake.clear()  # before taking data, so no wake-up is lost
            data = client.data_to_send()
            if data:
                try:
                    session.writer.write(data)
                    await session.writer.drain()
                except (OSError, ssl.SSLError) as exc:
                    client.connection_lost(f"write failed: {exc}")
                    await self._dispatch(session)
                    return
            delay = client.send_delay()
            if client.closed and delay is None:
                return
            timeout = min(delay, 1.0) if delay is not None else 1.0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(session.wake.wait(), timeout)
            client.tick()
            await self._dispatch(session)

    # -- events -------------------------------------------------------------

    async def _emit(self, event: ConnectionEvent) -> None:
        await self._events.put(event)

    async def _dispatch(self, session: _Session) -> None:
        for event in session.client.events_received():
            out = self._observe(session, event)
            if out is not None:
                await self._emit(out)

    def _observe(self, session: _Session, event: Event) -> Event | None:
        client = session.client
        match event:
            case Registered():
                self.state = ConnState.CONNECTED
                self._after_registration(client)
                self._registered_once = True
                session.wake.set()
            case Join(is_me=True):
                self.channels[event.channel.lower()] = event.channel
            case Part(is_me=True) | Kick(is_me=True):
                self.channels.pop(event.channel.lower(), None)
            case Nick():
                old = self.queries.pop(event.old.lower(), None)
                if old is not None:
                    self.queries[event.new.lower()] = event.new
            case Message():
                if event.conversation and not event.is_channel:
                    key = event.conversation.lower()
                    self.queries.pop(key, None)
                    self.queries[key] = event.conversation  # most recent last
                    while len(self.queries) > MAX_QUERIES:
                        self.queries.pop(next(iter(self.queries)))
                if event.conversation:
                    self.seen.add(event.conversation, event)
            case History():
                fresh = self.seen.filter_new(event.target, event.messages)
                return History(event.target, tuple(fresh), event.label)
            case Error():
                log.info(
                    "irc %s: %s%s",
                    self.config.host,
                    event.message,
                    f" [{event.line!r}]" if event.line else "",
                )
        return event

    def _after_registration(self, client: Client) -> None:
        if self.channels:
            client.join(sorted(self.channels.values(), key=str.lower))
        for command in self.config.connect_commands:
            try:
                client.send_raw(command)
            except ValueError as exc:
                log.warning("irc %s: connect command refused: %s", self.config.host, exc)
        if "draft/chathistory" in client.caps:
            for target in [*self.channels.values(), *self.queries.values()]:
                anchor = self._anchor_for(target)
                if anchor is not None or not self._registered_once:
                    client.chathistory(target, anchor, self.config.history_limit)
