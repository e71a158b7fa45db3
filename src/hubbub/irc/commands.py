"""Composer commands (``/join #c``, ``/msg bob hi`` …): parsing, and the lines they send.

:func:`parse` splits the composer's text into a verb and the rest;
:func:`send_command` sends what a verb means on a connected
:class:`~hubbub.irc.connection.Connection`. The verbs that are about Hubbub
rather than the wire (``/connect``, ``/disconnect``, ``/query``, ``/close``,
and the stored part of ``/nick``) are the service's.
"""

from __future__ import annotations

from ..core.errors import InvalidInput
from .connection import Connection
from .errors import NotConnected, SendQueueFull
from .policy import IrcNotConnected, IrcSendQueueFull, UnknownCommand


def parse(text: str) -> tuple[str, str]:
    """``(verb, rest)`` of one composer line, the verb in lower case."""
    text = text.strip()
    if not text.startswith("/") or any(c in text for c in "\r\n\x00"):
        raise InvalidInput("a command is one line that starts with /")
    verb, _, rest = text[1:].partition(" ")
    return verb.lower(), rest.strip()


def send_command(conn: Connection, verb: str, rest: str, here: str | None) -> None:
    """Send the lines of a wire command; ``here`` is the channel or nick it was typed in."""
    args = rest.split()
    try:
        if verb == "join":
            if not args:
                raise InvalidInput("/join needs a channel")
            conn.client.join(args[0].split(","), args[1].split(",") if len(args) > 1 else ())
        elif verb == "part":
            target, reason = target_and_rest(rest, here, channel=True)
            conn.part(target, reason)
        elif verb in ("msg", "notice"):
            target, body = target_and_rest(rest, None)
            if not body:
                raise InvalidInput(f"/{verb} needs a target and a text")
            if verb == "msg":
                conn.privmsg(target, body)
            else:
                conn.notice(target, body)
        elif verb == "me":
            if here is None or not rest:
                raise InvalidInput("/me needs a text, in a channel or query")
            conn.action(here, rest)
        elif verb == "nick":
            conn.client.set_nick(word(rest, "a nick"))
        elif verb == "topic":
            target, topic = target_and_rest(rest, here, channel=True)
            conn.client.send_line("TOPIC", [target, topic] if topic else [target])
        elif verb in ("whois", "names", "invite", "list", "away", "mode", "kick"):
            conn.client.send_raw(raw_line(verb, args, rest, here))
        elif verb == "quote":
            if not rest:
                raise InvalidInput("/quote needs a raw IRC line")
            conn.client.send_raw(rest)
        else:
            raise UnknownCommand(f"unknown command /{verb}")
    except NotConnected as exc:
        raise IrcNotConnected(str(exc)) from exc
    except SendQueueFull as exc:
        raise IrcSendQueueFull("the IRC send queue is full") from exc
    except ValueError as exc:
        raise InvalidInput(f"not a valid IRC line: {exc}") from exc
    conn.flush()


def word(rest: str, what: str) -> str:
    word = rest.split()[0] if rest.split() else ""
    if not word:
        raise InvalidInput(f"the command needs {what}")
    return word


def target_and_rest(rest: str, here: str | None, *, channel: bool = False) -> tuple[str, str]:
    first, _, tail = rest.partition(" ")
    if first and (not channel or first[:1] in "#&+!"):
        return first, tail.strip()
    if here is None:
        raise InvalidInput("the command needs a target")
    return here, rest


def raw_line(verb: str, args: list[str], rest: str, here: str | None) -> str:
    if verb == "away":
        return f"AWAY :{rest}" if rest else "AWAY"
    if verb == "list":
        return "LIST " + rest if rest else "LIST"
    if verb == "kick":
        if here is not None and (not args or args[0][:1] not in "#&+!"):
            args = [here, *args]
        if len(args) < 2:
            raise InvalidInput("/kick needs a nick")
        reason = " ".join(args[2:])
        return f"KICK {args[0]} {args[1]}" + (f" :{reason}" if reason else "")
    if here is not None and (
        (verb == "names" and not args) or (verb == "mode" and (not args or args[0][:1] in "+-"))
    ):
        args = [here, *args]
    if verb == "invite" and len(args) == 1 and here is not None:
        args = [args[0], here]
    if not args:
        raise InvalidInput(f"/{verb} needs an argument")
    return verb.upper() + " " + " ".join(args)
