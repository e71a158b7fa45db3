"""``/api/health``: for load balancers and monitors; no authentication."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter

from ..errors import Unavailable
from .common import ServicesDep
from .schemas import ErrorOut, HealthOut

router = APIRouter(tags=["operations"])
log = logging.getLogger(__name__)

STORE_TIMEOUT = 5.0


@router.get("/health", responses={503: {"model": ErrorOut}})
async def health(services: ServicesDep) -> HealthOut:
    """``ok`` when the store answers within a few seconds, else 503 ``unavailable``."""
    try:
        async with asyncio.timeout(STORE_TIMEOUT):
            await services.store.count_users()
    except Exception as exc:
        log.warning("health check: the store did not answer: %s", type(exc).__name__)
        raise Unavailable("the store does not answer") from exc
    return HealthOut(status="ok")
