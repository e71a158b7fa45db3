"""Prometheus metrics, served at ``/metrics``.

Each app has its own :class:`Metrics` with its own ``CollectorRegistry`` (no
global state: two apps in one test process do not share counts). The hooks
other modules call are plain methods that do one counter or histogram
operation each, cheap enough for hot paths:

- :meth:`Metrics.ws_opened` / :meth:`Metrics.ws_closed`: WebSocket connections;
- :meth:`Metrics.message_posted`: one message committed (the composition root
  counts them at the bus, see :class:`CountingBus`);
- :meth:`Metrics.observe_batch`: the size of one group-commit batch.

:class:`MetricsMiddleware` counts HTTP requests by route template (never the
raw path, so the label set stays small) and status.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..core.events import Event
from ..core.ports import Bus, EventListener

_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.http_requests = Counter(
            "hubbub_http_requests",
            "HTTP requests answered, by route template and status.",
            ["method", "route", "status"],
            registry=r,
        )
        self.http_latency = Histogram(
            "hubbub_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template.",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.ws_connections = Gauge(
            "hubbub_ws_connections", "WebSocket connections open now.", registry=r
        )
        self.ws_opened_total = Counter(
            "hubbub_ws_connections_opened", "WebSocket connections accepted.", registry=r
        )
        self.messages = Counter(
            "hubbub_messages_posted", "Messages committed by this process.", registry=r
        )
        self.batch_size = Histogram(
            "hubbub_store_commit_batch_size",
            "Messages per group-commit transaction.",
            buckets=_BATCH_BUCKETS,
            registry=r,
        )
        self._ws_counted_elsewhere = False
        # Bound methods of the children, so each hook is one call.
        self._ws_inc = self.ws_connections.inc
        self._ws_dec = self.ws_connections.dec
        self._opened_inc = self.ws_opened_total.inc
        self._messages_inc = self.messages.inc
        self._batch_observe = self.batch_size.observe

    # hooks ------------------------------------------------------------------
    def ws_opened(self) -> None:
        if not self._ws_counted_elsewhere:
            self._ws_inc()
        self._opened_inc()

    def ws_closed(self) -> None:
        if not self._ws_counted_elsewhere:
            self._ws_dec()

    def count_ws_connections(self, read: Callable[[], float]) -> None:
        """Read the open-connection gauge from ``read`` at scrape time (the fan-out's
        own count), instead of counting ws_opened/ws_closed calls."""
        self.ws_connections.set_function(read)
        self._ws_counted_elsewhere = True

    def message_posted(self, count: int = 1) -> None:
        self._messages_inc(count)

    def observe_batch(self, size: int) -> None:
        self._batch_observe(size)

    def gauge_from(self, name: str, documentation: str, read: Callable[[], float]) -> None:
        """A gauge whose value is read at scrape time (queue lengths and the like)."""
        Gauge(name, documentation, registry=self.registry).set_function(read)

    # exposition -----------------------------------------------------------------
    def render(self) -> bytes:
        return bytes(generate_latest(self.registry))

    async def endpoint(self, request: Request) -> Response:
        return Response(self.render(), media_type=CONTENT_TYPE_LATEST)


class MetricsMiddleware:
    """Counts every HTTP request by method, route template and status."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500
        root_path = scope.get("root_path", "")

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = route_template(scope, root_path)
            self.metrics.http_requests.labels(scope["method"], route, str(status)).inc()
            self.metrics.http_latency.labels(route).observe(time.perf_counter() - start)


def route_template(scope: Scope, root_path: str = "") -> str:
    """The matched route's path template (``/api/rooms/{room_id}``), or ``unmatched``.

    Routes inside a mount know only their own part of the path: the mount's
    prefix is what routing added to ``root_path`` beyond the app's own.
    """
    route = scope.get("route")
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    if not isinstance(path, str):
        return "unmatched"
    mounted: str = scope.get("root_path", "")
    if mounted.startswith(root_path) and len(mounted) > len(root_path):
        return mounted[len(root_path) :] + path
    return path


class CountingBus:
    """A Bus that counts the messages published through it, then passes them on.

    Every stored message is published exactly once by the process that
    committed it (an event with a ``seq``), so counting here counts messages
    committed by this process without a hook in the Hub.
    """

    def __init__(self, bus: Bus, metrics: Metrics) -> None:
        self.inner = bus
        self._count = metrics.message_posted

    async def start(self) -> None:
        await self.inner.start()

    async def close(self) -> None:
        await self.inner.close()

    async def publish(self, event: Event) -> None:
        if event.seq is not None and event.control is None:
            self._count()
        await self.inner.publish(event)

    def add_listener(self, listener: EventListener) -> None:
        self.inner.add_listener(listener)
