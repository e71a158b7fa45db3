"""The sans-I/O IRC client: bytes in, events out, bytes to send.

Rules of this file:

- No I/O and no asyncio. The owner feeds received bytes to
  :meth:`Client.receive_data`, collects :meth:`Client.events_received`, writes
  :meth:`Client.data_to_send` (which obeys the throttle) and waits
  :meth:`Client.send_delay` before asking again, and calls :meth:`Client.tick`
  about once a second for the timers (registration timeout, keep-alive PING,
  nick regain). Time comes from the injected clocks.
- irctokens parses lines; ircstates keeps channel and user state. This class
  adds registration (CAP 302, SASL), nick handling, CTCP, batches, labels and
  turns lines into events.
- States (:class:`State`)::

      NEW --connect()--> REGISTERING --001 + end of MOTD--> REGISTERED
        REGISTERING/REGISTERED --ERROR, fatal error, connection_lost()--> CLOSED

  Inside REGISTERING, CAP negotiation (IRCv3 capability-negotiation, 302) runs
  first: ``CAP LS 302`` / REQ / ACK, then SASL if configured, then ``CAP END``.
  A server that does not know CAP simply answers 001.
"""

from __future__ import annotations

import time as _time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ircstates.server import Server
from irctokens.line import Line, build

from . import ctcp, lines, nicks
from .config import ClientConfig
from .errors import LineTooLong, NotConnected, ProtocolError, SendQueueFull
from .events import (
    Batch,
    Disconnected,
    Error,
    Event,
    History,
    LabeledResponse,
    Message,
    MessageKind,
    Nick,
    NickInUse,
    Numeric,
    Registered,
    SaslResult,
)
from .history import Anchor, chathistory_params
from .negotiate import Negotiating
from .receive import Receiving
from .state import State
from .throttle import TokenBucket

#: Open batches at once, and events in one batch, before the batch is refused.
MAX_OPEN_BATCHES = 32
MAX_BATCH_EVENTS = 5000
#: Commands whose lines skip the throttle (keep-alive and session control).
URGENT = frozenset({"PONG", "PING", "QUIT", "CAP", "AUTHENTICATE", "PASS", "USER"})
NICK_ERRORS = frozenset({"433", "432", "437"})
#: Labels are only attached to commands that get a reply.
LABELED_COMMANDS = frozenset(
    {"CHATHISTORY", "WHOIS", "NAMES", "LIST", "MODE", "TOPIC", "PRIVMSG", "NOTICE"}
)


