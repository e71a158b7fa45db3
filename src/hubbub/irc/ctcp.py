"""CTCP: ``\\x01COMMAND argument\\x01`` inside PRIVMSG (requests) and NOTICE (replies).

ACTION (``/me``) is the only CTCP that is a message; VERSION, PING and TIME
get an automatic reply, at most :data:`REPLY_BURST` replies per
:data:`REPLY_WINDOW` seconds so a flood of requests cannot make us flood the
server (the rest are reported but not answered).
"""

from __future__ import annotations

from dataclasses import dataclass

from .throttle import TokenBucket

DELIM = "\x01"
REPLY_BURST = 3
REPLY_WINDOW = 10.0


@dataclass(frozen=True, slots=True)
class Ctcp:
    command: str
    argument: str


def parse(text: str) -> Ctcp | None:
    """The CTCP in a message text, or None. The closing ``\\x01`` is optional."""
    if len(text) < 2 or not text.startswith(DELIM):
        return None
    body = text[1:]
    if body.endswith(DELIM):
        body = body[:-1]
    command, _, argument = body.partition(" ")
    if not command or DELIM in command:
        return None
    return Ctcp(command.upper(), argument)


def wrap(command: str, argument: str = "") -> str:
    return f"{DELIM}{command} {argument}{DELIM}" if argument else f"{DELIM}{command}{DELIM}"


def reply_limiter() -> TokenBucket:
    return TokenBucket(burst=REPLY_BURST, interval=REPLY_WINDOW / REPLY_BURST)
