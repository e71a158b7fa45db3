"""How the web layer answers errors: one JSON shape, a stable code, the right status.

Every error of the API is ``{"error": {"code": ..., "message": ...}}`` (plus
``field`` for a bad field and ``retry_after`` when rate-limited). The codes are
those of :mod:`hubbub.core.errors` plus the few only the web layer raises::

    HubbubError (core)
    ├── InvalidInput     bad_request      400
    │   ├── InvalidJson  invalid_json     400   the body is not JSON
    │   └── TooLong      too_long         400   (also a field over its bound)
    ├── Forbidden        forbidden        403
    │   └── CsrfFailed   csrf_failed      403   cookie request from a foreign origin
    ├── InvalidRequest   invalid_request  422   a field missing or of the wrong type
    ├── TooLarge         too_large        413   the request body is too big
    ├── Unavailable      unavailable      503
    └── Internal         internal         500   the text of the bug never leaks

Starlette's own 404 and 405 under ``/api`` become ``not_found`` and
``method_not_allowed``. Nothing from the request's input is echoed back in an
error (a password in a wrongly typed field must not come back in the answer).
"""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from ..core.errors import (
    Forbidden,
    HubbubError,
    InvalidInput,
    RateLimited,
    TooLong,
    Unauthorized,
)

log = logging.getLogger(__name__)


class InvalidJson(InvalidInput):
    code = "invalid_json"


class CsrfFailed(Forbidden):
    code = "csrf_failed"


class InvalidRequest(HubbubError):
    code = "invalid_request"
    status = 422


class TooLarge(HubbubError):
    code = "too_large"
    status = 413


class Unavailable(HubbubError):
    code = "unavailable"
    status = 503


class Internal(HubbubError):
    code = "internal"
    status = 500


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
}

MAX_FIELD = 64
_TOO_LONG_TYPES = frozenset({"string_too_long", "too_long", "bytes_too_long"})


def error_response(error: HubbubError) -> JSONResponse:
    body: dict[str, Any] = {"code": error.code, "message": error.message}
    headers: dict[str, str] = {}
    field = error.details.get("field")
    if isinstance(field, str):
        body["field"] = field
    if isinstance(error, Unauthorized):
        # RFC 9110, 15.5.2: a 401 names a scheme. Bearer (RFC 6750) makes no
        # browser pop up a password dialog, as Basic would.
        headers["WWW-Authenticate"] = 'Bearer realm="hubbub"'
    if isinstance(error, RateLimited):
        seconds = max(1, math.ceil(error.retry_after))
        body["retry_after"] = seconds
        headers["Retry-After"] = str(seconds)
    return JSONResponse({"error": body}, status_code=error.status, headers=headers)


def validation_error(exc: RequestValidationError) -> HubbubError:
    """The first problem of a request that failed validation, as one of our errors."""
    errors = exc.errors()
    if not errors:
        return InvalidRequest("the request is not valid")
    first = errors[0]
    kind = str(first.get("type", ""))
    loc = [str(part) for part in first.get("loc", ())]
    if kind == "json_invalid":
        return InvalidJson("the request body is not valid JSON")
    where = loc[0] if loc else "body"
    # An unknown key is named by the client: keep it short in the answer.
    field = (".".join(loc[1:]) or where)[:MAX_FIELD]
    # Pydantic's messages name the rule ("String should have at most 64
    # characters"), never the input, so they are safe to pass on.
    message = f"{field}: {first.get('msg', 'invalid')}"
    if field == "body":  # no body, or not an object (a list, or not sent as JSON)
        message = "the request body must be a JSON object (Content-Type: application/json)"
    if kind in _TOO_LONG_TYPES:
        return TooLong(message, field=field)
    return InvalidRequest(message, field=field)


def _under_api(request: Request) -> bool:
    path: str = request.scope.get("path", "")
    root: str = request.scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    return path == "/api" or path.startswith("/api/")


def install_error_handlers(app: FastAPI) -> None:
    """Render every error of the app in the one JSON shape."""

    async def on_hubbub_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HubbubError)
        return error_response(exc)

    async def on_validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return error_response(validation_error(exc))

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if not _under_api(request):
            return await http_exception_handler(request, exc)
        code = _HTTP_CODES.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else code
        if exc.status_code == 404:
            message = "no such endpoint"
        response = JSONResponse(
            {"error": {"code": code, "message": message}},
            status_code=exc.status_code,
            headers=exc.headers,
        )
        return response

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        # Starlette's ServerErrorMiddleware calls this, then re-raises so the
        # server logs the traceback once; the client sees no internals.
        return error_response(Internal("an internal error happened; it has been logged"))

    app.add_exception_handler(HubbubError, on_hubbub_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)