@dataclass(slots=True)
class _OpenBatch:
    ref: str
    type: str
    params: tuple[str, ...]
    label: str | None
    parent: str | None
    events: list[Event] = field(default_factory=list)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Client(Negotiating, Receiving):
    """One IRC session (one TCP connection) as a state machine."""

    def __init__(
        self,
        config: ClientConfig,
        *,
        clock: Callable[[], float] = _time.monotonic,
        wallclock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.config = config
        self.clock = clock
        self.wallclock = wallclock
        self.state = State.NEW
        self.server = Server("irc")
        self.caps: set[str] = set()
        self.wanted_nick = config.nick
        #: Why the session ended, and whether reconnecting may help (set when CLOSED).
        self.close_reason_text = ""
        self.retry = True
        self._quitting = False
        self._buffer = lines.LineBuffer()
        self._events: list[Event] = []
        self._queue: deque[bytes] = deque()
        self._urgent: deque[bytes] = deque()
        self._bucket = TokenBucket(config.throttle_burst, config.throttle_interval)
        self._ctcp_bucket = ctcp.reply_limiter()
        self._ls: dict[str, str] = {}
        self._cap_pending = 0
        self._cap_open = False
        self._sasl_state: str | None = None  # None, "started", "done"
        self._welcomed = False
        self._nicks = nicks.candidates(config.nick, config.alt_nick)
        next(self._nicks)
        self._batches: dict[str, _OpenBatch] = {}
        self._label_seq = 0
        self._started = 0.0
        self._last_recv = 0.0
        self._ping_sent = False
        self._regain_at: float | None = None
        self._welcome_at: float | None = None

    # -- the sans-I/O interface ------------------------------------------

    def connect(self) -> None:
        """Start registration: queue CAP LS 302, PASS, NICK and USER."""
        if self.state is not State.NEW:
            raise RuntimeError("connect() once per Client")
        self.state = State.REGISTERING
        self._started = self._last_recv = self.clock()
        self._cap_open = True
        self._send("CAP", ["LS", "302"])
        if self.config.password:
            self._send("PASS", [self.config.password])
        self._send("NICK", [self.config.nick])
        self._send("USER", [self.config.user, "0", "*", self.config.real])

    def receive_data(self, data: bytes) -> None:
        """Feed bytes from the server; an empty ``data`` means end of stream."""
        if self.state is State.CLOSED:
            return
        if not data:
            self.connection_lost("server closed the connection")
            return
        self._last_recv = self.clock()
        self._ping_sent = False
        try:
            raws = self._buffer.feed(data)
        except LineTooLong as exc:
            self._fail(f"protocol error: {exc}")
            return
        for raw in raws:
            if self.closed:
                break
            try:
                line = lines.parse(raw)
            except ProtocolError as exc:
                self._events.append(Error(f"garbage from server: {exc}", lines.decode(raw)[:512]))
                continue
            try:
                self._handle(line)
            except Exception as exc:  # one bad line (or a bug on it) never ends the session
                self._events.append(
                    Error(f"unexpected line ({type(exc).__name__}: {exc})", line.format()[:512])
                )

    def events_received(self) -> list[Event]:
        events, self._events = self._events, []
        return events

    def data_to_send(self) -> bytes:
        """The lines that may go now: urgent ones always, the rest under the throttle."""
        out = bytearray()
        while self._urgent:
            out += self._urgent.popleft()
        now = self.clock()
        while self._queue and self._bucket.take(now):
            out += self._queue.popleft()
        return bytes(out)

    def send_delay(self) -> float | None:
        """Seconds until :meth:`data_to_send` has more; None when nothing waits."""
        if self._urgent:
            return 0.0
        if not self._queue:
            return None
        return self._bucket.delay(self.clock())

    @property
    def pending_lines(self) -> int:
        return len(self._queue) + len(self._urgent)

    def connection_lost(self, reason: str) -> None:
        if self.state is not State.CLOSED:
            self._close(reason, retry=True)

    def tick(self) -> None:
        """Run the timers; call about once a second."""
        if self.state in (State.NEW, State.CLOSED):
            return
        now = self.clock()
        if self.state is State.REGISTERING:
            if self._welcomed and self._welcome_at is not None and now - self._welcome_at > 10:
                self._registered()  # a server that sends neither MOTD nor 422
            elif now - self._started > self.config.register_timeout:
                self._fail("registration timed out")
                return
        idle = now - self._last_recv
        if idle > self.config.ping_timeout:
            self._fail(f"ping timeout ({int(idle)} s without data)")
            return
        if idle > self.config.ping_interval and not self._ping_sent:
            self._ping_sent = True
            self._send("PING", ["hubbub"])
        if (
            self._regain_at is not None
            and now >= self._regain_at
            and self.state is State.REGISTERED
        ):
            self._regain_at = now + self.config.regain_interval
            self._send("ISON", [self.wanted_nick])

    # -- commands -----------------------------------------------------------

    @property
    def nick(self) -> str:
        return self.server.nickname or self.config.nick

    @property
    def closed(self) -> bool:
        return self.state is State.CLOSED

    @property
    def registered(self) -> bool:
        return self.state is State.REGISTERED

    def send_line(
        self, command: str, params: Iterable[str] = (), *, label: bool = False
    ) -> str | None:
        """Queue a command; with ``label`` and labeled-response on, return its label."""
        self._require_open()
        tags = None
        ref = None
        if label and "labeled-response" in self.caps:
            ref = self._next_label()
            tags = {"label": ref}
        self._send(command.upper(), list(params), tags)
        return ref

    def send_raw(self, text: str) -> None:
        """Queue a raw line (``/quote``); it must parse and fit in one line."""
        self._require_open()
        if any(c in text for c in "\r\n\x00"):
            raise ValueError("CR, LF or NUL inside a raw line")
        try:
            line = lines.parse(text.encode())
        except ProtocolError as exc:
            raise ValueError(str(exc)) from exc
        self._enqueue(line)
        if line.command == "QUIT":
            self._quitting = True  # the server's ERROR then ends the session for good

    def privmsg(self, target: str, text: str, *, tags: dict[str, str] | None = None) -> None:
        self._say("PRIVMSG", target, text, MessageKind.PRIVMSG, tags)

    def notice(self, target: str, text: str, *, tags: dict[str, str] | None = None) -> None:
        self._say("NOTICE", target, text, MessageKind.NOTICE, tags)

    def action(self, target: str, text: str, *, tags: dict[str, str] | None = None) -> None:
        self._say("PRIVMSG", target, text, MessageKind.ACTION, tags)

    def ctcp(self, target: str, command: str, argument: str = "") -> None:
        self.send_line("PRIVMSG", [target, ctcp.wrap(command.upper(), argument)])

    def join(self, channels: Iterable[str], keys: Iterable[str] = ()) -> None:
        """JOIN, several channels per line as long as they fit."""
        names = [c for c in channels if c]
        keyed = list(keys)
        batch: list[str] = []
        for name in names:
            if batch and len(",".join([*batch, name])) > 400:
                self.send_line("JOIN", [",".join(batch)])
                batch = []
            batch.append(name)
        if batch:
            params = [",".join(batch)]
            if keyed:
                params.append(",".join(keyed))
            self.send_line("JOIN", params)

    def part(self, channel: str, reason: str = "") -> None:
        self.send_line("PART", [channel, reason] if reason else [channel])

    def set_nick(self, nick: str) -> None:
        """Change nick; it becomes the wanted nick that the client regains."""
        self.wanted_nick = nick
        self.send_line("NICK", [nick])

    def quit(self, reason: str = "") -> None:
        if self.state in (State.REGISTERING, State.REGISTERED):
            self._send("QUIT", [reason] if reason else [])
            self._quitting = True

    def chathistory(self, target: str, anchor: Anchor | None, limit: int = 100) -> str | None:
        """Ask for the messages after ``anchor`` (or the latest); None without chathistory."""
        if "draft/chathistory" not in self.caps:
            return None
        server_max = self.server.isupport.raw.get("CHATHISTORY") or ""
        if server_max.isdigit() and int(server_max) > 0:
            limit = min(limit, int(server_max))
        return self.send_line("CHATHISTORY", chathistory_params(target, anchor, limit), label=True)

    def own_prefix(self) -> str:
        """How the server shows us, with placeholders for what we do not know yet."""
        user = self.server.username or ("~" + self.config.user)
        host = self.server.hostname or "x" * lines.UNKNOWN_HOST_LEN
        return f"{self.nick}!{user}@{host}"

    # -- internals: sending -------------------------------------------------

    def _require_open(self) -> None:
        if self.state not in (State.REGISTERING, State.REGISTERED):
            raise NotConnected(f"not connected ({self.state.value})")

    def _next_label(self) -> str:
        self._label_seq += 1
        return f"h{self._label_seq}"

    def _send(self, command: str, params: list[str], tags: dict[str, str] | None = None) -> None:
        self._enqueue(build(command, params, tags=tags))

    def _enqueue(self, line: Line) -> None:
        if self.pending_lines >= self.config.max_queue:
            raise SendQueueFull(f"{len(self._queue)} lines wait to be sent")
        data = lines.encode(line)
        body = len(data) - lines.tags_size(line.tags)
        if body > lines.LINE_LIMIT:
            raise ValueError(f"line of {body} bytes passes the {lines.LINE_LIMIT}-byte limit")
        urgent = line.command in URGENT or (
            self.state is State.REGISTERING and line.command == "NICK"
        )
        (self._urgent if urgent else self._queue).append(data)

    def _say(
        self, command: str, target: str, text: str, kind: MessageKind, tags: dict[str, str] | None
    ) -> None:
        self._require_open()
        if not target or " " in target or target.startswith(":"):
            raise ValueError(f"bad target {target!r}")
        send_tags = dict(tags or {}) if "message-tags" in self.caps else {}
        if lines.tags_size(send_tags) > lines.CLIENT_TAGS_LIMIT - 20:
            raise ValueError("message tags too large")
        extra = len(b"\x01ACTION \x01") if kind is MessageKind.ACTION else 0
        budget = lines.text_budget(self.own_prefix(), command, target, extra)
        echo = "echo-message" in self.caps
        is_channel = self.server.is_channel(target.lstrip("".join(self.server.isupport.statusmsg)))
        for chunk in lines.split_text(text, budget):
            wire = ctcp.wrap("ACTION", chunk) if kind is MessageKind.ACTION else chunk
            self._send(command, [target, wire], send_tags or None)
            if not echo:
                self._events.append(
                    Message(
                        target=target,
                        conversation=target,
                        nick=self.nick,
                        text=chunk,
                        kind=kind,
                        time=self.wallclock(),
                        own=True,
                        is_channel=is_channel,
                    )
                )

    # -- internals: receiving -----------------------------------------------

    def _handle(self, line: Line) -> None:
        command = line.command
        if command == "BATCH":
            self._handle_batch(line)
            return
        before: tuple[str, ...] = ()
        old_nick = self.nick
        if command in ("QUIT", "NICK") and line.source:
            before = self._channels_of(self._source_nick(line))
        state_error: Exception | None = None
        try:
            self.server.parse_tokens(line)
        except (IndexError, KeyError, ValueError, AttributeError) as exc:
            state_error = exc
        handler = getattr(self, f"_on_{command.lower()}", None)
        produced: list[Event] = []
        if handler is not None:
            produced = handler(line, before, old_nick) or []
        elif command not in _SILENT_COMMANDS:  # numerics, FAIL/WARN/NOTE, the unknown
            produced = [
                Numeric(
                    command, tuple(line.params), self._time(line), (line.tags or {}).get("label")
                )
            ]
        self._route(line, produced)
        if state_error is not None:  # the handler coped; report the line once
            raise state_error

    def _route(self, line: Line, produced: list[Event]) -> None:
        tags = line.tags or {}
        ref = tags.get("batch")
        if ref and ref in self._batches:
            batch = self._batches[ref]
            batch.events.extend(produced)
            if len(batch.events) > MAX_BATCH_EVENTS:
                del self._batches[ref]
                self._events.append(
                    Error(f"batch {ref} passed {MAX_BATCH_EVENTS} events; delivered unbatched")
                )
                self._events.extend(batch.events)
            return
        label = tags.get("label")
        if label and line.command != "BATCH":
            self._events.append(LabeledResponse(label, tuple(produced)))
            return
        self._events.extend(produced)

    def _handle_batch(self, line: Line) -> None:
        tags = line.tags or {}
        if not line.params or len(line.params[0]) < 2:
            raise ValueError("BATCH without reference")
        sign, ref = line.params[0][0], line.params[0][1:]
        if sign == "+":
            if len(self._batches) >= MAX_OPEN_BATCHES:
                self._events.append(
                    Error("too many open batches; batch ignored", line.format()[:512])
                )
                return
            btype = line.params[1] if len(line.params) > 1 else ""
            self._batches[ref] = _OpenBatch(
                ref, btype, tuple(line.params[2:]), tags.get("label"), tags.get("batch")
            )
            return
        batch = self._batches.pop(ref, None)
        if batch is None:
            return
        event: Event
        if batch.type == "labeled-response" and batch.label:
            event = LabeledResponse(batch.label, tuple(batch.events))
        elif batch.type in ("chathistory", "draft/chathistory"):
            target = batch.params[0] if batch.params else ""
            msgs = tuple(e for e in batch.events if isinstance(e, Message))
            event = History(target, msgs, batch.label)
        else:
            event = Batch(batch.ref, batch.type, batch.params, tuple(batch.events), batch.label)
        parent = self._batches.get(batch.parent) if batch.parent else None
        if parent is not None:
            parent.events.append(event)
        else:
            self._events.append(event)

    # -- registration ---------------------------------------------------------

    def _on_ping(self, line: Line, *_: object) -> list[Event]:
        self._send("PONG", list(line.params) or ["hubbub"])
        return []

    def _on_pong(self, line: Line, *_: object) -> list[Event]:
        return []

    def _on_error(self, line: Line, *_: object) -> list[Event]:
        reason = line.params[-1] if line.params else "ERROR"
        self._close(f"server error: {reason}", retry=not self._quitting)
        return []

    def _on_001(self, line: Line, *_: object) -> list[Event]:
        self._welcomed = True
        self._welcome_at = self.clock()
        if self._cap_open:  # a server without CAP, or one that ignored CAP END
            self._cap_open = False
        if self.config.sasl is not None and self._sasl_state is None:
            self._sasl_state = "done"
            cfg = self.config.sasl
            self._events.append(
                SaslResult(False, cfg.mechanism.value, message="server has no SASL")
            )
            if cfg.required:
                self._abort("SASL required but the server does not offer it")
        return []

    def _on_376(self, line: Line, *_: object) -> list[Event]:
        if self.state is State.REGISTERING and self._welcomed:
            self._registered()
        return []

    _on_422 = _on_376

    def _registered(self) -> None:
        self.state = State.REGISTERED
        self._events.append(
            Registered(self.nick, frozenset(self.caps), self.server.isupport.network)
        )
        self._start_regain()

    def _abort(self, reason: str) -> None:
        self._send("QUIT", [reason])
        self._quitting = True
        self._close(reason, retry=False)

    def _fail(self, reason: str) -> None:
        self._events.append(Error(reason, fatal=True))
        self._close(reason, retry=True)

    def _close(self, reason: str, *, retry: bool) -> None:
        if self.state is State.CLOSED:
            return
        self.state = State.CLOSED
        self.close_reason_text, self.retry = reason, retry
        self._batches.clear()
        self._events.append(Disconnected(reason, retry))

    # -- nicks ----------------------------------------------------------------

    def _nick_refused(self, line: Line, *_: object) -> list[Event]:
        refused = line.params[1] if len(line.params) > 1 else ""
        if self.state is State.REGISTERED:
            return [NickInUse(refused, line.command, None)]
        choice = next(self._nicks, None)
        if choice is None:
            self._abort("no usable nick: every alternative was refused")
            return [NickInUse(refused, line.command, None)]
        self._send("NICK", [choice])
        return [NickInUse(refused, line.command, choice)]

    _on_433 = _on_432 = _on_437 = _nick_refused

    def _start_regain(self) -> None:
        if self._is_me(self.wanted_nick):
            self._regain_at = None
            return
        if self.server.isupport.monitor is not None:
            self._send("MONITOR", ["+", self.wanted_nick])
            self._regain_at = None
        else:
            self._regain_at = self.clock() + self.config.regain_interval

    def _try_regain(self) -> None:
        if self.state is State.REGISTERED and not self._is_me(self.wanted_nick):
            self._send("NICK", [self.wanted_nick])

    def _on_731(self, line: Line, *_: object) -> list[Event]:  # RPL_MONOFFLINE
        offline = {self.server.casefold(n.split("!")[0]) for n in line.params[-1].split(",")}
        if self.server.casefold(self.wanted_nick) in offline:
            self._try_regain()
        return []

    def _on_730(self, line: Line, *_: object) -> list[Event]:  # RPL_MONONLINE
        return []

    def _on_303(self, line: Line, *_: object) -> list[Event]:  # RPL_ISON
        online = {self.server.casefold(n) for n in line.params[-1].split()}
        if self.server.casefold(self.wanted_nick) not in online:
            self._try_regain()
        return []

    def _on_nick(self, line: Line, before: tuple[str, ...], old_me: str) -> list[Event]:
        old, new = self._source_nick(line), line.params[0]
        is_me = self.server.casefold(old) == self.server.casefold(old_me)
        if is_me and self.server.casefold(new) == self.server.casefold(self.wanted_nick):
            self._regain_at = None
            if self.server.isupport.monitor is not None:
                self._send("MONITOR", ["-", self.wanted_nick])
        elif not is_me and self.server.casefold(old) == self.server.casefold(self.wanted_nick):
            self._try_regain()
        return [Nick(old, new, self._time(line), before, is_me)]

    # -- channels and users ---------------------------------------------------


# Lines consumed by the state machine without an event of their own.
_SILENT_COMMANDS = frozenset(
    {
        "002",
        "003",
        "004",
        "005",
        "372",
        "375",
        "333",
        "329",
        "324",
        "396",
        "901",
        "730",
        "TAGMSG",
    }
)
