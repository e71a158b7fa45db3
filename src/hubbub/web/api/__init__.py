"""The REST API under ``/api``: one router per noun, gathered by :func:`api_router`."""

from __future__ import annotations

from fastapi import APIRouter

from . import accounts, conversations, health, messages, networks
from .schemas import ErrorOut

ROUTERS = (health, accounts, conversations, messages, networks)
"""In matching order. FastAPI (0.165) builds an included router's routes on
the first request that reaches it (dependencies, validation models: ~1.5 ms a
route), trying routers in this order; ``/api/health`` first means the health
check of a just-started server does not wait for the other ~40 routes, which
are built when first used (docs/performance/startup.md). No two routers'
paths overlap, so the order decides nothing else."""


def api_router() -> APIRouter:
    router = APIRouter(
        prefix="/api",
        responses={
            "4XX": {"model": ErrorOut, "description": "an error with a stable code"},
        },
    )
    for module in ROUTERS:
        router.include_router(module.router)
    return router
