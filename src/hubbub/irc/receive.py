"""Turning channel, user and message lines into events: the part of the
client that reads (joins, parts, kicks, quits, topics, modes, NAMES, user
updates, PRIVMSG/NOTICE and CTCP).

A mixin of :class:`~hubbub.irc.client.Client`; ircstates has already applied
the line to the state when a handler runs. Handlers are named ``_on_<command>``
and return the events of the line.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ircstates.server import Server
from irctokens.line import Line

from . import ctcp
from .config import ClientConfig
from .ctcp import Ctcp
from .events import (
    CtcpReply,
    CtcpRequest,
    Event,
    Invite,
    Join,
    Kick,
    Member,
    Message,
    MessageKind,
    Mode,
    Names,
    Numeric,
    Part,
    Quit,
    Topic,
    UserUpdate,
)
from .state import State
from .throttle import TokenBucket


class Receiving:
    """Event handlers for what other users do, and the messages."""

    if TYPE_CHECKING:
        server: Server
        config: ClientConfig
        state: State
        wanted_nick: str
        clock: Callable[[], float]
        wallclock: Callable[[], datetime]
        _ctcp_bucket: TokenBucket

        @property
        def nick(self) -> str: ...

        def _send(
            self, command: str, params: list[str], tags: dict[str, str] | None = None
        ) -> None: ...

        def _try_regain(self) -> None: ...

    def _time(self, line: Line) -> datetime:
        stamp = (line.tags or {}).get("time")
        if stamp:
            try:
                parsed = datetime.fromisoformat(stamp)
            except ValueError:
                parsed = None
            if parsed is not None:
                return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        return self.wallclock()

    def _source_nick(self, line: Line) -> str:
        return line.hostmask.nickname if line.source else ""

    def _is_me(self, nick: str) -> bool:
        return bool(nick) and self.server.casefold(nick) == self.server.casefold(self.nick)

    def _channels_of(self, nick: str) -> tuple[str, ...]:
        user = self.server.users.get(self.server.casefold(nick))
        if user is None:
            return ()
        names = []
        for lower in sorted(user.channels):
            channel = self.server.channels.get(lower)
            names.append(channel.name if channel else lower)
        return tuple(names)

    def _msgid(self, line: Line) -> str | None:
        return (line.tags or {}).get("msgid")

    def _on_join(self, line: Line, *_: object) -> list[Event]:
        nick = self._source_nick(line)
        account = realname = None
        if len(line.params) >= 3:  # extended-join: channel account realname
            account = None if line.params[1] == "*" else line.params[1]
            realname = line.params[2]
        host = line.hostmask
        userhost = f"{host.username}@{host.hostname}" if host.username and host.hostname else None
        return [
            Join(
                line.params[0],
                nick,
                self._time(line),
                userhost,
                account,
                realname,
                self._is_me(nick),
                self._msgid(line),
            )
        ]

    def _on_part(self, line: Line, *_: object) -> list[Event]:
        nick = self._source_nick(line)
        reason = line.params[1] if len(line.params) > 1 else ""
        return [
            Part(
                line.params[0], nick, reason, self._time(line), self._is_me(nick), self._msgid(line)
            )
        ]

    def _on_kick(self, line: Line, *_: object) -> list[Event]:
        reason = line.params[2] if len(line.params) > 2 else ""
        kicked = line.params[1]
        return [
            Kick(
                line.params[0],
                kicked,
                self._source_nick(line),
                reason,
                self._time(line),
                self._is_me(kicked),
                self._msgid(line),
            )
        ]

    def _on_quit(self, line: Line, before: tuple[str, ...], _old: str) -> list[Event]:
        nick = self._source_nick(line)
        if self.server.casefold(nick) == self.server.casefold(self.wanted_nick):
            self._try_regain()
        reason = line.params[0] if line.params else ""
        return [Quit(nick, reason, self._time(line), before, self._msgid(line))]

    def _on_topic(self, line: Line, *_: object) -> list[Event]:
        topic = line.params[1] if len(line.params) > 1 else ""
        return [Topic(line.params[0], topic, self._time(line), self._source_nick(line), True)]

    def _on_332(self, line: Line, *_: object) -> list[Event]:
        return [Topic(line.params[1], line.params[2], self._time(line))]

    def _on_mode(self, line: Line, *_: object) -> list[Event]:
        return [
            Mode(
                line.params[0],
                tuple(line.params[1:]),
                self._time(line),
                self._source_nick(line) or None,
            )
        ]

    def _unabsorbed(self, line: Line) -> list[Event]:
        """A NAMES reply no channel state takes (``/names #c`` of a channel we are
        not in): a plain reply, for the server buffer."""
        label = (line.tags or {}).get("label")
        return [Numeric(line.command, tuple(line.params), self._time(line), label)]

    def _on_353(self, line: Line, *_: object) -> list[Event]:
        if len(line.params) < 3 or self.server.casefold(line.params[2]) in self.server.channels:
            return []  # a channel we are in: its state took the names (Names at 366)
        return self._unabsorbed(line)

    def _on_366(self, line: Line, *_: object) -> list[Event]:
        if len(line.params) < 2:
            return []
        channel = self.server.channels.get(self.server.casefold(line.params[1]))
        if channel is None:
            return self._unabsorbed(line)
        prefix = self.server.isupport.prefix
        members = []
        for cuser in channel.users.values():
            nick = cuser.nickname
            marks = "".join(
                p for m, p in zip(prefix.modes, prefix.prefixes, strict=False) if m in cuser.modes
            )
            members.append(Member(nick, marks))
        members.sort(key=lambda m: m.nick.lower())
        return [Names(channel.name, tuple(members))]

    def _user_update(self, line: Line, what: str, value: str | None) -> list[Event]:
        return [UserUpdate(self._source_nick(line), what, value, self._time(line))]

    def _on_away(self, line: Line, *_: object) -> list[Event]:
        return self._user_update(line, "away", line.params[0] if line.params else None)

    def _on_account(self, line: Line, *_: object) -> list[Event]:
        account = line.params[0]
        return self._user_update(line, "account", None if account == "*" else account)

    def _on_chghost(self, line: Line, *_: object) -> list[Event]:
        return self._user_update(line, "host", f"{line.params[0]}@{line.params[1]}")

    def _on_setname(self, line: Line, *_: object) -> list[Event]:
        return self._user_update(line, "realname", line.params[0])

    def _on_invite(self, line: Line, *_: object) -> list[Event]:
        return [Invite(self._source_nick(line), line.params[1], self._time(line))]

    def _on_ack(self, line: Line, *_: object) -> list[Event]:
        return []  # labeled-response ACK: _route turns it into an empty LabeledResponse

    # -- messages ------------------------------------------------------------

    def _on_privmsg(self, line: Line, *_: object) -> list[Event]:
        return self._message(line)

    _on_notice = _on_privmsg

    def _message(self, line: Line) -> list[Event]:
        if len(line.params) < 2:
            raise ValueError(f"{line.command} without text")
        tags = line.tags or {}
        target, text = line.params[0], line.params[1]
        when = self._time(line)
        is_server = not line.source or "!" not in line.source
        nick = self._source_nick(line) if not is_server or not line.source else line.source
        own = not is_server and self._is_me(nick)
        bare = target.lstrip("".join(self.server.isupport.statusmsg))
        is_channel = bool(bare) and self.server.is_channel(bare)
        if is_channel:
            conversation = bare
        elif is_server:
            conversation = ""
        else:
            conversation = target if own else nick
        self._forget_stranger(nick)
        request = ctcp.parse(text)
        kind = MessageKind.NOTICE if line.command == "NOTICE" else MessageKind.PRIVMSG
        if request is not None:
            if request.command != "ACTION":
                return self._ctcp(line.command, nick, target, request, when, own)
            if kind is MessageKind.PRIVMSG:
                kind, text = MessageKind.ACTION, request.argument
        host = line.hostmask if line.source and not is_server else None
        userhost = (
            f"{host.username}@{host.hostname}" if host and host.username and host.hostname else None
        )
        return [
            Message(
                target=target,
                conversation=conversation,
                nick=nick,
                text=text,
                kind=kind,
                time=when,
                msgid=tags.get("msgid"),
                tags=dict(tags),
                is_echo=own,
                own=own,
                is_channel=is_channel,
                userhost=userhost,
                account=tags.get("account"),
                batch=tags.get("batch"),
                label=tags.get("label"),
            )
        ]

    def _ctcp(
        self, command: str, nick: str, target: str, request: Ctcp, when: datetime, own: bool
    ) -> list[Event]:
        if command == "NOTICE":
            return [CtcpReply(nick, request.command, request.argument, when)]
        answer: str | None = None
        if request.command == "VERSION":
            answer = self.config.version
        elif request.command == "PING":
            answer = request.argument
        elif request.command == "TIME":
            answer = self.wallclock().strftime("%a %b %d %H:%M:%S %Y UTC")
        elif request.command == "CLIENTINFO":
            answer = "ACTION CLIENTINFO PING TIME VERSION"
        replied = False
        if (
            answer is not None
            and not own
            and self.state is State.REGISTERED
            and self._ctcp_bucket.take(self.clock())
        ):
            reply = ctcp.wrap(request.command, answer[:400])
            self._send("NOTICE", [nick, reply])
            replied = True
        return [CtcpRequest(nick, target, request.command, request.argument, when, replied)]

    def _forget_stranger(self, nick: str) -> None:
        # ircstates creates a user for everyone who messages us; drop those we
        # share no channel with, so a stream of strangers cannot grow memory.
        lower = self.server.casefold(nick) if nick else ""
        user = self.server.users.get(lower)
        if user is not None and not user.channels and lower != self.server.nickname_lower:
            del self.server.users[lower]
