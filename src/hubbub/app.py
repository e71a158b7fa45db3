"""The composition root: everything is built here, from settings, and passed down.

::

    services = await build_services(settings)   # data dir, store (migrated), bus, Hub, ...
    app = create_app(services)                  # the ASGI app: proxy, logs, metrics, API
    ...
    await close_services(services)              # bus, then store: queued commits flushed

:func:`serve` runs all of it on uvicorn until SIGTERM or SIGINT, then shuts
down gracefully: the listening socket closes, requests in flight get
``settings.shutdown_timeout`` seconds to finish, WebSockets are closed with
1001 (going away) by the WebSocket protocol's ``shutdown()``, and only then
are the bus and the store closed (the store commits what is queued and
disposes its engines). Nothing acknowledged is lost: an ack is only sent
after its commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import math
import signal
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import uvicorn
from starlette.types import ASGIApp

from . import __version__
from .auth.passwords import PasswordHasher
from .bus import LocalBus
from .config import Settings
from .core.accounts import Accounts
from .core.hub import Hub
from .core.ports import Bus
from .core.presence import PresenceRegistry
from .core.ratelimit import TokenBucket
from .core.tail import TailedStore
from .irc.cluster import LocalCluster
from .irc.secrets import SecretBox
from .irc.service import IrcPolicy, IrcService
from .logs import AccessLog
from .store import open_store
from .web.deps import Services
from .web.fanout import Fanout
from .web.http import create_web_app
from .web.metrics import CountingBus, Metrics, MetricsMiddleware
from .web.proxy import ProxyMiddleware

log = logging.getLogger(__name__)

WS_PROTOCOL = "hubbub.web.wsproto:HubbubWebSocketProtocol"
"""uvicorn's ``ws=``: the WebSocket protocol class that keeps ASGI off the broadcast path."""


def make_bus(settings: Settings) -> Bus:
    """In-process, or Redis when ``settings.redis_url`` is set."""
    if settings.redis_url:
        from .bus.redis import RedisBus  # imported only when used: startup time

        return RedisBus(settings.redis_url, settings.redis_channel)
    return LocalBus()


def make_presence_registry(settings: Settings) -> PresenceRegistry | None:
    """Several processes (Redis): who holds whom, so presence is global. One: none."""
    if settings.redis_url:
        from .bus.presence import RedisPresence

        return RedisPresence(settings.redis_url, settings.redis_channel, ttl=settings.presence_ttl)
    return None


def make_irc_cluster(settings: Settings) -> LocalCluster:
    """Which process connects which IRC network: all here, or by Redis leases."""
    if settings.redis_url:
        from .irc.cluster import RedisCluster

        return RedisCluster(
            settings.redis_url,
            settings.redis_channel,
            lease_seconds=settings.irc_lease_seconds,
            request_timeout=settings.irc_request_timeout,
        )
    return LocalCluster()


def make_hasher(settings: Settings) -> PasswordHasher:
    return PasswordHasher(
        time_cost=settings.argon2_time_cost,
        memory_cost=settings.argon2_memory_kib,
        parallelism=settings.argon2_parallelism,
    )


