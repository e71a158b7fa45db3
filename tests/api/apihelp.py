"""Helpers shared by the API tests (fixtures are in conftest.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx

BASE = "http://testserver"
ORIGIN = {"Origin": BASE}
PASSWORD = "correct horse battery"

ClientFactory = Callable[..., Awaitable[httpx.AsyncClient]]
"""The ``client_factory`` fixture: ``await client_factory("name")`` registers and logs in."""


def error_code(response: httpx.Response) -> str:
    """The error code of an error answer, checking the one JSON shape of errors."""
    body = response.json()
    assert set(body) == {"error"}, body
    assert isinstance(body["error"]["message"], str)
    code: str = body["error"]["code"]
    return code
