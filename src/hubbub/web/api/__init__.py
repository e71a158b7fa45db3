"""The REST API under ``/api``: one router per noun, gathered by :func:`api_router`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

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


def api_router() -> APIRouter:
    """The routers, to include with ``prefix=PREFIX, responses=RESPONSES``.

    Included without a prefix, a router's routes are all built at once to
    check that none has an empty path; with one, they are built on first use.
    """
    router = APIRouter()
    for module in ROUTERS:
        router.include_router(module.router)
    return router