async def build_services(settings: Settings, *, metrics: Metrics | None = None) -> Services:
    """Create the data directory, open (and migrate) the store, start the bus, wire the rest."""
    started = time.perf_counter()
    metrics = metrics or Metrics()
    if settings.uses_sqlite():
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = TailedStore(  # catch-up reads of resuming clients from memory, shared
        open_store(settings.effective_database_url(), on_batch=metrics.observe_batch),
        max_messages=settings.history_tail_messages,
        max_bytes=settings.history_tail_memory,
        ttl=settings.history_tail_ttl,
    )
    for name, (doc, read) in store.tail.gauges().items():
        metrics.gauge_from(f"hubbub_catchup_cache_{name}", doc, read)
    bus: Bus = CountingBus(make_bus(settings), metrics)
    hub = Hub(
        store,
        bus,
        max_message_length=settings.max_message_length,
        max_topic_length=settings.max_topic_length,
        send_limiter=TokenBucket(rate=settings.send_rate, burst=settings.send_burst),
        presence_grace=settings.presence_grace,
        presence_registry=make_presence_registry(settings),
    )
    accounts = Accounts(store, settings, make_hasher(settings), bus)
    fanout = Fanout(send_buffer=settings.ws_send_buffer)
    bus.add_listener(fanout.on_event)  # before the bus starts: no event arrives unheard
    try:
        await store.start()  # migrates to the newest schema first
        await bus.start()
        await hub.start()  # several processes: presence registered, who is online read
    except BaseException:
        await hub.close()
        await bus.close()
        await store.close()
        raise
    metrics.count_ws_connections(fanout.connection_count)
    stats = getattr(store, "writer_stats", None)
    if stats is not None:
        metrics.gauge_from(
            "hubbub_store_commit_batches",
            "Group-commit transactions so far (with hubbub_store_committed_messages: mean batch size).",
            lambda: float(store.writer_stats.batches),
        )
        metrics.gauge_from(
            "hubbub_store_committed_messages",
            "Messages committed by the group-commit writer so far.",
            lambda: float(store.writer_stats.messages),
        )
    irc = IrcService(
        store,
        hub,
        bus,
        SecretBox.from_settings(settings.irc_secret_key, settings.data_dir),
        IrcPolicy(
            enabled=settings.irc_enabled,
            allowed_servers=tuple(settings.irc_allowed_servers),
            max_networks=settings.irc_max_networks,
            default_network=settings.irc_default_network,
            allow_private_addresses=settings.irc_allow_private_addresses,
        ),
        make_irc_cluster(settings),
    )
    hub.outbound = irc
    metrics.gauge_from(
        "hubbub_irc_networks_running",
        "IRC networks this process runs (several processes: holds the lease of).",
        lambda: float(irc.running_count()),
    )
    try:
        await irc.start()  # networks that were connected come back
    except BaseException:
        await irc.close()
        await bus.close()
        await store.close()
        raise
    log.debug("services built in %.0f ms", (time.perf_counter() - started) * 1000)
    return Services(
        settings=settings,
        store=store,
        bus=bus,
        hub=hub,
        accounts=accounts,
        fanout=fanout,
        metrics=metrics,
        irc=irc,
    )


async def close_services(services: Services) -> None:
    """QUIT IRC networks, close the bus, then the store (commits what is queued)."""
    try:
        if services.irc is not None:
            await services.irc.close()
        await services.hub.close()
        await services.bus.close()
    finally:
        await services.store.close()


def create_app(services: Services) -> ASGIApp:
    """The whole ASGI app: proxy support, access log, metrics, then the API and static files."""
    settings = services.settings
    metrics = services.metrics or Metrics()
    web = create_web_app(services)
    if settings.metrics:
        web.add_route("/metrics", metrics.endpoint, include_in_schema=False)
    app: ASGIApp = MetricsMiddleware(web, metrics)
    if settings.access_log:
        app = AccessLog(app)
    return ProxyMiddleware(app, settings)


def uvicorn_config(app: ASGIApp, settings: Settings) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="none",  # the caller's loop (uvloop from `hubbub serve`)
        http="httptools",
        ws=WS_PROTOCOL,
        ws_max_size=settings.max_ws_frame,
        ws_ping_interval=settings.ws_ping_interval,
        ws_ping_timeout=settings.ws_ping_interval,
        ws_per_message_deflate=False,  # frames are built once and shared by every socket
        lifespan="on",
        log_config=None,  # logging is ours (hubbub.logs)
        access_log=False,  # AccessLog logs paths without query strings
        # ProxyMiddleware handles forwarded headers (trusted peers only, and the
        # base path); uvicorn's own would trust X-Forwarded-For from 127.0.0.1 by
        # default and hide the real peer from ProxyMiddleware.
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=math.ceil(settings.shutdown_timeout),
    )


