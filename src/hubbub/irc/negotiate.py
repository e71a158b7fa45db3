"""Capability negotiation (IRCv3 capability-negotiation, CAP 302) and SASL
(IRCv3 sasl-3.1/3.2) during registration.

A mixin of :class:`~hubbub.irc.client.Client`. The order, from
:meth:`Client.connect`: ``CAP LS 302`` → (multi-line LS collected) → ``CAP REQ``
for the wanted caps on offer → every REQ answered (ACK/NAK) → ``AUTHENTICATE``
when SASL is configured and acked → 903/907 success or 902/904/905/906 failure
→ ``CAP END`` (or QUIT when SASL is required and failed). ``CAP NEW``/``DEL``
are handled at any time.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from ircstates.server import Server
from irctokens.line import Line

from . import sasl
from .config import ClientConfig
from .events import CapsChanged, Event, Numeric, SaslResult, UserUpdate
from .state import State


class Negotiating:
    """CAP and SASL handlers."""

    if TYPE_CHECKING:
        server: Server
        config: ClientConfig
        state: State
        caps: set[str]
        _events: list[Event]
        _ls: dict[str, str]
        _cap_pending: int
        _cap_open: bool
        _sasl_state: str | None

        @property
        def nick(self) -> str: ...

        def _send(
            self, command: str, params: list[str], tags: dict[str, str] | None = None
        ) -> None: ...

        def _abort(self, reason: str) -> None: ...

        def _time(self, line: Line) -> datetime: ...

        clock: Callable[[], float]

    def _on_cap(self, line: Line, *_: object) -> list[Event]:
        sub = line.params[1].upper()
        multiline = len(line.params) > 3 and line.params[2] == "*"
        tokens = line.params[-1].split()
        values = {k: v for k, _, v in (t.partition("=") for t in tokens)}
        if sub == "LS":
            self._ls.update(values)
            if not multiline:
                self._request(self._ls)
        elif sub == "ACK":
            added = {k.lstrip("-") for k in values if not k.startswith("-")}
            removed = {k[1:] for k in values if k.startswith("-")}
            self.caps |= added
            self.caps -= removed
            self._cap_answered()
            if self.state is State.REGISTERED:
                return [CapsChanged(frozenset(self.caps), frozenset(added), frozenset(removed))]
        elif sub == "NAK":
            self._cap_answered()
        elif sub == "NEW":
            self._ls.update(values)
            self._request(values)
        elif sub == "DEL":
            removed = set(values) & self.caps
            self.caps -= removed
            if removed:
                return [CapsChanged(frozenset(self.caps), removed=frozenset(removed))]
        return []

    def _wanted(self, offered: dict[str, str]) -> list[str]:
        want = [c for c in sorted(offered) if c in self.config.caps and c not in self.caps]
        sasl_cfg = self.config.sasl
        if (
            sasl_cfg is not None
            and "sasl" in offered
            and "sasl" not in self.caps
            and self._sasl_state is None
            and sasl.offered(offered.get("sasl"), sasl_cfg.mechanism)
        ):
            want.append("sasl")
        return want

    def _request(self, offered: dict[str, str]) -> None:
        want = self._wanted(offered)
        chunk: list[str] = []
        for cap in want:
            if chunk and len(" ".join([*chunk, cap])) > 400:
                self._send("CAP", ["REQ", " ".join(chunk)])
                self._cap_pending += 1
                chunk = []
            chunk.append(cap)
        if chunk:
            self._send("CAP", ["REQ", " ".join(chunk)])
            self._cap_pending += 1
        if not self._cap_pending:
            self._cap_answered()

    def _cap_answered(self) -> None:
        self._cap_pending = max(self._cap_pending - 1, 0)
        if self._cap_pending or not self._cap_open:
            return
        sasl_cfg = self.config.sasl
        if sasl_cfg is not None and self._sasl_state is None:
            if "sasl" in self.caps:
                self._sasl_state = "started"
                self._send("AUTHENTICATE", [sasl_cfg.mechanism.value])
                return
            self._sasl_state = "done"
            self._events.append(
                SaslResult(False, sasl_cfg.mechanism.value, message="SASL not offered")
            )
            if sasl_cfg.required:
                self._abort("SASL required but the server does not offer it")
                return
        self._cap_end()

    def _cap_end(self) -> None:
        if self._cap_open:
            self._cap_open = False
            self._send("CAP", ["END"])

    def _on_authenticate(self, line: Line, *_: object) -> list[Event]:
        if self._sasl_state != "started" or self.config.sasl is None:
            return []
        if line.params and line.params[0] == "+":
            for part in sasl.chunks(sasl.payload(self.config.sasl)):
                self._send("AUTHENTICATE", [part])
        return []

    def _sasl_done(self, line: Line, success: bool) -> list[Event]:
        cfg = self.config.sasl
        if cfg is None or self._sasl_state == "done":
            return []
        self._sasl_state = "done"
        message = line.params[-1] if line.params else ""
        result = SaslResult(success, cfg.mechanism.value, self.server.account, message)
        if not success and cfg.required:
            self._events.append(result)
            self._abort(f"SASL failed ({line.command}: {message})")
            return []
        self._cap_end()
        return [result]

    def _on_903(self, line: Line, *_: object) -> list[Event]:
        return self._sasl_done(line, True)

    def _on_907(self, line: Line, *_: object) -> list[Event]:
        return self._sasl_done(line, True)

    def _sasl_fail(self, line: Line, *_: object) -> list[Event]:
        return self._sasl_done(line, False)

    _on_902 = _on_904 = _on_905 = _on_906 = _sasl_fail

    def _on_908(self, line: Line, *_: object) -> list[Event]:
        # The mechanisms the server supports; 904 follows and ends the attempt.
        return [Numeric("908", tuple(line.params), self._time(line))]

    def _on_900(self, line: Line, *_: object) -> list[Event]:
        return [UserUpdate(self.nick, "account", self.server.account, self._time(line))]
