"""The REST API under ``/api``: one router per noun, included by :func:`include_api`."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from . import accounts, conversations, health, messages, networks
from .schemas import ErrorOut

PREFIX = "/api"
RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": {"model": ErrorOut, "description": "an error with a stable code"},
}
"""Given to every route, for the OpenAPI description."""

ROUTERS = (health, accounts, conversations, messages, networks)
"""In matching order. FastAPI (0.165) builds an included router's routes
(dependencies, validation models: ~1.5 ms a route) on the first request that
reaches them, trying routers in this order: ``/api/health`` first means a
just-started server answers its health check without building the other ~40
routes, which are built when first used (docs/performance/startup.md). No
two routers' paths overlap, so the order decides nothing else."""


def include_api(app: FastAPI) -> None:
    """Include every router under ``PREFIX``, in :data:`ROUTERS` order.

    Each is included into the app itself, with the prefix: a router included
    without a prefix (into a gathering router, say) has all its routes built at
    once to check that none has an empty path (~60 ms for the ~40 routes), and
    again when the app includes it; with one, each is built on first use.
    """
    for module in ROUTERS:
        app.include_router(module.router, prefix=PREFIX, responses=RESPONSES)
