"""The REST API under ``/api``: one router per noun, gathered by :func:`api_router`."""

from __future__ import annotations

from fastapi import APIRouter

from . import accounts, conversations, health, messages, networks
from .schemas import ErrorOut


def api_router() -> APIRouter:
    router = APIRouter(
        prefix="/api",
        responses={
            "4XX": {"model": ErrorOut, "description": "an error with a stable code"},
        },
    )
    for module in (accounts, conversations, messages, networks, health):
        router.include_router(module.router)
    return router
