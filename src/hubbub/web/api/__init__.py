"""The REST API under ``/api``: one router per noun, gathered by :func:`api_router`."""

from __future__ import annotations

from fastapi import APIRouter

from . import accounts, conversations, health, messages
from .schemas import ErrorOut

MAX_BODY = 1 << 20
"""Bytes in a request body: room for the longest message JSON-escaped."""


def api_router() -> APIRouter:
    router = APIRouter(
        prefix="/api",
        max_body_size=MAX_BODY,
        responses={
            "4XX": {"model": ErrorOut, "description": "an error with a stable code"},
        },
    )
    for module in (accounts, conversations, messages, health):
        router.include_router(module.router)
    return router