class HubbubServer(uvicorn.Server):
    """uvicorn's server, logging how long startup took; signal capture optional."""

    def __init__(
        self, config: uvicorn.Config, *, capture_signals: bool = True, started: float | None = None
    ) -> None:
        super().__init__(config)
        self._capture = capture_signals
        self._t0 = started if started is not None else time.perf_counter()
        self.bound_port: int | None = None
        self.base_path = ""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if not self._capture:
            yield
            return
        with super().capture_signals():
            yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        # What startup made (imports, the app, caches: ~155k objects) lives as
        # long as the process: out of the cyclic GC's way, so full passes during
        # a connection storm walk only what connections made (issue 5; GC time
        # per 5000 connects 0.6-0.9 s -> 0.13-0.27 s, docs/performance/connections.md).
        gc.freeze()
        gc.enable()  # paused while starting: see serve()
        for server in getattr(self, "servers", []):
            for sock in server.sockets:
                self.bound_port = sock.getsockname()[1]
                break
        if self.started:
            log.info(
                "Hubbub %s listening on http://%s:%s%s/ (ready in %.0f ms)",
                __version__,
                f"[{self.config.host}]" if ":" in self.config.host else self.config.host,
                self.bound_port,
                self.base_path,
                (time.perf_counter() - self._t0) * 1000,
            )


class StopSignals:
    """SIGTERM and SIGINT, before and after uvicorn handles them itself.

    Installed before startup, so a stop asked for while the store migrates is
    honoured (Hubbub then exits 0 without serving), and kept after uvicorn's
    shutdown, which restores the handlers it found and raises the signal
    again: that must not kill the process before the store is closed.
    Only the main thread may install signal handlers; elsewhere this is inert.
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self, *, requested: bool = False) -> None:
        self.requested = requested
        self.server: uvicorn.Server | None = None
        self._previous: dict[int, Any] = {}

    def handle(self, signum: int, frame: object) -> None:
        self.requested = True
        if self.server is not None:
            self.server.should_exit = True

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            self._previous = {sig: signal.signal(sig, self.handle) for sig in self.SIGNALS}
        return self

    def __exit__(self, *exc_info: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


async def serve(
    settings: Settings, *, started: float | None = None, stop_requested: bool = False
) -> None:
    """Run Hubbub until SIGTERM or SIGINT; return after a graceful shutdown.

    The cyclic garbage collector is paused until the server listens (then
    :meth:`HubbubServer.startup` freezes what startup made and resumes it):
    startup makes ~120k objects that all live as long as the process, and
    collecting them again and again while they are made was ~15 % of the time
    to the first answer (docs/performance/startup.md). The few hundred
    unreachable objects startup leaves (~0.2 MB) are frozen with the rest.
    ``hubbub serve`` pauses it already before importing this module.
    """
    t0 = started if started is not None else time.perf_counter()
    gc.disable()
    try:
        with StopSignals(requested=stop_requested) as stop:
            services = await build_services(settings)
            try:
                if stop.requested:
                    log.info("stop requested while starting: not serving")
                    return
                server = HubbubServer(
                    uvicorn_config(create_app(services), settings),
                    capture_signals=True,
                    started=t0,
                )
                server.base_path = settings.base_path
                stop.server = server
                await server.serve()
            finally:
                log.info("closing the bus and the store")
                await close_services(services)
                log.info("stopped")
    finally:
        gc.enable()


def run(settings: Settings, *, started: float | None = None, stop_requested: bool = False) -> None:
    """Blocking entry point for ``hubbub serve``: uvloop when available."""
    try:
        import uvloop

        loop_factory: Any = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvloop is a dependency, except on Windows
        loop_factory = None
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(serve(settings, started=started, stop_requested=stop_requested))
