"""Structured logging: text for people or one JSON object per line, secrets redacted.

:func:`configure` installs one handler on the root logger (uvicorn's and every
library's records go through it). Its :class:`RedactingFilter` rewrites each
record before any formatter sees it: the message, its arguments, the
traceback and extra fields pass through :func:`redact`, which blanks
everything that looks like a secret: ``password=...`` and friends (also in
JSON and query strings), ``Authorization``, ``Cookie`` and ``Set-Cookie``
values, bearer tokens, Hubbub API tokens (``hb_...``) and passwords inside
URLs. The formatters redact their final line once more, so a secret that
slipped into a record in some other way is still never written.

Access lines come from :class:`AccessLog`, which logs the path without the
query string: secrets in query strings never reach the log at all.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REDACTED = "[REDACTED]"

# Names of secrets, not a secret:
_SECRET_KEYS = "|".join(
    [
        "password",
        "passwd",
        "pwd",
        "pass",
        "secret",
        "token",
        "access_token",
        "refresh_token",
        "api_key",
        "apikey",
        "session",
        "session_id",
        "sessionid",
        "sid",
        "csrf",
        "csrf_token",
        "auth",
        "invite_code",
        "join_code",
    ]
)
_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # Authorization: Bearer xyz / Cookie: a=b; c=d / Set-Cookie: ... (to the end of the line)
    (
        re.compile(
            r"(?i)\b((?:proxy-)?authorization|cookie|set-cookie|x-api-key|x-auth-token)"
            r"(['\"]?\s*[:=,]\s*\(?['\"]?)[^\r\n'\"]+"
        ),
        rf"\1\2{REDACTED}",
    ),
    # "password": "xyz"  /  'token': 'xyz'  (JSON and Python reprs)
    (
        re.compile(
            rf"(?i)(['\"](?:[\w-]*_)?(?:{_SECRET_KEYS})['\"]\s*:\s*)(['\"])(?:\\.|(?!\2).)*\2"
        ),
        rf"\1\2{REDACTED}\2",
    ),
    # password=xyz, ?token=xyz&, secret: xyz
    (
        re.compile(
            rf"(?i)\b((?:[\w-]*_)?(?:{_SECRET_KEYS}))(\s*[=:]\s*)(?!\[REDACTED\])[^\s&;,'\"]+"
        ),
        rf"\1\2{REDACTED}",
    ),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{6,}"), rf"\1 {REDACTED}"),
    (re.compile(r"\bhb_[A-Za-z0-9_-]{8,}"), f"hb_{REDACTED}"),
    # scheme://user:password@host
    (re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]*:)[^@\s/]+@"), rf"\1{REDACTED}@"),
]


def redact(text: str) -> str:
    """``text`` with everything that looks like a secret replaced by ``[REDACTED]``."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


_STANDARD_ATTRS = frozenset(
    logging.LogRecord("", 0, "", 0, "", (), None).__dict__.keys()
    | {"message", "asctime", "color_message"}  # uvicorn's colored copy of the message
)


class RedactingFilter(logging.Filter):
    """Rewrites a record so that no secret survives in it; never drops one."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not lose the line
            message = f"{record.msg!r} % {record.args!r}"
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        for key, value in list(record.__dict__.items()):
            if key not in _STANDARD_ATTRS and isinstance(value, str):
                setattr(record, key, redact(value))
        return True


class QuietLibraries(logging.Filter):
    """Drops chatter that says nothing to an operator (alembic's per-start banner)."""

    _BANNERS = ("Context impl ", "Will assume ")

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "alembic.runtime.migration" and isinstance(record.msg, str):
            return not record.msg.startswith(self._BANNERS)
        return True


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, extra fields, exc."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc"] = record.exc_text
        line = orjson.dumps(entry, default=str).decode()
        return redact(line)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (tests swap it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def configure(level: str = "info", fmt: str = "text", *, stream: Any = None) -> logging.Handler:
    """Send every log record to ``stream`` (stderr) in ``fmt``, secrets redacted."""
    handler: logging.Handler = (
        logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    )
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(QuietLibraries())
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_hubbub", False):
            root.removeHandler(old)
    handler._hubbub = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level.upper())
    # uvicorn's own access log is off (see AccessLog); its error log is ours.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    return handler


access_log = logging.getLogger("hubbub.access")


class AccessLog:
    """ASGI middleware: one line per HTTP request, without the query string."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            client = scope.get("client")
            access_log.info(
                '%s "%s %s" %d %.1fms',
                client[0] if client else "-",
                scope["method"],
                scope["path"],
                status,
                (time.perf_counter() - start) * 1000,
            )
