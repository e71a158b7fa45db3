"""Logs: text or JSON lines, and no secret ever written."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from hubbub.logs import REDACTED, configure, redact

SECRET = "s3cr3t-Value_42"

LEAKY_LINES = [
    f"login password={SECRET}",
    f"GET /api/ws?token={SECRET}&x=1",
    f'{{"password": "{SECRET}", "name": "alice"}}',
    f"{{'new_password': '{SECRET}'}}",
    f"Authorization: Bearer {SECRET}",
    f"headers: {{'authorization': 'Bearer {SECRET}'}}",
    f"Cookie: hubbub_session={SECRET}; theme=dark",
    f"Set-Cookie: hubbub_session={SECRET}; HttpOnly; Path=/",
    f"[(b'cookie', b'hubbub_session={SECRET}')]",
    f"api token hb_{SECRET} created",
    f"connecting to postgresql+asyncpg://hubbub:{SECRET}@db/hubbub",
    f"redis://:{SECRET}@cache:6379/0",
    f"session_id: {SECRET}",
    f"csrf_token={SECRET}",
]


@pytest.mark.parametrize("line", LEAKY_LINES)
def test_redact_removes_the_secret(line: str) -> None:
    out = redact(line)
    assert SECRET not in out
    assert REDACTED in out


@pytest.mark.parametrize(
    "line",
    [
        "room lobby created by alice",
        "close code=1001 reason=going away",
        "GET /api/rooms/12/messages 200 3.1ms",
        "batch of 12 messages committed in 3 ms",
    ],
)
def test_redact_leaves_ordinary_lines_alone(line: str) -> None:
    assert redact(line) == line


@pytest.fixture
def capture() -> Iterator[tuple[io.StringIO, logging.Logger]]:
    stream = io.StringIO()
    root = logging.getLogger()
    before = (list(root.handlers), root.level)
    yield stream, logging.getLogger("hubbub.test")
    for handler in list(root.handlers):
        if getattr(handler, "_hubbub", False):
            root.removeHandler(handler)
    root.handlers[:] = before[0]
    root.setLevel(before[1])


def test_text_logs_never_contain_a_secret(capture: tuple[io.StringIO, logging.Logger]) -> None:
    stream, log = capture
    configure("info", "text", stream=stream)
    log.info("user %s logged in with password=%s", "alice", SECRET)
    log.info(
        "headers %r", {"cookie": f"hubbub_session={SECRET}", "authorization": f"Bearer {SECRET}"}
    )
    log.warning("token", extra={"token_value": f"hb_{SECRET}"})
    try:
        raise ValueError(f"bad credentials password={SECRET}")
    except ValueError:
        log.exception("login failed")
    out = stream.getvalue()
    assert SECRET not in out
    assert "user alice logged in with password=[REDACTED]" in out
    assert "Traceback" in out
    assert "INFO" in out and "hubbub.test" in out


def test_json_logs_are_one_object_per_line_without_secrets(
    capture: tuple[io.StringIO, logging.Logger],
) -> None:
    stream, log = capture
    configure("debug", "json", stream=stream)
    log.debug("login password=%s", SECRET, extra={"user": "alice"})
    log.info("Authorization: Bearer %s", SECRET)
    try:
        raise RuntimeError(f"token={SECRET}")
    except RuntimeError:
        log.exception("oops")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3
    entries = [json.loads(line) for line in lines]
    assert entries[0]["level"] == "debug"
    assert entries[0]["logger"] == "hubbub.test"
    assert entries[0]["user"] == "alice"
    assert entries[0]["msg"] == "login password=[REDACTED]"
    assert "exc" in entries[2]
    assert SECRET not in stream.getvalue()


def test_level_filters(capture: tuple[io.StringIO, logging.Logger]) -> None:
    stream, log = capture
    configure("warning", "text", stream=stream)
    log.info("quiet")
    log.warning("loud")
    assert "quiet" not in stream.getvalue()
    assert "loud" in stream.getvalue()
